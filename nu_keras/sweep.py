"""Train many seeded networks per hidden width at once and measure how stable the finding is.

For each width, the seeds train in blocks (`cfg.sweep_block_seeds`), each block as branches of one
model (`model.build_branches`), in this process or as tasks on a Dask cluster (`cluster.py`);
each branch is then measured like the report's network, beside two controls: the same network
before training, and its hidden layer in a random rotated basis; and against a null distribution of
many random rotated bases, which tells whether the neuron basis is special. Writes sweep.json, which the
run loop and the render stage read through sweep_file.py (this module imports Keras and SciPy).
"""

from __future__ import annotations

import logging
import time

import numpy as np

from nu_keras import ablation, analysis, artifacts, inference, robustness, train
from nu_keras import model as mdl
from nu_keras.config import RunConfig
from nu_keras.data import Dataset, dataset

log = logging.getLogger(__name__)


def run(cfg: RunConfig) -> None:
    """The sweep stage: data and the train stage's block (branches.npz, when its recipe matches) -> sweep.json."""
    data = dataset(cfg)
    train.check_paper_data(data)
    fitted = mdl.load_block(artifacts.paths(cfg).branches, train.block_recipe(cfg, data))
    artifacts.write_json(artifacts.paths(cfg).sweep, train_and_measure(data, cfg, fitted))


def train_and_measure(data: Dataset, cfg: RunConfig, fitted: dict | None = None) -> dict:
    """Every per-seed and per-control number of the Robustness page, keyed by width.

    The work is a list of (width, block of seeds) tasks, trained here one after the other or, with
    `cfg.scheduler`, on a Dask cluster; either way the same blocks give the same numbers. `fitted` is a
    block the train stage has already fitted (`model.fit_block`): the report's network and its block's other
    seeds are then measured, not trained again.
    """
    seeds = cfg.sweep_seed_list()
    tasks = [(width, block) for width in cfg.sweep_widths for block in seed_blocks(seeds, cfg.sweep_block_seeds)]
    done = (fitted["width"], fitted["seeds"]) if fitted else None
    trained = iter(train_blocks(data, cfg, [task for task in tasks if task != done]))
    results = [measure_block(data, cfg, fitted) if task == done else next(trained) for task in tasks]
    widths = {}
    for width in cfg.sweep_widths:
        widths[str(width)] = width_entry([result for (w, _), result in zip(tasks, results, strict=True) if w == width])
        log.info(
            "width %d: %d seeds trained in %.1f s, accuracy %.4f +/- %.4f",
            width,
            len(seeds),
            widths[str(width)]["fit_seconds"],
            widths[str(width)]["summary"]["accuracy"]["mean"],
            widths[str(width)]["summary"]["accuracy"]["sd"],
        )
    paper_width = widths.get(str(cfg.hidden_units))
    models = paper_width["models"] if paper_width else []
    counts = [m["trained"]["classes_with_dominant_unit"] for m in models]
    own = [len(m["trained"]["specificity"]["classes_with_own_unit"]) for m in models]
    percentiles = [m["null"]["percentile"] for m in models]
    result = {
        "seeds": seeds,
        "widths": widths,
        "recipe": cfg.training_fields() | {"hidden_units": cfg.hidden_units, "seeds_per_block": cfg.sweep_block_seeds},
        "thresholds": {
            "dominance": cfg.dominance_threshold,
            "min_classes": cfg.claim_min_classes,
            "min_seed_fraction": cfg.claim_seed_fraction,
            "privileged_percentile": cfg.privileged_percentile,
            "privileged_seed_fraction": cfg.privileged_seed_fraction,
            "specific_classes": cfg.specificity_min_classes,
            "specificity_seed_fraction": cfg.specificity_seed_fraction,
            "rotations": cfg.rotation_null_samples,
        },
        "verdict": robustness.verdict(counts, cfg.claim_min_classes, cfg.claim_seed_fraction) if counts else None,
        "specificity_verdict": (
            robustness.specificity_verdict(own, cfg.specificity_min_classes, cfg.specificity_seed_fraction)
            if own
            else None
        ),
        "privileged_verdict": (
            robustness.privileged_verdict(percentiles, cfg.privileged_percentile, cfg.privileged_seed_fraction)
            if percentiles
            else None
        ),
        "fisher": fisher_tests(models, cfg),
        "provenance": {
            "data_sha256": data.sha256,
            "data_source": data.source,
            "backend": cfg.backend,
            "versions": results[0]["versions"],  # where the networks trained (checked alike on every worker)
        },
    }
    return result | {"tests": robustness.test_family(result)}


def fisher_tests(models: list[dict], cfg: RunConfig) -> dict:
    """Fisher's exact test of trained against untrained pass counts over the seeds, for claims 1 and 3: does
    training make a seed pass more often than the same architecture at its initialisation?"""
    if not models:
        return {"claim_1": None, "claim_3": None}

    def passes(kind: str, claim: str) -> int:
        if claim == "claim_1":
            return sum(m[kind]["classes_with_dominant_unit"] >= cfg.claim_min_classes for m in models)
        return sum(len(m[kind]["specificity"]["classes_with_own_unit"]) >= cfg.specificity_min_classes for m in models)

    n = len(models)
    return {
        claim: inference.fisher_exact(passes("trained", claim), n, passes("untrained", claim), n)
        for claim in ("claim_1", "claim_3")
    }


def train_blocks(data: Dataset, cfg: RunConfig, tasks: list[tuple[int, list[int]]]) -> list[dict]:
    """`train_block` for every (width, seeds) task: here one after the other, or on the Dask cluster
    `cfg.scheduler` (`cluster.py`)."""
    if cfg.scheduler and tasks:
        from nu_keras import cluster

        return cluster.run_blocks(data, cfg, tasks)
    return [train_block(data, cfg, width, seeds) for width, seeds in tasks]


def seed_blocks(seeds: list[int], size: int) -> list[list[int]]:
    """Consecutive blocks of at most `size` seeds: the unit of work, in-process and on a cluster."""
    return [seeds[i : i + size] for i in range(0, len(seeds), size)]


def train_block(data: Dataset, cfg: RunConfig, width: int, seeds: list[int]) -> dict:
    """Train one block of seeds at one width as branches of one model, and measure each branch.

    Self-contained (data and config in, plain numbers out) so a Dask worker can run it as one task.
    """
    started = time.perf_counter()
    block = measure_block(data, cfg, mdl.fit_block(data, cfg, width, seeds, validate=False))
    return block | {"task_seconds": time.perf_counter() - started}


def measure_block(data: Dataset, cfg: RunConfig, fitted: dict) -> dict:
    """Every branch of a fitted block measured like the report's network, with its controls."""
    started = time.perf_counter()
    cfg = cfg.replace(hidden_units=fitted["width"])
    x_test = mdl.scale(data.x_test).reshape(len(data.x_test), -1)  # (N, 784)
    labels = data.y_test.astype(np.int64)
    models = [
        measure_seed(x_test, labels, trained, initial, seed, cfg)
        for trained, initial, seed in zip(fitted["trained"], fitted["initial"], fitted["seeds"], strict=True)
    ]
    return {
        "width": fitted["width"],
        "seeds": fitted["seeds"],
        "fit_seconds": fitted["fit_seconds"],
        "task_seconds": fitted["fit_seconds"] + time.perf_counter() - started,
        "models": models,
        "versions": mdl.versions(),
    }


def width_entry(blocks: list[dict]) -> dict:
    """One width's blocks joined: units matched across all its seeds, intervals over all of them."""
    models = [m for block in blocks for m in block["models"]]
    add_matching(models)
    return {
        "fit_seconds": sum(block["fit_seconds"] for block in blocks),
        "blocks": [block["seeds"] for block in blocks],
        "models": models,
        "summary": summarise(models),
    }


def measure_seed(x: np.ndarray, labels: np.ndarray, trained: dict, initial: dict, seed: int, cfg: RunConfig) -> dict:
    """The trained branch, its untrained initialisation and a rotated basis, measured alike; the trained
    layer's place in the rotation null; and its selectivity-importance rank correlations.

    Dead units are left out of every control: the rotated basis rotates the live units only, each divided
    by its spread first (the same function: h D⁻¹ R Rᵀ D W2 = h W2), as the rotation null does.
    """
    threshold = cfg.dominance_threshold
    hidden = analysis.forward_hidden(x, trained)
    w2, b2 = trained["output_kernel"], trained["output_bias"]
    live = analysis.live_mask(hidden)
    spread = hidden[:, live].std(axis=0)
    spread = np.where(spread > 0, spread, 1.0)
    rotation = robustness.random_rotation(int(live.sum()), seed)
    rotated, rotated_w2 = robustness.rotate(hidden[:, live] / spread, w2[live] * spread[:, None], rotation)
    untrained_hidden = analysis.forward_hidden(x, initial)
    summary = robustness.model_summary(hidden, labels, w2, b2, threshold)
    units = np.flatnonzero(live)
    return {
        "seed": seed,
        "trained": summary,
        "untrained": robustness.model_summary(
            untrained_hidden, labels, initial["output_kernel"], initial["output_bias"], threshold
        ),
        "rotated": robustness.model_summary(rotated, labels, rotated_w2, b2, threshold, signed=True),
        "null": robustness.place_in_rotation_null(hidden, labels, threshold, cfg.rotation_null_samples, seed + 1),
        "selectivity_vs_ablation": {
            kind: analysis.rank_correlation(
                np.array(summary["selectivity"])[units],
                np.array(summary["ablation_importance"][kind])[units],
                seed=seed,
            )
            for kind in ablation.ABLATIONS
        },
    }


MATCH_KINDS = ("trained", "shuffled", "untrained", "rotated")


def add_matching(models: list[dict]) -> None:
    """Match every seed's units to the first seed's by per-class profile (Hungarian on correlation), and
    run the same matching on baselines: shuffled trained profiles, untrained units, rotated units."""
    for kind in MATCH_KINDS:
        source = "trained" if kind == "shuffled" else kind
        reference = np.array(models[0][source]["profiles"])
        reference_live = set(models[0][source]["live_units"])
        for entry in models:
            profiles = np.array(entry[source]["profiles"])
            if kind == "shuffled":
                profiles = robustness.shuffled_profiles(profiles, seed=entry["seed"])
            order, corr = robustness.match_units(reference, profiles)
            live = [i in reference_live and int(u) in entry[source]["live_units"] for i, u in enumerate(order)]
            # (a unit left unmatched, order -1, is never in live_units)
            entry.setdefault("matching", {})[kind] = {
                "order": order.tolist(),
                "correlation": corr.tolist(),
                "live": live,  # both units of the pair are live: only these enter the means
            }
    for entry in models:
        entry["matched_order"] = entry["matching"]["trained"]["order"]
        entry["matched_correlation"] = entry["matching"]["trained"]["correlation"]


def summarise(models: list[dict]) -> dict:
    """Intervals over seeds for every measure the Robustness page shows; every mean or pooled statistic
    over units takes the live units only (`analysis.live_units`)."""

    def live(entry: dict, kind: str, key: str) -> list[float]:
        values = entry[kind][key] or []
        return [values[u] for u in entry[kind]["live_units"]] if values else []

    def pooled(kind: str, key: str) -> list[float]:
        return [v for m in models for v in live(m, kind, key)]

    def over_seeds(kind: str, key: str) -> dict | None:
        if models[0][kind][key] is None:
            return None
        return robustness.interval([float(np.mean(live(m, kind, key) or [0.0])) for m in models])

    def count_over_seeds(kind: str, key: str) -> dict | None:
        values = [m[kind][key] for m in models]
        return None if values[0] is None else robustness.interval([float(v) for v in values])

    others = models[1:] or models
    kinds = ("trained", "untrained", "rotated")
    dedicated = np.sum([m["trained"]["class_has_dominant_unit"] for m in models], axis=0)
    groups = np.array([m["seed"] for m in models for _ in m["trained"]["live_units"]])
    return {
        "accuracy": robustness.interval([m["trained"]["test_accuracy"] for m in models]),
        "classes_with_dominant_unit": {kind: count_over_seeds(kind, "classes_with_dominant_unit") for kind in kinds},
        "rescaled_dominant_classes": {kind: count_over_seeds(kind, "rescaled_dominant_classes") for kind in kinds},
        "classes_with_own_unit": {
            kind: robustness.interval([len(m[kind]["specificity"]["classes_with_own_unit"]) for m in models])
            for kind in kinds
        },
        "distinct_dominant_units": {
            kind: robustness.interval([m[kind]["specificity"]["distinct_dominant_units"] for m in models])
            for kind in kinds
        },
        "mean_eta_squared": {kind: count_over_seeds(kind, "mean_eta_squared") for kind in kinds},
        "mean_d_prime": {kind: count_over_seeds(kind, "mean_d_prime") for kind in kinds},
        "selectivity": {kind: pooled(kind, "selectivity") for kind in kinds},
        "mean_selectivity": {kind: over_seeds(kind, "selectivity") for kind in kinds},
        "mean_mutual_information": {kind: over_seeds(kind, "mutual_information") for kind in kinds},
        "dead_fraction": robustness.interval([np.mean(m["trained"]["dead_fraction"]) for m in models]),
        "dead_units": [len(m["trained"]["dead_units"]) for m in models],
        "near_dead_units": [len(m["trained"]["near_dead_units"]) for m in models],
        "matched_correlation": robustness.interval([live_match_mean(m, "trained") for m in others]),
        "matching": {kind: robustness.interval([live_match_mean(m, kind) for m in others]) for kind in MATCH_KINDS},
        "null_percentile": {
            key: robustness.interval([m["null"]["percentile"][key] for m in models]) for key in robustness.NULL_MEASURES
        },
        # units of one network share its training run: the permutation shuffles within each seed only
        "selectivity_vs_ablation_pooled": {
            kind: inference.within_group_rank_correlation(
                np.array(pooled("trained", "selectivity")),
                np.array([v for m in models for v in live_importance(m, kind)]),
                groups,
                seed=models[0]["seed"],
            )
            for kind in ablation.ABLATIONS
        },
        "seeds_with_dominant_unit_per_class": dedicated.tolist(),
        "threshold_curve": threshold_curve(models),
        "effect_sizes": effect_sizes(models),
    }


# Which per-seed threshold counts each curve reads: raw dominance needs non-negative units, so the rotated
# basis (signed) is read on the spread-scaled table only.
CURVES = {
    "trained": ("trained", "threshold_counts"),
    "untrained": ("untrained", "threshold_counts"),
    "rotated": ("rotated", "rescaled_threshold_counts"),
    "trained_rescaled": ("trained", "rescaled_threshold_counts"),
    "untrained_rescaled": ("untrained", "rescaled_threshold_counts"),
}


def threshold_curve(models: list[dict]) -> dict:
    """Classes with a dominant unit as the threshold moves over `robustness.CURVE_THRESHOLDS`: per curve, the
    mean over seeds and its 95 % t-interval at each threshold, so a count is not read at 50 % alone."""
    curve = {"thresholds": list(robustness.CURVE_THRESHOLDS)}
    for name, (kind, key) in CURVES.items():
        counts = np.array([m[kind][key] for m in models], dtype=np.float64)  # (seeds, thresholds)
        spans = [robustness.interval(column) for column in counts.T]
        curve[name] = {side: [span[side] for span in spans] for side in ("mean", "low", "high")}
    return curve


def effect_sizes(models: list[dict]) -> dict:
    """Trained minus a control, per seed, on the live-unit means of eta² and d', with a bootstrap interval
    over seeds and the side of zero it lies on: how far training moves the measure beyond what any basis
    of the same layer (rotated) or the same architecture untrained would give."""

    def difference(control: str, key: str) -> dict:
        values = np.array([m["trained"][key] - m[control][key] for m in models])
        boot = inference.bootstrap_mean(values, seed=models[0]["seed"])
        return boot | {"side": inference.side_of_zero(boot["low"], boot["high"])}

    measures = {"eta_squared": "mean_eta_squared", "d_prime": "mean_d_prime"}
    return {name: difference("rotated", key) for name, key in measures.items()} | {
        "vs_untrained": {name: difference("untrained", key) for name, key in measures.items()}
    }


def live_importance(entry: dict, kind: str) -> list[float]:
    importance = entry["trained"]["ablation_importance"][kind]
    return [importance[u] for u in entry["trained"]["live_units"]]


def live_match_mean(entry: dict, kind: str) -> float:
    """Mean matched correlation over the pairs whose two units are both live (a dead unit's constant
    profile correlates 0 with everything and would only pull the mean down)."""
    pairs = entry["matching"][kind]
    kept = [c for c, live in zip(pairs["correlation"], pairs["live"], strict=True) if live]
    return float(np.mean(kept)) if kept else 0.0

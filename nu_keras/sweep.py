"""Train many seeded networks per hidden width at once and measure how stable the finding is.

For each width, the seeds train in blocks (`cfg.sweep_block_seeds`), each block as branches of one
model (`model.build_branches`), in this process or as tasks on a Dask cluster (`cluster.py`);
each branch is then measured like the report's network, beside two controls: the same network
before training, and its hidden layer in a random rotated basis; and against a null distribution of
many random rotated bases, which tells whether the neuron basis is special. Writes sweep.json.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from nu_keras import analysis, robustness
from nu_keras import model as mdl
from nu_keras.config import RunConfig
from nu_keras.data import Dataset

log = logging.getLogger(__name__)


def run_sweep(data: Dataset, cfg: RunConfig, fitted: dict | None = None) -> dict:
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
    counts = [m["trained"]["digits_with_dominant_unit"] for m in models]
    percentiles = [m["null"]["percentile"] for m in models]
    return {
        "seeds": seeds,
        "widths": widths,
        "recipe": cfg.training_fields() | {"hidden_units": cfg.hidden_units, "seeds_per_block": cfg.sweep_block_seeds},
        "thresholds": {
            "dominance": cfg.dominance_threshold,
            "min_digits": cfg.claim_min_digits,
            "min_seed_fraction": cfg.claim_seed_fraction,
            "privileged_percentile": cfg.privileged_percentile,
            "privileged_seed_fraction": cfg.privileged_seed_fraction,
            "rotations": cfg.rotation_null_samples,
        },
        "verdict": robustness.verdict(counts, cfg.claim_min_digits, cfg.claim_seed_fraction) if counts else None,
        "privileged_verdict": (
            robustness.privileged_verdict(percentiles, cfg.privileged_percentile, cfg.privileged_seed_fraction)
            if percentiles
            else None
        ),
        "provenance": {
            "data_sha256": data.sha256,
            "data_source": data.source,
            "backend": cfg.backend,
            "versions": results[0]["versions"],  # where the networks trained (checked alike on every worker)
        },
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
    layer's place in the rotation null; and its selectivity-importance rank correlations."""
    threshold = cfg.dominance_threshold
    hidden = analysis.forward_hidden(x, trained)
    w2, b2 = trained["output_kernel"], trained["output_bias"]
    rotation = robustness.random_rotation(cfg.hidden_units, seed)
    rotated, rotated_w2 = robustness.rotate(hidden, w2, rotation)
    untrained_hidden = analysis.forward_hidden(x, initial)
    summary = robustness.model_summary(hidden, labels, w2, b2, threshold)
    return {
        "seed": seed,
        "trained": summary,
        "untrained": robustness.model_summary(
            untrained_hidden, labels, initial["output_kernel"], initial["output_bias"], threshold
        ),
        "rotated": robustness.model_summary(rotated, labels, rotated_w2, b2, threshold, signed=True),
        "null": place_in_rotation_null(hidden, labels, cfg, seed),
        "selectivity_vs_ablation": {
            kind: analysis.rank_correlation(
                np.array(summary["selectivity"]), np.array(summary["ablation_importance"][kind]), seed=seed
            )
            for kind in analysis.ABLATIONS
        },
    }


def place_in_rotation_null(hidden: np.ndarray, labels: np.ndarray, cfg: RunConfig, seed: int) -> dict:
    """The trained neurons' invariant measures against random rotations of the same layer.

    Dead units are left out of both sides (see `robustness.live_units`).
    """
    live = robustness.live_units(hidden)
    trained = analysis.invariant_measures(live, labels, cfg.dominance_threshold)
    null = robustness.rotation_null(live, labels, cfg.rotation_null_samples, seed=seed + 1)
    return {
        "units": int(live.shape[1]),
        "trained": {key: float(trained[key]) for key in robustness.NULL_MEASURES},
        "values": {key: values.tolist() for key, values in null.items()},
        "percentile": {key: robustness.percentile_within(float(trained[key]), null[key]) for key in null},
    }


MATCH_KINDS = ("trained", "shuffled", "untrained", "rotated")


def add_matching(models: list[dict]) -> None:
    """Match every seed's units to the first seed's by per-digit profile (Hungarian on correlation), and
    run the same matching on baselines: shuffled trained profiles, untrained units, rotated units."""
    for kind in MATCH_KINDS:
        source = "trained" if kind == "shuffled" else kind
        reference = np.array(models[0][source]["profiles"])
        for entry in models:
            profiles = np.array(entry[source]["profiles"])
            if kind == "shuffled":
                profiles = robustness.shuffled_profiles(profiles, seed=entry["seed"])
            order, corr = robustness.match_units(reference, profiles)
            entry.setdefault("matching", {})[kind] = {"order": order.tolist(), "correlation": corr.tolist()}
    for entry in models:
        entry["matched_order"] = entry["matching"]["trained"]["order"]
        entry["matched_correlation"] = entry["matching"]["trained"]["correlation"]


def summarise(models: list[dict]) -> dict:
    """Intervals over seeds for every measure the Robustness page shows."""

    def pooled(kind: str, key: str) -> list[float]:
        return [v for m in models for v in (m[kind][key] or [])]

    def over_seeds(kind: str, key: str, reduce=np.mean) -> dict | None:
        values = [m[kind][key] for m in models]
        return None if values[0] is None else robustness.interval([reduce(v) for v in values])

    others = models[1:] or models
    kinds = ("trained", "untrained", "rotated")
    dedicated = np.sum([m["trained"]["digit_has_dominant_unit"] for m in models], axis=0)
    selectivity = np.array(pooled("trained", "selectivity"))
    return {
        "accuracy": robustness.interval([m["trained"]["test_accuracy"] for m in models]),
        "digits_with_dominant_unit": {kind: over_seeds(kind, "digits_with_dominant_unit", float) for kind in kinds},
        "standardised_dominant_digits": {
            kind: over_seeds(kind, "standardised_dominant_digits", float) for kind in kinds
        },
        "mean_eta_squared": {kind: over_seeds(kind, "mean_eta_squared", float) for kind in kinds},
        "mean_d_prime": {kind: over_seeds(kind, "mean_d_prime", float) for kind in kinds},
        "selectivity": {kind: pooled(kind, "selectivity") for kind in kinds},
        "mean_selectivity": {kind: over_seeds(kind, "selectivity") for kind in kinds},
        "mean_mutual_information": {kind: over_seeds(kind, "mutual_information") for kind in kinds},
        "dead_fraction": robustness.interval([np.mean(m["trained"]["dead_fraction"]) for m in models]),
        "dead_units": [len(m["trained"]["dead_units"]) for m in models],
        "near_dead_units": [len(m["trained"]["near_dead_units"]) for m in models],
        "matched_correlation": robustness.interval([np.mean(m["matched_correlation"]) for m in others]),
        "matching": {
            kind: robustness.interval([np.mean(m["matching"][kind]["correlation"]) for m in others])
            for kind in MATCH_KINDS
        },
        "null_percentile": {
            key: robustness.interval([m["null"]["percentile"][key] for m in models]) for key in robustness.NULL_MEASURES
        },
        "selectivity_vs_ablation_pooled": {
            kind: analysis.rank_correlation(
                selectivity, np.array(pooled_importance(models, kind)), seed=models[0]["seed"]
            )
            for kind in analysis.ABLATIONS
        },
        "seeds_with_dominant_unit_per_digit": dedicated.tolist(),
    }


def pooled_importance(models: list[dict], kind: str) -> list[float]:
    return [v for m in models for v in m["trained"]["ablation_importance"][kind]]

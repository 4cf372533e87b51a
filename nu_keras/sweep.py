"""Train many seeded networks per hidden width at once and measure how stable the finding is.

For each width, the seeds train in blocks (`cfg.sweep_block_seeds`), each block as branches of one
model (`model.build_branches`), in this process or as tasks on a Dask cluster (`cluster.py`);
each branch is then measured like the report's network, beside two controls: the same network
before training, and its hidden layer in a random rotated basis. Writes sweep.json.
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


def run_sweep(data: Dataset, cfg: RunConfig) -> dict:
    """Every per-seed and per-control number of the Robustness page, keyed by width.

    The work is a list of (width, block of seeds) tasks, trained here one after the other or, with
    `cfg.scheduler`, on a Dask cluster; either way the same blocks give the same numbers.
    """
    seeds = [cfg.seed + i for i in range(cfg.sweep_seeds)]
    tasks = [(width, block) for width in cfg.sweep_widths for block in seed_blocks(seeds, cfg.sweep_block_seeds)]
    if cfg.scheduler:
        from nu_keras import cluster

        results = cluster.run_blocks(data, cfg, tasks)
    else:
        results = [train_block(data, cfg, width, block) for width, block in tasks]
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
    counts = [m["trained"]["digits_with_dominant_unit"] for m in paper_width["models"]] if paper_width else []
    return {
        "seeds": seeds,
        "widths": widths,
        "recipe": cfg.training_fields() | {"hidden_units": cfg.hidden_units, "seeds_per_block": cfg.sweep_block_seeds},
        "thresholds": {
            "dominance": cfg.dominance_threshold,
            "min_digits": cfg.claim_min_digits,
            "min_seed_fraction": cfg.claim_seed_fraction,
        },
        "verdict": robustness.verdict(counts, cfg.claim_min_digits, cfg.claim_seed_fraction) if counts else None,
        "provenance": {
            "data_sha256": data.sha256,
            "data_source": data.source,
            "backend": cfg.backend,
            "versions": results[0]["versions"],  # where the networks trained (checked alike on every worker)
        },
    }


def seed_blocks(seeds: list[int], size: int) -> list[list[int]]:
    """Consecutive blocks of at most `size` seeds: the unit of work, in-process and on a cluster."""
    return [seeds[i : i + size] for i in range(0, len(seeds), size)]


def train_block(data: Dataset, cfg: RunConfig, width: int, seeds: list[int]) -> dict:
    """Train one block of seeds at one width as branches of one model, and measure each branch.

    Self-contained (data and config in, plain numbers out) so a Dask worker can run it as one task.
    """
    started = time.perf_counter()
    cfg = cfg.replace(hidden_units=width)
    net = mdl.build_branches(cfg, seeds, width)
    initial = [mdl.branch_weights(net, n) for n in range(len(seeds))]
    fit_seconds = mdl.fit_branches(net, data, cfg)
    x_test = mdl.scale(data.x_test).reshape(len(data.x_test), -1)  # (N, 784)
    labels = data.y_test.astype(np.int64)
    models = [
        measure_seed(x_test, labels, mdl.branch_weights(net, n), initial[n], seed, cfg) for n, seed in enumerate(seeds)
    ]
    return {
        "width": width,
        "seeds": seeds,
        "fit_seconds": fit_seconds,
        "task_seconds": time.perf_counter() - started,
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
    """The trained branch, its untrained initialisation and a rotated basis, measured alike."""
    threshold = cfg.dominance_threshold
    hidden = analysis.forward_hidden(x, trained)
    w2, b2 = trained["output_kernel"], trained["output_bias"]
    rotation = robustness.random_rotation(cfg.hidden_units, seed)
    rotated, rotated_w2 = robustness.rotate(hidden, w2, rotation)
    untrained_hidden = analysis.forward_hidden(x, initial)
    return {
        "seed": seed,
        "trained": robustness.model_summary(hidden, labels, w2, b2, threshold),
        "untrained": robustness.model_summary(
            untrained_hidden, labels, initial["output_kernel"], initial["output_bias"], threshold
        ),
        "rotated": robustness.model_summary(
            rotated, labels, rotated_w2, b2, threshold, rates=robustness.shift_nonnegative(rotated)
        ),
    }


def add_matching(models: list[dict]) -> None:
    """Match every seed's units to the first seed's by per-digit profile (Hungarian on correlation)."""
    reference = np.array(models[0]["trained"]["profiles"])
    for entry in models:
        order, corr = robustness.match_units(reference, np.array(entry["trained"]["profiles"]))
        entry["matched_order"] = order.tolist()
        entry["matched_correlation"] = corr.tolist()


def summarise(models: list[dict]) -> dict:
    """Intervals over seeds for every measure the Robustness page shows."""

    def pooled(kind: str, key: str) -> list[float]:
        return [v for m in models for v in m[kind][key]]

    others = models[1:] or models
    dedicated = np.sum([m["trained"]["digit_has_dominant_unit"] for m in models], axis=0)
    return {
        "accuracy": robustness.interval([m["trained"]["test_accuracy"] for m in models]),
        "digits_with_dominant_unit": {
            kind: robustness.interval([m[kind]["digits_with_dominant_unit"] for m in models])
            for kind in ("trained", "untrained", "rotated")
        },
        "selectivity": {kind: pooled(kind, "selectivity") for kind in ("trained", "untrained", "rotated")},
        "mean_selectivity": {
            kind: robustness.interval([np.mean(m[kind]["selectivity"]) for m in models])
            for kind in ("trained", "untrained", "rotated")
        },
        "mean_mutual_information": {
            kind: robustness.interval([np.mean(m[kind]["mutual_information"]) for m in models])
            for kind in ("trained", "untrained", "rotated")
        },
        "dead_fraction": robustness.interval([np.mean(m["trained"]["dead_fraction"]) for m in models]),
        "matched_correlation": robustness.interval([np.mean(m["matched_correlation"]) for m in others]),
        "seeds_with_dominant_unit_per_digit": dedicated.tolist(),
    }

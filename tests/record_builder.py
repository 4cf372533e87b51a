"""A `Measurements` record for the publishing tests, built from a hand-made or an old metrics.json dict
(its keys as before the record: digit_counts, win_share, standardised_...) and, where there are any, the
activations, weights and test images of a run; without them, a small stand-in test set of the right size.

One builder for every fixture (tests/page_fixtures.py, the render tests), so that the publishing tests
need no training and no analysis code: they check what pages, charts and the Explore export make of a
record, whatever made it.
"""

from __future__ import annotations

import json
import re

import numpy as np
from matplotlib import cbook

from nu_keras import explore
from nu_keras.record import (
    SCHEMA_VERSION,
    ClassUnit,
    Images,
    Layer,
    Measurements,
    Method,
    PerClass,
    PerUnit,
    Provenance,
)

EXAMPLES = 20  # per_class.examples: the first images of each class the pages may show


def renamed(value):
    """A dict's keys at any depth in the record's words: digit -> class, standardised -> rescaled."""
    if isinstance(value, dict):
        return {_renamed_key(k): renamed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [renamed(v) for v in value]
    return value


def _renamed_key(key):
    if not isinstance(key, str):
        return key
    key = key.replace("standardised", "rescaled")
    return re.sub(r"digit", "class", re.sub(r"digits", "classes", key))


def stand_in_run(metrics: dict, seed: int = 0) -> tuple[dict, np.ndarray]:
    """Activations and images of a test set of `n_test` images for hand-made metrics: image i of class
    i mod C, predicted right, its units random (signed or not as the metrics say)."""
    rng = np.random.default_rng(seed)
    classes, units = np.shape(metrics["mean_activation"])
    n = int(metrics["n_test"])
    labels = np.arange(n) % classes
    low = -1.0 if metrics.get("signed", metrics["subject"].get("signed")) else 0.0
    acts = {
        "hidden": rng.uniform(low, 2.0, size=(n, units)).astype(np.float32),
        "labels": labels.astype(np.int64),
        "predictions": labels.astype(np.int64),
    }
    shape = tuple(metrics["dataset"]["image_shape"])
    return acts, rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)


def boxplot_stats(units: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    """(C, U, 5) whislo, q1, med, q3, whishi of each unit over each class's images, as `ax.boxplot` draws."""
    out = np.full((classes, units.shape[1], 5), np.nan)
    for c in range(classes):
        column = units[labels == c]
        if len(column):
            for u, stats in enumerate(cbook.boxplot_stats([column[:, u] for u in range(units.shape[1])])):
                out[c, u] = [stats[k] for k in ("whislo", "q1", "med", "q3", "whishi")]
    return out


def first_examples(labels: np.ndarray, classes: int, k: int = EXAMPLES) -> np.ndarray:
    table = np.full((classes, k), -1, dtype=np.int64)
    for c in range(classes):
        first = np.flatnonzero(labels == c)[:k]
        table[c, : len(first)] = first
    return table


def network_of(metrics: dict, weights: dict | None) -> tuple[dict, ...] | None:
    """The Explore stack from weights.npz (the paper's hidden/output, or stack_i_kernel/bias)."""
    subject = metrics["subject"]
    if not subject.get("explorable") or weights is None:
        return None
    layers = subject["stack"]
    if "stack_0_kernel" in weights:
        arrays = [(weights[f"stack_{i}_kernel"], weights[f"stack_{i}_bias"]) for i in range(len(layers))]
    else:
        arrays = [
            (weights["hidden_kernel"], weights["hidden_bias"]),
            (weights["output_kernel"], weights["output_bias"]),
        ]
    return tuple(
        {"name": layer["name"], "activation": layer["activation"], "kernel": kernel, "bias": bias}
        for layer, (kernel, bias) in zip(layers, arrays, strict=True)
    )


def record_from_metrics(
    metrics: dict, acts: dict | None = None, weights: dict | None = None, images: np.ndarray | None = None
) -> Measurements:
    """The record that holds `metrics`' numbers (old keys), with the images and activations of `acts`
    and `images` (a stand-in test set when not given) and the pixel weights of `weights`."""
    metrics = json.loads(json.dumps(metrics))  # as metrics.json holds it: lists, not tuples
    if acts is None or images is None:
        acts, images = stand_in_run(metrics)
    units_all = np.asarray(acts["hidden"] if "hidden" in acts else acts["units"], dtype=np.float64)
    labels, predictions = np.asarray(acts["labels"], np.int64), np.asarray(acts["predictions"], np.int64)
    classes = len(metrics["dataset"]["class_names"])
    n_units = len(metrics["eta_squared"])
    config, subject = metrics["config"], metrics["subject"]
    signed = bool(metrics.get("signed", subject.get("signed", False)))
    examples = first_examples(labels, classes)
    network = network_of(metrics, weights)
    keep = [examples[examples >= 0], np.asarray(metrics["top_examples"]).ravel()]
    keep += [np.asarray(s, dtype=np.int64) for s in metrics["silent_examples"]]
    first = explore.SAMPLE_PER_CLASS
    keep.append(explore.shipped_rows(labels, labels, images, classes, first)[0])  # the first 40 of each class
    if network is not None:
        keep.append(explore.shipped_rows(labels, predictions, images, classes, first)[0])
    index = np.unique(np.concatenate(keep).astype(np.int64))
    pixel_weights = subject.get("pixel_weights") and weights is not None and "hidden_kernel" in weights
    output_weights = metrics["output_weights"]
    dead = list(metrics["dead_units"])
    return Measurements(
        schema_version=SCHEMA_VERSION,
        classes=tuple(str(c) for c in metrics["dataset"]["class_names"]),
        units=tuple(str(u) for u in range(n_units)),
        test_accuracy=float(metrics["test_accuracy"]),
        n_test=int(metrics["n_test"]),
        method=Method(
            dominance_threshold=config["dominance_threshold"],
            confidence=0.95,
            near_dead=0.95,
            null_whiskers=(2.5, 97.5),
            null_tail=0.05000000000000004,
            claim_min_classes=config.get("claim_min_classes", config.get("claim_min_digits")),
            specificity_min_classes=config["specificity_min_classes"],
            privileged_percentile=config["privileged_percentile"],
            rotation_null_samples=config["rotation_null_samples"],
            seed=config["seed"],
            normal_quantile=1.96,
        ),
        layer=Layer(
            signed=signed,
            all_units_dead=bool(metrics.get("all_units_dead", False)),
            live_units=tuple(metrics.get("live_units", [u for u in range(n_units) if u not in dead])),
            dead_units=tuple(dead),
            near_dead_units=tuple(metrics["near_dead_units"]),
            classes_with_one_image=tuple(metrics.get("classes_with_one_image", [])),
            spatial_max=metrics.get("spatial_max"),
        ),
        per_class=PerClass(
            count=np.asarray(metrics["digit_counts"]),
            accuracy=np.asarray(metrics["per_digit_accuracy"], dtype=float),
            top_unit=np.asarray(metrics["preferred_unit"]),
            runner_up_unit=np.asarray(metrics["runner_up_unit"]),
            top_unit_margin=np.asarray(metrics["preferred_margin"], dtype=float),
            dominant_unit=tuple(metrics["dominant_unit"]),
            rescaled_dominant_unit=tuple(metrics["standardised_dominant_unit"]),
            silent_fraction=np.asarray(metrics["silent_fraction"], dtype=float),
            examples=examples,
        ),
        per_unit=PerUnit(
            mean=units_all.mean(axis=0),
            selectivity=tuple(metrics["selectivity"]),
            eta_squared=np.asarray(metrics["eta_squared"], dtype=float),
            d_prime=np.asarray(metrics["d_prime"], dtype=float),
            dead_fraction=np.asarray(metrics["dead_fraction"], dtype=float),
            preferred_class=np.asarray(metrics["preferred_digit"]),
            preferred_class_drop=np.asarray(metrics["preferred_digit_drop"], dtype=float),
            top_examples=np.asarray(metrics["top_examples"]),
            silent_examples=tuple(tuple(s) for s in metrics["silent_examples"]),
            output_weights=None if output_weights is None else np.asarray(output_weights, dtype=float),
            input_weights=np.asarray(weights["hidden_kernel"]) if pixel_weights else None,
        ),
        class_unit=ClassUnit(
            mean=np.asarray(metrics["mean_activation"], dtype=float),
            std=np.asarray(metrics["std_activation"], dtype=float),
            ci95=np.asarray(metrics["ci95_activation"], dtype=float),
            dominance_share=np.asarray(metrics["win_share"], dtype=float),
            rescaled_dominance_share=np.asarray(metrics["standardised_win_share"], dtype=float),
            boxplot=boxplot_stats(units_all, labels, classes),
        ),
        images=Images(
            index=index,
            pixels=np.asarray(images)[index],
            label=labels[index],
            prediction=predictions[index],
            units=units_all[index],
        ),
        ablation=metrics["ablation"],
        ablation_noise=metrics.get("ablation_noise") or {},
        important_units=metrics.get("important_units") or {},
        invariant=renamed(metrics.get("invariant") or {}),
        null=renamed(metrics.get("null") or {}),
        claim=renamed(metrics["claim"]),
        claims=renamed(metrics.get("claims") or {}),
        specificity=metrics.get("specificity") or {},
        rescaled_specificity=metrics.get("standardised_specificity") or {},
        correlations={
            "selectivity_vs_ablation": metrics["selectivity_vs_ablation"],
            "selectivity_vs_preferred_class_drop": metrics["selectivity_vs_preferred_drop"],
        },
        tests=metrics.get("tests") or {},
        dynamics=renamed(metrics.get("dynamics")),
        network=network,
        provenance=Provenance(
            config=config,
            versions=metrics["versions"],
            data_source=metrics["data_source"],
            data_sha256=metrics["data_sha256"],
            dataset=metrics["dataset"],
            subject=subject,
            history=metrics["history"],
            fit_seconds=metrics["fit_seconds"],
            trained_with=metrics["trained_with"],
            parameters=metrics["parameters"],
            layers=metrics["layers"],
            timings=metrics["timings"],
        ),
    )

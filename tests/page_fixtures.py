"""Hand-built measurement records for the four kinds of report the pages must write, no training involved:
the paper's network on MNIST and on Fashion-MNIST, a user's convolutional layer (hostile names, signed
activations, no history, no output weights) and a user's Dense layer of 256 units.

Each `*_record` builder returns (record, charts): `charts` is `nu_keras.charts.chart_names` of that record.
The paper's network is measured by `analysis.measure` on conftest's synthetic run; a user's layer is written
as a metrics dict of random but well-formed numbers (`user_metrics`) and made a `Measurements` by
tests/record_builder.py, so a test can change a number before the record is frozen.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from conftest import MNIST_DESCRIPTION, paper_subject, synthetic_record, synthetic_run
from record_builder import record_from_metrics

from nu_keras import analysis, charts
from nu_keras.config import RunConfig
from nu_keras.record import Measurements

FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
HOSTILE_CLASSES = [
    "<img src=x onerror=alert(1)>",
    "[x](javascript:alert(1))",
    "*bold*",
    "|pipe|</title><script>alert(3)</script>",
]
HOSTILE_LAYER = "conv<script>alert(1)</script>[l](javascript:alert(2))"
HOSTILE_MODEL = "models/<b>net</b>*.keras"


def paper_dataset(name: str = "mnist") -> dict:
    if name == "mnist":
        return dict(MNIST_DESCRIPTION)
    return MNIST_DESCRIPTION | {"name": name, "title": "Fashion-MNIST", "class_names": FASHION}


def paper_fields(record: Measurements, dataset: str = "mnist") -> Measurements:
    """A record of the paper's network with the data set's names and the generalised report's fields."""
    described = paper_dataset(dataset)
    config = record.provenance.config | {"dataset": dataset, "model": None, "layer": None, "pixels": "unit"}
    subject = paper_subject(len(record.units)) | {"signed": record.layer.signed}
    provenance = dataclasses.replace(record.provenance, dataset=described, subject=subject, config=config)
    return dataclasses.replace(record, classes=tuple(described["class_names"]), provenance=provenance)


def paper_record(dataset: str = "mnist", sweep: dict | None = None) -> tuple[Measurements, dict]:
    """(record, chart names) of conftest's synthetic run of the paper's network, on MNIST or Fashion-MNIST."""
    record = paper_fields(synthetic_record(*synthetic_run(), RunConfig()), dataset)
    return record, charts.chart_names(record, sweep)


def _rho(rng: np.random.Generator, n: int) -> dict:
    rho = float(rng.uniform(-1, 1))
    return {"rho": rho, "p": float(rng.uniform(0, 1)), "low": rho - 0.2, "high": rho + 0.2, "n": n}


def _dominant(share: np.ndarray, threshold: float = 0.5) -> list:
    return [int(row.argmax()) if row.max() > threshold else None for row in share]


def _ablation(rng: np.random.Generator, intact: np.ndarray, units: int) -> dict:
    classes = len(intact)
    drop = rng.uniform(-0.01, 0.2, size=(units, classes)) * (rng.uniform(size=(units, 1)) < 0.5)
    needed = drop.argmax(axis=0)
    confusion = rng.dirichlet(np.ones(classes) * 0.3, size=classes)
    return {
        "accuracy": (intact - drop).tolist(),
        "drop": drop.tolist(),
        "importance": drop.mean(axis=1).tolist(),
        "most_needed_unit": needed.tolist(),
        "most_needed_drop": drop.max(axis=0).tolist(),
        "confusion_without_most_needed": confusion.tolist(),
    }


def _claim(share: np.ndarray, preferred: np.ndarray, units: int) -> dict:
    dominant = _dominant(share)
    by_unit: dict[str, list[int]] = {}
    for d, n in enumerate(preferred.tolist()):
        by_unit.setdefault(str(n), []).append(d)
    return {
        "digits_with_dominant_unit": [d for d, n in enumerate(dominant) if n is not None],
        "digits_without_dominant_unit": [d for d, n in enumerate(dominant) if n is None],
        "best_share": share.max(axis=1).tolist(),
        "best_share_unit": share.argmax(axis=1).tolist(),
        "units_preferred_by_several_digits": {n: ds for n, ds in by_unit.items() if len(ds) > 1},
        "units_preferred_by_no_digit": sorted(set(range(units)) - set(preferred.tolist())),
        "distinct_preferred_units": len(by_unit),
        "distinct_dominant_units": len({n for n in dominant if n is not None}),
        "digits_whose_preferred_unit_is_not_dominant": [
            d for d, n in enumerate(preferred.tolist()) if dominant[d] != n
        ],
    }


def user_metrics(
    class_names: list[str], units: int, *, conv: bool, signed: bool, output_weights: bool, seed: int = 0
) -> dict:
    """Random but well-formed metrics of a user's layer: every table C rows by U columns."""
    rng = np.random.default_rng(seed)
    classes = len(class_names)
    low = -1.0 if signed else 0.0
    mean = rng.uniform(low, 2.0, size=(classes, units))
    mean[np.arange(classes), np.arange(classes) % units] += 2.0  # each class prefers one unit
    order = np.argsort(-mean, axis=1)
    share = rng.dirichlet(np.ones(units) * 0.2, size=classes)
    standardised = rng.dirichlet(np.ones(units) * 0.2, size=classes)
    dead_fraction = np.zeros(units) if signed else rng.uniform(0, 0.6, size=units)
    if not signed:
        dead_fraction[:3] = [1.0, 0.99, 0.97]  # one dead and two near-dead units
    intact = rng.uniform(0.6, 1.0, size=classes)
    zero, mean_ablation = _ablation(rng, intact, units), _ablation(rng, intact, units)
    preferred, preferred_class = order[:, 0], mean.argmax(axis=0)
    drop = np.array(zero["drop"])
    selectivity = None if signed else rng.uniform(0, 1, size=units).tolist()
    counts = rng.integers(20, 40, size=classes)
    silent = [[] if signed or n % 3 else [1, 2, 3] for n in range(units)]
    subject = {
        "kind": "user",
        "trained_here": False,
        "model": HOSTILE_MODEL,
        "model_name": "net<i>x</i>",
        "layer": HOSTILE_LAYER if conv else "dense_1",
        "layer_kind": "conv" if conv else "dense",
        "layer_type": "Conv2D" if conv else "Dense",
        "units": units,
        "signed": signed,
        "pixel_weights": not conv,
        "tail_is_dense": output_weights,
        "explorable": False,
        "explore_reason": "the model is not the paper's 784-U-C Dense network",
        "spatial": [7, 7] if conv else None,
    }
    metrics = {
        "test_accuracy": float(intact.mean()),
        "n_test": int(counts.sum()),
        "digit_counts": counts.tolist(),
        "mean_activation": mean.tolist(),
        "std_activation": rng.uniform(0.1, 1, size=(classes, units)).tolist(),
        "ci95_activation": rng.uniform(0.01, 0.1, size=(classes, units)).tolist(),
        "preferred_unit": preferred.tolist(),
        "runner_up_unit": order[:, 1].tolist(),
        "preferred_margin": (mean[np.arange(classes), order[:, 0]] - mean[np.arange(classes), order[:, 1]]).tolist(),
        "win_share": share.tolist(),
        "dominant_unit": _dominant(share),
        "standardised_win_share": standardised.tolist(),
        "standardised_dominant_unit": _dominant(standardised),
        "eta_squared": rng.uniform(0, 1, size=units).tolist(),
        "d_prime": rng.uniform(0, 3, size=units).tolist(),
        "invariant": {
            "standardised_dominant_digits": 2.0,
            "standardised_matched_share": 0.4,
            "eta_squared": 0.3,
            "d_prime": 1.1,
        },
        "silent_fraction": np.zeros(classes).tolist(),
        "per_digit_accuracy": intact.tolist(),
        "output_weights": rng.normal(size=(units, classes)).tolist() if output_weights else None,
        "selectivity": selectivity if selectivity is not None else [None] * units,
        "preferred_digit": preferred_class.tolist(),
        "dead_fraction": dead_fraction.tolist(),
        "dead_units": [] if signed else [0],
        "near_dead_units": [] if signed else [1, 2],
        "ablation": {"zero": zero, "mean": mean_ablation},
        "top_examples": rng.integers(0, counts.sum(), size=(units, 16)).tolist(),
        "silent_examples": silent,
        "selectivity_vs_ablation": {k: None if signed else _rho(rng, units) for k in ("zero", "mean")},
        "preferred_digit_drop": drop[np.arange(units), preferred_class].tolist(),
        "selectivity_vs_preferred_drop": None if signed else _rho(rng, units),
        "claim": _claim(share, preferred, units),
        "specificity": analysis.specificity(analysis.dominant_units(np.array(share), 0.5), units),
        "config": RunConfig().to_json()
        | {"dataset": "user", "model": HOSTILE_MODEL, "layer": subject["layer"], "pixels": "raw"},
        "versions": {"python": "3.11", "keras": "3.x", "tensorflow": "2.x", "numpy": "2.x"},
        "data_source": "user data <file>.npz",
        "data_sha256": "0" * 64,
        "history": None,
        "fit_seconds": None,
        "trained_with": None,
        "parameters": 12345,
        "layers": [
            {
                "name": subject["layer"],
                "type": subject["layer_type"],
                "output_shape": "(None, 7, 7, 37)",
                "parameters": 370,
            },
            {"name": "logits", "type": "Dense", "output_shape": f"(None, {classes})", "parameters": 100},
        ],
        "timings": {"activations": 1.5},
        "dataset": {
            "name": "user",
            "title": "my<data>[x](javascript:1).npz",
            "class_names": class_names,
            "image_shape": [28, 28, 1] if conv else [32, 32, 3],
            "n_train": 0,
            "pixels": "raw",
            "pixel_note": "pixels given to the model as stored (float32)",
            "input_note": "images of shape (28, 28) were given to the model as (28, 28, 1)" if conv else None,
        },
        "subject": subject,
        "spatial_max": {"mean": (mean + rng.uniform(0, 1, size=mean.shape)).tolist()} if conv else None,
    }
    return metrics


def user_record(metrics: dict) -> Measurements:
    """The record of `user_metrics`, with pixel weights for a layer that reads pixels."""
    units = len(metrics["eta_squared"])
    shape = metrics["dataset"]["image_shape"]
    pixels = int(np.prod(shape[:2]))  # the weight charts show the first channel's grid
    weights = {"hidden_kernel": np.random.default_rng(2).normal(size=(pixels, units)).astype(np.float32)}
    return record_from_metrics(metrics, weights=weights if metrics["subject"]["pixel_weights"] else None)


def user_conv_record() -> tuple[Measurements, dict]:
    """(c) a user's Conv2D layer: 37 channels, 4 hostile class names, signed, no history, no output weights."""
    record = user_record(user_metrics(HOSTILE_CLASSES, 37, conv=True, signed=True, output_weights=False))
    return record, charts.chart_names(record, None)


def user_dense_record(units: int = 256) -> tuple[Measurements, dict]:
    """(d) a user's Dense layer of 256 ReLU units feeding a 10-class output layer."""
    names = [f"class {c}" for c in "ABCDEFGHIJ"]
    record = user_record(user_metrics(names, units, conv=False, signed=False, output_weights=True, seed=1))
    return record, charts.chart_names(record, None)


BLANK_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


def write_blank_charts(names: dict, pages_dir) -> list:
    """A 1×1 PNG at every path of `charts.chart_names`: what a strict site build needs, without drawing."""
    from pathlib import Path

    paths = [*names["overview"].values()] + [
        p for group in ("classes", "units") for row in names[group] for p in row.values()
    ]
    for path in paths:
        target = Path(pages_dir) / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(BLANK_PNG)
    return paths

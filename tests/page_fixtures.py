"""Hand-built measurement records for the four kinds of report the pages must write, no training involved:
the paper's network on MNIST and on Fashion-MNIST, a user's convolutional layer (hostile names, signed
activations, no history, no output weights) and a user's Dense layer of 256 units.

Each `*_record` builder returns (record, charts): `charts` is `nu_keras.charts.chart_names` of that record.
The paper's network is measured by `analysis.measure` on conftest's synthetic run; a user's layer is made of
random but well-formed numbers section by section (`user_record`), on a stand-in test set
(tests/record_builder.py).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from conftest import MNIST_DESCRIPTION, paper_subject, synthetic_record, synthetic_run
from record_builder import boxplot_stats, first_examples, kept_images, stand_in_run

from nu_keras import analysis, charts
from nu_keras.config import RunConfig
from nu_keras.record import (
    SCHEMA_VERSION,
    ClassUnit,
    Layer,
    Measurements,
    Method,
    PerClass,
    PerUnit,
    Provenance,
)

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


def _dominant(share: np.ndarray, threshold: float = 0.5) -> tuple:
    return tuple(int(row.argmax()) if row.max() > threshold else None for row in share)


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


def _claim(share: np.ndarray, top_unit: np.ndarray, units: int) -> dict:
    dominant = _dominant(share)
    by_unit: dict[str, list[int]] = {}
    for c, u in enumerate(top_unit.tolist()):
        by_unit.setdefault(str(u), []).append(c)
    return {
        "classes_with_dominant_unit": [c for c, u in enumerate(dominant) if u is not None],
        "classes_without_dominant_unit": [c for c, u in enumerate(dominant) if u is None],
        "best_share": share.max(axis=1).tolist(),
        "best_share_unit": share.argmax(axis=1).tolist(),
        "units_preferred_by_several_classes": {u: cs for u, cs in by_unit.items() if len(cs) > 1},
        "units_preferred_by_no_class": sorted(set(range(units)) - set(top_unit.tolist())),
        "distinct_preferred_units": len(by_unit),
        "distinct_dominant_units": len({u for u in dominant if u is not None}),
        "classes_whose_preferred_unit_is_not_dominant": [
            c for c, u in enumerate(top_unit.tolist()) if dominant[c] != u
        ],
    }


def user_subject(units: int, *, conv: bool, signed: bool, output_weights: bool) -> dict:
    """What train.json says of a user's layer (subject.describe), hostile names included."""
    return {
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


def user_dataset(class_names: list[str], *, conv: bool) -> dict:
    """What Dataset.describe says of a user's data file, a hostile title included."""
    return {
        "name": "user",
        "title": "my<data>[x](javascript:1).npz",
        "class_names": class_names,
        "image_shape": [28, 28, 1] if conv else [32, 32, 3],
        "n_train": 0,
        "pixels": "raw",
        "pixel_note": "pixels given to the model as stored (float32)",
        "input_note": "images of shape (28, 28) were given to the model as (28, 28, 1)" if conv else None,
    }


def user_record(
    class_names: list[str],
    units: int,
    *,
    conv: bool,
    signed: bool,
    output_weights: bool,
    seed: int = 0,
    subject: dict | None = None,
    dataset: dict | None = None,
) -> Measurements:
    """Random but well-formed measurements of a user's layer (every class-by-unit table C rows by U
    columns), on a stand-in test set; `subject` and `dataset` replace fields of the described layer and data."""
    rng = np.random.default_rng(seed)
    classes = len(class_names)
    mean = rng.uniform(-1.0 if signed else 0.0, 2.0, size=(classes, units))
    mean[np.arange(classes), np.arange(classes) % units] += 2.0  # each class prefers one unit
    order = np.argsort(-mean, axis=1)
    share = rng.dirichlet(np.ones(units) * 0.2, size=classes)
    rescaled_share = rng.dirichlet(np.ones(units) * 0.2, size=classes)
    dead_fraction = np.zeros(units) if signed else rng.uniform(0, 0.6, size=units)
    if not signed:
        dead_fraction[:3] = [1.0, 0.99, 0.97]  # one dead and two near-dead units
    intact = rng.uniform(0.6, 1.0, size=classes)
    zero, mean_ablation = _ablation(rng, intact, units), _ablation(rng, intact, units)
    preferred_class = mean.argmax(axis=0)
    counts = rng.integers(20, 40, size=classes)
    described = user_dataset(class_names, conv=conv) | (dataset or {})
    layer = user_subject(units, conv=conv, signed=signed, output_weights=output_weights) | (subject or {})
    run = stand_in_run(int(counts.sum()), classes, units, tuple(described["image_shape"]), signed)
    pixels = int(np.prod(described["image_shape"][:2]))  # the weight charts show the first channel's grid
    config = RunConfig().measured_fields() | {"dataset": "user", "model": HOSTILE_MODEL, "pixels": "raw"}
    top_examples = rng.integers(0, counts.sum(), size=(units, 16))
    silent_examples = tuple(() if signed or u % 3 else (1, 2, 3) for u in range(units))
    return Measurements(
        schema_version=SCHEMA_VERSION,
        classes=tuple(class_names),
        units=tuple(str(u) for u in range(units)),
        test_accuracy=float(intact.mean()),
        n_test=int(counts.sum()),
        method=Method.from_config(RunConfig()),
        layer=Layer(
            signed=signed,
            all_units_dead=False,
            live_units=tuple(range(units)) if signed else tuple(range(1, units)),
            dead_units=() if signed else (0,),
            near_dead_units=() if signed else (1, 2),
            classes_with_one_image=(),
            spatial_max={"mean": (mean + rng.uniform(0, 1, size=mean.shape)).tolist()} if conv else None,
        ),
        per_class=PerClass(
            count=counts,
            accuracy=intact,
            top_unit=order[:, 0],
            runner_up_unit=order[:, 1],
            top_unit_margin=mean[np.arange(classes), order[:, 0]] - mean[np.arange(classes), order[:, 1]],
            dominant_unit=_dominant(share),
            rescaled_dominant_unit=_dominant(rescaled_share),
            silent_fraction=np.zeros(classes),
            examples=first_examples(run["labels"], classes),
        ),
        per_unit=PerUnit(
            mean=run["units"].mean(axis=0),
            selectivity=(None,) * units if signed else tuple(rng.uniform(0, 1, size=units).tolist()),
            eta_squared=rng.uniform(0, 1, size=units),
            d_prime=rng.uniform(0, 3, size=units),
            dead_fraction=dead_fraction,
            preferred_class=preferred_class,
            preferred_class_drop=np.array(zero["drop"])[np.arange(units), preferred_class],
            top_examples=top_examples,
            silent_examples=silent_examples,
            output_weights=rng.normal(size=(units, classes)) if output_weights else None,
            input_weights=rng.normal(size=(pixels, units)).astype(np.float32) if layer["pixel_weights"] else None,
        ),
        class_unit=ClassUnit(
            mean=mean,
            std=rng.uniform(0.1, 1, size=(classes, units)),
            ci95=rng.uniform(0.01, 0.1, size=(classes, units)),
            dominance_share=share,
            rescaled_dominance_share=rescaled_share,
            boxplot=boxplot_stats(run["units"], run["labels"], classes),
        ),
        images=kept_images(run, classes, [top_examples, *silent_examples]),
        ablation={"zero": zero, "mean": mean_ablation},
        ablation_noise={},
        important_units={},
        invariant={"rescaled_dominant_classes": 2.0, "rescaled_matched_share": 0.4, "eta_squared": 0.3, "d_prime": 1.1},
        null={},
        claim=_claim(share, order[:, 0], units),
        claims={},
        specificity=analysis.specificity(list(_dominant(share)), units),
        rescaled_specificity={},
        correlations={
            "selectivity_vs_ablation": {k: None if signed else _rho(rng, units) for k in ("zero", "mean")},
            "selectivity_vs_preferred_class_drop": None if signed else _rho(rng, units),
        },
        tests={},
        dynamics=None,
        network=None,
        provenance=Provenance(
            config=config | {"layer": layer["layer"]},
            versions={"python": "3.11", "keras": "3.x", "tensorflow": "2.x", "numpy": "2.x"},
            data_source="user data <file>.npz",
            data_sha256="0" * 64,
            dataset=described,
            subject=layer,
            history=None,
            fit_seconds=None,
            trained_with=None,
            parameters=12345,
            layers=[
                {
                    "name": layer["layer"],
                    "type": layer["layer_type"],
                    "output_shape": "(None, 7, 7, 37)",
                    "parameters": 370,
                },
                {"name": "logits", "type": "Dense", "output_shape": f"(None, {classes})", "parameters": 100},
            ],
            timings={"activations": 1.5},
        ),
    )


def user_conv_record() -> tuple[Measurements, dict]:
    """(c) a user's Conv2D layer: 37 channels, 4 hostile class names, signed, no history, no output weights."""
    record = user_record(HOSTILE_CLASSES, 37, conv=True, signed=True, output_weights=False)
    return record, charts.chart_names(record, None)


def user_dense_record(units: int = 256) -> tuple[Measurements, dict]:
    """(d) a user's Dense layer of 256 ReLU units feeding a 10-class output layer."""
    names = [f"class {c}" for c in "ABCDEFGHIJ"]
    record = user_record(names, units, conv=False, signed=False, output_weights=True, seed=1)
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

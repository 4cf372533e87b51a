"""Synthetic stacks of Dense layers for the Explore tests (tests/test_explore*.py): weights, images, an
independent numpy forward pass, and the Explore page rendered with the context pages.py hands it."""

from __future__ import annotations

import base64

import numpy as np
from browser_helpers import REPO

from nu_keras import explore

TEMPLATES = REPO / "report_templates"
MNIST = {"name": "mnist", "title": "MNIST", "noun": "digit", "nouns": "digits"}
FASHION = {"name": "fashion-mnist", "title": "Fashion-MNIST", "noun": "class", "nouns": "classes"}
PAPER_SUBJECT = {"unit": "neuron", "units": "neurons", "layer": "hidden", "trained_here": True}


def decoded(text: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=dtype)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def random_stack(widths: list[int], activations: list[str], seed: int = 0) -> list[dict]:
    """Dense layers from widths[0] inputs through each later width, weights spread enough to vary outputs."""
    rng = np.random.default_rng(seed)
    return [
        {
            "name": f"dense_{i}",
            "kernel": rng.normal(0, 1.5 / np.sqrt(fan_in), (fan_in, fan_out)).astype(np.float32),
            "bias": rng.normal(0, 0.3, fan_out).astype(np.float32),
            "activation": activation,
        }
        for i, (fan_in, fan_out, activation) in enumerate(zip(widths[:-1], widths[1:], activations, strict=True))
    ]


def numpy_activation(name: str, pre: np.ndarray) -> np.ndarray:
    functions = {
        "relu": lambda p: np.maximum(p, 0.0),
        "linear": lambda p: p,
        "sigmoid": lambda p: 1 / (1 + np.exp(-p)),
        "tanh": np.tanh,
        "softmax": softmax,
    }
    return functions[name](pre)


def numpy_forward(stack, x, readout, unit=None, fill=0.0) -> tuple[np.ndarray, np.ndarray]:
    """(N, U) readout activations and (N, C) probabilities in float64, one readout unit replaced by `fill`."""
    a = np.asarray(x, np.float64)
    for i, layer in enumerate(stack[:-1]):
        a = numpy_activation(layer["activation"], a @ layer["kernel"].astype(np.float64) + layer["bias"])
        if i == readout:
            if unit is not None:
                a = a.copy()
                a[:, unit] = fill
            hidden = a
    return hidden, softmax(a @ stack[-1]["kernel"].astype(np.float64) + stack[-1]["bias"])


def random_pixels(shape: tuple[int, ...], dtype: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype == "u1":
        return rng.integers(0, 256, size=shape, dtype=np.uint8)
    return rng.random(shape, dtype=np.float32)


def stack_run(stack, readout, images, pixel_scale, classes) -> dict:
    """Labels cycling through the classes and the stack's own readout activations and predictions."""
    hidden, probabilities = numpy_forward(stack, explore.model_input(images, pixel_scale), readout)
    labels = np.arange(len(images)) % classes
    return {"units": hidden.astype(np.float32), "labels": labels, "predictions": probabilities.argmax(axis=1)}


def explore_acts(acts: dict) -> dict:
    """The readout's activations as explore_data reads them, from a collect()-style dict ("units" or, in
    activations.npz before the record, "hidden")."""
    units = acts["units"] if "units" in acts else acts["hidden"]
    return {**acts, "units": units}


def unit_marks(acts: dict, threshold: float = 0.5) -> dict:
    """What the analysis marks on the readout's units (`explore.unit_marks` reads them from a record): each
    class's preferred and dominant unit, the threshold, the units' means."""
    from nu_keras import analysis

    units, labels = np.asarray(acts["units"], np.float64), np.asarray(acts["labels"]).astype(np.int64)
    return {
        "preferred_unit": analysis.per_class_mean(units, labels).argmax(axis=1).tolist(),
        "dominant_unit": analysis.dominant_units(analysis.dominance_share(units, labels), threshold),
        "dominance_threshold": threshold,
        "unit_means": units.mean(axis=0),
    }


def stack_data(stack, readout, images, pixel_scale=1 / 255, names=None, per_class=4) -> dict:
    classes = stack[-1]["bias"].shape[0]
    names = names or [f"class {k}" for k in range(classes)]
    acts = stack_run(stack, readout, images, pixel_scale, classes)
    return explore.explore_data(stack, readout, acts, images, unit_marks(acts), per_class, pixel_scale, names)


def render_explore(summary: dict, names: list[str], dataset: dict, subject: dict) -> str:
    """explore.md.j2 with the context pages.py hands it: classes as {index, name, label}, dataset, subject."""
    from nu_keras import pages

    digit = dataset["noun"] == "digit"
    classes = [{"index": k, "name": n, "label": f"digit {n}" if digit else n} for k, n in enumerate(names)]
    context = {
        "explore": summary,
        "m": {"test_accuracy": 0.9312},
        "cfg": {"seed": 7},
        "classes": classes,
        "dataset": dataset,
        "subject": subject,
    }
    context["unit_pages"] = [f"neurons/neuron-{n}.md" for n in range(summary["units"])]
    env = pages.environment(TEMPLATES)
    env.globals.update({key: context[key] for key in pages.RENDER_GLOBALS})  # as pages.render_all does
    return env.get_template("explore.md.j2").render(**context)

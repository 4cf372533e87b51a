"""What is analysed: a trained Keras 3 classifier and the one layer whose units are read out.

The paper's network trained here is one subject; a user's model file plus a layer name is another. Both
reach the same numbers through the same three pieces: a *head* (input -> the layer), a *tail* (the
layer -> the class probabilities), and a reduction of the layer's output to one value per unit. A Dense
layer's units are its outputs; a convolutional layer's units are its channels, each read as its spatial
mean (the spatial maximum is kept beside it). Ablating a unit replaces it in the layer's output and runs
the tail, so the rest of the model decides what that unit was worth.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from nu_keras.errors import NuKerasError


@dataclass(frozen=True)
class Readable:
    """A layer whose output can be read as units: (N, U) for dense, (N, H, W, U) for convolutional."""

    name: str
    kind: str  # "dense" or "conv"
    units: int


def load_user_model(path: Path) -> keras.Model:
    """A user's `.keras` model, loaded with safe_mode=True: a Lambda layer or an unknown custom object
    is refused in one line, and never executed."""
    path = Path(path)
    if not path.is_file():
        raise NuKerasError(f"--model {path} is not a file")
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # Keras reports unsafe lambdas and unknown classes as several exception types
        reason = " ".join(str(exc).split())[:240]
        raise NuKerasError(f"--model {path} was refused or is not a Keras 3 model ({reason})") from exc


def readable_layers(model: keras.Model) -> list[Readable]:
    """Every layer but the input and the last whose output is (N, U) or (N, H, W, U): what --layer may name."""
    found = []
    for layer in model.layers[:-1]:
        shape = tuple(layer.output.shape) if hasattr(layer, "output") else ()
        if isinstance(layer, keras.layers.InputLayer) or len(shape) not in (2, 4) or shape[-1] is None:
            continue
        found.append(Readable(layer.name, "dense" if len(shape) == 2 else "conv", int(shape[-1])))
    return found


def find_layer(model: keras.Model, name: str | None) -> Readable:
    """The readable layer called `name`; without a name, or a wrong one, the error lists the choices."""
    layers = readable_layers(model)
    listing = ", ".join(f"{layer.name} ({layer.units} {layer.kind} units)" for layer in layers) or "none"
    if name is None:
        raise NuKerasError(f"--layer is required; layers that can be read out: {listing}")
    for layer in layers:
        if layer.name == name:
            return layer
    raise NuKerasError(f"--layer {name!r} is not a layer that can be read out; choose one of: {listing}")


def check_classifier(model: keras.Model, image_shape: tuple[int, ...], classes: int) -> None:
    """One line naming the expectation when the model cannot take the data's images or does not output
    one probability per class."""
    expected_in = tuple(model.inputs[0].shape[1:])
    if expected_in != tuple(image_shape):
        raise NuKerasError(f"the model takes inputs of shape {expected_in}, but the data's images are {image_shape}")
    outputs = _graph(model)[2]
    out = tuple((outputs[0] if isinstance(outputs, list) else outputs).shape[1:])
    if out != (classes,):
        raise NuKerasError(f"the model outputs shape {out}, expected a {classes}-way classifier (({classes},))")


def split(model: keras.Model, layer: str) -> tuple[keras.Model, keras.Model]:
    """(head, tail): input -> the layer's output, and the layer's output -> the model's output.

    Both share the model's layers and weights, so head then tail is the model itself.
    """
    inputs, tensors, outputs = _graph(model)
    hidden = tensors[layer]
    return keras.Model(inputs, hidden, name="head"), keras.Model(hidden, outputs, name="tail")


def _graph(model: keras.Model) -> tuple:
    """(inputs, {layer name: its output tensor}, outputs) of the model as a functional graph.

    A Sequential model is called layer by layer on a fresh Input (same layers, same weights): its own
    graph is not always connected end to end (layers added after the Input), a functional one is.
    """
    if isinstance(model, keras.Sequential):
        inputs = keras.Input(shape=tuple(model.inputs[0].shape[1:]))
        tensors, x = {}, inputs
        for layer in model.layers:
            x = tensors[layer.name] = layer(x)
        return inputs, tensors, x
    return model.inputs, {layer.name: layer.output for layer in model.layers}, model.outputs


def batches(x: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(x), size):
        yield x[start : start + size]


def read_units(head: keras.Model, x: np.ndarray, batch: int = 1024) -> dict[str, np.ndarray]:
    """Per image and unit: the unit's value (N, U) -- a dense output, or a channel's spatial mean -- and,
    for a convolutional layer, the channel's spatial maximum too. Read in batches: memory stays bounded
    by one batch of the layer's full output, whatever N is."""
    means, maxes = [], []
    for part in batches(x, batch):
        out = np.asarray(head.predict(part, verbose=0), dtype=np.float64)
        spatial = tuple(range(1, out.ndim - 1))
        means.append(out.mean(axis=spatial) if spatial else out)
        maxes.append(out.max(axis=spatial) if spatial else out)
    values = {"units": np.concatenate(means)}
    if spatial:
        values["spatial_max"] = np.concatenate(maxes)
    return values


def unit_fill(head: keras.Model, x: np.ndarray, kind: str, batch: int = 1024) -> np.ndarray:
    """What an ablated unit is replaced by, per position of the layer's output (shape of one output, U last):
    zeros, or the unit's mean over the images ("mean" ablation)."""
    total = None
    for part in batches(x, batch):
        out = np.asarray(head.predict(part, verbose=0), dtype=np.float64)
        total = out.sum(axis=0) if total is None else total + out.sum(axis=0)
    return np.zeros_like(total) if kind == "zero" else total / len(x)


def ablated_predictions(
    head: keras.Model, tail: keras.Model, x: np.ndarray, unit: int, fill: np.ndarray, batch: int = 1024
) -> np.ndarray:
    """(N,) the model's predictions with one unit of the layer replaced by `fill[..., unit]`."""
    predictions = []
    for part in batches(x, batch):
        out = np.array(head.predict(part, verbose=0))
        out[..., unit] = fill[..., unit]
        predictions.append(np.asarray(tail.predict(out, verbose=0)).argmax(axis=-1))
    return np.concatenate(predictions)

"""The collect stage: read the analysed layer's units out of the model over the test images, with an
intermediate-output submodel (the *head*, `subject.split`), and run the rest of the model (the *tail*)
with each unit ablated in turn.

Everything runs in batches, so memory stays bounded by one batch of the layer's full output whatever the
number of images; a convolutional layer's channels are reduced to their spatial mean (and maximum) batch by
batch, and its full maps are never all held at once.
"""

from __future__ import annotations

from collections.abc import Iterator

import keras
import numpy as np

from nu_keras import analysis
from nu_keras.subject import (
    BATCH,
    batches,
    dense_tail,
    dense_weights,
    input_shape,
    model_batches,
    require_finite,
    split,
)

CONV_BATCH = 256  # a convolutional layer's output is (batch, H, W, C): smaller batches keep it bounded
ABLATION_VALUES = 2**25  # float32 values of ablated layer outputs held at once (128 MB)


def hidden_submodel(model: keras.Model, layer: str = "hidden") -> keras.Model:
    """A model sharing `model`'s layers whose output is the named layer's output (the read-out idiom)."""
    return split(model, layer)[0]


def read_units(head: keras.Model, x: np.ndarray, batch: int = BATCH) -> dict[str, np.ndarray]:
    """Per image and unit: the unit's value (N, U) -- a dense output, or a channel's spatial mean -- and,
    for a convolutional layer, the channel's spatial maximum too; and the layer's mean output over the
    images (one output's shape), what mean ablation fills in. Read in batches: memory stays bounded by one
    batch of the layer's full output, whatever N is."""
    means, maxes, total = [], [], 0.0
    for out in head_outputs(head, x, batch):
        spatial = tuple(range(1, out.ndim - 1))
        means.append(out.mean(axis=spatial, dtype=np.float64) if spatial else out)
        maxes.append(out.max(axis=spatial) if spatial else out)
        total = total + out.sum(axis=0, dtype=np.float64)
    values = {"units": np.concatenate(means), "mean_output": total / len(x)}
    if spatial:
        values["spatial_max"] = np.concatenate(maxes)
    return values


def ablated_predictions(
    head: keras.Model, tail: keras.Model, x: np.ndarray, unit: int, fill: np.ndarray, batch: int = BATCH
) -> np.ndarray:
    """(N,) the model's predictions with one unit of the layer replaced by `fill[..., unit]`."""
    return ablation_table(head, tail, x, {"fill": fill}, batch, units=[unit])["fill"][0]


def ablation_table(
    head: keras.Model,
    tail: keras.Model,
    x: np.ndarray,
    fills: dict[str, np.ndarray],
    batch: int = BATCH,
    units: list[int] | None = None,
) -> dict[str, np.ndarray]:
    """Per fill kind, (U, N) predictions with each unit replaced in turn by its fill, the rest of the model
    (the tail) run on the result. The head runs once per batch, whatever the number of units; the tail runs
    on several ablated copies of the batch at once (one call per chunk of units, not one per unit)."""
    tables = {kind: [] for kind in fills}
    for out in head_outputs(head, x, batch):
        chosen = list(range(out.shape[-1]) if units is None else units)
        per_call = max(1, ABLATION_VALUES // out.size)  # ablated copies per tail call: memory stays bounded
        for kind, fill in fills.items():
            rows = [_ablated_chunk(tail, out, chosen[i : i + per_call], fill) for i in range(0, len(chosen), per_call)]
            tables[kind].append(np.concatenate(rows))
    return {kind: np.concatenate(parts, axis=1) for kind, parts in tables.items()}


def _ablated_chunk(tail: keras.Model, out: np.ndarray, chunk: list[int], fill: np.ndarray) -> np.ndarray:
    """(len(chunk), B) predictions: copy k of the batch's layer output has unit chunk[k] replaced by its fill."""
    changed = np.repeat(out[None], len(chunk), axis=0)  # (k, B, ...)
    for k, unit in enumerate(chunk):
        changed[k, ..., unit] = fill[..., unit]
    flat = changed.reshape(-1, *out.shape[1:])
    predicted = np.asarray(tail.predict_on_batch(flat)).argmax(axis=-1)
    return predicted.reshape(len(chunk), len(out))


def collect(model: keras.Model, layer: str, images: np.ndarray, labels: np.ndarray, pixels: str) -> dict:
    """Everything the analysis needs from the model, as arrays for activations.npz:

    units (N, U) the units' values (a channel's spatial mean), spatial_max (N, U) for a conv layer,
    labels (N,), predictions (N,), probabilities (N, C), and ablated_zero / ablated_mean (U, N): the
    predictions with each unit zeroed or set to its test-set mean (per position, for a channel).
    """
    head, tail = split(model, layer)
    x = np.concatenate(list(model_batches(images, input_shape(model), pixels)))
    batch = BATCH if len(head.outputs[0].shape) == 2 else CONV_BATCH
    read = read_units(head, x, batch)
    require_finite(read["units"], f"the outputs of its layer {layer!r}")
    probabilities = model.predict(x, batch_size=BATCH, verbose=0)
    require_finite(probabilities, "its class probabilities")
    hidden = read["units"]
    output = dense_tail(tail)
    if output is not None:  # a matrix product: the same numbers without a Keras call per unit
        w2, b2 = dense_weights(output)
        table = analysis.ablation_table(hidden.astype(np.float64), w2, b2)
    else:
        fills = {"zero": np.zeros_like(read["mean_output"]), "mean": read["mean_output"]}
        table = ablation_table(head, tail, x, fills, batch)
    label_type = np.min_scalar_type(probabilities.shape[1] - 1)
    acts = {
        "units": hidden.astype(np.float32),
        "labels": labels.astype(label_type),
        "predictions": probabilities.argmax(axis=1).astype(label_type),
        "probabilities": probabilities.astype(np.float32),
    }
    acts |= {f"ablated_{kind}": table[kind].astype(label_type) for kind in analysis.ABLATIONS}
    if "spatial_max" in read:
        acts["spatial_max"] = read["spatial_max"].astype(np.float32)
    return acts


def head_outputs(head: keras.Model, x: np.ndarray, batch: int = BATCH) -> Iterator[np.ndarray]:
    """The read-out layer's full output, one batch at a time (one predict call per batch)."""
    for part in batches(x, batch):
        yield np.asarray(head.predict_on_batch(part))

"""The collect stage: read the analysed layer's units out of the model over the test images, with an
intermediate-output submodel (the *head*, `subject.split`), and run the rest of the model (the *tail*)
with each unit ablated in turn (ablation.py).

Everything runs in batches, so memory stays bounded by one batch of the layer's full output whatever the
number of images; a convolutional layer's channels are reduced to their spatial mean (and maximum) batch by
batch, and its full maps are never all held at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import keras
import numpy as np

from nu_keras import ablation, artifacts, subject, train
from nu_keras.config import RunConfig
from nu_keras.data import dataset
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

log = logging.getLogger(__name__)

CONV_BATCH = 256  # a convolutional layer's output is (batch, H, W, C): smaller batches keep it bounded


def run(cfg: RunConfig) -> None:
    """The collect stage: model.keras as the train stage left it, read out over the test images ->
    activations.npz (`collect`), weights.npz (the layer's and the read-out's weights)."""
    net, layer = train.load_subject_model(cfg)
    data = dataset(cfg)
    with train.users_model_runs(cfg):
        sample = subject.first_inputs(net, data.x_test, cfg.pixels)
        described = subject.describe(net, layer, data.image_shape, cfg.trains_here, cfg.model, sample)
        acts = collect(net, layer, data.x_test, data.y_test, cfg.pixels)
    log.info("collected layer %s %s over the test set", layer, acts["units"].shape)
    artifacts.write_npz(artifacts.paths(cfg).activations, **acts)
    artifacts.write_npz(artifacts.paths(cfg).weights, **subject.weights(net, layer, described))


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
        table = ablation.dense_ablation_table(hidden.astype(np.float64), w2, b2)
    else:
        fills = {"zero": np.zeros_like(read["mean_output"]), "mean": read["mean_output"]}
        table = ablation.tail_ablation_table(head_outputs(head, x, batch), tail, fills)
    label_type = np.min_scalar_type(probabilities.shape[1] - 1)
    acts = {
        "units": hidden.astype(np.float32),
        "labels": labels.astype(label_type),
        "predictions": probabilities.argmax(axis=1).astype(label_type),
        "probabilities": probabilities.astype(np.float32),
    }
    acts |= {f"ablated_{kind}": table[kind].astype(label_type) for kind in ablation.ABLATIONS}
    if "spatial_max" in read:
        acts["spatial_max"] = read["spatial_max"].astype(np.float32)
    return acts


def head_outputs(head: keras.Model, x: np.ndarray, batch: int = BATCH) -> Iterator[np.ndarray]:
    """The read-out layer's full output, one batch at a time (one predict call per batch)."""
    for part in batches(x, batch):
        yield np.asarray(head.predict_on_batch(part))

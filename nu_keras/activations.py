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
    predictions with each unit zeroed or set to its test-set mean (per position, for a channel); and
    `conv_extras`: a convolution's maps on its top images and per class, its receptive field, and every
    unit's feature visualisation.
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
    acts |= conv_extras(model, layer, x, labels.astype(np.int64), hidden, pixels)
    return acts


def head_outputs(head: keras.Model, x: np.ndarray, batch: int = BATCH) -> Iterator[np.ndarray]:
    """The read-out layer's full output, one batch at a time (one predict call per batch)."""
    for part in batches(x, batch):
        yield np.asarray(head.predict_on_batch(part))


# ------------------------------------------------------------------------------ a convolution's maps

MAP_TOP = 16  # per channel, the maps of its top images kept: analysis.TOP_EXAMPLES, the images its page shows
MAX_MAP_VALUES = 8_000_000  # per map array (32 MB of float32): a layer with larger maps keeps none of them


def conv_extras(model: keras.Model, layer: str, x: np.ndarray, labels: np.ndarray, units: np.ndarray, pixels: str):
    """What a convolution's pages show beyond its channels' means, as arrays for activations.npz: `top_maps`
    (U, k, h, w) each channel's map on its k top images, `mean_maps` (C, U, h, w) its mean map per class,
    `receptive_field` (size, stride, start) in input pixels; and for any layer `feature_visualisation`
    (U, *image) or `feature_visualisation_note` (why there is none). Empty of maps for a Dense layer."""
    head = split(model, layer)[0]
    extras = feature_pictures(model, layer, x, pixels)
    if len(head.outputs[0].shape) != 4:
        return extras
    top = top_images(units.astype(np.float32).astype(np.float64), MAP_TOP)  # from the means as stored
    _, h, w, count = head.outputs[0].shape
    classes = int(labels.max()) + 1
    if max(count * top.shape[1], classes * count) * h * w > MAX_MAP_VALUES:
        log.info("maps of %d channels of %d x %d not kept: more than %d values", count, h, w, MAX_MAP_VALUES)
        return extras
    top_maps = channel_maps(head, x, top)
    mean_maps = class_mean_maps(head, x, labels, classes)
    field = receptive_field(model, layer)
    extras |= {"top_maps": top_maps, "mean_maps": mean_maps, "receptive_field": np.asarray(field)}
    return extras | pixel_filters(model, layer)


def pixel_filters(model: keras.Model, layer: str) -> dict[str, np.ndarray]:
    """{"filters": (U, kh, kw, channels)} when `layer` is a 2-D convolution and no layer before it has weights
    (it reads the pixels, so its kernels are pictures in the input's terms); else nothing."""
    for item in model.layers:
        if item.name == layer:
            kernel = getattr(item, "kernel", None)
            if isinstance(item, keras.layers.Conv2D) and kernel is not None and len(kernel.shape) == 4:
                return {"filters": np.transpose(np.asarray(kernel, dtype=np.float32), (3, 0, 1, 2))}
            return {}
        if item.weights:
            return {}
    return {}


def top_images(units: np.ndarray, k: int) -> np.ndarray:
    """(U, k) the images each unit is largest on, strongest first, ties in test order: the choice
    analysis.top_examples makes (tests/test_conv_maps.py checks they agree); not imported from there, so an
    edit of the analysis does not invalidate the collect stage's artifacts."""
    return np.argsort(-units, axis=0, kind="stable")[:k].T


def channel_maps(head: keras.Model, x: np.ndarray, top: np.ndarray, batch: int = CONV_BATCH) -> np.ndarray:
    """(U, k, h, w) float32: channel u's map on each of its top images `top[u]` (U, k test indices). A second
    pass over just those images (at most U * k of them, in batches), so memory holds one batch of the
    layer's output and the kept maps, never every image's maps."""
    wanted = np.unique(top)
    maps = None
    units = np.arange(top.shape[0])[:, None].repeat(top.shape[1], axis=1)  # (U, k): the channel of each entry
    for start in range(0, len(wanted), batch):
        part = wanted[start : start + batch]
        out = np.asarray(head.predict_on_batch(x[part]))  # (b, h, w, U)
        if maps is None:
            maps = np.zeros((*top.shape, *out.shape[1:3]), dtype=np.float32)
        inside = np.isin(top, part)
        rows = np.searchsorted(part, top[inside])
        maps[inside] = out[rows, :, :, units[inside]]  # (M, h, w): entry m's image row, its channel
    return maps


def class_mean_maps(head: keras.Model, x: np.ndarray, labels: np.ndarray, classes: int, batch: int = CONV_BATCH):
    """(C, U, h, w) float32: each channel's mean map over each class's images, summed batch by batch in
    float64 (one batch of the layer's output in memory at a time)."""
    total, counts = None, np.bincount(labels, minlength=classes)
    for start, out in zip(range(0, len(x), batch), head_outputs(head, x, batch), strict=True):
        part = labels[start : start + len(out)]
        if total is None:
            total = np.zeros((classes, out.shape[3], out.shape[1], out.shape[2]))
        sums = np.einsum("nc,nhwu->cuhw", np.eye(classes)[part], out.astype(np.float64))
        total += sums
    return (total / np.maximum(counts, 1)[:, None, None, None]).astype(np.float32)


def receptive_field(model: keras.Model, layer: str) -> tuple[int, int, float]:
    """(size, stride, start) of one position of `layer`'s output in input pixels, from the kernel sizes,
    strides, dilations and paddings of the convolutions and poolings up to it (in the model's layer order):
    position i covers input pixels start + i * stride +- (size - 1) / 2 along each axis (the first axis's
    numbers; square kernels assumed). Layers of any other kind keep the geometry."""
    size, stride, start = 1, 1, 0.0
    for item in model.layers:
        kernel = getattr(item, "kernel_size", None) or getattr(item, "pool_size", None)
        if kernel is not None and not isinstance(item, keras.layers.Dense):
            k = int(np.atleast_1d(kernel)[0])
            dilation = int(np.atleast_1d(getattr(item, "dilation_rate", 1))[0])
            s = int(np.atleast_1d(getattr(item, "strides", None) or kernel)[0])
            k = (k - 1) * dilation + 1
            pad = (k - 1) // 2 if getattr(item, "padding", "valid") == "same" else 0
            start += ((k - 1) / 2 - pad) * stride
            size += (k - 1) * stride
            stride *= s
        if item.name == layer:
            break
    return size, stride, start


def feature_pictures(model: keras.Model, layer: str, x: np.ndarray, pixels: str) -> dict[str, np.ndarray]:
    """{"feature_visualisation": (U, *image) float32 in the model's pixel range} (featvis.visualise, every
    unit), or {"feature_visualisation_note": why not} when the model cannot be differentiated or visualised."""
    from nu_keras import featvis
    from nu_keras.errors import NuKerasError

    high = 255.0 if pixels == "raw" and float(np.max(x[:64])) > 1.0 else 1.0
    try:
        pictures = featvis.visualise(model, layer, value_range=(0.0, high))
    except NuKerasError as exc:
        log.info("no feature visualisation: %s", exc)
        return {"feature_visualisation_note": np.asarray(str(exc))}
    return {
        "feature_visualisation": (pictures / high).astype(np.float32),
        "feature_visualisation_method": np.asarray(featvis.method_text()),  # the Method page's paragraph
    }

"""The collect stage: read the analysed layer's units out of the model over the test images, with an
intermediate-output submodel (the *head*, `subject.split`), and run the rest of the model (the *tail*)
with each unit ablated in turn (ablation.py).

Everything runs in batches, so memory stays bounded by one batch of the layer's full output whatever the
number of images; a convolutional layer's channels are reduced to their spatial mean (and maximum) batch by
batch, and its full maps are never all held at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import keras
import numpy as np
from keras import ops

from nu_keras import ablation, artifacts, progress, subject, train
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
POOLING = (
    keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D,
    keras.layers.MaxPooling3D,
    keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D,
    keras.layers.AveragePooling3D,
    keras.layers.GlobalMaxPooling1D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.GlobalMaxPooling3D,
    keras.layers.GlobalAveragePooling1D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalAveragePooling3D,
)
ELEMENTWISE = (keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU, keras.layers.Dropout)
ELEMENTWISE_ACTIVATIONS = {"relu", "relu6", "elu", "selu", "gelu", "silu", "swish", "sigmoid", "tanh", "linear"}


def run(cfg: RunConfig) -> None:
    """The collect stage: model.keras as the train stage left it, read out over the test images ->
    activations.npz (`collect`), weights.npz (the layer's and the read-out's weights)."""
    net, layer = train.load_subject_model(cfg)
    data = dataset(cfg)
    with train.users_model_runs(cfg):
        sample = subject.first_inputs(net, data.x_test, cfg.pixels)
        described = subject.describe(net, layer, data.image_shape, cfg.trains_here, cfg.model, sample)
        started = time.perf_counter()
        acts = collect(net, layer, data.x_test, data.y_test, cfg.pixels)
    seconds = time.perf_counter() - started
    log.info("collected layer %s %s over the test set, ablated, in %.1f s", layer, acts["units"].shape, seconds)
    artifacts.write_npz(artifacts.paths(cfg).activations, **acts)
    artifacts.write_npz(artifacts.paths(cfg).weights, **subject.weights(net, layer, described))


def hidden_submodel(model: keras.Model, layer: str = "hidden") -> keras.Model:
    """A model sharing `model`'s layers whose output is the named layer's output (the read-out idiom)."""
    return split(model, layer)[0]


def read_units(
    head: keras.Model,
    x: np.ndarray,
    batch: int = BATCH,
    advance: Callable[[int], None] | None = None,
    labels: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Per image and unit: the unit's value (N, U) -- a dense output, or a channel's spatial mean -- and,
    for a convolutional layer, the channel's spatial maximum too; and the layer's mean output over the
    images (one output's shape), what mean ablation fills in. Read in batches: memory stays bounded by one
    batch of the layer's full output, whatever N is. With the images' `labels`, a 2-D convolution's
    `mean_maps` (class_mean_maps) are summed in the same pass, so the head does not run over the images again."""
    means, maxes, total, sums = [], [], 0.0, None
    classes = None if labels is None else int(labels.max()) + 1
    for start, out in zip(range(0, len(x), batch), head_outputs(head, x, batch, advance), strict=True):
        spatial = tuple(range(1, out.ndim - 1))
        means.append(out.mean(axis=spatial, dtype=np.float64) if spatial else out)
        maxes.append(out.max(axis=spatial) if spatial else out)
        total = total + out.sum(axis=0, dtype=np.float64)
        if labels is not None and out.ndim == 4:
            sums = add_class_sums(sums, out, labels[start : start + len(out)], classes)
    values = {"units": np.concatenate(means), "mean_output": total / len(x)}
    if spatial:
        values["spatial_max"] = np.concatenate(maxes)
    if sums is not None:
        values["mean_maps"] = class_means(sums, labels)
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
    output = dense_tail(tail)
    passes = 1 if output is not None else 2  # the read-out, then the tail's ablation pass over the batches again
    label_ids = labels.astype(np.int64)
    with progress.bar("collect", passes * -(-len(x) // batch), "batch") as advance:
        kept = maps_fit(head.outputs[0].shape, min(MAP_TOP, len(x)), int(label_ids.max()) + 1)
        read = read_units(head, x, batch, advance, label_ids if kept else None)  # class mean maps in this pass
        require_finite(read["units"], f"the outputs of its layer {layer!r}")
        probabilities = model.predict(x, batch_size=BATCH, verbose=0)
        require_finite(probabilities, "its class probabilities")
        hidden = read["units"]
        if output is not None:  # a matrix product: the same numbers without a Keras call per unit
            w2, b2 = dense_weights(output)
            table = ablation.dense_ablation_table(hidden.astype(np.float64), w2, b2)
        else:
            fills = {"zero": np.zeros_like(read["mean_output"]), "mean": read["mean_output"]}
            table = tail_ablation(model, layer, tail, head_outputs(head, x, batch, advance), fills)
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
    acts |= conv_extras(model, layer, x, label_ids, hidden, pixels, read.get("mean_maps"))
    return acts


def head_outputs(
    head: keras.Model, x: np.ndarray, batch: int = BATCH, advance: Callable[[int], None] | None = None
) -> Iterator[np.ndarray]:
    """The read-out layer's full output, one batch at a time (one predict call per batch); `advance` counts
    each batch once its consumer is done with it (`progress.bar`)."""
    for part in batches(x, batch):
        yield np.asarray(head.predict_on_batch(part))
        if advance is not None:
            advance(1)


def tail_ablation(model: keras.Model, layer: str, tail: keras.Model, outputs, fills: dict) -> dict[str, np.ndarray]:
    """Per fill kind, (U, N) predictions with each unit replaced by its fill, the rest of the model run on
    the layer's `outputs` (one batch at a time): through the output layer's weights when only channel-wise
    layers and a Flatten lie between (`flat_dense_output`), else through the tail's compiled graph."""
    flat = flat_dense_output(model, layer)
    if flat is None:
        masked = masked_tail(model, layer, tail)
        copy_values = int(np.prod(masked.get_layer("replaced").output.shape[1:]))
        return ablation.tail_ablation_table(outputs, masked, fills, copy_values)
    prefix, output = flat
    if prefix:  # the channel-wise layers, on the batches and on the fills alike
        channelwise = _layers_model(prefix, tuple(tail.inputs[0].shape[1:]))
        outputs = (np.asarray(channelwise.predict_on_batch(out)) for out in outputs)
        fills = {
            kind: np.asarray(channelwise.predict_on_batch(f[None].astype(np.float32)))[0] for kind, f in fills.items()
        }
    return ablation.flat_dense_ablation_table(outputs, fills, *dense_weights(output))


def flat_dense_output(model: keras.Model, layer: str) -> tuple[list, keras.layers.Dense] | None:
    """(the channel-wise layers after `layer`, the output layer) when the rest of the model is those, a
    Flatten (channels last), Dropout, and the output Dense layer (softmax or linear, so the argmax of its
    logits is the prediction); else None."""
    prefix = channelwise_prefix(model, layer)
    chain = _chain(model)
    names = [item.name for item in chain]
    if layer not in names:
        return None
    rest = chain[names.index(layer) + 1 + len(prefix) :]
    if not rest or not isinstance(rest[0], keras.layers.Flatten) or rest[0].data_format != "channels_last":
        return None
    *between, output = rest[1:] or [None]
    if not isinstance(output, keras.layers.Dense) or not all(isinstance(i, keras.layers.Dropout) for i in between):
        return None
    if getattr(output.activation, "__name__", "") not in ("softmax", "linear"):
        return None
    return prefix, output


def _layers_model(layers: list, shape: tuple[int, ...]) -> keras.Model:
    """The layers applied one after the other, as a model of inputs of `shape` (they share their weights)."""
    values = keras.Input(shape)
    result = values
    for item in layers:
        result = item(result)
    return keras.Model(values, result)


def masked_tail(model: keras.Model, layer: str, tail: keras.Model) -> keras.Model:
    """The tail as one compiled Keras model of [output (B, ...), mask (K, U) bool, fill (1, ...)] -> (K, B)
    predictions, copy k of the batch with the units of mask row k replaced by the fill (`ablation`).

    The layers right after the read-out that act on each channel alone (`channelwise_prefix`: pooling, an
    elementwise activation, Dropout, BatchNormalization) run once on the batch and once on the fill, before
    the copies are made: a channel's replaced values pass through them untouched by the other channels, so
    the copies are the same numbers, made after a 2x2 pooling at a quarter of the size, and only the rest of
    the tail runs once per copy.
    """
    prefix = channelwise_prefix(model, layer)
    rest = split(model, prefix[-1].name)[1] if prefix else tail
    shape = tuple(tail.inputs[0].shape[1:])
    out, mask, fill = keras.Input(shape), keras.Input((shape[-1],), dtype="bool"), keras.Input(shape)
    read, filled = out, fill
    for item in prefix:
        read, filled = item(read), item(filled)
    predicted = rest(_Replaced(name="replaced")([read, mask, filled]))
    return keras.Model([out, mask, fill], _Votes()([predicted, mask]), name="masked_tail")


def channelwise_prefix(model: keras.Model, layer: str) -> list[keras.layers.Layer]:
    """The layers after `layer` that each read only the previous one's output and compute each channel (last
    axis) from that channel alone, up to the first that does not: those through which an ablated channel
    stays an ablated channel. Empty when the model is not a chain there."""
    chain = _chain(model)
    names = [item.name for item in chain]
    if layer not in names:
        return []
    prefix = []
    for item in chain[names.index(layer) + 1 :]:
        if not _channelwise(item):
            break
        prefix.append(item)
    return prefix


def _chain(model: keras.Model) -> list[keras.layers.Layer]:
    """The model's layers in order when each reads the previous one's output alone, else []."""
    layers = [item for item in model.layers if not isinstance(item, keras.layers.InputLayer)]
    if isinstance(model, keras.Sequential):
        return layers
    try:
        linked = all(after.input is before.output for before, after in zip(layers, layers[1:], strict=False))
    except (AttributeError, ValueError):  # a layer used more than once, or of several inputs
        return []
    return layers if linked else []


def _channelwise(item: keras.layers.Layer) -> bool:
    """Whether the layer computes each channel of its output from that channel of its input alone."""
    if isinstance(item, POOLING):
        return item.data_format == "channels_last"
    if isinstance(item, keras.layers.BatchNormalization):
        return item.axis in (-1, len(item.input.shape) - 1)  # normalising each channel with its own statistics
    if isinstance(item, keras.layers.Activation):
        return getattr(item.activation, "__name__", "") in ELEMENTWISE_ACTIVATIONS
    return isinstance(item, ELEMENTWISE)


class _Replaced(keras.layers.Layer):
    """[values (B, ...), mask (K, U), fill (1, ...)] -> (K*B, ...): K copies of the values, copy k with the
    units of mask row k taken from the fill (a select, so the kept values are exactly the original ones)."""

    def call(self, inputs):
        values, mask, fill = inputs
        spatial = len(values.shape) - 2
        rows = ops.reshape(mask, (ops.shape(mask)[0], 1, *([1] * spatial), ops.shape(mask)[-1]))
        copies = ops.where(rows, ops.expand_dims(fill, 0), ops.expand_dims(values, 0))
        return ops.reshape(copies, (-1, *values.shape[1:]))

    def compute_output_shape(self, shapes):
        return (None, *shapes[0][1:])


class _Votes(keras.layers.Layer):
    """[outputs (K*B, C), mask (K, U)] -> (K, B): the predicted class of each copy."""

    def call(self, inputs):
        predicted, mask = inputs
        return ops.reshape(ops.argmax(predicted, axis=-1), (ops.shape(mask)[0], -1))

    def compute_output_shape(self, shapes):
        return (None, None)


# ------------------------------------------------------------------------------ a convolution's maps

MAP_TOP = 16  # per channel, the maps of its top images kept: analysis.TOP_EXAMPLES, the images its page shows
MAX_MAP_VALUES = 8_000_000  # per map array (32 MB of float32): a layer with larger maps keeps none of them


def conv_extras(
    model: keras.Model,
    layer: str,
    x: np.ndarray,
    labels: np.ndarray,
    units: np.ndarray,
    pixels: str,
    mean_maps: np.ndarray | None = None,
):
    """What a convolution's pages show beyond its channels' means, as arrays for activations.npz: `top_maps`
    (U, k, h, w) each channel's map on its k top images, `mean_maps` (C, U, h, w) its mean map per class
    (given when the read-out pass summed them, `read_units`; else a pass of their own),
    `receptive_field` (size, stride, start) in input pixels; and for any layer `feature_visualisation`
    (U, *image) or `feature_visualisation_note` (why there is none). Empty of maps for a Dense layer."""
    head = split(model, layer)[0]
    extras = feature_pictures(model, layer, x, pixels)
    if len(head.outputs[0].shape) != 4:
        return extras
    top = top_images(units.astype(np.float32).astype(np.float64), MAP_TOP)  # from the means as stored
    _, h, w, count = head.outputs[0].shape
    classes = int(labels.max()) + 1
    if not maps_fit(head.outputs[0].shape, top.shape[1], classes):
        log.info("maps of %d channels of %d x %d not kept: more than %d values", count, h, w, MAX_MAP_VALUES)
        return extras
    top_maps = channel_maps(head, x, top)
    mean_maps = class_mean_maps(head, x, labels, classes) if mean_maps is None else mean_maps
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
    float64 (one batch of the layer's output in memory at a time). `collect` sums them in its read-out pass
    instead (`read_units`), the same batches in the same order: the same numbers."""
    total = None
    for start, out in zip(range(0, len(x), batch), head_outputs(head, x, batch), strict=True):
        total = add_class_sums(total, out, labels[start : start + len(out)], classes)
    return class_means(total, labels)


def add_class_sums(total: np.ndarray | None, out: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    """`total` (C, U, h, w) float64 (None: zeros) plus one batch's maps `out` (b, h, w, U) summed per class."""
    if total is None:
        total = np.zeros((classes, out.shape[3], out.shape[1], out.shape[2]))
    total += np.einsum("nc,nhwu->cuhw", np.eye(classes)[labels], out.astype(np.float64))
    return total


def class_means(total: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The class sums `total` (C, U, h, w) divided by each class's number of images, as float32."""
    counts = np.bincount(labels, minlength=len(total))
    return (total / np.maximum(counts, 1)[:, None, None, None]).astype(np.float32)


def maps_fit(shape: tuple, top: int, classes: int) -> bool:
    """Whether a layer of output `shape` (batch, h, w, U) keeps its maps: a 2-D convolution whose `top` maps
    per channel and `classes` mean maps per channel each stay within MAX_MAP_VALUES values."""
    if len(shape) != 4:
        return False
    _, h, w, count = shape
    return max(count * top, classes * count) * h * w <= MAX_MAP_VALUES


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

"""What the Explore page needs: this run's network and a few test images as a script, and MNIST preprocessing.

The page runs the network in the reader's browser, opened from a server or straight from disk. From
`file://` Chromium refuses ES-module imports and `fetch` of local JSON, so the data ships as a classic
script that assigns one global, `window.NU_KERAS_EXPLORE`; arrays travel as base64 of their exact
little-endian bytes (float32 weights, uint8 or float32 pixels), so the browser computes with the very
numbers the report analyses.

The network is a stack of Dense layers over the flattened image (any depth and width); one of its layers,
the readout, is the one the page lists, silences and inspects. The paper's 784-U-10 network is the stack
`stack_from_weights(weights)` with readout 0.

`preprocess_drawing` is the reference for the page's JavaScript preprocessing (explore.js): a drawn
digit looks nothing like MNIST until it is cropped, scaled into a 20x20 box and centred by its centre of
mass in a 28x28 frame, as the MNIST images were; the tests hold the two implementations to each other on
the same raster. (Before that step the page redraws the reader's strokes at one size with one brush, so
that a digit drawn small keeps thin strokes; that is canvas drawing, with no counterpart here.)
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import numpy as np

from nu_keras import artifacts
from nu_keras.errors import NuKerasError
from nu_keras.names import shown
from nu_keras.record import (  # noqa: F401  (the picker's rule and budget, shared with the analysis)
    MAX_IMAGES,
    MAX_PARAMETERS,
    MAX_PIXEL_BYTES,
    SAMPLE_PER_CLASS,
    Measurements,
    image_budget,
    network_left_out_because,
    picker_rows,
)
from nu_keras.stack import check_stack

SCRIPT_NAME = "explore-data.js"  # written next to explore.md in the pages folder
GLOBAL_NAME = "NU_KERAS_EXPLORE"
PAPER_PIXEL_SCALE = 1 / 255  # MNIST's uint8 pixels to the unit range the paper's network is trained on
FRAME, BOX = 28, 20  # MNIST: digits scaled to fit 20x20, centred by centre of mass in 28x28
TIE_MARGIN = 1e-9  # see round_half_up
INK_THRESHOLD = 0.05  # a pixel with less ink is the brush's soft edge, not part of the digit's extent


# ------------------------------------------------------------------------------------------------- stack


def stack_from_weights(weights: dict) -> list[dict]:
    """The paper's network as a stack: hidden (relu) then output (softmax), from its weights.npz keys.

    >>> [layer["name"] for layer in stack_from_weights(weights)]
    ['hidden', 'output']
    """
    return [
        _layer("hidden", weights["hidden_kernel"], weights["hidden_bias"], "relu"),
        _layer("output", weights["output_kernel"], weights["output_bias"], "softmax"),
    ]


def _layer(name: str, kernel: np.ndarray, bias: np.ndarray, activation: str) -> dict:
    return {"name": name, "kernel": np.asarray(kernel), "bias": np.asarray(bias), "activation": activation}


def parameters(stack: list[dict]) -> int:
    """Weights and biases over the whole stack."""
    return int(sum(np.size(layer["kernel"]) + np.size(layer["bias"]) for layer in stack))


# ------------------------------------------------------------------------------------------------ images


def model_input(images: np.ndarray, pixel_scale: float) -> np.ndarray:
    """(N, H*W*C) float32: what the network reads, and what explore.js computes from the shipped pixels.

    The product is taken in float64 and rounded once to float32, so a scale of 1/255 gives exactly
    `images / np.float32(255)` (nu_keras.model.scale), and a scale of 1 leaves float pixels unchanged.
    """
    return (images.reshape(len(images), -1).astype(np.float64) * pixel_scale).astype(np.float32)


def image_shape(images: np.ndarray) -> tuple[int, int, int]:
    """(H, W, C) of a test set stored as (N, H, W) or (N, H, W, C) uint8 or float pixels."""
    if images.ndim not in (3, 4) or not (images.dtype == np.uint8 or np.issubdtype(images.dtype, np.floating)):
        raise NuKerasError(
            f"the explorer needs (N, H, W[, C]) uint8 or float images, not {images.dtype} {images.shape}"
        )
    height, width = images.shape[1:3]
    return int(height), int(width), int(images.shape[3]) if images.ndim == 4 else 1


def pixel_dtype(images: np.ndarray) -> str:
    """How the page's script stores the pixels: 'u1' for uint8 images, '<f4' for float ones."""
    return "u1" if images.dtype == np.uint8 else "<f4"


def left_out_because(images: np.ndarray, classes: int, parameters: int) -> str | None:
    """Why this run gets no Explore page, or None (`record.network_left_out_because`, the rule the analysis
    applies when it keeps a network in the record), for images the page can show."""
    image_shape(images)
    return network_left_out_because(parameters, images, classes)


def shipped_rows(
    labels: np.ndarray, predictions: np.ndarray, images: np.ndarray, classes: int, per_class: int
) -> tuple[np.ndarray, int, int]:
    """The picker's test-set indices (`record.picker_rows` within `record.image_budget`, fewer of each class when
    many classes of large images share it), how many misclassified were left out, and the per-class count."""
    budget = image_budget(images)
    per_class = min(per_class, budget // classes)
    rows, left_out = picker_rows(labels, predictions, per_class, classes, budget)
    return rows, left_out, per_class


def _b64(array: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


# ------------------------------------------------------------------------------------------------- units


def unit_marks(record: Measurements) -> dict:
    """What the page marks on the readout layer's units, as the record measured them: each class's preferred
    unit (largest mean activation) and dominant unit (or None), the threshold of dominance, and the units'
    means over the test set (what "mean" silencing passes on)."""
    return {
        "preferred_unit": [int(u) for u in record.per_class.top_unit],
        "dominant_unit": list(record.per_class.dominant_unit),
        "dominance_threshold": record.method.dominance_threshold,
        "unit_means": record.per_unit.mean,
    }


# ------------------------------------------------------------------------------------------------ export


def explore_data(
    stack: list[dict],
    readout: int,
    acts: dict,
    images: np.ndarray,
    marks: dict,
    per_class: int = SAMPLE_PER_CLASS,
    pixel_scale: float = PAPER_PIXEL_SCALE,
    class_names: list[str] | None = None,
) -> dict:
    """Everything the page needs, JSON-ready: the stack's weights, the readout layer's unit means and each
    class's marked units, and the picker's images.

    `stack` lists the Dense layers from input to output (`name`, `kernel` (in, out), `bias` (out,),
    `activation`); `readout` indexes the layer whose units the page shows; `marks` are its units' marks
    (`unit_marks`: preferred and dominant unit per class, threshold, unit means); `acts` holds that layer's
    `units` (N, U) over the test set with `labels` and `predictions` (N,); `images` are the test images as
    stored, (N, H, W) or (N, H, W, C), uint8 or float in [0, 1], and `pixel_scale` turns them into the
    network's input (`model_input`). `class_names` (C strings; "0".."9" when omitted) are untrusted text,
    shipped as `names.shown` writes them.
    The last layer's activation may be softmax or linear: the page shows the softmax of its pre-activations
    either way, since the argmax (the prediction) is the same.

    >>> explore_data(stack_from_weights(weights), 0, acts, x_test, unit_marks(record), 40, 1 / 255, list("0123456789"))
    """
    labels = np.asarray(acts["labels"]).astype(np.int64)
    predictions = np.asarray(acts["predictions"]).astype(np.int64)
    units = np.asarray(acts["units"], dtype=np.float64)
    images = np.asarray(images)
    shape = image_shape(images)
    classes = int(np.size(stack[-1]["bias"])) if stack else 0
    names = [str(k) for k in range(classes)] if class_names is None else [shown(n) for n in class_names]
    _check_run(stack, readout, units, labels, predictions, images, shape, names, pixel_scale)
    reason = left_out_because(images, classes, parameters(stack))
    if reason:
        raise NuKerasError(f"the Explore page cannot be made: {reason}")
    dtype = pixel_dtype(images)
    rows, left_out, per_class = shipped_rows(labels, predictions, images, classes, per_class)
    return {
        "layers": [_layer_data(layer) for layer in stack],
        "readout": int(readout),
        "inputs": math.prod(shape),
        "units": int(units.shape[1]),
        "classes": classes,
        "class_names": names,
        "image_shape": list(shape),  # (H, W, C): pixel (y, x, c) at (y * W + x) * C + c, as Keras's Flatten
        "pixel_dtype": dtype,
        "pixel_scale": float(pixel_scale),
        "unit_means": _b64(marks["unit_means"], "<f4"),  # test-set means, what "mean" silencing passes on
        "preferred_unit": [int(u) for u in marks["preferred_unit"]],
        "dominant_unit": [None if u is None else int(u) for u in marks["dominant_unit"]],
        "dominance_threshold": float(marks["dominance_threshold"]),
        "images": _b64(images[rows].reshape(len(rows), -1), dtype),  # (n, H*W*C) pixels as stored
        "indices": rows.tolist(),  # test-set index of each image
        "labels": labels[rows].tolist(),
        "misclassified_total": int(np.sum(labels != predictions)),
        "misclassified_left_out": int(left_out),
        "per_class": int(per_class),
    }


def _layer_data(layer: dict) -> dict:
    kernel = np.asarray(layer["kernel"])
    return {
        "name": shown(layer["name"]),  # untrusted, as the class names: the page prints it as text
        "inputs": int(kernel.shape[0]),
        "units": int(kernel.shape[1]),
        "activation": layer["activation"],
        "kernel": _b64(kernel, "<f4"),  # (in, out) row-major: input i, unit u at i * out + u
        "bias": _b64(layer["bias"], "<f4"),
    }


def _check_run(stack, readout, units, labels, predictions, images, shape, names, pixel_scale) -> None:
    """Raise a one-line NuKerasError when the stack, activations, images and names do not belong together."""
    check_stack(stack, readout, math.prod(shape), len(names))
    width = np.shape(stack[readout]["kernel"])[1]
    if units.ndim != 2 or units.shape[1] != width:
        raise NuKerasError(f"the activations have shape {units.shape}, not (N, {width}) of layer {readout}")
    if not len(images) == len(units) == len(labels) == len(predictions):
        raise NuKerasError(f"{len(images)} test images but {len(units)} rows of activations")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(names)):
        raise NuKerasError(f"labels must lie in 0..{len(names) - 1} for {len(names)} class names")
    if not (math.isfinite(pixel_scale) and pixel_scale > 0):
        raise NuKerasError(f"pixel_scale must be a positive number, not {pixel_scale}")


def paper_explore_data(weights: dict, acts: dict, images: np.ndarray, marks: dict, per_class: int) -> dict:
    """The paper's 784-U-10 network on MNIST: its weights.npz as a stack read out at the hidden layer."""
    digits = [str(d) for d in range(10)]
    return explore_data(stack_from_weights(weights), 0, acts, images, marks, per_class, PAPER_PIXEL_SCALE, digits)


def record_explore_data(record: Measurements, examples: int) -> dict:
    """`explore_data` from the measurement record alone: its network, its images (which hold the picker's,
    `picker.picker_rows`), and the marks and unit means it measured.

    The record carries only the shipped images, so the misclassified counts are made whole from its test
    accuracy: the page says how many of all the misclassified test images it left out."""
    images = record.images
    pixel_scale = 1 / 255 if images.pixels.dtype == np.uint8 and record.provenance.dataset["pixels"] == "unit" else 1.0
    acts = {"units": images.units, "labels": images.label, "predictions": images.prediction}
    per_class = max(SAMPLE_PER_CLASS, examples)
    stack = [dict(layer) for layer in record.network or ()]
    readout = record.provenance.subject["readout"]
    data = explore_data(stack, readout, acts, images.pixels, unit_marks(record), per_class, pixel_scale, record.classes)
    data["indices"] = images.index[data["indices"]].tolist()  # positions in the record -> test-set indices
    wrong_total = round(record.n_test * (1 - record.test_accuracy))
    shipped_wrong = data["misclassified_total"] - data["misclassified_left_out"]
    data["misclassified_total"] = int(wrong_total)
    data["misclassified_left_out"] = int(max(wrong_total - shipped_wrong, 0))
    return data


def script_text(data: dict) -> str:
    """A classic script assigning the data to one global; JSON is valid JavaScript for these values.

    Class and layer names are untrusted: json.dumps escapes quotes and backslashes, and "<" is written
    as \\u003c so a name holding "</script>" cannot end an inline script either.
    """
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    header = "// Generated by nu-keras render: this run's network for the Explore page.\n"
    return f"{header}window.{GLOBAL_NAME} = {payload};\n"


def write_script(path: Path, data: dict) -> dict:
    """Write the data script; returns the page's summary of what it holds (counts and bytes)."""
    text = script_text(data)
    artifacts.write_text(Path(path), text)
    return summary(data, len(text.encode("utf-8")))


def summary(data: dict, size: int) -> dict:
    """What the Explore and class pages print about the exported data, and the example indices they link."""
    indices, labels = data["indices"], data["labels"]
    height, width, channels = data["image_shape"]
    first_of_class = [
        [i for i, label in zip(indices, labels, strict=True) if label == k] for k in range(data["classes"])
    ]
    previous = data["layers"][max(data["readout"] - 1, 0)]
    return {
        "script": SCRIPT_NAME,
        "bytes": size,
        "images": len(indices),
        "per_class": data["per_class"],
        "misclassified_total": data["misclassified_total"],
        "misclassified_shipped": data["misclassified_total"] - data["misclassified_left_out"],
        "parameters": sum(layer["inputs"] * layer["units"] + layer["units"] for layer in data["layers"]),
        "layers": len(data["layers"]),
        "readout": data["readout"],
        "previous_layer": previous["name"] if data["readout"] > 0 else None,  # what the readout units read
        "previous_units": previous["units"] if data["readout"] > 0 else None,
        "units": data["units"],
        "classes": data["classes"],
        "height": height,
        "width": width,
        "channels": channels,
        "drawable": [height, width, channels] == [FRAME, FRAME, 1],  # the drawing pad and MNIST preprocessing
        "pixel_maps": data["readout"] == 0 and channels == 1,  # the unit's weights read pixels: w and w ⊙ x maps
        "dominance_threshold": data["dominance_threshold"],
        "preferred_unit": data["preferred_unit"],
        "first_of_class": first_of_class,
    }


# ---------------------------------------------------------------------------------------- preprocessing


def area_weights(size: int, target: int) -> np.ndarray:
    """(target, size) box-filter resampling matrix: output pixel j averages the input span it covers.

    Output pixel j covers [j, j + 1) * size / target of the input; each input pixel i contributes the
    length of its overlap with that span, divided by the span's length, so every row sums to 1.
    """
    step = size / target
    starts = np.arange(target)[:, None] * step
    left = np.maximum(starts, np.arange(size)[None, :])
    right = np.minimum(starts + step, np.arange(size)[None, :] + 1)
    return np.clip(right - left, 0.0, None) / step


def round_half_up(value: float) -> int:
    """Round to nearest, halves up, as explore.js's roundHalfUp does.

    A symmetric drawing puts its centre of mass exactly on a half pixel, where rounding errors of the
    last bit (which differ between numpy and JavaScript summation orders) would pick either side; a tie
    margin far above those errors makes both sides pick the same pixel.
    """
    return int(np.floor(value + 0.5 + TIE_MARGIN))


def preprocess_drawing(ink: np.ndarray) -> np.ndarray:
    """A drawn raster (H, W) of ink in [0, 1] as the network's 28x28 input, the way MNIST was made.

    Crop to the ink's bounding box; resample (box filter: anti-aliased) so the longer side is 20 pixels,
    keeping the aspect ratio; stretch the result so its brightest pixel is 1, as MNIST strokes are; and
    place it in a 28x28 frame so its centre of mass sits at the centre (shifted whole pixels, and never
    beyond the frame's edge). A blank raster gives a blank input.
    """
    ink = np.asarray(ink, dtype=np.float64)
    if ink.ndim != 2 or ink.size == 0:
        raise NuKerasError(f"a drawing is a 2-D raster, not an array of shape {ink.shape}")
    rows = np.flatnonzero(ink.max(axis=1) >= INK_THRESHOLD)
    cols = np.flatnonzero(ink.max(axis=0) >= INK_THRESHOLD)
    frame = np.zeros((FRAME, FRAME))
    if rows.size == 0:
        return frame
    crop = np.clip(ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1], 0.0, 1.0)
    height, width = crop.shape
    scale = BOX / max(height, width)
    small_h, small_w = max(1, round_half_up(height * scale)), max(1, round_half_up(width * scale))
    small = area_weights(height, small_h) @ crop @ area_weights(width, small_w).T
    small /= small.max()
    total = small.sum()
    centre_y = (small.sum(axis=1) @ (np.arange(small_h) + 0.5)) / total  # pixel centres at i + 0.5
    centre_x = (small.sum(axis=0) @ (np.arange(small_w) + 0.5)) / total
    top = min(max(round_half_up(FRAME / 2 - centre_y), 0), FRAME - small_h)
    left = min(max(round_half_up(FRAME / 2 - centre_x), 0), FRAME - small_w)
    frame[top : top + small_h, left : left + small_w] = small
    return frame

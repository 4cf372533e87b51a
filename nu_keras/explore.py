"""What the Explore page needs: this run's network and a few test images as a script, and MNIST preprocessing.

The page runs the network in the reader's browser, opened from a server or straight from disk. From
`file://` Chromium refuses ES-module imports and `fetch` of local JSON, so the data ships as a classic
script that assigns one global, `window.NU_KERAS_EXPLORE`; arrays travel as base64 of their exact
little-endian bytes (float32 weights, uint8 pixels), so the browser computes with the very numbers the
report analyses.

`preprocess_drawing` is the reference for the page's JavaScript preprocessing (explore.js): a drawn
digit looks nothing like MNIST until it is cropped, scaled into a 20x20 box and centred by its centre of
mass in a 28x28 frame, as the MNIST images were; the tests hold the two implementations to each other on
the same raster. (Before that step the page redraws the reader's strokes at one size with one brush, so
that a digit drawn small keeps thin strokes; that is canvas drawing, with no counterpart here.)
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np

from nu_keras import analysis, artifacts
from nu_keras.errors import NuKerasError

SCRIPT_NAME = "explore-data.js"  # written next to explore.md in the pages folder
GLOBAL_NAME = "NU_KERAS_EXPLORE"
SAMPLE_PER_DIGIT = 40  # first test images of each digit for the picker (more than any Digit page shows)
MAX_IMAGES = 1800  # about 1.9 MB of base64 pixels at most: the misclassified list is cut in test order beyond
FRAME, BOX = 28, 20  # MNIST: digits scaled to fit 20x20, centred by centre of mass in 28x28
TIE_MARGIN = 1e-9  # see round_half_up
INK_THRESHOLD = 0.05  # a pixel with less ink is the brush's soft edge, not part of the digit's extent


# ------------------------------------------------------------------------------------------------ export


def picker_rows(labels: np.ndarray, predictions: np.ndarray, per_digit: int) -> tuple[np.ndarray, int]:
    """Test-set indices the page ships, in test order: the first `per_digit` of each digit, then every
    misclassified image as long as the total stays within MAX_IMAGES; also how many misclassified were left out.
    """
    sample = np.concatenate([np.flatnonzero(labels == d)[:per_digit] for d in range(10)])
    wrong = np.flatnonzero(labels != predictions)
    extra = np.setdiff1d(wrong, sample)
    room = max(MAX_IMAGES - len(sample), 0)
    return np.union1d(sample, extra[:room]), max(len(extra) - room, 0)


def _b64(array: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def marked_units(hidden: np.ndarray, labels: np.ndarray, threshold: float) -> tuple[list[int], list[int | None]]:
    """Per digit, its preferred unit (largest mean activation over its test images) and its dominant unit
    (the most active one on more than `threshold` of them), or None when no unit is; as the pages define them.
    """
    preferred = analysis.per_digit_mean(hidden, labels).argmax(axis=1)
    share = analysis.dominance_matrix(hidden, labels)
    dominant = [int(row.argmax()) if row.max() > threshold else None for row in share]
    return [int(u) for u in preferred], dominant


def explore_data(weights: dict, acts: dict, images: np.ndarray, threshold: float, per_digit: int) -> dict:
    """Everything the page needs, JSON-ready: weights, unit means, each digit's marked units, images."""
    labels = np.asarray(acts["labels"]).astype(np.int64)
    predictions = np.asarray(acts["predictions"]).astype(np.int64)
    hidden = np.asarray(acts["hidden"], dtype=np.float64)
    rows, left_out = picker_rows(labels, predictions, per_digit)
    preferred, dominant = marked_units(hidden, labels, threshold)
    kernel = np.asarray(weights["hidden_kernel"])
    if images.shape[1:] != (FRAME, FRAME) or kernel.shape[0] != FRAME * FRAME or len(images) != len(labels):
        raise NuKerasError("the explorer needs 28x28 test images matching activations.npz and a 784-input network")
    return {
        "inputs": int(kernel.shape[0]),
        "units": int(kernel.shape[1]),
        "classes": int(np.asarray(weights["output_bias"]).shape[0]),
        "hidden_kernel": _b64(kernel, "<f4"),  # (784, units) row-major: pixel i, unit u at i * units + u
        "hidden_bias": _b64(weights["hidden_bias"], "<f4"),
        "output_kernel": _b64(weights["output_kernel"], "<f4"),  # (units, 10) row-major
        "output_bias": _b64(weights["output_bias"], "<f4"),
        "unit_means": _b64(hidden.mean(axis=0), "<f4"),  # test-set means, what "mean" silencing passes on
        "preferred_unit": preferred,
        "dominant_unit": dominant,
        "dominance_threshold": float(threshold),
        "images": _b64(images[rows].reshape(len(rows), -1), "u1"),  # (n, 784) uint8 pixels
        "indices": rows.tolist(),  # test-set index of each image
        "labels": labels[rows].tolist(),
        "misclassified_total": int(np.sum(labels != predictions)),
        "misclassified_left_out": int(left_out),
        "per_digit": int(per_digit),
    }


def script_text(data: dict) -> str:
    """A classic script assigning the data to one global; JSON is valid JavaScript for these values."""
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False)
    header = "// Generated by nu-keras render: this run's network for the Explore page.\n"
    return f"{header}window.{GLOBAL_NAME} = {payload};\n"


def write_script(path: Path, data: dict) -> dict:
    """Write the data script; returns the page's summary of what it holds (counts and bytes)."""
    text = script_text(data)
    artifacts.write_text(Path(path), text)
    return summary(data, len(text.encode("ascii")))


def summary(data: dict, size: int) -> dict:
    """What the Explore and Digit pages print about the exported data, and the example indices they link."""
    indices, labels = data["indices"], data["labels"]
    return {
        "script": SCRIPT_NAME,
        "bytes": size,
        "images": len(indices),
        "per_digit": data["per_digit"],
        "misclassified_total": data["misclassified_total"],
        "misclassified_shipped": data["misclassified_total"] - data["misclassified_left_out"],
        "parameters": data["inputs"] * data["units"]
        + data["units"]
        + data["units"] * data["classes"]
        + data["classes"],
        "preferred_unit": data["preferred_unit"],
        "first_of_digit": [[i for i, label in zip(indices, labels, strict=True) if label == d] for d in range(10)],
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

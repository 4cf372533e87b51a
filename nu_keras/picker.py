"""Which test images the Explore page ships, within its size budget: the rule the analysis follows to keep
those images in the measurement record, and the Explore export to pick them from it. Pure numpy, so the
analysis and the publishing side share it without importing each other.
"""

from __future__ import annotations

import math

import numpy as np

from nu_keras.errors import NuKerasError

SAMPLE_PER_CLASS = 40  # first test images of each class for the picker (more than any class page shows)
MAX_IMAGES = 1800  # about 1.9 MB of base64 MNIST pixels at most: the misclassified list is cut in test order beyond
MAX_PIXEL_BYTES = MAX_IMAGES * 28 * 28  # the same budget in bytes, for larger, colour or float images


def image_shape(images: np.ndarray) -> tuple[int, int, int]:
    """(H, W, C) of a test set stored as (N, H, W) or (N, H, W, C) uint8 or float pixels."""
    if images.ndim not in (3, 4) or not (images.dtype == np.uint8 or np.issubdtype(images.dtype, np.floating)):
        raise NuKerasError(
            f"the explorer needs (N, H, W[, C]) uint8 or float images, not {images.dtype} {images.shape}"
        )
    height, width = images.shape[1:3]
    return int(height), int(width), int(images.shape[3]) if images.ndim == 4 else 1


def image_budget(shape: tuple[int, int, int], dtype: str) -> int:
    """How many images the page may carry: MAX_IMAGES of MNIST's size, fewer when each is larger (none when
    one image alone is over MAX_PIXEL_BYTES)."""
    return min(MAX_IMAGES, MAX_PIXEL_BYTES // _image_bytes(shape, dtype))


def _image_bytes(shape: tuple[int, int, int], dtype: str) -> int:
    return math.prod(shape) * (1 if dtype == "u1" else 4)


def pixel_dtype(images: np.ndarray) -> str:
    """How the page's script stores the pixels: 'u1' for uint8 images, '<f4' for float ones."""
    return "u1" if images.dtype == np.uint8 else "<f4"


def picker_rows(
    labels: np.ndarray, predictions: np.ndarray, per_class: int, classes: int = 10, budget: int = MAX_IMAGES
) -> tuple[np.ndarray, int]:
    """Test-set indices the page ships, in test order: the first `per_class` of each class, then every
    misclassified image as long as the total stays within `budget`; also how many misclassified were left out.
    """
    sample = np.concatenate([np.flatnonzero(labels == k)[:per_class] for k in range(classes)]).astype(np.int64)
    wrong = np.flatnonzero(labels != predictions)
    extra = np.setdiff1d(wrong, sample)
    room = max(budget - len(sample), 0)
    return np.union1d(sample, extra[:room]), max(len(extra) - room, 0)


def shipped_rows(
    labels: np.ndarray, predictions: np.ndarray, images: np.ndarray, classes: int, per_class: int = SAMPLE_PER_CLASS
) -> tuple[np.ndarray, int, int]:
    """The picker's test-set indices for these images (`picker_rows` within `image_budget`, fewer of each class
    when many classes of large images share it, at least one), how many misclassified were left out, and the
    per-class count used."""
    budget = image_budget(image_shape(images), pixel_dtype(images))
    per_class = min(per_class, budget // classes)
    rows, left_out = picker_rows(labels, predictions, per_class, classes, budget)
    return rows, left_out, per_class

"""The parts of a hand-made `Measurements` that follow from a test set: a stand-in test set of the right
size, the first images of each class, the box-plot numbers of each unit per class, and the images the
record keeps. tests/page_fixtures.py builds its user-layer records from these, so the publishing tests
need no training: they check what pages, charts and the Explore export make of a record, whatever made it.
"""

from __future__ import annotations

import numpy as np
from matplotlib import cbook

from nu_keras import explore
from nu_keras.record import Images

EXAMPLES = 20  # per_class.examples: the first images of each class the pages may show


def stand_in_run(n: int, classes: int, units: int, image_shape: tuple, signed: bool, seed: int = 0) -> dict:
    """A test set of n images for hand-made measurements: image i of class i mod C, predicted right, its
    units random (negative too for a signed layer), its pixels random uint8."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    return {
        "units": rng.uniform(-1.0 if signed else 0.0, 2.0, size=(n, units)).astype(np.float32).astype(np.float64),
        "labels": labels.astype(np.int64),
        "predictions": labels.astype(np.int64),
        "pixels": rng.integers(0, 256, size=(n, *image_shape), dtype=np.uint8),
    }


def boxplot_stats(units: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    """(C, U, 5) whislo, q1, med, q3, whishi of each unit over each class's images, as `ax.boxplot` draws."""
    out = np.full((classes, units.shape[1], 5), np.nan)
    for c in range(classes):
        rows = units[labels == c]
        if len(rows):
            for u, stats in enumerate(cbook.boxplot_stats([rows[:, u] for u in range(units.shape[1])])):
                out[c, u] = [stats[k] for k in ("whislo", "q1", "med", "q3", "whishi")]
    return out


def first_examples(labels: np.ndarray, classes: int, k: int = EXAMPLES) -> np.ndarray:
    """(C, k) test indices of each class's first k images, -1 past the class's size."""
    table = np.full((classes, k), -1, dtype=np.int64)
    for c in range(classes):
        first = np.flatnonzero(labels == c)[:k]
        table[c, : len(first)] = first
    return table


def kept_images(run: dict, classes: int, shown: list) -> Images:
    """The images a record keeps of `run` (`stand_in_run`): the first of each class within the Explore
    budget (`explore.shipped_rows`), and every test index in `shown` (the units' top and silent examples)."""
    labels = run["labels"]
    first, _, _ = explore.shipped_rows(labels, labels, run["pixels"], classes, explore.SAMPLE_PER_CLASS)
    extra = [np.asarray(s, dtype=np.int64).ravel() for s in shown]
    index = np.union1d(first, np.concatenate(extra) if extra else np.zeros(0, np.int64)).astype(np.int64)
    return Images(
        index=index,
        pixels=run["pixels"][index],
        label=labels[index],
        prediction=run["predictions"][index],
        units=run["units"][index],
    )

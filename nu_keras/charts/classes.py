"""Figures of one class: its first test images beside the units' activations on each (the paper's figure),
and its mean activation profile over the units."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.transforms import BboxTransformTo, ScaledTranslation, TransformedBbox

from nu_keras.charts.style import bars, errorbars, save, show_image


def class_examples(path, images, activations, name, preferred, unit):
    """The paper's figure: each example image beside the bar chart of the layer's activations on it."""
    k = len(images)
    fig = plt.figure(figsize=(6.4, 1.3 * k + 0.5))
    grid = fig.add_gridspec(k, 2, width_ratios=[1, 3], hspace=0.45, wspace=0.15)  # tight_layout costs a draw
    column = fig.add_subplot(grid[:, 0])  # added first: the images lie under the bar charts' labels
    top = float(max(activations.max(), 1e-6)) * 1.05
    bottom = min(float(activations.min()) * 1.05, 0.0)
    for row, (image, acts) in enumerate(zip(images, activations, strict=True)):
        image_in_cell(column, grid[row, 0], image, f"example {row + 1}")
        ax = fig.add_subplot(grid[row, 1])
        bars(ax, acts, highlight=preferred)
        ax.set_ylim(bottom, top)
    fig.axes[-1].set_xlabel(unit)
    fig.suptitle(f"{name}: activations (orange: {unit} {preferred}, the preferred unit)")
    return save(fig, path)


def image_in_cell(column, cell, image: np.ndarray, title: str) -> None:
    """Draw `image` through the axes `column`, exactly where and as an axes of its own in the grid cell `cell`
    would (shrunk to the image's aspect, centred, titled in 8 pt): a column of k images then costs one axes
    instead of k, each with its ticks and spines built for nothing."""
    fig = column.get_figure()
    width, height = fig.get_size_inches()
    box = cell.get_position(fig)
    box = box.shrunk_to_aspect(image.shape[0] / image.shape[1], box, height / width).anchored("C", box)
    place = BboxTransformTo(TransformedBbox(box, fig.transFigure))  # that axes' transAxes
    show_image(column, image, place=place)
    lift = place + ScaledTranslation(0, plt.rcParams["axes.titlepad"] / 72, fig.dpi_scale_trans)
    column.text(0.5, 1.0, title, fontsize=8, ha="center", va="baseline", transform=lift)


def class_profile(path, mean, ci95, name, preferred, unit, signed=False):
    """Mean activation of each unit over all test images of one class, with its 95 % interval."""
    fig, ax = plt.subplots(figsize=(6.4, 2.6))
    bars(ax, mean, highlight=preferred, xlabel=unit, ylabel="mean activation")
    errorbars(ax, mean, ci95, floor=not signed)
    ax.set_title(f"{name}: mean activation over its test images (95 % interval)")
    return save(fig, path)


def examples_of(examples: np.ndarray, c: int, k: int, kept: np.ndarray) -> np.ndarray:
    """Test indices of the first k images of class c, in test order (the ones the class page shows), from the
    record's (C, k_max) table of each class's first images (-1 past the class's size), among the images the
    record `kept` (many classes of large images: fewer of each, within the record's image budget)."""
    first = np.asarray(examples[c], dtype=np.int64)
    return first[(first >= 0) & np.isin(first, kept)][:k]

"""Figures of one unit: its input weights (where it reads pixels), its tuning over the classes, the images
that drive it most or leave it silent, and what the network loses without it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from nu_keras.charts.style import (
    ACCENT,
    BASE,
    DIVERGING,
    NEGATIVE,
    axes_off,
    bar_rectangles,
    bars,
    errorbars,
    montage,
    pixel_top,
    save,
    show_image,
    ticks,
)
from nu_keras.stack import exact_maximizer


def unit_weights(path, kernel_column, image_shape, title):
    """The unit's input weights as an image of the input's shape, beside the input in [0, 1] that maximises it."""
    weights = kernel_column.reshape(image_shape[:2])
    fig, (w_ax, m_ax) = plt.subplots(1, 2, figsize=(6.4, 3))
    limit = float(np.abs(weights).max()) or 1.0
    image = w_ax.imshow(weights, cmap=DIVERGING, vmin=-limit, vmax=limit)
    fig.colorbar(image, ax=w_ax, shrink=0.8, label="input weight")
    w_ax.set_title(f"{title}: input weights")
    m_ax.imshow(exact_maximizer(weights), cmap="gray_r", vmin=0, vmax=1)
    m_ax.set_title("maximising input (exact)")
    for ax in (w_ax, m_ax):
        axes_off(ax)
    fig.subplots_adjust(wspace=0.45)  # room for the colour bar's label
    return save(fig, path)


def unit_tuning(path, boxplot, mean, ci95, title, names, axis, signed=False):
    """Tuning curve (per-class mean with 95 % interval) beside the per-class distribution (box plot).

    `boxplot` is (C, 5) per class: lower whisker, first quartile, median, third quartile, upper whisker, as
    matplotlib's `boxplot_stats` computes them (whiskers at 1.5 IQR); the boxes are drawn from those numbers
    with `bxp`, the picture `boxplot` draws from the activations without its outliers."""
    fig, (t_ax, b_ax) = plt.subplots(1, 2, figsize=(8.4 + 0.05 * max(len(mean) - 10, 0), 2.8))
    preferred = int(np.argmax(mean))
    bars(t_ax, mean, highlight=preferred, xlabel=axis, ylabel="mean activation", labels=names)
    errorbars(t_ax, mean, ci95, floor=not signed)
    t_ax.set_title(f"{title}: tuning curve (95 % interval)")
    b_ax.bxp(
        [box_stats(row) for row in boxplot],
        positions=np.arange(len(mean)),
        widths=0.6,
        showfliers=False,
        medianprops={"color": ACCENT},
        boxprops={"color": BASE},
    )
    ticks(b_ax, "x", len(mean), names)
    b_ax.set_xlabel(axis)
    b_ax.set_ylabel("activation")
    b_ax.set_title("distribution per class (whiskers 1.5 IQR)")
    fig.subplots_adjust(wspace=0.3)
    return save(fig, path)


def box_stats(row) -> dict:
    """One box of `bxp` from (whislo, q1, med, q3, whishi)."""
    whislo, q1, med, q3, whishi = (float(v) for v in row)
    return {"whislo": whislo, "q1": q1, "med": med, "q3": q3, "whishi": whishi, "fliers": np.array([])}


def image_grid(path, images, title, columns=8):
    """Test images in a grid (top-activating or silent examples), drawn as one montage."""
    columns = min(columns, len(images))
    sheet = montage(np.asarray(images, dtype=float), columns=columns, fill=0.0)
    rows = int(np.ceil(len(images) / columns))
    fig, ax = plt.subplots(figsize=(0.8 * columns, 0.8 * rows + 0.4))
    show_image(ax, sheet, top=pixel_top(images))
    ax.set_title(title, fontsize=9)
    return save(fig, path)


def unit_effect(path, outgoing, drop, mean_drop, title, names, axis):
    """What the unit votes for (its outgoing weights, where it feeds the output layer directly) and what
    the network loses without it (zero and mean ablation)."""
    panels = 2 if outgoing is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels + 0.05 * max(len(drop) - 10, 0), 2.8), squeeze=False)
    positions = np.arange(len(drop))
    if outgoing is not None:
        w_ax = axes[0, 0]
        bar_rectangles(w_ax, positions, outgoing, colors=[BASE if v >= 0 else NEGATIVE for v in outgoing])
        w_ax.axhline(0, color="black", lw=0.8)
        w_ax.set_title(f"{title}: weights to the output units")
        w_ax.set_ylabel("weight")
        ticks(w_ax, "x", len(drop), names)
        w_ax.set_xlabel(f"{axis} (output unit)")
    a_ax = axes[0, -1]
    bar_rectangles(a_ax, positions - 0.2, np.asarray(drop) * 100, width=0.4, colors=NEGATIVE, label="zeroed")
    bar_rectangles(
        a_ax, positions + 0.2, np.asarray(mean_drop) * 100, width=0.4, colors=ACCENT, label="set to its mean"
    )
    a_ax.axhline(0, color="black", lw=0.8)
    a_ax.legend(fontsize=7, frameon=False)
    a_ax.set_title(
        "accuracy drop when it is removed" if outgoing is not None else f"{title}: accuracy drop when removed"
    )
    a_ax.set_ylabel("drop (percentage points)")
    ticks(a_ax, "x", len(drop), names)
    a_ax.set_xlabel(axis)
    fig.subplots_adjust(wspace=0.3)
    return save(fig, path)

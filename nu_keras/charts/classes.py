"""Figures of one class: its first test images beside the units' activations on each (the paper's figure),
and its mean activation profile over the units."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from nu_keras.charts.style import bars, errorbars, save, show_image


def class_examples(path, images, hidden, name, preferred, unit):
    """The paper's figure: each example image beside the bar chart of the layer's activations on it."""
    k = len(images)
    fig, axes = plt.subplots(k, 2, figsize=(6.4, 1.3 * k + 0.5), gridspec_kw={"width_ratios": [1, 3]}, squeeze=False)
    top = float(max(hidden.max(), 1e-6)) * 1.05
    bottom = min(float(hidden.min()) * 1.05, 0.0)
    for row, (image, acts) in enumerate(zip(images, hidden, strict=True)):
        show_image(axes[row, 0], image)
        axes[row, 0].set_title(f"example {row + 1}", fontsize=8)
        bars(axes[row, 1], acts, highlight=preferred)
        axes[row, 1].set_ylim(bottom, top)
    axes[-1, 1].set_xlabel(unit)
    fig.suptitle(f"{name}: activations (orange: {unit} {preferred}, the preferred unit)")
    fig.subplots_adjust(hspace=0.45, wspace=0.15)  # explicit spacing: tight_layout costs a full draw
    save(fig, path)


def class_profile(path, mean, ci95, name, preferred, unit, signed=False):
    """Mean activation of each unit over all test images of one class, with its 95 % interval."""
    fig, ax = plt.subplots(figsize=(6.4, 2.6))
    bars(ax, mean, highlight=preferred, xlabel=unit, ylabel="mean activation")
    errorbars(ax, mean, ci95, floor=not signed)
    ax.set_title(f"{name}: mean activation over its test images (95 % interval)")
    save(fig, path)


def examples_of(labels: np.ndarray, d: int, k: int) -> np.ndarray:
    """The first k test images of class d, in test order (the ones the class page shows)."""
    return np.flatnonzero(labels == d)[:k]

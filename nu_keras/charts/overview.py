"""Figures of the whole layer: class-by-unit heat maps, the training curves, every unit's input weights,
and selectivity against importance."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from nu_keras.charts.style import ACCENT, BASE, DIVERGING, GREY, NEGATIVE, SEQUENTIAL, montage, save, ticks

WRITTEN_CELLS = 400  # a heat map writes each cell's value up to this many cells; beyond, the colour says it


def matrix(path, values, title, xlabel, ylabel, cmap=SEQUENTIAL, fmt="{:.1f}", centred=False, cbar="", rows=None):
    """A labelled heat map (rows: classes, columns: units), each cell's value written in it when they fit."""
    values = np.asarray(values)
    height, width = values.shape
    fig, ax = plt.subplots(figsize=(min(6.6 + 0.03 * max(width - 10, 0), 14), min(5.4 + 0.1 * max(height - 10, 0), 12)))
    limit = float(np.abs(values).max()) or 1.0
    bounds = {"vmin": -limit, "vmax": limit} if centred else {}
    image = ax.imshow(values, cmap=cmap, aspect="auto", interpolation="nearest", **bounds)
    if values.size <= WRITTEN_CELLS:
        for (r, c), v in np.ndenumerate(values):
            shade = image.norm(v)
            light_cell = abs(shade - 0.5) < 0.3 if centred else shade >= 0.5
            label = fmt.format(v).replace("-0", "0") if float(fmt.format(v)) == 0 else fmt.format(v)
            ax.text(c, r, label, ha="center", va="center", fontsize=8, color="black" if light_cell else "white")
    ticks(ax, "x", width)
    ticks(ax, "y", height, rows)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, shrink=0.8, label=cbar)
    return save(fig, path)


def training_curves(path, history):
    """Loss and accuracy per epoch, training against held-out validation images."""
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(8, 3))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, key, label in ((loss_ax, "loss", "cross-entropy loss"), (acc_ax, "accuracy", "accuracy")):
        ax.plot(epochs, history[key], marker="o", color=BASE, label="training")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], marker="s", color=ACCENT, label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.legend()
    fig.subplots_adjust(wspace=0.3)
    return save(fig, path)


DYNAMICS_COUNTS = (  # (key in metrics["dynamics"], legend label, colour, marker)
    ("dominant_classes", "classes with a dominant unit", BASE, "o"),
    ("rescaled_dominant_classes", "... after dividing each unit by its spread", ACCENT, "s"),
    ("distinct_dominant_units", "distinct dominant units", NEGATIVE, "^"),
    ("own_unit_classes", "classes with a dominant unit of their own", "#009E73", "D"),
    ("dead_units", "dead units", GREY, "x"),
)


def dynamics(path, series, classes: int, units: int):
    """When dominance appears during the fit: the counts per epoch (left) and test accuracy and mean η²
    over live units (right), from the start (epoch 0, before the first step) to the last epoch."""
    fig, (counts_ax, score_ax) = plt.subplots(1, 2, figsize=(9, 3.4), width_ratios=(3, 2))
    epochs = series["epoch"]
    for key, label, colour, marker in DYNAMICS_COUNTS:
        counts_ax.plot(epochs, series[key], marker=marker, color=colour, label=label, markersize=4)
    counts_ax.set_ylim(-0.3, max(classes, units) + 0.3)
    counts_ax.set_ylabel(f"count (of {classes} classes, {units} units)")
    counts_ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    score_ax.plot(epochs, series["test_accuracy"], marker="o", color=BASE, label="test accuracy", markersize=4)
    eta_label = "mean η² (live units)"
    score_ax.plot(epochs, series["mean_eta_squared"], marker="s", color=ACCENT, label=eta_label, markersize=4)
    score_ax.set_ylim(0, 1)
    score_ax.set_ylabel("share")
    score_ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    for ax in (counts_ax, score_ax):
        ax.set_xlabel("epoch (0: before training)")
        ax.set_xticks(epochs if len(epochs) <= 12 else epochs[:: int(np.ceil(len(epochs) / 12))])
    fig.subplots_adjust(wspace=0.3)
    return save(fig, path)


GRID_COLUMNS = 16  # units per row of the weight grid


def weight_grid(path, kernel, image_shape, unit):
    """All units' input weights as images of the input's shape, each scaled to its own largest |weight|."""
    units = kernel.shape[1]
    h, w = image_shape[:2]
    scaled = kernel / np.maximum(np.abs(kernel).max(axis=0), 1e-12)  # each unit in [-1, 1]
    columns = min(units, GRID_COLUMNS)
    sheet = montage(scaled.T.reshape(units, h, w), columns=columns)
    rows = int(np.ceil(units / columns))
    fig, ax = plt.subplots(figsize=(1.3 * columns, 1.3 * rows + 0.6))
    image = ax.imshow(np.ma.masked_invalid(sheet), cmap=DIVERGING, vmin=-1, vmax=1)
    if rows == 1:
        ax.set_xticks([w // 2 + n * (w + 2) for n in range(units)])
        ax.set_xticklabels([f"{unit} {n}" for n in range(units)], fontsize=8)
    else:
        ax.set_xticks([])
        ax.set_title(f"{unit}s in rows of {columns}, left to right from {unit} 0", fontsize=8)
    ax.set_yticks([])
    ax.spines[:].set_visible(False)
    fig.colorbar(image, ax=ax, shrink=0.8, pad=0.01, label="weight / its unit's largest |weight|")
    return save(fig, path)


LABELLED_POINTS = 30  # a scatter plot names its points up to this many units


def selectivity_vs_importance(path, selectivity, importance, correlation, xlabel="class selectivity index"):
    """One point per unit: selectivity (or, for a signed layer, eta²) against the accuracy drop when zeroed."""
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.scatter(selectivity, np.asarray(importance) * 100, color=BASE, s=40 if len(selectivity) <= 64 else 12)
    if len(selectivity) <= LABELLED_POINTS:
        for n, (x, y) in enumerate(zip(selectivity, importance, strict=True)):
            ax.annotate(str(n), (x, y * 100), textcoords="offset points", xytext=(5, 3), fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test-accuracy drop when zeroed (pp)")
    rho = f" (Spearman {correlation['rho']:.2f}, p = {correlation['p']:.3f})" if correlation else ""
    ax.set_title(xlabel.split(":")[0] + " vs importance" + rho)
    return save(fig, path)

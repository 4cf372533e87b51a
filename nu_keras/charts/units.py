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


def unit_weights(path, kernel_column, image_shape, title, picture=None):
    """The unit's input weights as an image of the input's shape, beside the input in [0, 1] that maximises it
    and, when given, its feature visualisation (`picture`, in [0, 1]): the exact answer beside the optimised one."""
    weights = kernel_column.reshape(image_shape[:2])
    panels = 2 if picture is None else 3
    fig, axes = plt.subplots(1, panels, figsize=(3.2 * panels, 3))
    w_ax, m_ax = axes[0], axes[1]
    limit = float(np.abs(weights).max()) or 1.0
    image = w_ax.imshow(weights, cmap=DIVERGING, vmin=-limit, vmax=limit)
    fig.colorbar(image, ax=w_ax, shrink=0.8, label="input weight")
    w_ax.set_title(f"{title}: input weights")
    m_ax.imshow(exact_maximizer(weights), cmap="gray_r", vmin=0, vmax=1)
    m_ax.set_title("maximising input (exact)")
    if picture is not None:
        axes[2].imshow(np.asarray(picture, dtype=float).reshape(image_shape[:2]), cmap="gray_r", vmin=0, vmax=1)
        axes[2].set_title("feature visualisation")
    for ax in axes:
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


# ------------------------------------------------------------------------------ a convolution's channel


def upsampled(maps: np.ndarray, field: dict | None, shape: tuple[int, int]) -> np.ndarray:
    """(K, h, w) maps -> (K, H, W) on the input's pixels: position i sits at the centre of its receptive field,
    start + i * stride, and values between centres are interpolated linearly (held at the edges). Without a
    receptive field the map is stretched over the image."""
    k, h, w = maps.shape
    out_h, out_w = shape
    if field is None:
        centres = [np.linspace(0, out_h - 1, h), np.linspace(0, out_w - 1, w)]
    else:
        centres = [field["start"] + field["stride"] * np.arange(n) for n in (h, w)]
    rows = np.stack([[np.interp(np.arange(out_h), centres[0], col) for col in m.T] for m in maps])  # (K, w, H)
    return np.stack([[np.interp(np.arange(out_w), centres[1], row) for row in r.T] for r in rows])  # (K, H, W)


def grey(images: np.ndarray) -> np.ndarray:
    """(K, H, W[, C]) images as (K, H, W) brightness in [0, 1]: the base under a map."""
    values = np.asarray(images, dtype=float) / pixel_top(images)
    return values.mean(axis=-1) if values.ndim == 4 else values


def map_scale(limit: float, signed: bool) -> dict:
    """The page's one colour scale for maps: 0 to `limit`, or -`limit` to `limit` on a diverging map for a
    layer with negative activations (no ReLU), so that a negative response is not drawn as silence."""
    limit = limit or 1.0
    return {"cmap": DIVERGING, "vmin": -limit, "vmax": limit} if signed else {"cmap": "magma", "vmin": 0, "vmax": limit}


def map_overlays(path, images, maps, field, limit, title, columns=8, signed=False):
    """The top images, each with the channel's map over it (upsampled to the input, on one colour scale from
    0 to `limit` for the whole page, `map_scale`): where in the image the channel fires."""
    images = np.asarray(images)
    columns = min(columns, len(images))
    base = montage(grey(images), columns=columns, fill=0.0)
    heat = montage(upsampled(np.asarray(maps, dtype=float), field, images.shape[1:3]), columns=columns)
    rows = int(np.ceil(len(images) / columns))
    fig, ax = plt.subplots(figsize=(0.8 * columns + 1.0, 0.8 * rows + 0.4))
    ax.imshow(base, cmap="gray_r", vmin=0, vmax=1)
    shown_map = ax.imshow(heat, alpha=0.6, **map_scale(limit, signed))
    fig.colorbar(shown_map, ax=ax, shrink=0.8, label="activation")
    axes_off(ax)
    ax.set_title(title, fontsize=9)
    return save(fig, path)


def receptive_crops(path, images, maps, field, title, columns=8):
    """Around each top image's largest map value, the part of the image that position sees (its receptive
    field): the patch the channel responds to, as in the Microscope's dataset examples."""
    crops = np.stack([crop(image, m, field) for image, m in zip(np.asarray(images), maps, strict=True)])
    columns = min(columns, len(crops))
    rows = int(np.ceil(len(crops) / columns))
    sheet = montage(crops, columns=columns, gap=1)
    fig, ax = plt.subplots(figsize=(0.8 * columns, 0.8 * rows + 0.4))
    show_image(ax, sheet, top=1.0)
    ax.set_title(title, fontsize=9)
    return save(fig, path)


def crop(image: np.ndarray, channel_map: np.ndarray, field: dict) -> np.ndarray:
    """The receptive field of `channel_map`'s largest value (first in row order) cut out of `image`, as
    brightness in [0, 1]; NaN where the field reaches past the image's edge (drawn as background)."""
    i, j = np.unravel_index(int(np.argmax(channel_map)), channel_map.shape)
    size = int(field["size"])
    values = np.asarray(image, dtype=float) / pixel_top(image)
    out = np.full((size, size, *values.shape[2:]), np.nan)
    top, left = (int(np.floor(field["start"] + field["stride"] * p - (size - 1) / 2)) for p in (i, j))
    rows = slice(max(top, 0), min(top + size, values.shape[0]))
    cols = slice(max(left, 0), min(left + size, values.shape[1]))
    out[rows.start - top : rows.stop - top, cols.start - left : cols.stop - left] = values[rows, cols]
    return out


def class_maps(path, maps, names, limit, title, columns=10, signed=False):
    """The channel's mean map over each class's images, one small map per class, on the page's colour scale:
    where on average it fires for each class. One montage in one axes, each map named above it (an axes per
    map drew ten times slower, and a layer has a figure like this per channel)."""
    maps = np.asarray(maps, dtype=float)
    count, h, w = maps.shape
    columns = min(columns, count)
    rows = int(np.ceil(count / columns))
    gap = max(2, round(0.45 * h))  # room above each map for its name
    sheet = np.pad(montage(maps, columns, gap), ((gap, 0), (0, 0)), constant_values=np.nan)
    fig, ax = plt.subplots(figsize=(0.9 * columns + 0.8, 1.0 * rows + 0.4))
    image = ax.imshow(sheet, **map_scale(limit, signed))
    for c, name in enumerate(names[:count]):
        r, k = divmod(c, columns)
        ax.text(k * (w + gap) + (w - 1) / 2, r * (h + gap) + gap - 1.5, name, ha="center", va="bottom", fontsize=7)
    fig.colorbar(image, ax=ax, shrink=0.8, label="mean activation")
    axes_off(ax)
    ax.set_title(title, fontsize=9)
    return save(fig, path)


def conv_filter(path, kernel, title):
    """A first convolution's kernel (kh, kw, channels) as an image of the pixels it weighs: one channel on a
    blue-white-red scale centred on zero, colour kernels as colour (each scaled into [0, 1])."""
    kernel = np.asarray(kernel, dtype=float)
    fig, ax = plt.subplots(figsize=(2.4, 2.4))
    if kernel.shape[-1] == 1:
        limit = float(np.abs(kernel).max()) or 1.0
        image = ax.imshow(kernel[..., 0], cmap=DIVERGING, vmin=-limit, vmax=limit)
        fig.colorbar(image, ax=ax, shrink=0.8, label="weight")
    else:
        span = float(np.ptp(kernel)) or 1.0
        ax.imshow((kernel[..., :3] - kernel.min()) / span)
    axes_off(ax)
    ax.set_title(title, fontsize=9)
    return save(fig, path)


def feature_picture(path, picture, title):
    """The unit's feature visualisation (an input in the data's range, here in [0, 1]) as an image."""
    fig, ax = plt.subplots(figsize=(2.4, 2.6))
    show_image(ax, np.asarray(picture, dtype=float), top=1.0)
    ax.set_title(title, fontsize=9)
    return save(fig, path)

"""Figures of the seed sweep: accuracy and the invariant measures per width for trained units and their
controls, unit matching across seeds, and the rotation null."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from nu_keras.charts.style import ACCENT, BASE, GREY, bars, save

KIND_COLORS = {"trained": BASE, "untrained": GREY, "rotated": ACCENT}
KIND_LABELS = {
    "trained": "trained units",
    "untrained": "untrained (initial weights)",
    "rotated": "trained, random rotated basis",
}


def width_axis(ax, widths):
    ax.set_xticks(range(len(widths)))
    ax.set_xticklabels([str(w) for w in widths])
    ax.set_xlabel("hidden width")


def sweep_accuracy(path, sweep):
    """Test accuracy per width: every seed as a dot, the mean with its 95 % t-interval."""
    widths = sorted(sweep["widths"], key=int)  # JSON keys are strings: "10" < "5"
    fig, ax = plt.subplots(figsize=(5.6, 3.2))
    for i, width in enumerate(widths):
        entry = sweep["widths"][width]
        values = [m["trained"]["test_accuracy"] * 100 for m in entry["models"]]
        ax.scatter(np.full(len(values), i) + np.linspace(-0.12, 0.12, len(values)), values, color=GREY, s=14)
        acc = entry["summary"]["accuracy"]
        ax.errorbar(
            i,
            acc["mean"] * 100,
            yerr=[[(acc["mean"] - acc["low"]) * 100], [(acc["high"] - acc["mean"]) * 100]],
            fmt="o",
            color=BASE,
            capsize=4,
        )
    width_axis(ax, widths)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("accuracy per width (dots: seeds; bar: 95 % interval of the mean)")
    return save(fig, path)


def sweep_kinds(path, sweep, key, ylabel, title, pooled=False):
    """One measure per width for trained units and both controls, side by side (a kind without it is skipped)."""
    widths = sorted(sweep["widths"], key=int)  # JSON keys are strings: "10" < "5"
    fig, ax = plt.subplots(figsize=(7.2, 3.4))
    offsets = {"trained": -0.25, "untrained": 0.0, "rotated": 0.25}
    shown = set()
    for kind, offset in offsets.items():
        for i, width in enumerate(widths):
            entry = sweep["widths"][width]
            if pooled:
                values = entry["summary"][key][kind]
                if not values:
                    continue
                box = ax.boxplot(
                    [values],
                    positions=[i + offset],
                    widths=0.2,
                    showfliers=False,
                    patch_artist=True,
                    medianprops={"color": "black"},
                )
                box["boxes"][0].set_facecolor(KIND_COLORS[kind])
            else:
                values = [m[kind][key] for m in entry["models"] if m[kind][key] is not None]
                if not values:
                    continue
                jitter = np.linspace(-0.07, 0.07, len(values))
                ax.scatter(i + offset + jitter, values, color=KIND_COLORS[kind], s=14)
                ax.hlines(np.mean(values), i + offset - 0.1, i + offset + 0.1, color="black")
            shown.add(kind)
    for kind in offsets:
        if kind in shown:
            ax.scatter([], [], color=KIND_COLORS[kind], label=KIND_LABELS[kind], marker="s")
    width_axis(ax, widths)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, frameon=False)
    return save(fig, path)


MATCH_COLORS = {"trained": BASE, "untrained": GREY, "rotated": ACCENT, "shuffled": "#56B4E9"}


MATCH_NAMES = {"trained": "trained", "shuffled": "shuffled", "untrained": "untrained", "rotated": "rotated"}


def sweep_matching(path, sweep):
    """How well each seed's units match the reference seed's, for trained units and the three baselines; each
    cluster is named on the axis under it (and the widths below those), not only by colour."""
    widths = sorted(sweep["widths"], key=int)  # JSON keys are strings: "10" < "5"
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    offsets = {"trained": -0.3, "shuffled": -0.1, "untrained": 0.1, "rotated": 0.3}
    ticks, labels = [], []
    for kind, offset in offsets.items():
        for i, width in enumerate(widths):
            entry = sweep["widths"][width]
            values = [_live_mean(m["matching"][kind]) for m in entry["models"][1:]]
            ax.scatter(np.full(len(values), i + offset), values, color=MATCH_COLORS[kind], s=16)
            if values:
                ax.hlines(np.mean(values), i + offset - 0.07, i + offset + 0.07, color="black")
            ticks.append(i + offset)
            labels.append(MATCH_NAMES[kind])
    ax.set_xticks(ticks, labels, rotation=45, ha="right", rotation_mode="anchor")
    if len(widths) > 1:
        below = ax.secondary_xaxis(-0.32)
        below.set_xticks(range(len(widths)), [f"width {w}" for w in widths])
        below.tick_params(length=0)
        below.spines["bottom"].set_visible(False)
    else:
        ax.set_xlabel(f"hidden width {widths[0]}")
    ax.set_ylabel("mean matched correlation")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title("unit profiles matched to the first seed (live units)")
    return save(fig, path)


def _live_mean(pairs: dict) -> float:
    """Mean matched correlation over pairs of live units (sweep.live_match_mean), for older records all pairs."""
    live = pairs.get("live", [True] * len(pairs["correlation"]))
    kept = [c for c, keep in zip(pairs["correlation"], live, strict=True) if keep]
    return float(np.mean(kept)) if kept else 0.0


THRESHOLD_LINES = {  # key of the threshold curve -> (label, colour, line style)
    "trained": ("trained, raw activations", BASE, "-"),
    "trained_rescaled": ("trained, each unit divided by its spread", BASE, "--"),
    "untrained": ("untrained (initial weights)", GREY, "-"),
    "rotated": ("random rotated basis, divided by spread", ACCENT, "-"),
}


def sweep_thresholds(path, curve, classes, axis):
    """How many classes have a dominant unit as the dominance threshold moves: the mean over seeds with its
    95 % interval, for the trained units and the controls. A finding that holds only at 50 % is fragile."""
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    x = np.asarray(curve["thresholds"]) * 100
    for key, (label, colour, style) in THRESHOLD_LINES.items():
        if key not in curve:
            continue
        line = curve[key]
        ax.plot(x, line["mean"], color=colour, linestyle=style, label=label)
        ax.fill_between(x, line["low"], line["high"], color=colour, alpha=0.15, linewidth=0)
    ax.set_xlabel("threshold: share of the images the unit must win (%)")
    ax.set_ylabel(f"{axis}s with a dominant unit")
    ax.set_ylim(0, classes)
    ax.set_title("dominant units as the threshold moves (mean over seeds, 95 % interval)")
    ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)  # below: clear of the lines
    return save(fig, path)


def sweep_dedicated(path, counts, seeds, width, names, axis):
    """Per class, in how many seeds it has a dominant unit."""
    fig, ax = plt.subplots(figsize=(5.6, 2.8))
    bars(ax, counts, xlabel=axis, ylabel="seeds", labels=names)
    ax.set_ylim(0, seeds)
    ax.set_title(f"width {width}: seeds (of {seeds}) in which the {axis} has a dominant unit")
    return save(fig, path)


def sweep_information(path, models, axis):
    """Per unit: eta² against label information (bits, shuffled baseline removed)."""
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    for kind in ("untrained", "rotated", "trained"):
        eta = [v for m in models for v in m[kind]["eta_squared"]]
        mi = [v for m in models for v in m[kind]["mutual_information"]]
        ax.scatter(eta, mi, color=KIND_COLORS[kind], s=14, label=KIND_LABELS[kind], alpha=0.8)
    ax.set_xlabel(f"η²: share of the unit's variance explained by the {axis}")
    ax.set_ylabel(f"information about the {axis} (bits)")
    ax.set_title("every unit of every seed")
    ax.legend(fontsize=7, frameon=False)
    return save(fig, path)


NULL_TITLES = {
    "rescaled_matched_share": "matched share (a unit per class, standardised)",
    "eta_squared": "mean η²",
    "d_prime": "mean d′",
}


def sweep_null(path, models, whiskers):
    """Per invariant measure and seed: the rotation null as a box (whiskers at the `whiskers` percentiles,
    the record's `method.null_whiskers`), the trained neurons as a diamond. One panel per row, so the figure
    fits the page's column at its drawn size and its tick labels stay legible (9 pt at 6.4 in is about 13 px
    on a 690 px column)."""
    fig, axes = plt.subplots(len(NULL_TITLES), 1, figsize=(6.4, 6.6), sharex=True)
    seeds = [m["seed"] for m in models]
    for ax, (key, title) in zip(axes, NULL_TITLES.items(), strict=True):
        ax.boxplot(
            [m["null"]["values"][key] for m in models],
            positions=np.arange(len(models)),
            widths=0.5,
            whis=whiskers,
            showfliers=False,
            medianprops={"color": "black"},
            boxprops={"color": GREY},
        )
        trained = [m["null"]["trained"][key] for m in models]  # live units only, like the null
        ax.scatter(np.arange(len(models)), trained, marker="D", color=ACCENT, s=30, zorder=3)
        ax.set_title(title)
    axes[-1].set_xticks(np.arange(len(models)), [str(s) for s in seeds])
    axes[-1].set_xlabel("seed")
    fig.suptitle("random rotations of the layer (boxes) against the trained neurons (orange diamonds)")
    fig.tight_layout()
    return save(fig, path)

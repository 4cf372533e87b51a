"""Every figure of the report: one function per figure kind, matplotlib's object API, Agg backend.

Colours: the Okabe-Ito palette (safe for the common colour-vision deficiencies); sequential data
uses `cividis`, signed data the diverging `RdBu_r` centred on zero. Figures render in parallel, one
figure per task, and each figure is closed as soon as it is saved.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from nu_keras import artifacts  # noqa: E402
from nu_keras.analysis import exact_maximizer  # noqa: E402

BASE = "#0072B2"  # Okabe-Ito blue: every bar
ACCENT = "#E69F00"  # Okabe-Ito orange: the neuron or digit a figure is about
NEGATIVE = "#D55E00"  # Okabe-Ito vermillion: drops and negative votes
GREY = "#999999"
SEQUENTIAL, DIVERGING = "cividis", "RdBu_r"
DPI = 180  # twice the CSS pixel density, so figures stay sharp on high-DPI screens
plt.rcParams.update(
    {
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "svg.hashsalt": "nu_keras",
        "figure.max_open_warning": 0,
    }
)


def save(fig, path: Path) -> None:
    """Write the PNG atomically and free the figure (a long render must not accumulate them)."""
    with artifacts.atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def _errorbars(ax, mean, half):
    """Error bars of a non-negative quantity: the interval cut at zero, as the quantity cannot go below it."""
    mean, half = np.asarray(mean), np.asarray(half)
    lower = np.minimum(half, mean)
    ax.errorbar(np.arange(len(mean)), mean, yerr=[lower, half], fmt="none", ecolor="black", capsize=3, lw=1)


def _bars(ax, values, highlight=None, color=BASE, xlabel="hidden neuron", ylabel="activation"):
    colors = [ACCENT if i == highlight else color for i in range(len(values))]
    ax.bar(np.arange(len(values)), values, color=colors)
    ax.set_xticks(np.arange(len(values)))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def digit_examples(path, images, hidden, digit, preferred):
    """The paper's figure: each example image beside the bar chart of its hidden activations."""
    k = len(images)
    fig, axes = plt.subplots(k, 2, figsize=(6.4, 1.3 * k + 0.5), gridspec_kw={"width_ratios": [1, 3]}, squeeze=False)
    top = float(max(hidden.max(), 1e-6)) * 1.05
    for row, (image, acts) in enumerate(zip(images, hidden, strict=True)):
        axes[row, 0].imshow(image, cmap="gray_r", vmin=0, vmax=255)
        axes[row, 0].set_axis_off()
        axes[row, 0].set_title(f"example {row + 1}", fontsize=8)
        _bars(axes[row, 1], acts, highlight=preferred, xlabel="")
        axes[row, 1].set_ylim(0, top)
    axes[-1, 1].set_xlabel("hidden neuron")
    fig.suptitle(f"digit {digit}: hidden activations (orange: neuron {preferred}, the preferred unit)")
    fig.subplots_adjust(hspace=0.45, wspace=0.15)  # explicit spacing: tight_layout costs a full draw
    save(fig, path)


def digit_profile(path, mean, ci95, digit, preferred):
    """Mean activation of each neuron over all test images of one digit, with its 95 % interval."""
    fig, ax = plt.subplots(figsize=(6.4, 2.6))
    _bars(ax, mean, highlight=preferred, ylabel="mean activation")
    _errorbars(ax, mean, ci95)
    ax.set_title(f"digit {digit}: mean hidden activation over its test images (95 % interval)")
    save(fig, path)


def matrix(path, values, title, xlabel, ylabel, cmap=SEQUENTIAL, fmt="{:.1f}", centred=False, cbar=""):
    """A labelled heat map with each cell's value written in it."""
    values = np.asarray(values)
    fig, ax = plt.subplots(figsize=(6.6, 5.4))
    limit = float(np.abs(values).max()) or 1.0
    bounds = {"vmin": -limit, "vmax": limit} if centred else {}
    image = ax.imshow(values, cmap=cmap, **bounds)
    for (r, c), v in np.ndenumerate(values):
        shade = image.norm(v)
        light_cell = abs(shade - 0.5) < 0.3 if centred else shade >= 0.5
        label = fmt.format(v).replace("-0", "0") if float(fmt.format(v)) == 0 else fmt.format(v)
        ax.text(c, r, label, ha="center", va="center", fontsize=8, color="black" if light_cell else "white")
    ax.set_xticks(range(values.shape[1]))
    ax.set_yticks(range(values.shape[0]))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, shrink=0.8, label=cbar)
    save(fig, path)


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
    save(fig, path)


def neuron_weights(path, kernel_column, neuron):
    """The unit's 784 input weights as a 28x28 image, beside the input in [0, 1] that maximises it."""
    weights = kernel_column.reshape(28, 28)
    fig, (w_ax, m_ax) = plt.subplots(1, 2, figsize=(6.4, 3))
    limit = float(np.abs(weights).max()) or 1.0
    image = w_ax.imshow(weights, cmap=DIVERGING, vmin=-limit, vmax=limit)
    fig.colorbar(image, ax=w_ax, shrink=0.8, label="input weight")
    w_ax.set_title(f"neuron {neuron}: input weights")
    m_ax.imshow(exact_maximizer(weights), cmap="gray_r", vmin=0, vmax=1)
    m_ax.set_title("maximising input (exact)")
    for ax in (w_ax, m_ax):
        ax.set_axis_off()
    fig.subplots_adjust(wspace=0.45)  # room for the colour bar's label
    save(fig, path)


def montage(tiles: np.ndarray, columns: int, gap: int = 2, fill: float = np.nan) -> np.ndarray:
    """(K, 28, 28) tiles -> one image of `columns` per row, separated by `gap` pixels of `fill`.

    One imshow of a montage draws far faster than one axes per tile.
    """
    k, h, w = tiles.shape
    rows = int(np.ceil(k / columns))
    sheet = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap), fill, dtype=float)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        sheet[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = tile
    return sheet


def weight_grid(path, kernel):
    """All units' input weights side by side, each scaled to its own largest absolute weight."""
    units = kernel.shape[1]
    scaled = kernel / np.maximum(np.abs(kernel).max(axis=0), 1e-12)  # each unit in [-1, 1]
    sheet = montage(scaled.T.reshape(units, 28, 28), columns=units)
    fig, ax = plt.subplots(figsize=(1.3 * units, 1.9))
    image = ax.imshow(np.ma.masked_invalid(sheet), cmap=DIVERGING, vmin=-1, vmax=1)
    ax.set_xticks([14 + n * 30 for n in range(units)])
    ax.set_xticklabels([f"neuron {n}" for n in range(units)], fontsize=8)
    ax.set_yticks([])
    ax.spines[:].set_visible(False)
    fig.colorbar(image, ax=ax, shrink=0.8, pad=0.01, label="weight / its unit's largest |weight|")
    save(fig, path)


def neuron_tuning(path, hidden_column, labels, mean, ci95, neuron):
    """Tuning curve (per-digit mean with 95 % interval) beside the per-digit distribution (box plot)."""
    fig, (t_ax, b_ax) = plt.subplots(1, 2, figsize=(8.4, 2.8))
    preferred = int(np.argmax(mean))
    _bars(t_ax, mean, highlight=preferred, xlabel="digit", ylabel="mean activation")
    _errorbars(t_ax, mean, ci95)
    t_ax.set_title(f"neuron {neuron}: tuning curve (95 % interval)")
    groups = [hidden_column[labels == d] for d in range(10)]
    b_ax.boxplot(
        groups,
        positions=np.arange(10),
        widths=0.6,
        showfliers=False,
        medianprops={"color": ACCENT},
        boxprops={"color": BASE},
    )
    b_ax.set_xlabel("digit")
    b_ax.set_ylabel("activation")
    b_ax.set_title("distribution per digit (whiskers 1.5 IQR)")
    fig.subplots_adjust(wspace=0.3)
    save(fig, path)


def image_grid(path, images, title, columns=8):
    """Test images in a grid (top-activating or silent examples), drawn as one montage."""
    columns = min(columns, len(images))
    sheet = montage(np.asarray(images, dtype=float), columns=columns, fill=0.0)
    rows = sheet.shape[0] // 28
    fig, ax = plt.subplots(figsize=(0.8 * columns, 0.8 * rows + 0.4))
    ax.imshow(sheet, cmap="gray_r", vmin=0, vmax=255)
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    save(fig, path)


def neuron_effect(path, outgoing, drop, mean_drop, neuron):
    """What the unit votes for (outgoing weights) and what the network loses without it (both ablations)."""
    fig, (w_ax, a_ax) = plt.subplots(1, 2, figsize=(8.4, 2.8))
    w_ax.bar(np.arange(10), outgoing, color=[BASE if v >= 0 else NEGATIVE for v in outgoing])
    w_ax.axhline(0, color="black", lw=0.8)
    w_ax.set_title(f"neuron {neuron}: weights to the output units")
    a_ax.bar(np.arange(10) - 0.2, np.asarray(drop) * 100, width=0.4, color=NEGATIVE, label="zeroed")
    a_ax.bar(np.arange(10) + 0.2, np.asarray(mean_drop) * 100, width=0.4, color=ACCENT, label="set to its mean")
    a_ax.axhline(0, color="black", lw=0.8)
    a_ax.legend(fontsize=7, frameon=False)
    a_ax.set_title("accuracy drop when it is removed")
    a_ax.set_ylabel("drop (percentage points)")
    w_ax.set_ylabel("weight")
    for ax in (w_ax, a_ax):
        ax.set_xticks(range(10))
        ax.set_xlabel("digit (output unit)")
    fig.subplots_adjust(wspace=0.3)
    save(fig, path)


def selectivity_vs_importance(path, selectivity, importance, correlation):
    """One point per neuron: class selectivity against the test-accuracy drop when it is zeroed."""
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.scatter(selectivity, np.asarray(importance) * 100, color=BASE, s=40)
    for n, (x, y) in enumerate(zip(selectivity, importance, strict=True)):
        ax.annotate(str(n), (x, y * 100), textcoords="offset points", xytext=(5, 3), fontsize=8)
    ax.set_xlabel("class selectivity index")
    ax.set_ylabel("test-accuracy drop when zeroed (pp)")
    rho = f" (Spearman {correlation['rho']:.2f}, p = {correlation['p']:.3f})" if correlation else ""
    ax.set_title("selectivity vs importance" + rho)
    save(fig, path)


KIND_COLORS = {"trained": BASE, "untrained": GREY, "rotated": ACCENT}
KIND_LABELS = {
    "trained": "trained units",
    "untrained": "untrained (initial weights)",
    "rotated": "trained, random rotated basis",
}


def _width_axis(ax, widths):
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
    _width_axis(ax, widths)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("accuracy per width (dots: seeds; bar: 95 % interval of the mean)")
    save(fig, path)


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
    _width_axis(ax, widths)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, frameon=False)
    save(fig, path)


MATCH_COLORS = {"trained": BASE, "untrained": GREY, "rotated": ACCENT, "shuffled": "#56B4E9"}


def sweep_matching(path, sweep):
    """How well each seed's units match the reference seed's, for trained units and the three baselines."""
    widths = sorted(sweep["widths"], key=int)  # JSON keys are strings: "10" < "5"
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    offsets = {"trained": -0.27, "shuffled": -0.09, "untrained": 0.09, "rotated": 0.27}
    for kind, offset in offsets.items():
        for i, width in enumerate(widths):
            values = [np.mean(m["matching"][kind]["correlation"]) for m in sweep["widths"][width]["models"][1:]]
            ax.scatter(np.full(len(values), i + offset), values, color=MATCH_COLORS[kind], s=16)
            if values:
                ax.hlines(np.mean(values), i + offset - 0.07, i + offset + 0.07, color="black")
        label = "shuffled profiles" if kind == "shuffled" else KIND_LABELS[kind]
        ax.scatter([], [], color=MATCH_COLORS[kind], label=label, marker="s")
    _width_axis(ax, widths)
    ax.set_ylabel("mean matched correlation")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title("unit profiles matched to the first seed")
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    save(fig, path)


def sweep_dedicated(path, counts, seeds, width):
    """Per digit, in how many seeds it has a dominant unit."""
    fig, ax = plt.subplots(figsize=(5.6, 2.8))
    _bars(ax, counts, xlabel="digit", ylabel="seeds")
    ax.set_ylim(0, seeds)
    ax.set_title(f"width {width}: seeds (of {seeds}) in which the digit has a dominant unit")
    save(fig, path)


def sweep_information(path, models):
    """Per unit: eta² against label information (bits, shuffled baseline removed)."""
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    for kind in ("untrained", "rotated", "trained"):
        eta = [v for m in models for v in m[kind]["eta_squared"]]
        mi = [v for m in models for v in m[kind]["mutual_information"]]
        ax.scatter(eta, mi, color=KIND_COLORS[kind], s=14, label=KIND_LABELS[kind], alpha=0.8)
    ax.set_xlabel("η²: share of the unit's variance explained by the digit")
    ax.set_ylabel("information about the digit (bits)")
    ax.set_title("every unit of every seed")
    ax.legend(fontsize=7, frameon=False)
    save(fig, path)


NULL_TITLES = {
    "standardised_best_share": "standardised dominance (mean best win share)",
    "eta_squared": "mean η²",
    "d_prime": "mean d′",
}


def sweep_null(path, models):
    """Per invariant measure and seed: the rotation null as a box (whiskers at 2.5 and 97.5 %), the trained
    neurons as a diamond."""
    fig, axes = plt.subplots(1, len(NULL_TITLES), figsize=(9.6, 3.0))
    seeds = [m["seed"] for m in models]
    for ax, (key, title) in zip(axes, NULL_TITLES.items(), strict=True):
        ax.boxplot(
            [m["null"]["values"][key] for m in models],
            positions=np.arange(len(models)),
            widths=0.5,
            whis=(2.5, 97.5),
            showfliers=False,
            medianprops={"color": "black"},
            boxprops={"color": GREY},
        )
        trained = [m["null"]["trained"][key] for m in models]  # live units only, like the null
        ax.scatter(np.arange(len(models)), trained, marker="D", color=ACCENT, s=30, zorder=3)
        ax.set_xticks(np.arange(len(models)))
        ax.set_xticklabels([str(s) for s in seeds])
        ax.set_xlabel("seed")
        ax.set_title(title, fontsize=9)
    fig.suptitle("random rotations of the hidden layer (boxes) against the trained neurons (orange diamonds)", y=1.04)
    fig.subplots_adjust(wspace=0.35)
    save(fig, path)


SWEEP_CHARTS = ("dominant", "matching", "accuracy", "selectivity", "dedicated", "information", "null")


def chart_names(metrics: dict, sweep: dict | None) -> dict:
    """Every figure's file, relative to the pages folder, keyed by what it shows: the one place chart file
    names are defined. The templates receive this (a figure a run does not draw has no key), and
    `chart_tasks` draws exactly these files.

    {"overview": {key: path}, "classes": [{key: path}] per class, "units": [{key: path}] per unit}
    """
    subject = metrics.get("subject", {})
    pixel_weights = subject.get("pixel_weights", True)
    overview = {
        "mean_activation": "img/mean-activation.png",
        "dominance": "img/dominance.png",
        "ablation": "img/ablation.png",
        "selectivity_vs_ablation": "img/selectivity-vs-ablation.png",
    }
    if metrics.get("history"):
        overview["training"] = "img/training.png"
    if pixel_weights:
        overview["weights_grid"] = "img/weights-grid.png"
    if sweep:
        width = str(metrics["config"]["hidden_units"])
        shown = ["dominant", "matching"]
        shown += ["accuracy", "selectivity"] if len(sweep["widths"]) > 1 else []
        shown += ["dedicated", "information", "null"] if width in sweep["widths"] else []
        overview |= {f"sweep_{key}": f"img/sweep-{key}.png" for key in shown}
    classes = [
        {"examples": f"img/class-{d}-examples.png", "profile": f"img/class-{d}-profile.png"}
        for d in range(len(metrics["mean_activation"]))
    ]
    units = []
    for n, silent in enumerate(metrics["silent_examples"]):
        names = {key: f"img/unit-{n}-{key}.png" for key in ("tuning", "top", "effect")}
        if pixel_weights:
            names["weights"] = f"img/unit-{n}-weights.png"
        if silent:
            names["silent"] = f"img/unit-{n}-silent.png"
        units.append(names)
    return {"overview": overview, "classes": classes, "units": units}


def sweep_tasks(sweep: dict, img: Path, width: int) -> list[tuple]:
    tasks = [
        (
            sweep_kinds,
            img / "sweep-dominant.png",
            (
                sweep,
                "standardised_dominant_digits",
                "digits (of 10)",
                "digits with a dominant unit after standardising, per seed",
            ),
            {},
        ),
        (sweep_matching, img / "sweep-matching.png", (sweep,), {}),
    ]
    if len(sweep["widths"]) > 1:  # the Robustness page shows these only when it compares widths
        tasks += [
            (sweep_accuracy, img / "sweep-accuracy.png", (sweep,), {}),
            (
                sweep_kinds,
                img / "sweep-selectivity.png",
                (sweep, "selectivity", "selectivity index", "selectivity of every unit, pooled over seeds"),
                {"pooled": True},
            ),
        ]
    entry = sweep["widths"].get(str(width))
    if entry:
        tasks += [
            (
                sweep_dedicated,
                img / "sweep-dedicated.png",
                (entry["summary"]["seeds_with_dominant_unit_per_digit"], len(entry["models"]), width),
                {},
            ),
            (sweep_information, img / "sweep-information.png", (entry["models"],), {}),
            (sweep_null, img / "sweep-null.png", (entry["models"],), {}),
        ]
    return tasks


def chart_tasks(metrics: dict, acts: dict, weights: dict, images: np.ndarray, examples: int, img: Path) -> list[tuple]:
    """(function, path, args, kwargs) for every figure; the templates name the same files."""
    hidden, labels = acts["hidden"], acts["labels"].astype(int)
    mean = np.array(metrics["mean_activation"])
    ci95, kernel = np.array(metrics["ci95_activation"]), weights["hidden_kernel"]
    tasks = [
        (
            matrix,
            img / "mean-activation.png",
            (mean, "mean activation: digit x neuron", "hidden neuron", "digit"),
            {"cbar": "mean activation"},
        ),
        (
            matrix,
            img / "dominance.png",
            (
                np.array(metrics["win_share"]),
                "share of each digit's images where the neuron is most active",
                "hidden neuron",
                "digit",
            ),
            {"fmt": "{:.2f}", "cbar": "share"},
        ),
        (
            matrix,
            img / "ablation.png",
            (
                np.array(metrics["ablation"]["zero"]["drop"]).T * 100,
                "accuracy drop (pp) when one neuron is zeroed",
                "zeroed neuron",
                "digit",
            ),
            {"cmap": DIVERGING, "centred": True, "fmt": "{:.0f}", "cbar": "drop (pp)"},
        ),
        (training_curves, img / "training.png", (metrics["history"],), {}),
        (weight_grid, img / "weights-grid.png", (kernel,), {}),
        (
            selectivity_vs_importance,
            img / "selectivity-vs-ablation.png",
            (
                metrics["selectivity"],
                metrics["ablation"]["zero"]["importance"],
                metrics["selectivity_vs_ablation"]["zero"],
            ),
            {},
        ),
    ]
    for d in range(10):
        first = np.flatnonzero(labels == d)[:examples]
        preferred = metrics["preferred_unit"][d]
        tasks.append(
            (digit_examples, img / f"digit-{d}-examples.png", (images[first], hidden[first], d, preferred), {})
        )
        tasks.append((digit_profile, img / f"digit-{d}-profile.png", (mean[d], ci95[d], d, preferred), {}))
    for n in range(hidden.shape[1]):
        top, silent = metrics["top_examples"][n], metrics["silent_examples"][n]
        tasks += [
            (neuron_weights, img / f"neuron-{n}-weights.png", (kernel[:, n], n), {}),
            (neuron_tuning, img / f"neuron-{n}-tuning.png", (hidden[:, n], labels, mean[:, n], ci95[:, n], n), {}),
            (
                image_grid,
                img / f"neuron-{n}-top.png",
                (images[top], f"the {len(top)} test images that activate neuron {n} most"),
                {},
            ),
            (
                neuron_effect,
                img / f"neuron-{n}-effect.png",
                (
                    weights["output_kernel"][n],
                    metrics["ablation"]["zero"]["drop"][n],
                    metrics["ablation"]["mean"]["drop"][n],
                    n,
                ),
                {},
            ),
        ]
        if silent:
            digit = metrics["preferred_digit"][n]
            tasks.append(
                (
                    image_grid,
                    img / f"neuron-{n}-silent.png",
                    (images[silent], f"images of digit {digit} on which neuron {n} is silent"),
                    {},
                )
            )
    return tasks


def _quiet_worker() -> None:
    """Workers leave Ctrl-C to the parent (which stops the pool) and die quietly when it terminates them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _run_task(task: tuple) -> str:
    function, path, args, kwargs = task
    function(path, *args, **kwargs)
    return str(path)


def render_all(
    metrics: dict, acts: dict, weights: dict, images: np.ndarray, examples: int, img: Path, sweep: dict | None = None
) -> int:
    """Render every figure into `img`, in parallel over the machine's cores (fork: cheap start-up)."""
    tasks = chart_tasks(metrics, acts, weights, images, examples, Path(img))
    if sweep:
        tasks += sweep_tasks(sweep, Path(img), metrics["config"]["hidden_units"])
    workers = min(len(tasks), os.cpu_count() or 1)
    if workers <= 1:
        return len([_run_task(t) for t in tasks])
    # fork is cheap, but JAX's threads make a fork of a process running on it unsafe (it warns of deadlock).
    # Keras imports jax whenever it is installed, whatever the backend: ask which backend runs, not what loaded.
    start_method = "spawn" if os.environ.get("KERAS_BACKEND") == "jax" else "fork"
    with multiprocessing.get_context(start_method).Pool(workers, initializer=_quiet_worker) as pool:
        return len(pool.map(_run_task, tasks, chunksize=1))

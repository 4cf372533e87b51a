"""Every figure of the report, one module per family: overview.py (the whole layer), classes.py (one
class), units.py (one unit), sweep.py (the seed sweep); style.py holds what they share.

This module is the plan: `chart_names` names every figure's file once (the templates receive the names),
`chart_tasks` pairs each name with the function and data that draw it, and `render_all` draws them in
parallel, one figure per task, on the machine's cores.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from nu_keras import workers
from nu_keras.charts import classes, overview, sweep, units
from nu_keras.charts.style import DIVERGING, class_axis, class_labels, class_word, unit_word

Task = tuple[Callable, Path, tuple, dict]  # (function, file, args, kwargs): function(file, *args, **kwargs)


def chart_names(metrics: dict, sweep_result: dict | None) -> dict:
    """Every figure's file, relative to the pages folder, keyed by what it shows: the one place chart file
    names are defined. The templates receive this (a figure a run does not draw has no key), and
    `chart_tasks` draws exactly these files.

    {"overview": {key: path}, "classes": [{key: path}] per class, "units": [{key: path}] per unit}
    """
    pixel_weights = metrics["subject"]["pixel_weights"]
    names = {
        "mean_activation": "img/mean-activation.png",
        "dominance": "img/dominance.png",
        "ablation": "img/ablation.png",
        "selectivity_vs_ablation": "img/selectivity-vs-ablation.png",
    }
    if metrics.get("history"):
        names["training"] = "img/training.png"
    if metrics.get("dynamics"):
        names["dynamics"] = "img/dynamics.png"
    if pixel_weights:
        names["weights_grid"] = "img/weights-grid.png"
    names |= {f"sweep_{key}": f"img/sweep-{key}.png" for key in sweep_keys(metrics, sweep_result)}
    per_class = [
        {"examples": f"img/class-{d}-examples.png", "profile": f"img/class-{d}-profile.png"}
        for d in range(len(metrics["mean_activation"]))
    ]
    per_unit = []
    for n, silent in enumerate(metrics["silent_examples"]):
        unit = {key: f"img/unit-{n}-{key}.png" for key in ("tuning", "top", "effect")}
        if pixel_weights:
            unit["weights"] = f"img/unit-{n}-weights.png"
        if silent:
            unit["silent"] = f"img/unit-{n}-silent.png"
        per_unit.append(unit)
    return {"overview": names, "classes": per_class, "units": per_unit}


def sweep_keys(metrics: dict, sweep_result: dict | None) -> list[str]:
    """The sweep figures a run draws: the width comparison only when it compares widths, the per-seed
    figures only when the report's own width was swept."""
    if not sweep_result:
        return []
    keys = ["dominant", "matching"]
    keys += ["accuracy", "selectivity"] if len(sweep_result["widths"]) > 1 else []
    entry = sweep_result["widths"].get(str(metrics["config"]["hidden_units"]))
    keys += ["dedicated", "information", "null"] if entry else []
    keys += ["thresholds"] if entry and entry["summary"].get("threshold_curve") else []
    return keys


def chart_tasks(
    metrics: dict, acts: dict, weights: dict, images: np.ndarray, examples: int, pages: Path, sweep_result: dict | None
) -> list[Task]:
    """(function, path, args, kwargs) for every figure `chart_names` names, in the pages folder `pages`."""
    names = chart_names(metrics, sweep_result)
    tasks = overview_tasks(metrics, weights, names["overview"], pages)
    tasks += class_tasks(metrics, acts, images, examples, names["classes"], pages)
    tasks += unit_tasks(metrics, acts, weights, images, names["units"], pages)
    tasks += sweep_tasks(metrics, sweep_result, names["overview"], pages)
    return tasks


def overview_tasks(metrics: dict, weights: dict, names: dict, pages: Path) -> list[Task]:
    unit, axis, rows = unit_word(metrics), class_axis(metrics), class_labels(metrics)
    signed = metrics["subject"].get("signed", False)
    x_values = metrics["eta_squared"] if signed else metrics["selectivity"]
    x_label = "η²: share of a unit's variance explained by the class" if signed else "class selectivity index"
    tasks = [
        (
            overview.matrix,
            names["mean_activation"],
            (np.array(metrics["mean_activation"]), f"mean activation: {axis} x {unit}", unit, axis),
            {"cbar": "mean activation", "rows": rows, "centred": signed, "cmap": DIVERGING if signed else "cividis"},
        ),
        (
            overview.matrix,
            names["dominance"],
            (
                np.array(metrics["win_share"]),
                f"share of each {axis}'s images where the {unit} is most active",
                unit,
                axis,
            ),
            {"fmt": "{:.2f}", "cbar": "share", "rows": rows},
        ),
        (
            overview.matrix,
            names["ablation"],
            (
                np.array(metrics["ablation"]["zero"]["drop"]).T * 100,
                f"accuracy drop (pp) when one {unit} is zeroed",
                f"zeroed {unit}",
                axis,
            ),
            {"cmap": DIVERGING, "centred": True, "fmt": "{:.0f}", "cbar": "drop (pp)", "rows": rows},
        ),
        (
            overview.selectivity_vs_importance,
            names["selectivity_vs_ablation"],
            (x_values, metrics["ablation"]["zero"]["importance"], metrics["selectivity_vs_ablation"]["zero"]),
            {"xlabel": x_label},
        ),
    ]
    if "training" in names:
        tasks.append((overview.training_curves, names["training"], (metrics["history"],), {}))
    if "dynamics" in names:
        size = (len(metrics["digit_counts"]), len(metrics["silent_examples"]))  # (classes, units)
        tasks.append((overview.dynamics, names["dynamics"], (metrics["dynamics"], *size), {}))
    if "weights_grid" in names:
        image_shape = tuple(metrics["dataset"]["image_shape"])
        tasks.append((overview.weight_grid, names["weights_grid"], (weights["hidden_kernel"], image_shape, unit), {}))
    return [(function, pages / name, args, kwargs) for function, name, args, kwargs in tasks]


def class_tasks(metrics: dict, acts: dict, images: np.ndarray, examples: int, names: list, pages: Path) -> list[Task]:
    hidden, labels = acts["hidden"], acts["labels"].astype(int)
    mean, ci95 = np.array(metrics["mean_activation"]), np.array(metrics["ci95_activation"])
    unit, signed = unit_word(metrics), metrics["subject"].get("signed", False)
    tasks = []
    for d, files in enumerate(names):
        first = classes.examples_of(labels, d, examples)
        preferred, word = metrics["preferred_unit"][d], class_word(metrics, d)
        tasks += [
            (
                classes.class_examples,
                pages / files["examples"],
                (images[first], hidden[first], word, preferred, unit),
                {},
            ),
            (classes.class_profile, pages / files["profile"], (mean[d], ci95[d], word, preferred, unit, signed), {}),
        ]
    return tasks


def unit_tasks(metrics: dict, acts: dict, weights: dict, images: np.ndarray, names: list, pages: Path) -> list[Task]:
    hidden, labels = acts["hidden"], acts["labels"].astype(int)
    mean, ci95 = np.array(metrics["mean_activation"]), np.array(metrics["ci95_activation"])
    word, axis, labels_of = unit_word(metrics), class_axis(metrics), class_labels(metrics)
    signed, outgoing = metrics["subject"].get("signed", False), metrics["output_weights"]
    zero, mean_ablation = metrics["ablation"]["zero"], metrics["ablation"]["mean"]
    tasks = []
    for n, files in enumerate(names):
        title = f"{word} {n}"
        top = metrics["top_examples"][n]
        tasks += [
            (
                units.unit_tuning,
                files["tuning"],
                (hidden[:, n], labels, mean[:, n], ci95[:, n], title, labels_of, axis, signed),
            ),
            (units.image_grid, files["top"], (images[top], f"the {len(top)} test images that activate {title} most")),
            (
                units.unit_effect,
                files["effect"],
                (
                    None if outgoing is None else outgoing[n],
                    zero["drop"][n],
                    mean_ablation["drop"][n],
                    title,
                    labels_of,
                    axis,
                ),
            ),
        ]
        if "weights" in files:
            shape = tuple(metrics["dataset"]["image_shape"])
            tasks.append((units.unit_weights, files["weights"], (weights["hidden_kernel"][:, n], shape, title)))
        if "silent" in files:
            preferred = class_word(metrics, metrics["preferred_digit"][n])
            silent = images[metrics["silent_examples"][n]]
            tasks.append(
                (units.image_grid, files["silent"], (silent, f"images of {preferred} on which {title} is silent"))
            )
    return [(function, pages / name, args, {}) for function, name, args in tasks]


def sweep_tasks(metrics: dict, sweep_result: dict | None, names: dict, pages: Path) -> list[Task]:
    if not sweep_result:
        return []
    count, axis = len(metrics["digit_counts"]), class_axis(metrics)
    width = str(metrics["config"]["hidden_units"])
    dominant = (f"{axis}s (of {count})", f"{axis}s with a dominant unit after standardising, per seed")
    selectivity = ("selectivity index", "selectivity of every unit, pooled over seeds")
    entry = sweep_result["widths"].get(width)
    drawn = {
        "dominant": (sweep.sweep_kinds, (sweep_result, "standardised_dominant_digits", *dominant), {}),
        "matching": (sweep.sweep_matching, (sweep_result,), {}),
        "accuracy": (sweep.sweep_accuracy, (sweep_result,), {}),
        "selectivity": (sweep.sweep_kinds, (sweep_result, "selectivity", *selectivity), {"pooled": True}),
    }
    if entry:
        seeds, per_class = len(entry["models"]), entry["summary"]["seeds_with_dominant_unit_per_digit"]
        drawn |= {
            "dedicated": (sweep.sweep_dedicated, (per_class, seeds, int(width), class_labels(metrics), axis), {}),
            "information": (sweep.sweep_information, (entry["models"], axis), {}),
            "null": (sweep.sweep_null, (entry["models"],), {}),
        }
        if entry["summary"].get("threshold_curve"):
            drawn["thresholds"] = (sweep.sweep_thresholds, (entry["summary"]["threshold_curve"], count, axis), {})
    return [
        (function, pages / names[f"sweep_{key}"], args, kwargs)
        for key, (function, args, kwargs) in drawn.items()
        if f"sweep_{key}" in names
    ]


def _run_task(task: Task) -> str:
    function, path, args, kwargs = task
    function(path, *args, **kwargs)
    return str(path)


def render_all(
    metrics: dict,
    acts: dict,
    weights: dict,
    images: np.ndarray,
    examples: int,
    pages: Path,
    sweep_result: dict | None = None,
) -> int:
    """Draw every figure into the pages folder `pages` (files under its img/), in parallel over the
    machine's cores (fork: cheap start-up); returns how many were drawn."""
    tasks = chart_tasks(metrics, acts, weights, images, examples, Path(pages), sweep_result)
    early = workers.started_pool()  # forked before Keras was imported (`workers.early_pool`)
    if early is not None:
        return len(early.map(_run_task, tasks, chunksize=1))
    count = min(len(tasks), os.cpu_count() or 1)
    if count <= 1:
        return len([_run_task(t) for t in tasks])
    # fork is cheap, but JAX's threads make a fork of a process running on it unsafe (it warns of deadlock).
    # Keras imports jax whenever it is installed, whatever the backend: ask which backend runs, and whether
    # it was loaded.
    running_jax = os.environ.get("KERAS_BACKEND") == "jax" and "jax" in sys.modules
    with workers.ChartPool(count, "spawn" if running_jax else "fork") as pool:
        return len(pool.map(_run_task, tasks, chunksize=1))

"""Every figure of the report, one module per family: overview.py (the whole layer), classes.py (one
class), units.py (one unit), sweep.py (the seed sweep); style.py holds what they share.

This module is the plan: `chart_names` names every figure's file once (the templates receive the names),
`chart_tasks` pairs each name with the function and data that draw it, and `render_all` draws them in
parallel, one figure per task, on the chart workers it is handed. Every figure reads the measurement
record (nu_keras.record) and the seed sweep only.
"""

from __future__ import annotations

import hashlib
import multiprocessing.pool
import pickle
from collections.abc import Callable
from pathlib import Path

import matplotlib
import numpy as np

from nu_keras import progress
from nu_keras.charts import classes, overview, sweep, units
from nu_keras.charts.style import DIVERGING, STYLE, class_axis, class_labels, class_word, unit_word
from nu_keras.config import FIGURE_FORMATS
from nu_keras.errors import NuKerasError
from nu_keras.record import Measurements

Task = tuple[Callable, Path, tuple, dict]  # (function, file, args, kwargs): function(file, *args, **kwargs)


def chart_names(record: Measurements, sweep_result: dict | None, figure_format: str = "png") -> dict:
    """Every figure's file, relative to the pages folder, keyed by what it shows: the one place chart file
    names are defined. The templates receive this (a figure a run does not draw has no key), and
    `chart_tasks` draws exactly these files, as `figure_format` ("png" or "svg") says.

    {"overview": {key: path}, "classes": [{key: path}] per class, "units": [{key: path}] per unit}
    """
    if figure_format not in FIGURE_FORMATS:
        raise NuKerasError(f"--figure-format must be one of {', '.join(FIGURE_FORMATS)}, got {figure_format!r}")
    ext = figure_format
    pixel_weights = record.per_unit.input_weights is not None
    names = {
        "mean_activation": f"img/mean-activation.{ext}",
        "dominance": f"img/dominance.{ext}",
        "ablation": f"img/ablation.{ext}",
        "selectivity_vs_ablation": f"img/selectivity-vs-ablation.{ext}",
    }
    if record.provenance.history:
        names["training"] = f"img/training.{ext}"
    if record.dynamics:
        names["dynamics"] = f"img/dynamics.{ext}"
    if pixel_weights:
        names["weights_grid"] = f"img/weights-grid.{ext}"
    names |= {f"sweep_{key}": f"img/sweep-{key}.{ext}" for key in sweep_keys(record, sweep_result)}
    per_class = [
        {"examples": f"img/class-{c}-examples.{ext}", "profile": f"img/class-{c}-profile.{ext}"}
        for c in range(len(record.classes))
    ]
    per_unit = []
    for u, silent in enumerate(record.per_unit.silent_examples):
        keys = ("tuning", "top", "effect", *channel_keys(record))
        unit = {key: f"img/unit-{u}-{key.replace('_', '-')}.{ext}" for key in keys}
        if pixel_weights:
            unit["weights"] = f"img/unit-{u}-weights.{ext}"
        if silent:
            unit["silent"] = f"img/unit-{u}-silent.{ext}"
        per_unit.append(unit)
    return {"overview": names, "classes": per_class, "units": per_unit}


def channel_keys(record: Measurements) -> tuple[str, ...]:
    """A unit page's figures beyond every run's: a convolution's maps over its top images ("maps"), the crops
    of its receptive field ("crops"), its mean map per class ("class_maps"), a first layer's filter
    ("filter"), and the feature visualisation ("featvis") where the weights figure does not already hold it."""
    per_unit, keys = record.per_unit, []
    if per_unit.top_maps is not None:
        keys += ["maps"] + (["crops"] if record.layer.receptive_field else [])
    if record.class_unit.mean_maps is not None:
        keys.append("class_maps")
    if per_unit.filters is not None:
        keys.append("filter")
    if per_unit.feature_visualisation is not None and per_unit.input_weights is None:
        keys.append("featvis")
    return tuple(keys)


def sweep_keys(record: Measurements, sweep_result: dict | None) -> list[str]:
    """The sweep figures a run draws: the width comparison only when it compares widths, the per-seed
    figures only when the report's own width was swept."""
    if not sweep_result:
        return []
    keys = ["dominant", "matching"]
    keys += ["accuracy", "selectivity"] if len(sweep_result["widths"]) > 1 else []
    entry = sweep_result["widths"].get(str(record.provenance.config["hidden_units"]))
    keys += ["dedicated", "information", "null"] if entry else []
    keys += ["thresholds"] if entry and entry["summary"].get("threshold_curve") else []
    return keys


def chart_tasks(
    record: Measurements, examples: int, pages: Path, sweep_result: dict | None, figure_format: str = "png"
) -> list[Task]:
    """(function, path, args, kwargs) for every figure `chart_names` names, in the pages folder `pages`."""
    names = chart_names(record, sweep_result, figure_format)
    tasks = overview_tasks(record, names["overview"], pages)
    tasks += class_tasks(record, examples, names["classes"], pages)
    tasks += unit_tasks(record, names["units"], pages)
    tasks += sweep_tasks(record, sweep_result, names["overview"], pages)
    return tasks


def overview_tasks(record: Measurements, names: dict, pages: Path) -> list[Task]:
    unit, axis, rows = unit_word(record), class_axis(record), class_labels(record)
    signed, zero = record.layer.signed, record.ablation["zero"]
    x_values = record.per_unit.eta_squared if signed else record.per_unit.selectivity
    x_label = "η²: share of a unit's variance explained by the class" if signed else "class selectivity index"
    tasks = [
        (
            overview.matrix,
            names["mean_activation"],
            (record.class_unit.mean, f"mean activation: {axis} x {unit}", unit, axis),
            {"cbar": "mean activation", "rows": rows, "centred": signed, "cmap": DIVERGING if signed else "cividis"},
        ),
        (
            overview.matrix,
            names["dominance"],
            (
                record.class_unit.dominance_share,
                f"share of each {axis}'s images where the {unit} is most active",
                unit,
                axis,
            ),
            {"fmt": "{:.2f}", "cbar": "share", "rows": rows},
        ),
        (
            overview.matrix,
            names["ablation"],
            (np.array(zero["drop"]).T * 100, f"accuracy drop (pp) when one {unit} is zeroed", f"zeroed {unit}", axis),
            {"cmap": DIVERGING, "centred": True, "fmt": "{:.0f}", "cbar": "drop (pp)", "rows": rows},
        ),
        (
            overview.selectivity_vs_importance,
            names["selectivity_vs_ablation"],
            (x_values, zero["importance"], record.correlations["selectivity_vs_ablation"]["zero"]),
            {"xlabel": x_label},
        ),
    ]
    if "training" in names:
        tasks.append((overview.training_curves, names["training"], (record.provenance.history,), {}))
    if "dynamics" in names:
        size = (len(record.classes), len(record.units))
        tasks.append((overview.dynamics, names["dynamics"], (record.dynamics, *size), {}))
    if "weights_grid" in names:
        image_shape = tuple(record.provenance.dataset["image_shape"])
        tasks.append(
            (overview.weight_grid, names["weights_grid"], (record.per_unit.input_weights, image_shape, unit), {})
        )
    return [(function, pages / name, args, kwargs) for function, name, args, kwargs in tasks]


def class_tasks(record: Measurements, examples: int, names: list, pages: Path) -> list[Task]:
    images, mean, ci95 = record.images, record.class_unit.mean, record.class_unit.ci95
    unit, signed = unit_word(record), record.layer.signed
    tasks = []
    for c, files in enumerate(names):
        first = images.rows(classes.examples_of(record.per_class.examples, c, examples, images.index))
        preferred, word = int(record.per_class.top_unit[c]), class_word(record, c)
        tasks += [
            (
                classes.class_examples,
                pages / files["examples"],
                (images.pixels[first], images.units[first], word, preferred, unit),
                {},
            ),
            (classes.class_profile, pages / files["profile"], (mean[c], ci95[c], word, preferred, unit, signed), {}),
        ]
    return tasks


def unit_tasks(record: Measurements, names: list, pages: Path) -> list[Task]:
    images, mean, ci95 = record.images, record.class_unit.mean, record.class_unit.ci95
    word, axis, labels_of = unit_word(record), class_axis(record), class_labels(record)
    signed, outgoing, per_unit = record.layer.signed, record.per_unit.output_weights, record.per_unit
    zero, mean_ablation = record.ablation["zero"], record.ablation["mean"]
    tasks = []
    for u, files in enumerate(names):
        title = f"{word} {u}"
        top = images.pixels[images.rows(per_unit.top_examples[u])]
        tasks += [
            (
                units.unit_tuning,
                files["tuning"],
                (record.class_unit.boxplot[:, u], mean[:, u], ci95[:, u], title, labels_of, axis, signed),
            ),
            (units.image_grid, files["top"], (top, f"the {len(top)} test images that activate {title} most")),
            (
                units.unit_effect,
                files["effect"],
                (
                    None if outgoing is None else outgoing[u],
                    zero["drop"][u],
                    mean_ablation["drop"][u],
                    title,
                    labels_of,
                    axis,
                ),
            ),
        ]
        if "weights" in files:
            shape = tuple(record.provenance.dataset["image_shape"])
            picture = None if per_unit.feature_visualisation is None else per_unit.feature_visualisation[u]
            tasks.append((units.unit_weights, files["weights"], (per_unit.input_weights[:, u], shape, title, picture)))
        tasks += channel_tasks(record, u, files, top, title)
        if "silent" in files:
            preferred = class_word(record, int(per_unit.preferred_class[u]))
            silent = images.pixels[images.rows(per_unit.silent_examples[u])]
            tasks.append(
                (units.image_grid, files["silent"], (silent, f"images of {preferred} on which {title} is silent"))
            )
    return [(function, pages / name, args, {}) for function, name, args in tasks]


def channel_tasks(record: Measurements, u: int, files: dict, top: np.ndarray, title: str) -> list[tuple]:
    """The figures `channel_keys` names for unit `u` (`top`: its top images' pixels): the maps and the mean
    maps per class share one colour scale, 0 to the largest value of the channel's top maps."""
    per_unit, field, mean_maps = record.per_unit, record.layer.receptive_field, record.class_unit.mean_maps
    maps = None if per_unit.top_maps is None else per_unit.top_maps[u]
    scaled = maps if maps is not None else None if mean_maps is None else mean_maps[:, u]
    signed = record.layer.signed
    limit = 0.0 if scaled is None else float(np.abs(scaled).max() if signed else max(scaled.max(), 0.0))
    tasks = []
    if "maps" in files:
        where = f"where {title} fires on them"
        tasks.append((units.map_overlays, files["maps"], (top, maps, field, limit, where, 8, signed)))
    if "crops" in files:
        crops_title = f"its receptive field ({field['size']} px) around each map's maximum"
        tasks.append((units.receptive_crops, files["crops"], (top, maps, field, crops_title)))
    if "class_maps" in files:
        class_title = f"{title}: mean map over each {class_axis(record)}'s images"
        names = class_labels(record)
        tasks.append((units.class_maps, files["class_maps"], (mean_maps[:, u], names, limit, class_title, 10, signed)))
    if "filter" in files:
        tasks.append((units.conv_filter, files["filter"], (per_unit.filters[u], f"{title}: its filter")))
    if "featvis" in files:
        picture = per_unit.feature_visualisation[u]
        tasks.append((units.feature_picture, files["featvis"], (picture, f"{title}: feature visualisation")))
    return tasks


def sweep_tasks(record: Measurements, sweep_result: dict | None, names: dict, pages: Path) -> list[Task]:
    if not sweep_result:
        return []
    count, axis = len(record.classes), class_axis(record)
    width = str(record.provenance.config["hidden_units"])
    dominant = (f"{axis}s (of {count})", f"{axis}s with a dominant unit after standardising, per seed")
    selectivity = ("selectivity index", "selectivity of every unit, pooled over seeds")
    entry = sweep_result["widths"].get(width)
    drawn = {
        "dominant": (sweep.sweep_kinds, (sweep_result, "rescaled_dominant_classes", *dominant), {}),
        "matching": (sweep.sweep_matching, (sweep_result,), {}),
        "accuracy": (sweep.sweep_accuracy, (sweep_result,), {}),
        "selectivity": (sweep.sweep_kinds, (sweep_result, "selectivity", *selectivity), {"pooled": True}),
    }
    if entry:
        seeds, per_class = len(entry["models"]), entry["summary"]["seeds_with_dominant_unit_per_class"]
        drawn |= {
            "dedicated": (sweep.sweep_dedicated, (per_class, seeds, int(width), class_labels(record), axis), {}),
            "information": (sweep.sweep_information, (entry["models"], axis), {}),
            "null": (sweep.sweep_null, (entry["models"], record.method.null_whiskers), {}),
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
    with matplotlib.rc_context(STYLE):  # whatever the process's own settings (a notebook's, after nu_keras.api)
        function(path, *args, **kwargs)
    return str(path)


def render_all(
    record: Measurements,
    examples: int,
    pages: Path,
    sweep_result: dict | None = None,
    pool: multiprocessing.pool.Pool | None = None,
    figure_format: str = "png",
) -> int:
    """Draw every figure into the pages folder `pages` (files under its img/), one figure per task on the
    chart workers `pool` (nu_keras.workers), or one after the other in this process without one; returns
    how many were drawn."""
    return draw_tasks(chart_tasks(record, examples, Path(pages), sweep_result, figure_format), pool)


def draw_tasks(tasks: list[Task], pool: multiprocessing.pool.Pool | None = None) -> int:
    """Draw the given figures, in parallel on `pool` when there is one; returns how many were drawn."""
    drawn = map(_run_task, tasks) if pool is None else pool.imap_unordered(_run_task, tasks, chunksize=1)
    with progress.bar("render", len(tasks), "chart") as advance:
        for _ in drawn:
            advance(1)
    return len(tasks)


def task_key(task: Task, code: str) -> str:
    """What a figure's file depends on: the function that draws it, everything it is given, and the drawing
    code's hash (`code`). The same key means the same file, so a figure whose data did not change is copied
    from the previous run instead of drawn (render.draw_or_reuse_charts)."""
    function, _, args, kwargs = task
    given = pickle.dumps((f"{function.__module__}.{function.__qualname__}", args, kwargs), protocol=5)
    return hashlib.sha256(code.encode() + given).hexdigest()

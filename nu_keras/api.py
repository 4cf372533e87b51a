"""The public Python API: arrays in, arrays and a typed record out, and no folder until you publish.

The shape of keract's `get_activations`, captum's `FeatureAblation` and TransformerLens' `run_with_cache`:

    units = read_layer(model, "conv", images)          # (N, U): what the report reads of each unit
    predicted = ablate(model, "conv", images)          # (U, N): the model's classes with each unit silenced
    record = analyse(model, "conv", images, labels)    # Measurements: every number of the report
    publish(record, "site")                            # the report's pages, figures and MkDocs site
    figure(record, "dominance")                        # any figure of the site, as a matplotlib Figure
    record = load_run("artifacts")                     # the record of a finished `nu-keras report`

The same code runs as the command line's stages (`activations.collect`, `analysis.measure`, the render and
build stages), so a record made here publishes exactly as one made by `nu-keras report`.

Bad input -- images of the wrong shape or with NaN, a layer the model does not have, labels out of range, a
model that is not a classifier -- is checked before Keras runs and raised as `NuKerasError` with a one-line
message, never as a traceback from inside Keras.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np

from nu_keras import activations, artifacts, subject
from nu_keras.config import PIXELS
from nu_keras.errors import NuKerasError
from nu_keras.names import shown
from nu_keras.record import Measurements

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from nu_keras.data import Dataset

EXAMPLES = 5  # images per class page, as `nu-keras report --examples` defaults
FILLS = ("zero", "mean")  # what a silenced unit is replaced by: zero, or its mean over the images
RECORD_FILE = "metrics.json"  # the record's JSON in a run's artifacts, and in a site `publish` made


# ---------------------------------------------------------------------------------------------- reading


def read_layer(
    model: keras.Model | str | Path,
    layer: str,
    images: np.ndarray,
    *,
    pixels: str = "unit",
    batch_size: int | None = None,
) -> np.ndarray:
    """(N, U) float32: each image's value of each unit of `layer`, as the report reads them.

    A Dense layer's units are its outputs; a convolutional layer's units are its channels, each read as its
    spatial mean. `images` are (N, H, W[, C]) as stored (uint8, or float in [0, 1]); `pixels="unit"` divides
    uint8 pixels by 255, `"raw"` gives them to the model unchanged. `model` is a `keras.Model` or the path of
    a `.keras` file (loaded with safe_mode). Read in batches of `batch_size` images, so memory stays bounded
    by one batch of the layer's full output.
    """
    model = checked_model(model)
    layer = checked_layer(model, layer)
    checked_batch_size(batch_size)
    x = model_inputs(model, images, pixels)
    head, _ = subject.split(model, layer)
    with keras_runs(model):
        read = activations.read_units(head, x, batch_size or default_batch(head))
    subject.require_finite(read["units"], f"the outputs of its layer {layer!r}")
    return read["units"].astype(np.float32)


def ablate(
    model: keras.Model | str | Path,
    layer: str,
    images: np.ndarray,
    *,
    units: Sequence[int] | None = None,
    fill: str = "zero",
    pixels: str = "unit",
    batch_size: int | None = None,
) -> np.ndarray:
    """(len(units), N) int: the model's predicted class for every image with one unit of `layer` silenced.

    Row k silences `units[k]` (every unit, in order, when `units` is None): its output is replaced by zero
    (`fill="zero"`) or by its mean over `images` (`fill="mean"`; per position, for a channel), and the rest
    of the model runs on the result, as the report's collect stage computes it. Compare with the intact
    predictions (`predict_classes`) to see which images a unit's silence changes.
    """
    model = checked_model(model)
    layer = checked_layer(model, layer)
    if fill not in FILLS:
        raise NuKerasError(f"fill must be one of {', '.join(FILLS)}, got {shown(fill)!r}")
    checked_batch_size(batch_size)
    x = model_inputs(model, images, pixels)
    head, tail = subject.split(model, layer)
    chosen = checked_units(units, int(head.outputs[0].shape[-1]))
    batch = batch_size or default_batch(head)
    with keras_runs(model):
        if fill == "mean":
            value = activations.read_units(head, x, batch)["mean_output"]
        else:
            value = np.zeros(tuple(head.outputs[0].shape[1:]), dtype=np.float32)
        outputs = activations.head_outputs(head, x, batch)
        table = activations.tail_ablation(model, layer, tail, outputs, {fill: value})[fill]
    return table[chosen].astype(np.int64)


def predict_classes(model: keras.Model | str | Path, images: np.ndarray, *, pixels: str = "unit") -> np.ndarray:
    """(N,) int: the intact model's predicted class for every image (what `ablate`'s rows are compared to)."""
    model = checked_model(model)
    x = model_inputs(model, images, pixels)
    with keras_runs(model):
        probabilities = model.predict(x, batch_size=subject.BATCH, verbose=0)
    subject.require_finite(probabilities, "its class probabilities")
    return np.asarray(probabilities).argmax(axis=1).astype(np.int64)


def default_batch(head: keras.Model) -> int:
    """Images per forward pass: fewer for a convolutional layer, whose output is (batch, H, W, C)."""
    return subject.BATCH if len(head.outputs[0].shape) == 2 else activations.CONV_BATCH


# --------------------------------------------------------------------------------------------- analysing


def analyse(
    model: keras.Model | str | Path,
    layer: str,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    class_names: Sequence[str] | None = None,
    threshold: float = 0.5,
    seed: int = 0,
    pixels: str = "unit",
) -> Measurements:
    """Every number the report prints about `layer`, measured on `images` and their `labels` (class indices
    0..C-1 of the model's C outputs): the collect stage (`activations.collect`) then `analysis.measure`.

    `class_names` name the C classes (default "0".."C-1"); a class has a dominant unit when one unit is the
    largest on more than `threshold` of its images; `seed` seeds the permutation and rotation nulls. The
    result publishes with `publish` and draws with `figure`, as a `nu-keras report` run does.
    """
    from nu_keras import analysis
    from nu_keras.config import RunConfig
    from nu_keras.model import versions
    from nu_keras.record import Method, Provenance

    model = checked_model(model)
    layer = checked_layer(model, layer)
    if pixels not in PIXELS:
        raise NuKerasError(f"pixels must be one of {', '.join(PIXELS)}, got {shown(pixels)!r}")
    images = checked_images(model, images)
    classes = class_count(model)
    labels = checked_labels(labels, len(images), classes)
    names = checked_class_names(class_names, classes)
    if not isinstance(threshold, int | float | np.number) or not 0 < threshold < 1:
        raise NuKerasError(f"threshold must be a number between 0 and 1, got {threshold!r}")
    if not isinstance(seed, int | np.integer) or not 0 <= seed < 2**32:
        raise NuKerasError(f"seed must be a whole number from 0 to 2**32 - 1, got {seed!r}")
    missing = np.flatnonzero(np.bincount(labels, minlength=classes) == 0)
    if missing.size:
        raise NuKerasError(
            f"no image of class {shown(names[missing[0]])!r} ({missing.size} of {classes} classes have none); "
            "analyse needs images of every class the model outputs"
        )
    with keras_runs(model):
        acts = activations.collect(model, layer, images, labels, pixels)
        sample = subject.first_inputs(model, images, pixels)
        described = subject.describe(model, layer, tuple(images.shape[1:]), False, None, sample)
        weights = subject.weights(model, layer, described)
    note = subject.input_note(tuple(images.shape[1:]), subject.input_shape(model))
    config = RunConfig(
        dominance_threshold=threshold, seed=seed, model=Path(shown(model.name)), layer=layer, pixels=pixels
    )
    network, reason = analysis.explore_network(described, weights, images, classes)
    if reason:  # the pages say why there is no Explore page, as the analyze stage has them say it
        described = described | {"explorable": False, "explore_reason": reason}
    provenance = Provenance.bare(
        config=config.measured_fields(),
        versions=versions(),
        data_source="arrays given to nu_keras.analyse",
        dataset=given_images(images, names, pixels, note),
        subject=described,
        parameters=int(model.count_params()),
        layers=subject.layer_table(model),
    )
    return analysis.measure(acts, weights, images, names, Method.from_config(config), provenance, network=network)


def checked_class_names(names: Sequence[str] | None, classes: int) -> tuple[str, ...]:
    if names is None:
        return tuple(str(c) for c in range(classes))
    names = tuple(str(name) for name in names)
    if len(names) != classes:
        raise NuKerasError(f"class_names must name the model's {classes} classes, got {len(names)} names")
    return names


def given_images(images: np.ndarray, names: tuple[str, ...], pixels: str, note: str | None) -> dict:
    """What the pages say about data given as arrays (as `data.Dataset.describe` says it about a file)."""
    from nu_keras.data import pixel_note

    return {
        "name": "user",
        "title": "the images given to nu_keras.analyse",
        "class_names": list(names),
        "image_shape": list(images.shape[1:]),
        "n_train": None,
        "pixels": pixels,
        "pixel_note": pixel_note(images.dtype, pixels),
        "input_note": note,
    }


# ------------------------------------------------------------------------------------------ publishing


def publish(
    record: Measurements,
    site_dir: str | Path,
    *,
    pages_dir: str | Path | None = None,
    templates: str | Path | None = None,
    examples: int = EXAMPLES,
) -> Path:
    """The report of `record` as a static MkDocs site in `site_dir`; returns the site's index.html.

    Made from the record alone (`render.render_record`, then `site.build`), as `nu-keras render` and
    `nu-keras build` make it. The Markdown pages and figures go to `pages_dir` when given (kept, to serve
    with MkDocs or edit), else to a temporary folder. Both folders follow the command line's rules
    (folders.py): new, empty, or one nu_keras filled before; a file nu_keras did not write is never deleted.
    `templates`: a folder of page templates in place of the report's own; `examples`: images per class page.
    """
    from nu_keras import folders, site
    from nu_keras.config import RunConfig

    if not isinstance(record, Measurements):
        raise NuKerasError(
            f"record must be nu_keras.Measurements (from analyse or load_run), got {type(record).__name__}"
        )
    most = record.per_class.examples.shape[1]
    if not 1 <= examples <= most:
        raise NuKerasError(
            f"examples must be between 1 and {most} (the images per class the record keeps), got {examples}"
        )
    if templates is not None and not Path(templates).is_dir():
        raise NuKerasError(f"templates {shown(templates)} is not a folder")
    named = {"site_dir": Path(site_dir)} | ({} if pages_dir is None else {"pages_dir": Path(pages_dir)})
    kinds = {"site_dir": "site", "pages_dir": "pages"}
    folders.check_output_folders(named, protected_folders(), {flag: kinds[flag] for flag in named})
    with folders.locked(list(named.values())), tempfile.TemporaryDirectory(prefix="nu-keras-pages-") as scratch:
        for flag, folder in named.items():
            folders.clean_leftovers(folder, kinds[flag])
        pages = Path(scratch) / "pages" if pages_dir is None else Path(pages_dir)
        with drawing_style():
            render_pages(record, pages, examples, None if templates is None else Path(templates))
        built = site.build(RunConfig(pages_dir=pages, site_dir=Path(site_dir)))
    return Path(built) / "index.html"


def render_pages(record: Measurements, target: Path, examples: int, templates: Path | None) -> None:
    """The record's pages and figures, rendered in a staging folder beside `target` that replaces it only once
    complete (as the render stage does): a failure leaves the old pages whole."""
    from nu_keras import folders, render

    staging = folders.staging_dir(target)
    try:
        render.render_record(record, staging, examples=examples, templates=templates)
        artifacts.write_json(staging / RECORD_FILE, record.to_json())  # the site carries its record: load_run
        folders.replace_folder(staging, target, "pages")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def protected_folders() -> dict[str, Path]:
    """Folders `publish` never fills, as the command line refuses them (`pipeline.check_folders`)."""
    from nu_keras.config import PROJECT_ROOT

    places = {"the working folder": Path.cwd(), "the home folder": Path.home(), "the file-system root": Path("/")}
    return places | ({} if PROJECT_ROOT is None else {"the project root": PROJECT_ROOT})


def figure(
    record: Measurements,
    name: str,
    *,
    unit: int | None = None,
    cls: int | None = None,
    examples: int = EXAMPLES,
    sweep: dict | None = None,
) -> Figure:
    """One figure of the published site as a matplotlib `Figure`, drawn from `record` as the site draws it.

        `name` is a figure of the overview ("mean_activation", "dominance", "ablation", "selectivity_vs_ablation",
        and where the record has them "training", "dynamics", "weights_grid"), of one unit with `unit=`
        ("tuning", "top", "effect", and "weights", "silent" where drawn) or of one class with `cls=` ("examples",
        "profile"). With `sweep`, the content of a run's sweep.json, the seed sweep's figures too ("sweep_dominant",
    "sweep_matching", ...). The figure is not kept by pyplot: a notebook shows it once, and nothing accumulates.
    """
    import matplotlib.pyplot as plt

    charts = charts_module()
    if not isinstance(record, Measurements):
        raise NuKerasError(
            f"record must be nu_keras.Measurements (from analyse or load_run), got {type(record).__name__}"
        )
    names = charts.chart_names(record, sweep)
    if unit is not None and cls is not None:
        raise NuKerasError("give unit= or cls=, not both: a figure shows one unit or one class")
    if unit is not None:
        family, what = names["units"], "unit"
    elif cls is not None:
        family, what = names["classes"], "class"
    else:
        family, what = [names["overview"]], None
    index = 0 if what is None else unit if what == "unit" else cls
    if not isinstance(index, int | np.integer) or not 0 <= index < len(family):
        raise NuKerasError(f"{what} must be a whole number in 0..{len(family) - 1}, got {index!r}")
    files = family[index]
    if name not in files:
        where = "of the overview" if what is None else f"of {what} {index}"
        hint = "; the seed sweep's figures need sweep= (sweep.json)" if name.startswith("sweep_") and not sweep else ""
        raise NuKerasError(f"no figure {shown(name)!r} {where} in this record{hint}; choose one of: {', '.join(files)}")
    tasks = charts.chart_tasks(record, examples, Path(), sweep)
    function, _, args, kwargs = next(task for task in tasks if task[1] == Path(files[name]))
    with drawing_style():
        drawn = function(None, *args, **kwargs)
    plt.close(drawn)
    return drawn


def charts_module():
    """nu_keras.charts, its first import undone in matplotlib's global settings: importing the charts styles
    matplotlib for every figure (`charts.style.STYLE`, what the command line and its chart workers want),
    which a notebook's own plots must not inherit from a call of `figure` or `publish`."""
    import matplotlib

    with matplotlib.rc_context():
        from nu_keras import charts
    return charts


@contextmanager
def drawing_style() -> Iterator[None]:
    """Draw in the report's matplotlib style, and leave the caller's own settings as they were after."""
    import matplotlib

    with matplotlib.rc_context(charts_module().style.STYLE):
        yield


def figure_names(record: Measurements, *, sweep: dict | None = None) -> dict[str, list[str]]:
    """The names `figure` draws for this record: {"overview": [...], "unit": [...], "class": [...]}. A unit's
    "silent" figure exists only for the units silent on some images of their preferred class."""
    names = charts_module().chart_names(record, sweep)
    return {
        "overview": list(names["overview"]),
        "unit": every_key(names["units"]),
        "class": every_key(names["classes"]),
    }


def every_key(families: list[dict]) -> list[str]:
    """The keys of all the dicts, each once, in the order they first appear."""
    return list(dict.fromkeys(key for files in families for key in files))


# ------------------------------------------------------------------------------------------ loading


def load_run(folder: str | Path, layer: str | None = None) -> Measurements:
    """The measurement record of a finished run: `metrics.json` in the artifacts folder of
    `nu-keras report --out FOLDER` (the default is `artifacts`), in a site `publish` made, or in the report
    folder a run outside the checkout fills (its artifacts/, e.g. `nu-keras-report`). A run of several layers
    (`--layer a,b` or `all`) keeps a record per layer: name the one to load with `layer`."""
    from nu_keras import multilayer

    candidates = [Path(folder), Path(folder) / "artifacts"]
    if layer is not None:
        inside = Path(multilayer.LAYERS_FOLDER) / multilayer.folder_name(layer)
        candidates = [place / inside for place in candidates]
    path = next((place / RECORD_FILE for place in candidates if (place / RECORD_FILE).is_file()), None)
    if path is None:
        layers = sorted(
            p.parent.name for place in candidates for p in (place / multilayer.LAYERS_FOLDER).glob(f"*/{RECORD_FILE}")
        )
        hint = f"; it read several layers: give layer= one of {', '.join(layers)}" if layers else ""
        raise NuKerasError(
            f"{shown(candidates[0] / RECORD_FILE)} does not exist; give the --out folder of `nu-keras report` or a "
            f"site `publish` made{hint}"
        )
    return Measurements.from_json(artifacts.read_json(path))


def load_dataset(name: str = "mnist") -> Dataset:
    """A named data set ("mnist", "fashion-mnist") from the first source that serves a valid copy, offline
    where one exists: `x_train`, `y_train`, `x_test`, `y_test`, `class_names` (`nu_keras.data.Dataset`)."""
    from nu_keras.config import default_cache_path
    from nu_keras.data import open_dataset

    return open_dataset(name, None, default_cache_path())


# ------------------------------------------------------------------------------------- checked input


def checked_model(model: keras.Model | str | Path) -> keras.Model:
    """A Keras classifier of one image input and one (C,) output, C >= 2; a path is loaded with safe_mode."""
    if isinstance(model, str | Path):
        path = Path(model)
        if not path.is_file():
            raise NuKerasError(f"model {shown(path)} is not a file")
        model = load_model_file(path)
    if not isinstance(model, keras.Model):
        raise NuKerasError(f"model must be a keras.Model or the path of a .keras file, got {type(model).__name__}")
    if not getattr(model, "inputs", None):  # a subclassed model's layers are not a graph with inputs
        raise NuKerasError(
            f"model {shown(model.name)!r} has no input graph (a subclassed keras.Model, or one never built), so its "
            "layers cannot be read out; build it with the functional API or keras.Sequential with an Input"
        )
    subject.check_one_input_one_output(model)
    if None in subject.input_shape(model):
        raise NuKerasError(f"the model's input shape {subject.input_shape(model)} is not fixed; build it with one")
    output = tuple(model.outputs[0].shape[1:])
    if len(output) != 1 or output[0] is None or output[0] < 2:
        raise NuKerasError(f"the model outputs shape {output}; nu_keras reads classifiers with a (C,) output, C >= 2")
    return model


def load_model_file(path: Path) -> keras.Model:
    """A `.keras` file loaded with safe_mode=True: a Lambda layer or an unknown custom object is refused in one
    line and never runs (as `subject.load_user_model` loads `--model`)."""
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # Keras reports unsafe lambdas and unknown classes as several exception types
        reason = " ".join(str(exc).split())[:240]
        raise NuKerasError(f"model {shown(path)} was refused or is not a Keras 3 model ({reason})") from exc


def class_count(model: keras.Model) -> int:
    return int(model.outputs[0].shape[-1])


def checked_layer(model: keras.Model, layer: str) -> str:
    """The name of a layer that can be read out (see `subject.survey`): an offered one, a large one by name, or
    the output layer; else one line listing them and why the others are not."""
    found = subject.survey(model)
    if not any(readable.name == layer for readable in found.readable):
        why = next((f.why for f in found.folded if f.name == layer), found.unreadable.get(layer, "no such layer"))
        raise NuKerasError(
            f"layer {shown(layer)!r} is not a layer of model {shown(model.name)!r} that can be read out ({why}); "
            f"{found.listing()}"
        )
    try:
        subject.split(model, layer)
    except NuKerasError:
        raise NuKerasError(
            f"layer {shown(layer)!r} does not split the model in two: layers after it also read earlier layers (a "
            "skip connection); choose a layer that every path from the input to the output goes through"
        ) from None
    return layer


def checked_images(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """(N, ...) numeric, finite images that fit the model's input as stored, with a channel axis added, or
    flattened (`subject.adapt_images`)."""
    images = np.asarray(images)
    if images.dtype == bool or not np.issubdtype(images.dtype, np.number) or images.ndim < 2 or not len(images):
        raise NuKerasError(
            f"images must be a non-empty numeric array of shape (N, H, W[, C]), got dtype {images.dtype} "
            f"and shape {images.shape}"
        )
    expected, shape = subject.input_shape(model), tuple(images.shape[1:])
    if expected not in (shape, (*shape, 1), (int(np.prod(shape)),)):
        raise NuKerasError(f"the model takes inputs of shape {expected}, but the images are {shape} (N={len(images)})")
    if np.issubdtype(images.dtype, np.floating):
        bad = ~np.isfinite(images.reshape(len(images), -1)).all(axis=1)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise NuKerasError(
                f"images hold NaN or infinity: {int(bad.sum())} of {len(images)} images (the first: index {first})"
            )
    return images


def model_inputs(model: keras.Model, images: np.ndarray, pixels: str) -> np.ndarray:
    """The images as the model's float32 input (scaled as `pixels` says, reshaped to its input)."""
    if pixels not in PIXELS:
        raise NuKerasError(f"pixels must be one of {', '.join(PIXELS)}, got {shown(pixels)!r}")
    images = checked_images(model, images)
    return np.concatenate(list(subject.model_batches(images, subject.input_shape(model), pixels)))


def checked_labels(labels: np.ndarray, count: int, classes: int) -> np.ndarray:
    """(N,) whole class indices in [0, classes), one per image."""
    labels = np.asarray(labels)
    whole = np.issubdtype(labels.dtype, np.integer) or (
        np.issubdtype(labels.dtype, np.floating) and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels))
    )
    if labels.dtype == bool or not whole or labels.shape != (count,):
        raise NuKerasError(
            f"labels must be {count} whole class indices, one per image, got dtype {labels.dtype} and shape "
            f"{labels.shape}"
        )
    if labels.min() < 0 or labels.max() >= classes:
        raise NuKerasError(
            f"labels must lie in 0..{classes - 1} (the model has {classes} classes), got {labels.min()}..{labels.max()}"
        )
    return labels.astype(np.int64)


def checked_batch_size(batch_size: int | None) -> None:
    if batch_size is not None and (not isinstance(batch_size, int | np.integer) or batch_size < 1):
        raise NuKerasError(f"batch_size must be a whole number of at least 1, got {batch_size!r}")


def checked_units(units: Sequence[int] | None, count: int) -> list[int]:
    """Unit indices in [0, count); None is every unit."""
    if units is None:
        return list(range(count))
    chosen = np.asarray(units).reshape(-1)
    if not np.issubdtype(chosen.dtype, np.integer) or (chosen.size and (chosen.min() < 0 or chosen.max() >= count)):
        raise NuKerasError(f"units must be whole numbers in 0..{count - 1} (the layer has {count}), got {units!r}")
    return [int(u) for u in chosen]


@contextmanager
def keras_runs(model: keras.Model) -> Iterator[None]:
    """A model that fails inside Keras anyway (an op the backend lacks, a layer that refuses the batch) is
    one line naming the model, not a traceback from deep inside Keras."""
    try:
        yield
    except (ValueError, TypeError, RuntimeError, NotImplementedError) as exc:
        reason = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).split())[:240]  # Keras colours its messages
        raise NuKerasError(f"model {shown(model.name)!r} failed to run ({type(exc).__name__}: {reason})") from exc

"""Run the stages in order. Each reads the previous stage's files from `cfg.out` and writes its own; each is
one `Stage` entry in `STAGES` below (runner, help, what its result depends on, what it holds).

train    data             -> model.keras, train.json (history, test accuracy, data source, subject, versions),
                             branches.npz (the sweep's first block, trained in the same fit)
collect  model.keras      -> activations.npz (units, labels, predictions, ablated predictions), weights.npz
analyze  activations.npz  -> metrics.json
sweep    data, branches.npz -> sweep.json (N seeds per width trained together, with controls)
render   metrics.json     -> charts (PNG) and Markdown pages in cfg.pages_dir
build    pages            -> static site in cfg.site_dir

Two concepts reach every stage through `cfg`: *which data* (`dataset`, `data`: MNIST, Fashion-MNIST or a
user's file; data.py) and *what is analysed* (the paper's network trained here, or a user's `model` and
`layer`; subject.py). For a user's model, `train` checks and copies it instead of training, and `sweep`,
which retrains the paper's network, does not apply.
"""

from __future__ import annotations

import functools
import importlib
import logging
import re
import shutil
import time
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from nu_keras import artifacts, cache, folders, workers
from nu_keras.config import RunConfig
from nu_keras.errors import NuKerasError

log = logging.getLogger(__name__)

ACTIVATION_KEYS = ("units", "labels", "predictions", "probabilities", "ablated_zero", "ablated_mean")
TRAIN_KEYS = (
    "history",
    "fit_seconds",
    "test_accuracy",
    "data_source",
    "data_sha256",
    "versions",
    "config",
    "subject",
    "dataset",
)
SWEEP_KEYS = (
    "seeds",
    "widths",
    "recipe",
    "thresholds",
    "verdict",
    "specificity_verdict",
    "privileged_verdict",
    "provenance",
)


@dataclass(frozen=True)
class ArtifactPaths:
    """The files the stages hand each other, all in one `--out` folder (names defined here only)."""

    out: Path

    @property
    def model(self) -> Path:
        return self.out / "model.keras"

    @property
    def train(self) -> Path:
        return self.out / "train.json"

    @property
    def branches(self) -> Path:
        return self.out / "branches.npz"

    @property
    def epochs(self) -> Path:
        return self.out / "epochs.npz"

    @property
    def activations(self) -> Path:
        return self.out / "activations.npz"

    @property
    def weights(self) -> Path:
        return self.out / "weights.npz"

    @property
    def metrics(self) -> Path:
        return self.out / "metrics.json"

    @property
    def sweep(self) -> Path:
        return self.out / "sweep.json"

    @property
    def timings(self) -> Path:
        return self.out / "timings.json"

    @property
    def stages(self) -> Path:
        return self.out / "stages.json"


def paths(cfg: RunConfig) -> ArtifactPaths:
    return ArtifactPaths(Path(cfg.out))


@functools.lru_cache(maxsize=2)
def _dataset(name: str | None, data: Path | None, cache_path: Path):
    from nu_keras.data import open_dataset

    return open_dataset(name, data, cache_path)


def dataset(cfg: RunConfig):
    """The run's data, loaded once per process however many stages ask for it."""
    return _dataset(cfg.dataset, cfg.data, cfg.cache_path)


def check_paper_data(data) -> None:
    """The paper's network takes 28x28 grey images of 10 classes; other data need the user's own model."""
    if data.image_shape != (28, 28) or data.classes != 10:
        raise NuKerasError(
            f"the paper's network takes 28x28 grey images of 10 classes, but {data.title} has "
            f"{data.classes} classes of shape {data.image_shape}; give --model and --layer to analyse your own model"
        )


def run_train(cfg: RunConfig) -> None:
    """Train the paper's network as branch 0 of the sweep's first block (`RunConfig.report_block`), so
    one fit serves the report and the sweep; the block is kept for the sweep stage (branches.npz)."""
    if not cfg.trains_here:
        return adopt_model(cfg)
    from nu_keras import model as mdl  # Keras is imported only by the stages that need it
    from nu_keras import subject

    data = dataset(cfg)
    check_paper_data(data)
    block = cfg.report_block()
    log.info(
        "training %d epochs, batch %d, Adam %g, seed %d on %s, beside seeds %s of the sweep",
        cfg.epochs,
        cfg.batch_size,
        cfg.learning_rate,
        cfg.seed,
        data.title,
        block[1:] or "(none)",
    )
    watched = mdl.Dynamics(mdl.scale(data.x_test))
    fitted = mdl.fit_block(data, cfg, cfg.hidden_units, block, validate=True, watchers=(watched,))
    mdl.check_converged(fitted, cfg)
    net = mdl.network_with(fitted["trained"][0], cfg.seed, cfg.hidden_units)
    accuracy = mdl.evaluate(net, data)
    log.info("test accuracy %.4f after %.1f s of training", accuracy, fitted["fit_seconds"])
    mdl.save_model(net, paths(cfg).model)
    mdl.save_block(paths(cfg).branches, fitted, block_recipe(cfg, data))
    sample = subject.first_inputs(net, data.x_test, cfg.pixels)
    described = subject.describe(net, subject.PAPER_LAYER, data.image_shape, True, None, sample)
    fit = {"history": fitted["history"], "fit_seconds": fitted["fit_seconds"], "trained_with": block}
    artifacts.write_npz(paths(cfg).epochs, **watched.arrays())  # branch 0 on the test images, epoch 0 to the last
    write_train_record(cfg, data, fit | {"test_accuracy": accuracy}, net, described)


def block_recipe(cfg: RunConfig, data) -> dict:
    """What a fitted block's weights depend on: the sweep reuses the train stage's block only if it matches."""
    return {"training": cfg.training_fields(), "data_sha256": data.sha256}


@contextmanager
def users_model_runs(cfg: RunConfig):
    """A user's model that fails when run on the data (a name TensorFlow refuses as a scope, an op the
    backend lacks) is one line naming the model; our own network's failures stay tracebacks (bugs)."""
    try:
        yield
    except (ValueError, TypeError, RuntimeError, NotImplementedError) as exc:
        if cfg.trains_here:
            raise
        reason = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).split())[:240]  # Keras colours its messages
        raise NuKerasError(f"--model {cfg.model} failed to run on the data ({type(exc).__name__}: {reason})") from exc


def adopt_model(cfg: RunConfig) -> None:
    """A user's model instead of training: checked against the data and copied into the artifacts."""
    from nu_keras import subject

    data = dataset(cfg)
    with users_model_runs(cfg):
        model, accuracy = subject.adopt(cfg.model, cfg.layer, data, cfg.pixels, paths(cfg).model)
        sample = subject.first_inputs(model, data.x_test, cfg.pixels)
        described = subject.describe(model, cfg.layer, data.image_shape, False, cfg.model, sample)
    log.info(
        "model %s: test accuracy %.4f on %s; layer %s, %d %s units",
        cfg.model,
        accuracy,
        data.title,
        cfg.layer,
        described["units"],
        described["layer_kind"],
    )
    no_training = {"history": None, "fit_seconds": None, "test_accuracy": accuracy}
    write_train_record(cfg, data, no_training, model, described)


def check_user_model(cfg: RunConfig) -> None:
    """Before any folder is touched: the model loads safely and --layer names a layer that can be read
    out (without --layer, the error lists them: the way to discover them)."""
    from nu_keras import subject

    model = subject.load_user_model(cfg.model)
    subject.check_one_input_one_output(model)
    subject.split(model, subject.find_layer(model, cfg.layer).name)  # refuses a layer a skip connection bypasses


def write_train_record(cfg: RunConfig, data, fit: dict, model, described: dict) -> None:
    from nu_keras import model as mdl
    from nu_keras import subject

    artifacts.write_json(
        paths(cfg).train,
        {
            **fit,
            "data_source": data.source,
            "data_sha256": data.sha256,
            "dataset": data.describe(cfg.pixels) | {"input_note": described.pop("input_note")},
            "subject": described,
            "versions": mdl.versions(),
            "config": cfg.training_fields(),
            "parameters": int(model.count_params()),
            "summary": subject.layer_table(model),
        },
    )


def load_subject_model(cfg: RunConfig):
    """model.keras as the train stage left it, checked: the paper's network must be the one the pages
    describe; a user's model is loaded with safe_mode like any file we did not write."""
    from nu_keras import model as mdl
    from nu_keras import subject

    if cfg.trains_here:
        net = mdl.load_model(paths(cfg).model)
        mdl.check_network(net, cfg, paths(cfg).model)
        return net, subject.PAPER_LAYER
    return subject.load_user_model(paths(cfg).model), cfg.layer


def run_collect(cfg: RunConfig) -> None:
    from nu_keras import activations, subject

    net, layer = load_subject_model(cfg)
    data = dataset(cfg)
    with users_model_runs(cfg):
        sample = subject.first_inputs(net, data.x_test, cfg.pixels)
        described = subject.describe(net, layer, data.image_shape, cfg.trains_here, cfg.model, sample)
        acts = activations.collect(net, layer, data.x_test, data.y_test, cfg.pixels)
    log.info("collected layer %s %s over the test set", layer, acts["units"].shape)
    artifacts.write_npz(paths(cfg).activations, **acts)
    artifacts.write_npz(paths(cfg).weights, **subject.weights(net, layer, described))


def run_analyze(cfg: RunConfig) -> None:
    from nu_keras import analysis  # the stage's body lives with its domain

    analysis.run_analyze(cfg, paths(cfg), dataset(cfg))


def run_sweep(cfg: RunConfig) -> None:
    from nu_keras.model import load_block
    from nu_keras.sweep import run_sweep as sweep

    data = dataset(cfg)
    check_paper_data(data)
    fitted = load_block(paths(cfg).branches, block_recipe(cfg, data))
    artifacts.write_json(paths(cfg).sweep, sweep(data, cfg, fitted))


def sweep_covers(cfg: RunConfig) -> bool:
    """A wider sweep on disk answers a narrower request (`make sweep`, then `make report`)."""
    path = paths(cfg).sweep
    if not path.exists():
        return False
    existing = artifacts.read_json(path)
    seeds = [cfg.seed + i for i in range(cfg.sweep_seeds)]
    return existing.get("seeds", [])[: len(seeds)] == seeds and all(
        str(w) in existing.get("widths", {}) for w in cfg.sweep_widths
    )


def sweep_matches(trained: dict, sweep: dict) -> bool:
    """The Robustness page says its networks share the report's recipe and data: publish it only if so.

    A sweep.json left by another recipe or data set (a `sweep --epochs 3` beside a 10-epoch model) is
    left off the site, with a line saying why, rather than shown beside numbers it does not match.
    """
    recipe = {k: v for k, v in trained["config"].items() if k not in ("seed", "hidden_units")}
    differs = sorted(k for k, v in recipe.items() if sweep["recipe"].get(k) != v)
    if trained["data_sha256"] != sweep["provenance"].get("data_sha256"):
        differs.append("data")
    if trained["config"]["seed"] not in sweep["seeds"]:
        differs.append("seed")
    if differs:
        log.warning(
            "sweep.json left off the site: its %s differ from the model's; run `nu-keras sweep`", ", ".join(differs)
        )
    return not differs


def published_sweep(cfg: RunConfig) -> dict | None:
    """sweep.json, if it describes the networks of this report (never for a user's model: not retrained)."""
    path = paths(cfg).sweep
    if not cfg.trains_here or not path.exists():
        return None
    sweep = artifacts.read_json(path, SWEEP_KEYS)
    return sweep if sweep_matches(artifacts.read_json(paths(cfg).train, TRAIN_KEYS), sweep) else None


def run_render(cfg: RunConfig, pool=None) -> None:
    """The pages folder, made whole from metrics.json (and sweep.json) by `render.render_record`'s two halves,
    in a staging folder that replaces the old one only once complete; `pool`: the early chart workers."""
    from nu_keras import render
    from nu_keras.record import Measurements

    record = Measurements.from_json(artifacts.read_json(paths(cfg).metrics))
    sweep = published_sweep(cfg)
    target = Path(cfg.pages_dir)
    staging = folders.staging_dir(target)  # pages are replaced whole, so none is ever stale
    try:
        render_charts(cfg, record, sweep, staging, pool)
        templates = cfg.templates_dir
        written = render.write_pages(record, staging, examples=cfg.examples, templates=templates, sweep=sweep)
        folders.replace_folder(staging, target, "pages")
    except (IndexError, KeyError, TypeError, ValueError) as exc:  # values of the wrong shape or type
        raise NuKerasError(
            f"metrics.json or sweep.json holds unexpected values ({type(exc).__name__}: "
            f"{exc}); re-run `nu-keras analyze` and `nu-keras sweep`"
        ) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("wrote %d pages into %s", written, target)


def render_charts(cfg: RunConfig, record, sweep: dict | None, staging: Path, pool=None) -> None:
    """Draw the charts, or copy the previous ones when nothing they show has changed (a template edit)."""
    from nu_keras import render

    print_ = fingerprint("charts", cfg)
    stages = cache.read_record(paths(cfg).stages)
    previous = Path(cfg.pages_dir) / "img"
    # The previous charts are reused only from a pages folder that still holds what this run's record says.
    intact = stage_outputs("render", cfg) == stages.get("render", {}).get("outputs")
    reason = cache.why_run(print_, stages.get("charts"), intact and previous.is_dir(), cfg.force)
    if reason is None:
        shutil.copytree(previous, staging / "img")
        log.info("charts reused (their inputs are unchanged)")
        return
    log.info("drawing the charts (%s)", reason)
    render.draw_charts(record, staging, examples=cfg.examples, sweep=sweep, pool=pool)
    cache.write_record(paths(cfg).stages, "charts", print_)


def run_build(cfg: RunConfig) -> None:
    from nu_keras import site

    site.build(cfg)
    log.info("site built: %s", (cfg.site_dir / "index.html").resolve())


@dataclass(frozen=True)
class Stage:
    """One stage of the data flow, described once: how it runs, and what its result depends on and holds.

    `config`, `inputs` and `code` make its fingerprint (cache.py): a stage is reused only when all three
    are unchanged and `outputs` still hold what the stage recorded when it last ran.
    """

    name: str
    help: str  # the command line's one-line description
    run: Callable[..., None]  # run(cfg), or run(cfg, pool) for a stage that draws charts
    config: Callable[[RunConfig], dict]  # the settings its result depends on
    inputs: Callable[[RunConfig], dict[str, str | None]]  # hashes of the data and files it reads
    outputs: Callable[[RunConfig], dict[str, str | None]]  # what its outputs hold now
    code: tuple[Callable, ...]  # functions whose source, and every module they import, is its code
    applies: Callable[[RunConfig], bool] = lambda cfg: True  # False: the stage has no meaning for this subject
    keras: bool = False  # the stage imports Keras (`import_keras` first)
    draws_charts: bool = False  # the stage is handed the chart workers: run(cfg, pool)
    folder: Callable[[RunConfig], Path] = lambda cfg: cfg.out  # where it writes (named when a write fails)


def _data_hash(cfg: RunConfig) -> str:
    """The data's hash (every stage's input). Reading and hashing the data takes a third of a second, most
    of a warm report; so a finished stage keeps the hash in stages.json beside the signature of the file
    that served it (`remember_data_file`), and it is taken from there while that file is unchanged."""
    _, _, recorded = _data_record(cfg)
    return recorded or dataset(cfg).sha256


def remember_data_file(cfg: RunConfig) -> None:
    file, signature, recorded = _data_record(cfg)
    if signature is None or recorded:
        return
    served = dataset(cfg)
    if served.source.endswith(str(file)):  # that file served, not a later source of the chain
        cache.write_record(paths(cfg).stages, "data", {"file": signature, "sha256": served.sha256})


def _data_record(cfg: RunConfig) -> tuple[Path | None, list | None, str | None]:
    """The file the data is read from first, its signature (None if there is no such file), and the hash
    stages.json holds for exactly that file as it is now (None if none)."""
    from nu_keras.data import first_file

    file = first_file(cfg.dataset, cfg.data, cfg.cache_path)
    signature = cache.file_signature(file) if file else None
    known = cache.read_record(paths(cfg).stages).get("data") or {}
    return file, signature, known.get("sha256") if signature is not None and known.get("file") == signature else None


def _files(cfg: RunConfig, *names: str) -> dict[str, str | None]:
    return {name: cache.file_hash(getattr(paths(cfg), name)) for name in names}


def _thresholds(cfg: RunConfig) -> dict:
    names = ("dominance_threshold", "claim_min_classes", "claim_seed_fraction")
    names += ("privileged_percentile", "privileged_seed_fraction", "rotation_null_samples")
    names += ("specificity_min_classes", "specificity_seed_fraction")
    return {name: getattr(cfg, name) for name in names}


def _chart_inputs(cfg: RunConfig) -> dict[str, str | None]:
    return _files(cfg, "metrics", "sweep")  # metrics.json carries all a page or chart shows


def _pages_config(cfg: RunConfig) -> dict:
    return {"examples": cfg.examples, "pages_dir": str(cfg.pages_dir)}


STAGES = (
    Stage(
        "train",
        "load the data and train the 784-10-10 network with the sweep's first block of seeds (or check and copy "
        "--model) -> model.keras, train.json, branches.npz",
        run_train,
        config=lambda cfg: cfg.training_fields() | ({"trained_with": cfg.report_block()} if cfg.trains_here else {}),
        inputs=lambda cfg: {"data": _data_hash(cfg), "--model": cache.file_hash(cfg.model) if cfg.model else None},
        outputs=lambda cfg: _files(cfg, "model", "train", *(["branches", "epochs"] if cfg.trains_here else [])),
        code=(run_train, block_recipe, check_paper_data, adopt_model, write_train_record),
        keras=True,
    ),
    Stage(
        "collect",
        "read the layer's units out over the test set, and ablate each -> activations.npz, weights.npz",
        run_collect,
        config=lambda cfg: cfg.subject_fields(),
        inputs=lambda cfg: {"data": _data_hash(cfg)} | _files(cfg, "model"),
        outputs=lambda cfg: _files(cfg, "activations", "weights"),
        code=(run_collect, load_subject_model),
        keras=True,
    ),
    Stage(
        "analyze",
        "per-class statistics, dominance, selectivity, ablation, the rotation null and the claims -> metrics.json",
        run_analyze,
        config=lambda cfg: cfg.to_json(),  # the record prints every setting (provenance.config)
        inputs=lambda cfg: (
            {"data": _data_hash(cfg)}
            | _files(cfg, "activations", "weights", "train", *(["epochs"] if cfg.trains_here else []))
        ),
        outputs=lambda cfg: _files(cfg, "metrics"),
        code=(run_analyze,),
    ),
    Stage(
        "sweep",
        "train --seeds networks per width in --widths together, with controls -> sweep.json",
        run_sweep,
        config=lambda cfg: cfg.training_fields() | _thresholds(cfg) | {"sweep_block_seeds": cfg.sweep_block_seeds},
        inputs=lambda cfg: {"data": _data_hash(cfg)},
        outputs=lambda cfg: _files(cfg, "sweep"),
        code=(run_sweep, block_recipe, check_paper_data),
        applies=lambda cfg: cfg.trains_here,  # it retrains the paper's network
        keras=True,
    ),
    Stage(
        "render",
        "charts and Markdown pages from metrics.json (and sweep.json) -> the pages folder",
        run_render,
        config=_pages_config,  # what the charts read, and the templates
        inputs=lambda cfg: _chart_inputs(cfg) | {"templates": cache.templates_hash(cfg.templates_dir)},
        outputs=lambda cfg: {"pages": folders.verified_digest(cfg.pages_dir)},
        code=(run_render, published_sweep, render_charts),
        draws_charts=True,
        folder=lambda cfg: cfg.pages_dir,
    ),
    Stage(
        "build",
        "build the MkDocs site from the pages folder -> site/",
        run_build,
        config=lambda cfg: {"site_dir": str(cfg.site_dir)},
        inputs=lambda cfg: {
            "pages": cache.tree_hash(cfg.pages_dir),
            "mkdocs.yml": cache.file_hash(cfg.project_root / "mkdocs.yml"),
            "theme overrides": cache.tree_hash(cfg.project_root / "docs" / "overrides"),
        },
        outputs=lambda cfg: {"site": folders.verified_digest(cfg.site_dir)},
        code=(run_build,),
        folder=lambda cfg: cfg.site_dir,
    ),
)
STAGE_NAMES = tuple(stage.name for stage in STAGES)
BY_NAME = {stage.name: stage for stage in STAGES}


def fingerprint(stage: str, cfg: RunConfig) -> dict:
    """What a stage's result depends on: config fields, input files, data, its code and the version.

    "charts" is the render stage's own drawing, fingerprinted apart so a template edit reuses the charts.
    """
    if stage == "charts":
        config, inputs, code = _pages_config(cfg), _chart_inputs(cfg), (render_charts,)
    else:
        entry = BY_NAME[stage]
        config, inputs, code = entry.config(cfg), entry.inputs(cfg), entry.code
    # Every stage: seeds give other weights on another backend, and the pages print which one ran.
    return cache.fingerprint(config | {"backend": cfg.backend}, inputs, code)


FOLDER_KINDS = {"--out": "artifacts", "--pages-dir": "pages", "--site-dir": "site"}


def output_folders(cfg: RunConfig) -> dict[str, Path]:
    return {"--out": cfg.out, "--pages-dir": cfg.pages_dir, "--site-dir": cfg.site_dir}


def check_folders(stages: tuple[str, ...], cfg: RunConfig) -> None:
    """Refuse, before any work, output folders that are not ours to fill (see folders.py)."""
    protected = {
        "the project root": cfg.project_root,
        "the working folder": Path.cwd(),
        "the home folder": Path.home(),
        "the file-system root": Path("/"),
    }
    named = output_folders(cfg) | {
        "the theme overrides (docs/overrides)": cfg.project_root / "docs" / "overrides",
        "--templates": cfg.templates_dir,
    }
    writes = {"--out": True, "--pages-dir": "render" in stages, "--site-dir": "build" in stages}
    folders.check_output_folders(named, protected, {flag: FOLDER_KINDS[flag] for flag, w in writes.items() if w})


def stage_outputs(stage: str, cfg: RunConfig) -> dict[str, str | None]:
    """What a stage's outputs hold now: file hashes, or a folder's verified manifest digest."""
    return BY_NAME[stage].outputs(cfg)


def outputs_ready(stage: str, cfg: RunConfig, record: dict | None) -> bool:
    """True when every output the stage recorded is still there, unchanged (not just its record)."""
    now = stage_outputs(stage, cfg)
    recorded = (record or {}).get("outputs")
    return None not in now.values() and now == recorded and (stage != "sweep" or sweep_covers(cfg))


def run(stages: tuple[str, ...], cfg: RunConfig) -> dict[str, str]:
    """Run the named stages in pipeline order, skipping those whose inputs did not change.

    Holds the output folders' locks for the whole run, so two runs never mix their files. Returns, per
    stage, "ran (why)" or "reused"; timings of the stages that ran go to timings.json.
    """
    check_folders(stages, cfg)
    if len(stages) == 1 and not BY_NAME[stages[0]].applies(cfg):
        raise NuKerasError(f"`nu-keras {stages[0]}` retrains the paper's network; it does not apply to --model")
    if not cfg.trains_here and "train" in stages:
        import_keras()
        check_user_model(cfg)
    with folders.locked(list(output_folders(cfg).values())):
        check_folders(stages, cfg)  # again, now that no other run can change them: leftovers only after it
        folders.clean_leftovers(cfg.pages_dir, "pages")
        folders.clean_leftovers(cfg.site_dir, "site")
        artifacts.ensure_writable(cfg.out)  # fail before minutes of work, not after
        folders.claim(cfg.out, "artifacts")
        return run_stages(stages, cfg)


def run_stages(stages: tuple[str, ...], cfg: RunConfig) -> dict[str, str]:
    with ExitStack() as chart_workers:
        return _run_stages(stages, cfg, chart_workers)


def _run_stages(stages: tuple[str, ...], cfg: RunConfig, chart_workers: ExitStack) -> dict[str, str]:
    outcome, pool = {}, None
    for name in STAGE_NAMES:
        if name not in stages:
            continue
        if not BY_NAME[name].applies(cfg):
            log.info("== %s == not for a user's model (it retrains the paper's network)", name)
            outcome[name] = "not applicable"
            continue
        print_ = fingerprint(name, cfg)
        record = cache.read_record(paths(cfg).stages).get(name)
        reason = cache.why_run(print_, record, outputs_ready(name, cfg, record), cfg.force)
        if reason is None:
            log.info("== %s == reused (inputs unchanged, outputs intact)", name)
            outcome[name] = "reused"
            continue
        log.info("== %s == running (%s)", name, reason)
        if BY_NAME[name].keras:
            if "render" in stages and pool is None:  # its workers start now, on the core training leaves idle
                pool = chart_workers.enter_context(workers.early_pool())
            import_keras()  # before the clock starts: a stage's time is its own work
        import_stage_modules(BY_NAME[name])
        started = time.perf_counter()
        try:
            if BY_NAME[name].draws_charts:
                BY_NAME[name].run(cfg, pool)
            else:
                BY_NAME[name].run(cfg)
        except OSError as exc:  # a write to an open file (MkDocs' pages, a chart) names no path: its folder
            artifacts.name_written_path(exc, BY_NAME[name].folder(cfg))
            raise
        record_timing(cfg, name, time.perf_counter() - started)
        cache.write_record(paths(cfg).stages, name, print_ | {"outputs": stage_outputs(name, cfg)})
        remember_data_file(cfg)
        outcome[name] = f"ran ({reason})"
    return outcome


def import_keras() -> None:
    """Import Keras whole, only when a stage that needs it runs (a warm report never does: it would cost
    seconds). Signals wait until the import is done: an import interrupted half-way leaves Keras broken,
    with a misleading ImportError instead of "interrupted"."""
    with folders.signals_held():
        importlib.import_module("keras")


def import_stage_modules(stage: Stage) -> None:
    """Import the modules a stage's code reaches (and so scipy, matplotlib, Jinja2, MkDocs) before it runs,
    with signals held: a signal that lands inside a C extension's initialisation (scipy.optimize's) turns
    into "ImportError: initialization failed" and a traceback instead of "terminated"."""
    with folders.signals_held():
        for name in sorted(cache.stage_modules(stage.code)):
            importlib.import_module(f"nu_keras.{name}")


def read_timings(cfg: RunConfig) -> dict[str, float]:
    path = paths(cfg).timings
    return artifacts.read_json(path) if path.exists() else {}


def record_timing(cfg: RunConfig, stage: str, seconds: float) -> None:
    artifacts.write_json(paths(cfg).timings, {**read_timings(cfg), stage: round(seconds, 3)})

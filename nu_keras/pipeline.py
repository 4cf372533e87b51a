"""Run the stages in order. Each reads the previous stage's files from `cfg.out` and writes its own; each is
one `Stage` entry in `STAGES` below (its body, help, what its result depends on, what it holds). The bodies
live with their domain; this module keeps the table, the fingerprints and the run loop.

train    train.run        data -> model.keras, train.json (history, test accuracy, data source, subject,
                          versions), branches.npz (the sweep's first block, trained in the same fit)
collect  activations.run  model.keras -> activations.npz (units, labels, predictions, ablated predictions),
                          weights.npz
analyze  run_analyze      activations.npz -> metrics.json
sweep    sweep.run        data, branches.npz -> sweep.json (N seeds per width trained together, with controls)
render   render.run       metrics.json -> charts (PNG), Markdown pages and the Explore data in cfg.pages_dir
build    site.run         pages -> static site in cfg.site_dir

Two concepts reach every stage through `cfg`: *which data* (`dataset`, `data`: MNIST, Fashion-MNIST or a
user's file; data.py) and *what is analysed* (the paper's network trained here, or a user's `model` and
`layer`; subject.py). For a user's model, `train` checks and copies it instead of training, and `sweep`,
which retrains the paper's network, does not apply.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from nu_keras import artifacts, cache, folders, multilayer, resources, workers
from nu_keras.artifacts import paths
from nu_keras.config import RunConfig
from nu_keras.data import dataset
from nu_keras.errors import NuKerasError
from nu_keras.sweep_file import covers_request
from nu_keras.train import check_user_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    """One stage of the data flow, described once: how it runs, and what its result depends on and holds.

    `config`, `inputs` and `code` make its fingerprint (cache.py): a stage is reused only when all three
    are unchanged and `outputs` still hold what the stage recorded when it last ran.
    """

    name: str
    help: str  # the command line's one-line description
    # Its body, "module.function" in the package ("train.run"): named, not imported, so that listing the
    # stages imports no Keras; `stage_body` imports it when the stage runs.
    run: str
    config: Callable[[RunConfig], dict]  # the settings its result depends on
    inputs: Callable[[RunConfig], dict[str, str | None]]  # hashes of the data and files it reads
    outputs: Callable[[RunConfig], dict[str, str | None]]  # what its outputs hold now
    # Functions ("module.function") whose source, module and every module they import is its code
    # (cache.stage_modules), read from the files without importing them.
    code: tuple[str, ...]
    applies: Callable[[RunConfig], bool] = lambda cfg: True  # False: the stage has no meaning for this subject
    keras: bool = False  # the stage imports Keras (`import_keras` first)
    draws_charts: bool = False  # its body is handed the chart workers: run(cfg, pool)
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


def _pages_config(cfg: RunConfig) -> dict:
    return {"examples": cfg.examples, "pages_dir": str(cfg.pages_dir), "figure_format": cfg.figure_format}


STAGES = (
    Stage(
        "train",
        "load the data and train the 784-10-10 network with the sweep's first block of seeds (or check and copy "
        "--model) -> model.keras, train.json, branches.npz",
        "train.run",
        config=lambda cfg: cfg.training_fields() | ({"trained_with": cfg.report_block()} if cfg.trains_here else {}),
        inputs=lambda cfg: {"data": _data_hash(cfg), "--model": cache.file_hash(cfg.model) if cfg.model else None},
        outputs=lambda cfg: _files(cfg, "model", "train", *(["branches", "epochs"] if cfg.trains_here else [])),
        code=("train.run",),
        keras=True,
    ),
    Stage(
        "collect",
        "read the layer's units out over the test set, and ablate each -> activations.npz, weights.npz",
        "activations.run",
        config=lambda cfg: cfg.subject_fields(),
        inputs=lambda cfg: {"data": _data_hash(cfg)} | _files(cfg, "model"),
        outputs=lambda cfg: _files(cfg, "activations", "weights"),
        code=("activations.run", "train.load_subject_model"),
        keras=True,
    ),
    Stage(
        "analyze",
        "per-class statistics, dominance, selectivity, ablation, the rotation null and the claims -> metrics.json",
        "analysis.run",
        config=lambda cfg: cfg.measured_fields(),  # the record states them (provenance.config)
        inputs=lambda cfg: (
            {"data": _data_hash(cfg)}
            | _files(cfg, "activations", "weights", "train", *(["epochs"] if cfg.trains_here else []))
        ),
        outputs=lambda cfg: _files(cfg, "metrics"),
        code=("analysis.run",),
    ),
    Stage(
        "sweep",
        "train --seeds networks per width in --widths together, with controls -> sweep.json",
        "sweep.run",
        config=lambda cfg: cfg.training_fields() | _thresholds(cfg) | {"sweep_block_seeds": cfg.sweep_block_seeds},
        inputs=lambda cfg: {"data": _data_hash(cfg)},
        outputs=lambda cfg: _files(cfg, "sweep"),
        code=("sweep.run",),
        applies=lambda cfg: cfg.trains_here,  # it retrains the paper's network
        keras=True,
    ),
    Stage(
        "render",
        "charts and Markdown pages from metrics.json (and sweep.json) -> the pages folder",
        "render.run",
        config=_pages_config,  # what the charts read, and the templates
        # metrics.json carries all a page or chart shows: no activations, weights or data set
        inputs=lambda cfg: _files(cfg, "metrics", "sweep") | {"templates": cache.templates_hash(cfg.templates_dir)},
        outputs=lambda cfg: {"pages": folders.verified_digest(cfg.pages_dir)},
        code=("render.run",),
        folder=lambda cfg: cfg.pages_dir,
        draws_charts=True,
    ),
    Stage(
        "build",
        "build the MkDocs site from the pages folder -> site/",
        "site.run",
        config=lambda cfg: {"site_dir": str(cfg.site_dir)},
        inputs=lambda cfg: {
            "pages": cache.tree_hash(cfg.pages_dir),
            "mkdocs.yml": cache.file_hash(resources.mkdocs_config()),
            "theme overrides": cache.tree_hash(resources.theme_dir()),
        },
        outputs=lambda cfg: {"site": folders.verified_digest(cfg.site_dir)},
        code=("site.run",),
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
        from nu_keras import render  # (matplotlib: the charts' own fingerprint is taken by the render stage)

        return render.charts_fingerprint(cfg)
    entry = BY_NAME[stage]
    config, inputs, code = entry.config(cfg), entry.inputs(cfg), entry.code
    # Every stage: seeds give other weights on another backend, and the pages print which one ran.
    return cache.fingerprint(config | {"backend": cfg.backend}, inputs, code)


# The RunConfig fields no stage's fingerprint holds, each with the reason that is right; every other field
# changes some stage's fingerprint when its value changes (tests/test_fingerprint_guard.py checks both).
FINGERPRINT_EXEMPT = {
    "force": "changes how a run goes, not what it computes",
    "scheduler": "where the sweep's blocks train, not what they compute: the same blocks give the same numbers",
    "out": "the folder the artifacts are in: each such folder keeps its own stage records",
    "cache_path": "where a fetched data set is kept: the data reach every fingerprint as their hash",
    # the sweep is reused while its outputs cover the request (`outputs_ready`): a wider sweep on disk
    # answers a narrower request, and the pages show every width it holds
    "sweep_widths": "the sweep runs again when sweep.json lacks a requested width (sweep_file.covers_request)",
}


FOLDER_KINDS = {"--out": "artifacts", "--pages-dir": "pages", "--site-dir": "site"}


def output_folders(cfg: RunConfig) -> dict[str, Path]:
    return {"--out": cfg.out, "--pages-dir": cfg.pages_dir, "--site-dir": cfg.site_dir}


def protected_places(cfg: RunConfig) -> dict[str, Path]:
    """Folders no output may be or contain, each with how a refusal names it."""
    return {
        **({"the project root": cfg.project_root} if cfg.project_root else {}),  # a wheel has none
        "the working folder": Path.cwd(),
        "the home folder": Path.home(),
        "the file-system root": Path("/"),
    }


def check_folders(stages: tuple[str, ...], cfg: RunConfig) -> None:
    """Refuse, before any work, output folders that are not ours to fill (see folders.py)."""
    protected = protected_places(cfg)
    named = output_folders(cfg) | {
        "the theme overrides (docs/overrides)": resources.theme_dir(),
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
    return None not in now.values() and now == recorded and (stage != "sweep" or covers_request(cfg))


def run(stages: tuple[str, ...], cfg: RunConfig) -> dict[str, str]:
    """Run the named stages in pipeline order, skipping those whose inputs did not change.

    Holds the output folders' locks for the whole run, so two runs never mix their files. Returns, per
    stage, "ran (why)" or "reused"; timings of the stages that ran go to timings.json.
    """
    check_folders(stages, cfg)
    if len(stages) == 1 and not BY_NAME[stages[0]].applies(cfg):
        raise NuKerasError(f"`nu-keras {stages[0]}` retrains the paper's network; it does not apply to --model")
    several = multilayer.requested_layers(cfg)  # --layer a,b or all: every layer in one run (multilayer.py)
    if several is None and needs_model_check(stages, cfg):
        import_keras()
        check_user_model(cfg)
    with folders.locked(list(output_folders(cfg).values())):
        check_folders(stages, cfg)  # again, now that no other run can change them: leftovers only after it
        folders.clean_leftovers(cfg.pages_dir, "pages")
        folders.clean_leftovers(cfg.site_dir, "site")
        artifacts.ensure_writable(cfg.out)  # fail before minutes of work, not after
        folders.claim(cfg.out, "artifacts")
        if several is not None:
            return multilayer.run_layers(stages, cfg, several)
        return run_stages(stages, cfg)


def needs_model_check(stages: tuple[str, ...], cfg: RunConfig) -> bool:
    """Whether a user's model must be loaded and checked before any folder is touched: unless every Keras
    stage of the run would be reused. Then the model file is the one checked when train last ran (its hash
    is in train's fingerprint) with the same layer (in collect's), and loading it would cost the seconds of
    importing Keras that a warm rerun otherwise never pays."""
    if cfg.trains_here or "train" not in stages:
        return False
    return not all(reused(name, cfg) for name in stages if BY_NAME[name].keras and BY_NAME[name].applies(cfg))


def reused(stage: str, cfg: RunConfig) -> bool:
    """True when the stage would be reused now: the same fingerprint as recorded, its outputs intact."""
    record = cache.read_record(paths(cfg).stages).get(stage)
    return cache.why_run(fingerprint(stage, cfg), record, outputs_ready(stage, cfg, record), cfg.force) is None


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
                stage_body(BY_NAME[name])(cfg, pool)
            else:
                stage_body(BY_NAME[name])(cfg)
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


def stage_body(stage: Stage) -> Callable[..., None]:
    """The function that runs a stage, imported now (with its module's Keras, SciPy or MkDocs)."""
    module, _, function = stage.run.rpartition(".")
    return getattr(importlib.import_module(f"nu_keras.{module}"), function)


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

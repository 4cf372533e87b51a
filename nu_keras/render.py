"""Publish a measurement record: its charts, its Markdown pages and the Explore page's data script, into a
pages folder. The record (nu_keras.record) and, for the Robustness page, the seed sweep are all it reads:
no activations, weights or data set, and nothing of the analysis, so a record made in a notebook publishes
exactly as one made by `nu-keras report`.

`render_record` is the whole of it (what the public API's `publish` calls); the render stage (`run`) calls
its two halves, `draw_charts` and `write_pages`, so that it can reuse the charts of an earlier run when only
the templates changed, and writes the pages folder whole or not at all.
"""

from __future__ import annotations

import json
import logging
import multiprocessing.pool
import shutil
import time
from pathlib import Path

from nu_keras import artifacts, cache, charts, explore, folders, pages, resources, workers
from nu_keras.config import RunConfig
from nu_keras.errors import NuKerasError
from nu_keras.record import Measurements
from nu_keras.sweep_file import published_sweep

log = logging.getLogger(__name__)


def render_record(
    record: Measurements,
    pages_dir: Path,
    *,
    examples: int,
    templates: Path | None = None,
    sweep: dict | None = None,
    pool: multiprocessing.pool.Pool | None = None,
    figure_format: str = "png",
) -> int:
    """Draw every chart and write every page of `record` into `pages_dir` (created if need be); returns how
    many pages were written.

    `examples`: how many images each class page shows (at most the record's `per_class.examples`);
    `templates`: a folder of templates in place of the report's own; `sweep`: sweep.json's content, for the
    Robustness page (only when it describes this record's network); `pool`: chart workers
    (`workers.early_pool`), else some are started for the drawing and ended after it; `figure_format`: "png"
    or "svg", every chart's file format.
    """
    draw_charts(record, Path(pages_dir), examples=examples, sweep=sweep, pool=pool, figure_format=figure_format)
    return write_pages(
        record, Path(pages_dir), examples=examples, templates=templates, sweep=sweep, figure_format=figure_format
    )


def draw_charts(
    record: Measurements,
    pages_dir: Path,
    *,
    examples: int,
    sweep: dict | None = None,
    pool: multiprocessing.pool.Pool | None = None,
    figure_format: str = "png",
) -> int:
    """Every figure `charts.chart_names` names, under `pages_dir`/img; returns how many were drawn."""
    started = time.perf_counter()
    if pool is not None:
        count = charts.render_all(record, examples, pages_dir, sweep, pool, figure_format)
    else:
        tasks = charts.chart_tasks(record, examples, pages_dir, sweep, figure_format)
        with workers.chart_pool(len(tasks)) as started_pool:
            count = charts.render_all(record, examples, pages_dir, sweep, started_pool, figure_format)
    log.info("rendered %d charts in %.1f s", count, time.perf_counter() - started)
    return count


def write_pages(
    record: Measurements,
    pages_dir: Path,
    *,
    examples: int,
    templates: Path | None = None,
    sweep: dict | None = None,
    figure_format: str = "png",
) -> int:
    """The Explore data script (where the record carries a network the page can run) and every Markdown
    page; returns how many pages were written."""
    summary = export_explore(record, pages_dir, examples)
    names = charts.chart_names(record, sweep, figure_format)
    folder = templates or resources.templates_dir()  # the report's own templates unless others are given
    return pages.render_all(record, examples, folder, pages_dir, sweep, summary, charts=names)


def export_explore(record: Measurements, folder: Path, examples: int) -> dict | None:
    """The Explore page's data script (the record's network, its picker images) in `folder`; its summary.

    None, and no Explore page, where the record carries no network: the browser cannot run the model
    exactly, or the page would break its size budget (the analysis left it out; the record's subject says
    why, and Home prints it).
    """
    if record.network is None:
        log.info("no Explore page: %s", record.provenance.subject.get("explore_reason"))
        return None
    summary = explore.write_script(folder / explore.SCRIPT_NAME, explore.record_explore_data(record, examples))
    log.info("explore data: %d test images, %d bytes", summary["images"], summary["bytes"])
    return summary


# ------------------------------------------------------------------------------------------ the render stage


def run(cfg: RunConfig, pool: multiprocessing.pool.Pool | None = None) -> None:
    """The render stage: the pages folder made whole from metrics.json (and sweep.json), in a staging folder
    that replaces the old one only once complete; `pool`: the chart workers the pipeline started early."""
    record = Measurements.from_json(artifacts.read_json(artifacts.paths(cfg).metrics))
    sweep = published_sweep(cfg)
    target = Path(cfg.pages_dir)
    staging = folders.staging_dir(target)  # pages are replaced whole, so none is ever stale
    try:
        draw_or_reuse_charts(cfg, record, sweep, staging, pool)
        written = write_pages(
            record,
            staging,
            examples=cfg.examples,
            templates=cfg.templates_dir,
            sweep=sweep,
            figure_format=cfg.figure_format,
        )
        folders.replace_folder(staging, target, "pages")
    except (IndexError, KeyError, TypeError, ValueError) as exc:  # values of the wrong shape or type
        raise NuKerasError(
            f"metrics.json or sweep.json holds unexpected values ({type(exc).__name__}: "
            f"{exc}); re-run `nu-keras analyze` and `nu-keras sweep`"
        ) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("wrote %d pages into %s", written, target)


def charts_fingerprint(cfg: RunConfig) -> dict:
    """What the charts depend on, apart from the templates: the record, the sweep, how many examples a class
    shows, and the drawing code. A template edit changes none of it, and reuses the charts."""
    settings = {"examples": cfg.examples, "pages_dir": str(cfg.pages_dir), "backend": cfg.backend}
    settings |= {"figure_format": cfg.figure_format}
    files = artifacts.paths(cfg)
    inputs = {"metrics": cache.file_hash(files.metrics), "sweep": cache.file_hash(files.sweep)}
    return cache.fingerprint(settings, inputs, ("charts.render_all",))  # the figure code, not the pages


def draw_or_reuse_charts(
    cfg: RunConfig, record: Measurements, sweep: dict | None, staging: Path, pool: multiprocessing.pool.Pool | None
) -> None:
    """Draw the charts into `staging`, or copy the previous ones when nothing they show has changed."""
    print_ = charts_fingerprint(cfg)
    recorded = cache.read_record(artifacts.paths(cfg).stages)
    previous = Path(cfg.pages_dir) / "img"
    # The previous charts are reused only from a pages folder that still holds what this run's record says.
    intact = {"pages": folders.verified_digest(cfg.pages_dir)} == recorded.get("render", {}).get("outputs")
    reason = cache.why_run(print_, recorded.get("charts"), intact and previous.is_dir(), cfg.force)
    if reason is None:
        shutil.copytree(previous, staging / "img")
        log.info("charts reused (their inputs are unchanged)")
        return
    log.info("drawing the charts (%s)", reason)
    tasks = charts.chart_tasks(record, cfg.examples, staging, sweep, cfg.figure_format)
    keys = {
        str(path.relative_to(staging)): charts.task_key(task, print_["code"]) for task in tasks for path in [task[1]]
    }
    before = previous_keys(cfg.pages_dir) if intact and not cfg.force else {}
    same = {name for name, key in keys.items() if before.get(name) == key and (Path(cfg.pages_dir) / name).is_file()}
    for name in sorted(same):  # unchanged figures are copied, the others drawn
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(cfg.pages_dir) / name, staging / name)
    started = time.perf_counter()
    drawn = [task for task in tasks if str(task[1].relative_to(staging)) not in same]
    if pool is None:
        with workers.chart_pool(len(drawn)) as started_pool:
            charts.draw_tasks(drawn, started_pool)
    else:
        charts.draw_tasks(drawn, pool)
    log.info("rendered %d charts in %.1f s; %d unchanged, copied", len(drawn), time.perf_counter() - started, len(same))
    artifacts.write_text(staging / CHART_KEYS, json.dumps(keys, sort_keys=True, indent=0))
    cache.write_record(artifacts.paths(cfg).stages, "charts", print_)


CHART_KEYS = ".charts.json"  # each figure's task key (charts.task_key), for the next run to compare with


def previous_keys(pages_dir: Path) -> dict[str, str]:
    """The figures' keys the previous render wrote beside them; {} when there are none or they are damaged."""
    try:
        keys = json.loads((Path(pages_dir) / CHART_KEYS).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return keys if isinstance(keys, dict) and all(isinstance(v, str) for v in keys.values()) else {}

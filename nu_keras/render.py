"""Publish a measurement record: its charts, its Markdown pages and the Explore page's data script, into a
pages folder. The record (nu_keras.record) and, for the Robustness page, the seed sweep are all it reads:
no activations, weights or data set, and nothing of the analysis, so a record made in a notebook publishes
exactly as one made by `nu-keras report`.

`render_record` is the whole of it (what the public API's `publish` calls); the render stage (pipeline.py)
calls its two halves, `draw_charts` and `write_pages`, so that it can reuse the charts of an earlier run
when only the templates changed.
"""

from __future__ import annotations

import logging
import multiprocessing.pool
import time
from pathlib import Path

from nu_keras import charts, explore, pages, workers
from nu_keras.config import PROJECT_ROOT
from nu_keras.record import Measurements

log = logging.getLogger(__name__)

TEMPLATES = PROJECT_ROOT / "report_templates"  # the report's own templates (`--templates` replaces them)


def render_record(
    record: Measurements,
    pages_dir: Path,
    *,
    examples: int,
    templates: Path | None = None,
    sweep: dict | None = None,
    pool: multiprocessing.pool.Pool | None = None,
) -> int:
    """Draw every chart and write every page of `record` into `pages_dir` (created if need be); returns how
    many pages were written.

    `examples`: how many images each class page shows (at most the record's `per_class.examples`);
    `templates`: a folder of templates in place of the report's own; `sweep`: sweep.json's content, for the
    Robustness page (only when it describes this record's network); `pool`: chart workers
    (`workers.early_pool`), else some are started for the drawing and ended after it.
    """
    draw_charts(record, Path(pages_dir), examples=examples, sweep=sweep, pool=pool)
    return write_pages(record, Path(pages_dir), examples=examples, templates=templates, sweep=sweep)


def draw_charts(
    record: Measurements,
    pages_dir: Path,
    *,
    examples: int,
    sweep: dict | None = None,
    pool: multiprocessing.pool.Pool | None = None,
) -> int:
    """Every figure `charts.chart_names` names, under `pages_dir`/img; returns how many were drawn."""
    started = time.perf_counter()
    if pool is not None:
        count = charts.render_all(record, examples, pages_dir, sweep, pool)
    else:
        with workers.chart_pool(len(charts.chart_tasks(record, examples, pages_dir, sweep))) as started_pool:
            count = charts.render_all(record, examples, pages_dir, sweep, started_pool)
    log.info("rendered %d charts in %.1f s", count, time.perf_counter() - started)
    return count


def write_pages(
    record: Measurements,
    pages_dir: Path,
    *,
    examples: int,
    templates: Path | None = None,
    sweep: dict | None = None,
) -> int:
    """The Explore data script (where the record carries a network the page can run) and every Markdown
    page; returns how many pages were written."""
    summary, left_out = export_explore(record, pages_dir, examples)
    names = charts.chart_names(record, sweep)
    folder = templates or TEMPLATES
    return pages.render_all(
        record, examples, folder, pages_dir, sweep, summary, charts=names, explore_left_out=left_out
    )


def export_explore(record: Measurements, folder: Path, examples: int) -> tuple[dict | None, str | None]:
    """The Explore page's data script (the record's network, its picker images) in `folder`: its summary,
    and why there is none.

    No summary, and no Explore page, where the browser cannot run the model exactly (the record carries no
    network; its subject says why) or where the page would break its size budget (the reason is returned,
    and Home prints it).
    """
    if record.network is None:
        log.info("no Explore page: %s", record.provenance.subject.get("explore_reason"))
        return None, None
    reason = explore.record_left_out_because(record)
    if reason:
        log.info("no Explore page: %s", reason)
        return None, reason
    summary = explore.write_script(folder / explore.SCRIPT_NAME, explore.record_explore_data(record, examples))
    log.info("explore data: %d test images, %d bytes", summary["images"], summary["bytes"])
    return summary, None

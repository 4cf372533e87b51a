"""`--figure-format svg`: every chart is drawn as SVG, the pages name the .svg files, and the site holds
exactly those figures; the same record gives the same SVG bytes."""

from __future__ import annotations

import re

import pytest
from helpers import assert_one_line_error, cli
from page_fixtures import paper_record

from nu_keras import charts, pipeline, render, site
from nu_keras.config import RunConfig


@pytest.fixture(scope="module")
def svg_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("svg")
    record, _ = paper_record()
    render.render_record(record, root / "pages", examples=3, figure_format="svg")
    site.build(RunConfig(pages_dir=root / "pages", site_dir=root / "site"))
    return root, record


def test_a_site_built_with_svg_has_only_svg_figures_and_every_one_referenced_exists(svg_site):
    root, record = svg_site
    names = charts.chart_names(record, None, "svg")
    expected = {names["overview"][k] for k in names["overview"]}
    expected |= {path for group in ("classes", "units") for entry in names[group] for path in entry.values()}
    figures = {p.relative_to(root / "site").as_posix() for p in (root / "site" / "img").iterdir()}
    assert figures == expected and len(figures) > 40
    referenced = set()
    for page in set((root / "site").rglob("*.html")) - {root / "site" / "404.html"}:
        for src in re.findall(r'<img[^>]*src="([^"#?]+)"', page.read_text(encoding="utf-8")):
            assert (page.parent / src).resolve().is_file(), f"{page}: {src}"
            referenced.add((page.parent / src).resolve().relative_to((root / "site").resolve()).as_posix())
    assert referenced and all(name.endswith(".svg") for name in referenced)
    assert (root / "site" / "img" / "mean-activation.svg").read_text(encoding="utf-8").lstrip().startswith("<?xml")


def test_the_same_record_draws_the_same_svg_bytes(svg_site, tmp_path):
    root, record = svg_site
    render.draw_charts(record, tmp_path, examples=3, figure_format="svg")
    for name in ("img/mean-activation.svg", "img/unit-3-tuning.svg", "img/class-2-examples.svg"):
        assert (tmp_path / name).read_bytes() == (root / "pages" / name).read_bytes(), name


def test_the_figure_format_is_in_the_chart_cache_and_the_render_stage_fingerprint(tmp_path):
    cfg = RunConfig(out=tmp_path / "out", pages_dir=tmp_path / "pages", site_dir=tmp_path / "site")
    svg = cfg.replace(figure_format="svg")
    for stage in ("charts", "render"):
        assert pipeline.fingerprint(stage, cfg) != pipeline.fingerprint(stage, svg), stage
    assert pipeline.fingerprint("analyze", cfg) == pipeline.fingerprint("analyze", svg)


def test_an_unknown_figure_format_is_one_line():
    assert_one_line_error(cli(["render", "--figure-format", "gif"]), "--figure-format", "invalid choice")

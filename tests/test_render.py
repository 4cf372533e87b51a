"""Publishing reads the measurement record only: no module of the publishing side imports the analysis, the
record survives its JSON unchanged, and a record read back from JSON publishes the same site, byte for byte."""

from __future__ import annotations

import json

import pytest
from page_fixtures import paper_record, user_conv_record

from nu_keras import cache, pipeline, render
from nu_keras.config import RunConfig
from nu_keras.record import Measurements, same

PUBLISHING = ("render", "pages", "charts", "explore", "statements", "site", "record", "stack", "names", "measures")
ANALYSING = {"analysis", "robustness", "sweep", "dynamics"}  # the measuring side: the record is its only output


def analysis_reached(modules: set[str]) -> set[str]:
    return {m for m in modules if m.split(".")[0] in ANALYSING}


def test_no_module_of_the_publishing_side_imports_the_analysis():
    reached = cache.module_closure(set(PUBLISHING))
    assert {"render", "pages", "charts", "charts.units", "explore", "statements", "record"} <= reached
    assert not analysis_reached(reached), analysis_reached(reached)


def test_the_render_stage_reaches_no_analysis_module():
    stage = pipeline.BY_NAME["render"]
    reached = cache.stage_modules(stage.code)
    assert "render" in reached and not analysis_reached(reached), analysis_reached(reached)


def test_the_guard_sees_an_import_of_the_analysis_anywhere_in_a_function():
    source = "def draw():\n    from nu_keras.robustness import verdict\n    return verdict\n"
    assert analysis_reached(set(cache.source_imports(source, cache.PACKAGE))) == {"robustness"}


def test_the_render_stage_fingerprint_reads_metrics_and_sweep_not_activations_weights_or_data(tmp_path):
    cfg = RunConfig(out=tmp_path / "out", pages_dir=tmp_path / "pages", site_dir=tmp_path / "site")
    assert set(pipeline.BY_NAME["render"].inputs(cfg)) == {"metrics", "sweep", "templates"}
    assert set(pipeline.fingerprint("charts", cfg)["inputs"]) == {"metrics", "sweep"}


@pytest.mark.parametrize("build", [paper_record, user_conv_record], ids=["paper", "user-conv"])
def test_a_record_survives_its_json_text(build):
    record, _ = build()
    text = json.dumps(record.to_json(), allow_nan=True)
    again = Measurements.from_json(json.loads(text))
    assert same(record, again)
    assert again.images.pixels.dtype == record.images.pixels.dtype and again.images.pixels.shape == (
        record.images.pixels.shape
    )


def _files(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_record_and_its_json_round_trip_publish_the_same_site_byte_for_byte(tmp_path):
    record, _ = paper_record()
    again = Measurements.from_json(json.loads(json.dumps(record.to_json())))
    written = [render.render_record(r, tmp_path / name, examples=3) for r, name in ((record, "a"), (again, "b"))]
    first, second = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert written[0] == written[1] > 20
    assert "explore-data.js" in first and "img/unit-3-tuning.png" in first and "digits/digit-3.md" in first
    assert first.keys() == second.keys()
    assert [name for name in first if first[name] != second[name]] == []


def test_the_charts_are_handed_their_pool_and_import_no_worker_module():
    """The chart pool is an argument (`charts.render_all(..., pool)`), not a process-wide global: the figure
    code imports nothing of workers.py, whose workers import the figure code by name."""
    reached = cache.module_closure({"charts"})
    assert "workers" not in reached and "pipeline" not in reached, reached


def test_the_render_stage_publishes_metrics_json_alone(tmp_path):
    """No activations.npz, weights.npz or data set anywhere (the data path does not exist): the render stage
    reads metrics.json and writes the whole pages folder, Explore script included."""
    from nu_keras import artifacts

    record, _ = paper_record()
    cfg = RunConfig(out=tmp_path / "out", pages_dir=tmp_path / "pages", data=tmp_path / "no-such-data.npz")
    artifacts.write_json(artifacts.paths(cfg).metrics, record.to_json())
    render.run(cfg)
    written = {str(p.relative_to(cfg.pages_dir)) for p in cfg.pages_dir.rglob("*") if p.is_file()}
    assert {"index.md", "explore-data.js", "img/unit-0-tuning.png", "digits/digit-9.md"} <= written
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["metrics.json", "stages.json"]

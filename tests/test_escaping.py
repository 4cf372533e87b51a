"""Strings nu-keras did not compute reach the pages as text: no tag, link, image or attribute of theirs
survives into the HTML, and user templates cannot reach Python."""

from __future__ import annotations

import copy
import itertools
from html.parser import HTMLParser
from pathlib import Path

import markdown
import pytest
from page_fixtures import paper_record, user_record
from test_robustness import tiny_sweep  # noqa: F401  (a fixture: a real sweep of two tiny networks)

from nu_keras import pages
from nu_keras.charts import chart_names
from nu_keras.config import PROJECT_ROOT
from nu_keras.errors import NuKerasError
from nu_keras.record import Measurements

HOSTILE = [
    "<script>alert(1)</script>",
    "[click](javascript:alert(1))",
    "![t](http://example.invalid/x.png)",
    '<img src=x onerror="alert(1)">',
    '{: onclick="alert(1)" }',
    "<http://example.invalid>",
    "x\n\n# injected heading\n\n<script>alert(2)</script>",
    "&lt;script&gt;alert(3)&lt;/script&gt;",
    "`code` *em* __strong__ | pipe | ~~del~~",
    "\\[escaped\\](javascript:alert(4))",
]
EXTENSIONS = ["tables", "attr_list", "md_in_html", "admonition", "toc"]  # as mkdocs.yml


def replace_strings(value, strings):
    """Every string value in a JSON-like tree replaced by the next of `strings` (keys kept; arrays, which the
    record's JSON writes as {"dtype", "shape", "base64"}, kept whole)."""
    if isinstance(value, str):
        return next(strings)
    if isinstance(value, dict) and "base64" in value:
        return value
    if isinstance(value, dict):
        return {key: replace_strings(v, strings) for key, v in value.items()}
    if isinstance(value, list):
        return [replace_strings(v, strings) for v in value]
    return value


KINDS = {"dataset": ("name", "pixels"), "subject": ("kind", "layer_kind")}  # choices of ours, not free text


def with_strings(metrics: dict, sweep: dict, strings: list[str]) -> tuple[dict, dict]:
    """The run's record (as its JSON) and sweep with every string field (and some keys pages list) set to
    `strings`, class names, layer and model names included; only the kinds the pages branch on are kept."""
    cycle = itertools.cycle(strings)
    original = metrics["provenance"]
    metrics, sweep = replace_strings(copy.deepcopy(metrics), cycle), replace_strings(copy.deepcopy(sweep), cycle)
    provenance = metrics["provenance"]
    for table in (provenance["config"], provenance["versions"], sweep["provenance"]["versions"]):
        table.update({s: next(cycle) for s in strings})  # printed by key too (the Run page's tables)
    for part, keys in KINDS.items():
        provenance[part] |= {key: original[part][key] for key in keys}
    return metrics, sweep


def _anchorless(name: str, value: str | None) -> tuple:
    """A heading's id, a link to it and an image's alt text are made from text (a class name, a data set's title):
    text, not markup, so skeletons compare them as placeholders."""
    if name in ("id", "alt") or (name == "href" and (value or "").startswith("#")):
        return name, "#anchor"
    return name, value


class Skeleton(HTMLParser):
    """The markup of a page without its text: every tag with its attributes, in order."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, tuple(sorted(_anchorless(name, value) for name, value in attrs))))

    def handle_data(self, data):
        self.text.append(data)


def render_html(record: Measurements | dict, sweep: dict | None, out: Path) -> dict[str, Skeleton]:
    """The pages of a record (or of its JSON, strings and all), parsed."""
    record = record if isinstance(record, Measurements) else Measurements.from_json(record)
    pages.render_all(record, 3, PROJECT_ROOT / "report_templates", out, sweep, charts=chart_names(record, sweep))
    parsed = {}
    for page in sorted(out.rglob("*.md")):
        skeleton = Skeleton()
        skeleton.feed(markdown.markdown(page.read_text(), extensions=EXTENSIONS))
        parsed[str(page.relative_to(out))] = skeleton
    return parsed


@pytest.fixture(scope="module")
def run_and_sweep(tiny_sweep):  # noqa: F811
    sweep, _ = tiny_sweep
    return paper_record()[0].to_json(), sweep


def test_hostile_strings_in_every_field_add_no_markup_to_any_page(run_and_sweep, tmp_path):
    metrics, sweep = run_and_sweep
    clean = render_html(*with_strings(metrics, sweep, [f"plain{i}" for i in range(len(HOSTILE))]), tmp_path / "a")
    hostile = render_html(*with_strings(metrics, sweep, HOSTILE), tmp_path / "b")
    assert clean.keys() == hostile.keys() and "robustness.md" in hostile and "run.md" in hostile
    for page in clean:
        assert hostile[page].tags == clean[page].tags, page  # not one tag, link, image or attribute more
    shown = "".join(hostile["run.md"].text)
    assert "<script>alert(1)</script>" in shown and "[click](javascript:alert(1))" in shown  # as text


def test_escaped_markup_reads_the_same_on_the_page():
    html = markdown.markdown(f"| a |\n|---|\n| {pages.untrusted('a|b *c* [d](e) <f> &g;')} |", extensions=EXTENSIONS)
    skeleton = Skeleton()
    skeleton.feed(html)
    assert "a|b *c* [d](e) <f> &g;" in skeleton.text  # one cell, all text
    assert [tag for tag, _ in skeleton.tags].count("td") == 1


SANDBOX_ESCAPES = [
    "{{ cycler.__init__.__globals__.os.popen('touch PWNED').read() }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ lipsum.__globals__['os'].system('touch PWNED') }}",
]


@pytest.mark.parametrize("payload", SANDBOX_ESCAPES)
def test_user_templates_run_sandboxed(run_and_sweep, tmp_path, payload, monkeypatch):
    monkeypatch.chdir(tmp_path)
    templates = tmp_path / "templates"
    templates.mkdir()
    for template in (PROJECT_ROOT / "report_templates").glob("*.j2"):
        (templates / template.name).write_text(template.read_text())
    (templates / "run.md.j2").write_text(payload)
    with pytest.raises(NuKerasError, match="run.md.j2"):
        record = Measurements.from_json(run_and_sweep[0])
        pages.render_all(record, 3, templates, tmp_path / "out", charts=chart_names(record, None))
    assert not (tmp_path / "PWNED").exists()


def test_templates_hash_reads_template_files_only(tmp_path):
    import os

    from nu_keras import cache

    (tmp_path / "page.md.j2").write_text("# {{ m.test_accuracy }}")
    os.mkfifo(tmp_path / "a-fifo")  # reading it would block forever
    (tmp_path / "broken.j2").symlink_to(tmp_path / "absent")
    first = cache.templates_hash(tmp_path)
    (tmp_path / "notes.txt").write_text("not a template")
    assert cache.templates_hash(tmp_path) == first
    (tmp_path / "page.md.j2").write_text("# changed")
    assert cache.templates_hash(tmp_path) != first


def test_hostile_class_layer_and_model_names_add_no_markup_to_a_user_report(tmp_path):
    """A user's class names, layer, model and file names are printed as text, in prose, tables and links."""
    from page_fixtures import HOSTILE_CLASSES, HOSTILE_LAYER

    hostile = user_record(HOSTILE_CLASSES, 37, conv=True, signed=True, output_weights=False)
    assert hostile.provenance.subject["layer"] == HOSTILE_LAYER
    plain = [f"plain{i}" for i in range(4)]
    clean = user_record(
        plain,
        37,
        conv=True,
        signed=True,
        output_weights=False,
        dataset={"class_names": plain, "title": "plain.npz"},
        subject={"layer": "plainlayer", "model": "plain.keras", "model_name": "plainmodel"},
    )
    hostile_pages = render_html(hostile, None, tmp_path / "hostile")
    clean_pages = render_html(clean, None, tmp_path / "clean")
    assert clean_pages.keys() == hostile_pages.keys() and "classes/class-0.md" in hostile_pages
    for page in clean_pages:
        assert hostile_pages[page].tags == clean_pages[page].tags, page
    shown = "".join(hostile_pages["index.md"].text)
    assert all(name in shown for name in HOSTILE_CLASSES)  # read as written

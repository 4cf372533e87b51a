"""The site name and nav that `render` writes beside the pages (pages/.nav.json): an edited or cut-short
file stops `build` in one line that says to render again, and the site already built is kept."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import assert_one_line_error, cli, fingerprint
from page_fixtures import paper_record, write_blank_charts

from nu_keras import pages


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """Rendered pages (blank charts) and the site built from them, under one folder."""
    root = tmp_path_factory.mktemp("nav")
    metrics, names = paper_record()
    write_blank_charts(names, root / "pages")
    pages.render_all(metrics, 1, Path(pages.__file__).parents[1] / "report_templates", root / "pages", charts=names)
    assert cli(build_argv(root))[0] == 0
    return root


def build_argv(root: Path) -> list[str]:
    return ["build", "--out", str(root / "out"), "--pages-dir", str(root / "pages"), "--site-dir", str(root / "site")]


def cut_in_half(text: str) -> str:
    return text[: len(text) // 2]


@pytest.mark.parametrize(
    "damage",
    [
        cut_in_half,
        lambda text: "",
        lambda text: "null",
        lambda text: "[]",
        lambda text: json.dumps({"site_name": "x"}),
        lambda text: json.dumps({"site_name": 3, "nav": []}),
        lambda text: json.dumps({"site_name": "x", "nav": {"Digits": []}}),
        lambda text: json.dumps({"site_name": "x", "nav": [{"Digits": 3}]}),
        lambda text: json.dumps({"site_name": "x", "nav": [{"a": "a.md", "b": "b.md"}]}),
        lambda text: json.dumps({"site_name": "x", "nav": [{"Secret": "/etc/passwd"}]}),
        lambda text: json.dumps({"site_name": "x", "nav": [{"Secret": "../../etc/passwd"}]}),
    ],
    ids=["cut short", "empty", "null", "a list", "no nav", "a number as name", "nav not a list"]
    + ["a number as page", "two pages in one entry", "an absolute page", "a page outside"],
)
def test_a_damaged_nav_file_is_one_line_saying_to_render_again_and_keeps_the_site(built, tmp_path, damage):
    root = tmp_path / "copy"
    shutil.copytree(built, root, symlinks=True)
    nav = root / "pages" / pages.NAV_FILE
    nav.write_text(damage(nav.read_text(encoding="utf-8")), encoding="utf-8")
    before = fingerprint(root / "site")
    assert_one_line_error(cli(build_argv(root)), "is damaged", "run `nu-keras render` again")
    assert fingerprint(root / "site") == before


def test_a_nav_file_that_is_not_utf8_is_one_line_saying_to_render_again(built, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(built, root, symlinks=True)
    (root / "pages" / pages.NAV_FILE).write_bytes(b'{"site_name": "\xff"}')
    assert_one_line_error(cli(build_argv(root)), "is damaged", "run `nu-keras render` again")


def test_the_nav_file_render_writes_builds(built):
    assert (built / "site" / "index.html").is_file()

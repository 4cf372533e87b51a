"""A write that does not fit (a full disk or quota, a file too large) ends in one line that names the path
being written: the destination of a copy, or the folder or artifact being filled, never a source file of
the theme or of the installed packages."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import pytest
from helpers import cli
from page_fixtures import paper_record, write_blank_charts

from nu_keras import artifacts, pages

TEMPLATES = Path(pages.__file__).parents[1] / "report_templates"


@pytest.fixture
def rendered(tmp_path) -> Path:
    """Rendered pages (blank charts) under tmp_path/pages, not yet built."""
    metrics, names = paper_record()
    write_blank_charts(names, tmp_path / "pages")
    pages.render_all(metrics, 1, TEMPLATES, tmp_path / "pages", charts=names)
    return tmp_path


def build(root: Path) -> tuple[int, str]:
    code, _, err = cli(
        ["build", "--out", str(root / "a"), "--pages-dir", str(root / "pages"), "--site-dir", str(root / "site")]
    )
    return code, err


def named_path(err: str) -> Path:
    """The path in parentheses of the one error line."""
    (line,) = err.strip().splitlines()
    match = re.fullmatch(r"nu-keras: error: (.+) \((.+)\); .*", line)
    assert match, err
    return Path(match.group(2))


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_copy_that_does_not_fit_names_its_destination_in_the_site_folder(rendered, monkeypatch):
    monkeypatch.setattr(os, "sendfile", no_space)  # what the kernel answers MkDocs copying its theme files
    status, err = build(rendered)
    assert status == 1 and "No space left on device" in err and "Traceback" not in err, err
    written = named_path(err)  # the site being built beside its folder, not a page's or a theme's file
    assert written.is_relative_to(rendered) and not written.is_relative_to(rendered / "pages"), err


def test_a_page_that_does_not_fit_names_the_site_folder(rendered, monkeypatch):
    from mkdocs import utils

    monkeypatch.setattr(utils, "write_file", no_space)  # a write to an open file: the error names no path
    status, err = build(rendered)
    assert status == 1 and "No space left on device" in err, err
    assert named_path(err) == rendered / "site"


def test_an_artifact_too_large_names_the_artifact(tmp_path, monkeypatch):
    def too_large(*args, **kwargs):
        raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))

    monkeypatch.setattr(Path, "write_text", too_large)
    with pytest.raises(OSError) as raised:
        artifacts.write_json(tmp_path / "metrics.json", {"a": 1})
    assert raised.value.filename == str(tmp_path / "metrics.json")
    assert os.listdir(tmp_path) == []

"""From a checkout (and an editable install) nu_keras reads the checkout's own templates, mkdocs.yml and theme;
tests/test_wheel.py checks the wheel's copies. No other module looks for them through the project root."""

from __future__ import annotations

import re

from conftest import REPO

from nu_keras import resources, site
from nu_keras.config import RunConfig


def test_a_checkout_reads_its_own_templates_mkdocs_yml_and_theme():
    assert resources.checkout_root() == REPO
    assert resources.templates_dir() == REPO / "report_templates"
    assert resources.mkdocs_config() == REPO / "mkdocs.yml"
    assert resources.theme_dir() == REPO / "docs" / "overrides"


def test_templates_flag_replaces_the_shipped_templates(tmp_path):
    assert RunConfig().templates_dir == resources.templates_dir()
    assert RunConfig(templates=tmp_path).templates_dir == tmp_path


def test_the_site_takes_its_theme_overrides_from_the_resources_not_from_beside_mkdocs_yml():
    theme = site.theme_settings()
    assert theme["custom_dir"] == str(resources.theme_dir())
    assert theme["name"] == "material"  # the rest of mkdocs.yml's theme is kept


def test_no_module_finds_the_resources_through_the_project_root():
    """`project_root` is only for showing paths and the bench: a wheel has none."""
    for module in (REPO / "nu_keras").rglob("*.py"):
        text = module.read_text(encoding="utf-8")
        assert not re.search(r"(project_root|PROJECT_ROOT)\s*/", text), module.name

"""Build the MkDocs site into a temporary folder and swap it in only when the strict build succeeded."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path, PurePosixPath

from nu_keras import folders, resources
from nu_keras.config import RunConfig
from nu_keras.errors import NuKerasError

log = logging.getLogger(__name__)


def run(cfg: RunConfig) -> None:
    """The build stage: the pages folder -> the static site in cfg.site_dir."""
    log.info("site built: %s", (build(cfg) / "index.html").resolve())


def build(cfg: RunConfig) -> Path:
    """`mkdocs build --strict` of cfg.pages_dir into cfg.site_dir; the old site survives a failure."""
    from mkdocs.commands.build import build as mkdocs_build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException

    pages = Path(cfg.pages_dir).resolve()
    if not (pages / "index.md").exists():
        raise NuKerasError(f"{pages} holds no pages; run `nu-keras render` first")
    target = Path(os.path.abspath(cfg.site_dir))  # not resolved: a symlinked site folder stays a symlink
    staging = folders.staging_dir(target)
    try:
        config = load_config(
            str(resources.mkdocs_config()),
            docs_dir=str(pages),
            site_dir=str(staging),
            theme=theme_settings(),
            strict=True,
        )
        generated = generated_settings(pages)
        config["site_name"] = generated.get("site_name", config["site_name"])
        config["nav"] = existing_nav(composed_nav(config["nav"], generated.get("nav", [])), pages)
        _quiet_mkdocs()
        mkdocs_build(config)
        folders.replace_folder(staging, target, "site")
    except MkDocsException as exc:
        raise NuKerasError(f"mkdocs build --strict failed: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def theme_settings() -> dict:
    """mkdocs.yml's theme with its `custom_dir` pointed at the theme overrides wherever nu_keras is installed.

    mkdocs.yml names them as the checkout holds them (docs/overrides, beside it), which a wheel does not."""
    from mkdocs.utils import yaml_load

    with open(resources.mkdocs_config(), "rb") as config:
        theme = yaml_load(config)["theme"]
    return theme | {"custom_dir": str(resources.theme_dir())}


def configured_nav() -> list:
    """mkdocs.yml's nav: the report's pages in their reading order (`build` adds the generated sections)."""
    from mkdocs.utils import yaml_load

    with open(resources.mkdocs_config(), "rb") as config:
        return yaml_load(config)["nav"]


GENERATED_AFTER = "method.md"  # the class and unit sections follow this page of mkdocs.yml's nav


def generated_settings(docs_dir: Path) -> dict:
    """The site name and nav sections `pages.render_all` wrote beside the pages; {} for an older pages folder.

    The file sits among the pages, where it can be edited or cut short: anything but what `render` writes
    is refused in one line that says to render again, before MkDocs reads it."""
    from nu_keras.pages import NAV_FILE

    generated = docs_dir / NAV_FILE
    if not generated.exists():
        return {}
    try:
        settings = json.loads(generated.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        settings = None
    if not _is_settings(settings):
        raise NuKerasError(f"{generated} is damaged (not what `nu-keras render` writes); run `nu-keras render` again")
    return settings


def _is_settings(settings: object) -> bool:
    """{"site_name": text, "nav": nav}, as `pages.site_settings` writes them."""
    return (
        isinstance(settings, dict)
        and set(settings) == {"site_name", "nav"}
        and isinstance(settings["site_name"], str)
        and _is_nav(settings["nav"])
    )


def _is_nav(nav: object) -> bool:
    """MkDocs' nav form: a list of one-entry {title: page} or {title: nav}, pages relative inside the folder."""
    if not isinstance(nav, list):
        return False
    for entry in nav:
        if not (isinstance(entry, dict) and len(entry) == 1 and all(isinstance(k, str) for k in entry)):
            return False
        (target,) = entry.values()
        if not (_is_nav(target) or (isinstance(target, str) and _is_page_inside(target))):
            return False
    return True


def _is_page_inside(target: str) -> bool:
    path = PurePosixPath(target)
    return bool(target) and not path.is_absolute() and ".." not in path.parts and "\\" not in target


def composed_nav(nav: list, sections: list) -> list:
    """mkdocs.yml's nav with the generated class and unit sections inserted after the Method page:
    [Home, Findings, Explore, Method, Digits|Classes, Neurons|Units|Channels, Robustness, Glossary, Run]."""
    at = next((i + 1 for i, entry in enumerate(nav) if GENERATED_AFTER in entry.values()), len(nav))
    return nav[:at] + sections + nav[at:]


def existing_nav(nav: list, docs_dir: Path) -> list:
    """The nav of mkdocs.yml less the pages this run did not produce (the Robustness page needs a sweep)."""
    kept = []
    for entry in nav:
        ((title, target),) = entry.items()
        if isinstance(target, list):
            children = existing_nav(target, docs_dir)
            if children:
                kept.append({title: children})
        elif (docs_dir / target).exists():
            kept.append(entry)
    return kept


def _quiet_mkdocs() -> None:
    """MkDocs logs every page at INFO; keep its warnings, which strict mode turns into a failure."""
    logging.getLogger("mkdocs").setLevel(logging.WARNING)

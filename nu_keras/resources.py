"""Where the files a report is built from live: the page templates, mkdocs.yml and the theme overrides.

The checkout keeps them at its top (report_templates/, mkdocs.yml, docs/overrides/), where a checkout's
`make report` and an editable install read them. A wheel has no checkout: setup.py ships them inside the
package (nu_keras/report_templates/, nu_keras/mkdocs.yml, nu_keras/theme/). Both are found from the package
itself, through importlib.resources, so no other module needs to know where the project is.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from nu_keras.errors import NuKerasError

# Each resource's name inside an installed package -> its place in the checkout (setup.py ships the same).
CHECKOUT_PLACES = {"report_templates": "report_templates", "mkdocs.yml": "mkdocs.yml", "theme": "docs/overrides"}


def templates_dir() -> Path:
    """The Jinja2 page templates (`--templates` replaces them)."""
    return _resource("report_templates")


def mkdocs_config() -> Path:
    """mkdocs.yml: the site's theme, plugins, Markdown extensions and the fixed part of its nav."""
    return _resource("mkdocs.yml")


def theme_dir() -> Path:
    """The theme overrides (MkDocs' `custom_dir`): accessibility fixes, the stylesheets and the Explore scripts."""
    return _resource("theme")


def checkout_root() -> Path | None:
    """The source checkout this package runs from, or None when it is installed from a wheel.

    Only for what is about the checkout itself (shortening the paths the pages print, the bench's
    `git archive`), never for finding the resources above."""
    root = _package().parent
    return root if (root / "pyproject.toml").is_file() and (root / CHECKOUT_PLACES["mkdocs.yml"]).is_file() else None


def _resource(name: str) -> Path:
    """The shipped copy inside the package (a wheel), else the checkout's own (a checkout, an editable install)."""
    package = _package()
    shipped = package / name
    if shipped.exists():
        return shipped
    in_checkout = package.parent / CHECKOUT_PLACES[name]
    if checkout_root() is not None and in_checkout.exists():
        return in_checkout
    raise NuKerasError(f"nu_keras is installed without its {name} ({shipped} is missing); reinstall nu_keras")


def _package() -> Path:
    """The folder of the nu_keras package. MkDocs and Jinja2 read these files by path, so the package must be
    a folder on disk (pip always installs it so), not inside a zip archive."""
    package = files("nu_keras")
    if not isinstance(package, Path):
        raise NuKerasError(f"nu_keras is imported from {package}, not a folder; install it with pip")
    return package

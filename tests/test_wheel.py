"""The wheel, installed into a fresh virtual environment, publishes a complete report with no checkout around.

The wheel is built from this checkout (`pip wheel --no-build-isolation`: no network) and installed into a new
venv that sees this venv's dependencies through a .pth file but not nu_keras itself, which it gets only from
the wheel. Each report runs in an empty folder outside the checkout with the installed `nu-keras` script: a
user's small Dense model on its own data, and the paper's network on real MNIST (one epoch, two seeds).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

pytestmark = pytest.mark.e2e  # trains on real MNIST

# What the wheel must hold besides nu_keras's own modules: the charts, and what nu_keras/resources.py finds.
SHIPPED = [
    "nu_keras/charts/__init__.py",
    "nu_keras/charts/units.py",
    "nu_keras/report_templates/_macros.md.j2",
    "nu_keras/report_templates/index.md.j2",
    "nu_keras/mkdocs.yml",
    "nu_keras/theme/main.html",
    "nu_keras/theme/assets/javascripts/explore.js",
    "nu_keras/theme/assets/javascripts/sortable.js",
    "nu_keras/theme/assets/stylesheets/explore.css",
]


def run(argv: list, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """A command with no PYTHONPATH (nothing of the checkout reaches it), failing the test on a non-zero exit."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{argv} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", REPO, "-w", dist], REPO)
    (built,) = dist.glob("nu_keras-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(tmp_path_factory, wheel) -> Path:
    """A new venv holding the wheel; this venv's site-packages reach it by a .pth line, which adds the folder
    to sys.path but runs none of its own .pth files (the editable install's finder stays out)."""
    root = tmp_path_factory.mktemp("venv") / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", root], root.parent)
    python = root / "bin" / "python"
    site_packages = Path(
        run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], root).stdout.strip()
    )
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site_packages / "dependencies.pth").write_text("".join(f"{path}\n" for path in sorted(ours)))
    install = [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel]
    run(install, root.parent)
    return root


def test_the_wheel_holds_the_charts_templates_mkdocs_yml_and_theme(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert [name for name in SHIPPED if name not in names] == []
    templates = {p.name for p in (REPO / "report_templates").iterdir()}
    assert {Path(n).name for n in names if n.startswith("nu_keras/report_templates/")} == templates
    theme = {p.relative_to(REPO / "docs" / "overrides").as_posix() for p in (REPO / "docs" / "overrides").rglob("*")}
    assert {n.removeprefix("nu_keras/theme/") for n in names if n.startswith("nu_keras/theme/")} == {
        t for t in theme if (REPO / "docs" / "overrides" / t).is_file()
    }


def test_the_venv_imports_nu_keras_from_the_wheel_only(venv, tmp_path):
    code = "import nu_keras, nu_keras.resources as r; print(nu_keras.__file__); print(r.checkout_root())"
    file, root = run([venv / "bin" / "python", "-c", code], tmp_path).stdout.split()
    assert Path(file).is_relative_to(venv) and root == "None"


def user_files(folder: Path) -> tuple[Path, Path]:
    """my.keras (a 784-8-10 Dense network, trained a few steps) and my.npz (random images, six classes)."""
    import keras

    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, size=(600, 28, 28), dtype=np.uint8),
        "y_train": np.arange(600, dtype=np.uint8) % 6,
        "x_test": rng.integers(0, 256, size=(120, 28, 28), dtype=np.uint8),
        "y_test": np.arange(120, dtype=np.uint8) % 6,
    }
    np.savez(folder / "my.npz", **arrays)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((784,), name="image")
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(6, activation="softmax", name="out")(hidden))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(arrays["x_train"].reshape(-1, 784) / 255.0, arrays["y_train"], epochs=1, verbose=0)
    model.save(folder / "my.keras")
    return folder / "my.keras", folder / "my.npz"


def check_site(site: Path, class_pages: str, unit_pages: str, classes: int, units: int) -> None:
    """Every page the report promises is there, and every image and script a page names exists."""
    assert (site / "index.html").is_file()
    assert len(list(site.glob(class_pages))) == classes and len(list(site.glob(unit_pages))) == units
    for page in set(site.rglob("*.html")) - {site / "404.html"}:  # MkDocs' 404 page names root paths (/assets/...)
        html = page.read_text(encoding="utf-8")
        for src in re.findall(r'<(?:img|script)[^>]*src="([^"#?]+)', html):
            if not src.startswith(("http:", "https:")):
                assert (page.parent / src).resolve().is_file(), f"{page.relative_to(site)}: {src}"
        assert str(REPO) not in html, f"{page.relative_to(site)} names the checkout"


def explore_scripts(site: Path) -> list[str]:
    return re.findall(r'<script[^>]*src="([^"]*explore[^"]*)"', (site / "explore.html").read_text(encoding="utf-8"))


def test_a_users_model_reports_from_an_empty_folder(venv, tmp_path):
    model, data = user_files(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    done = run([venv / "bin" / "nu-keras", "report", "--model", model, "--layer", "hidden", "--data", data], work)
    site = work / "nu-keras-report" / "site"  # outside a checkout, every output goes under one folder
    assert f"site: {site / 'index.html'}" in done.stdout
    assert sorted(p.name for p in work.iterdir()) == ["nu-keras-report"]
    check_site(site, "classes/class-*.html", "units/unit-*.html", classes=6, units=8)
    assert (site / "assets" / "javascripts" / "sortable.js").is_file()  # from the shipped theme


def test_the_papers_network_reports_from_an_empty_folder(venv, tmp_path):
    done = run([venv / "bin" / "nu-keras", "report", "--epochs", "1", "--seeds", "2"], tmp_path)
    assert re.search(r"^test accuracy: 0\.\d{4}$", done.stdout, re.M)
    site = tmp_path / "nu-keras-report" / "site"
    check_site(site, "digits/digit-*.html", "neurons/neuron-*.html", classes=10, units=10)
    scripts = explore_scripts(site)
    assert any(s.endswith("explore.js") for s in scripts) and any("explore-data" in s for s in scripts), scripts
    assert (site / "assets" / "stylesheets" / "explore.css").is_file()

"""Run outside the checkout, every output goes under one folder: ./nu-keras-report, or --out named alone;
in the checkout the folders stay where `make report` and MkDocs expect them. A user's report run from an
empty folder (svg figures), then published to a local bare repository from the same folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import assert_one_line_error, cli, fingerprint
from keras import layers

import nu_keras
from nu_keras.config import output_places, runs_in_checkout


def test_in_the_checkout_the_folders_are_the_checkouts_own():
    assert output_places({}, True) == (
        {"out": Path("artifacts"), "pages_dir": Path("docs/generated"), "site_dir": Path("site")},
        None,
    )
    assert output_places({"out": Path("a")}, True)[0]["out"] == Path("a")  # --out: the artifacts folder


def test_outside_the_checkout_every_output_goes_under_one_folder():
    report = Path("nu-keras-report")
    expected = {"out": report / "artifacts", "pages_dir": report / "pages", "site_dir": report / "site"}
    assert output_places({}, False) == (expected, report)
    mine = Path("mine")
    assert output_places({"out": mine}, False) == (
        {"out": mine / "artifacts", "pages_dir": mine / "pages", "site_dir": mine / "site"},
        mine,
    )


def test_outside_the_checkout_named_pages_or_site_make_out_the_artifacts_folder_again():
    places, root = output_places({"out": Path("a"), "site_dir": Path("s")}, False)
    assert places == {"out": Path("a"), "pages_dir": Path("nu-keras-report/pages"), "site_dir": Path("s")}
    assert root is None


def test_runs_in_checkout_only_when_standing_in_it(tmp_path, monkeypatch):
    assert not runs_in_checkout(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert not runs_in_checkout()


@pytest.mark.parametrize("out, fragment", [(".", "is the working folder"), ("..", "contains the working folder")])
def test_a_report_folder_that_is_a_protected_place_is_one_line(tmp_path, monkeypatch, out, fragment):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    before = fingerprint(tmp_path)
    assert_one_line_error(cli(["build", "--out", out]), fragment)
    assert fingerprint(tmp_path) == before


def small_user_files(folder: Path) -> tuple[Path, Path]:
    """small.keras (a 784-8-6 Dense network, a few steps trained) and small.npz (random images, six classes)."""
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, size=(300, 28, 28), dtype=np.uint8),
        "y_train": np.arange(300, dtype=np.uint8) % 6,
        "x_test": rng.integers(0, 256, size=(120, 28, 28), dtype=np.uint8),
        "y_test": np.arange(120, dtype=np.uint8) % 6,
    }
    np.savez(folder / "small.npz", **arrays)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((784,), name="image")
    hidden = layers.Dense(8, activation="relu", name="hidden")(inputs)
    model = keras.Model(inputs, layers.Dense(6, activation="softmax", name="out")(hidden))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(arrays["x_train"].reshape(-1, 784) / 255.0, arrays["y_train"], epochs=1, verbose=0)
    model.save(folder / "small.keras")
    return folder / "small.keras", folder / "small.npz"


def run_cli(argv: list, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-m", "nu_keras", *map(str, argv)], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.e2e  # a whole report, in a subprocess
def test_a_report_from_an_empty_folder_lands_in_one_folder_and_publishes(tmp_path):
    model, data = small_user_files(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    flags = ["--model", model, "--layer", "hidden", "--data", data, "--figure-format", "svg"]
    done = run_cli(["report", *flags], work)
    site = work / "nu-keras-report" / "site"
    assert f"site: {site / 'index.html'}" in done.stdout
    assert [p.name for p in work.iterdir()] == ["nu-keras-report"]
    assert {p.name for p in (work / "nu-keras-report").iterdir() if not p.name.startswith(".")} == {
        "artifacts",
        "pages",
        "site",
    }
    assert len(nu_keras.load_run(work / "nu-keras-report").units) == 8  # the API finds the record in it
    figures = list((site / "img").iterdir())
    assert figures and all(p.suffix == ".svg" for p in figures)
    for page in set(site.rglob("*.html")) - {site / "404.html"}:
        for src in re.findall(r'<img[^>]*src="([^"#?]+)"', page.read_text(encoding="utf-8")):
            assert (page.parent / src).resolve().is_file(), f"{page}: {src}"

    subprocess.run(["git", "init", "--bare", "-q", str(tmp_path / "pages.git")], check=True)
    done = run_cli(["publish", "--repo", tmp_path / "pages.git"], work)  # the default site folder
    assert done.stdout.startswith("published: branch gh-pages of")
    listed = subprocess.run(
        ["git", "--git-dir", str(tmp_path / "pages.git"), "ls-tree", "-r", "--name-only", "gh-pages"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "index.html" in listed and ".nojekyll" in listed and "img/mean-activation.svg" in listed

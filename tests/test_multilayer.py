"""Every layer in one run (nu_keras.multilayer): `--layer all` on a small convnet of the Keras example's shape,
trained briefly on MNIST, builds one site with a page set per layer and a cross-layer overview whose numbers
are the layers' records'; a rerun reuses every layer; a list reads just those layers; a folder nu-keras did
not write where a layer's folder goes is refused and left as it was."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import assert_one_line_error, cli, fingerprint, simple_mnist_convnet
from keras import layers

import nu_keras
from nu_keras import multilayer
from nu_keras.record import Measurements

ALL = ["conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1", "dense"]  # flatten: only by name


def test_a_layer_folder_is_its_name_when_plain_and_a_distinct_safe_name_otherwise():
    assert multilayer.folder_name("conv2d_1") == "conv2d_1"
    odd = [multilayer.folder_name(name) for name in ("a/b", "a b", "../x", ".hidden", "é")]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", name) for name in odd)
    assert len(set(odd)) == len(odd)
    assert multilayer.folder_name("a/b") != multilayer.folder_name("a-b")  # "a-b" is plain: itself


def test_a_layers_nav_moves_into_its_folder_and_its_home_is_the_layer_summary():
    nav = [{"Home": "index.md"}, {"Units": [{"Overview": "units/index.md"}, {"Unit 0": "units/unit-0.md"}]}]
    assert multilayer.prefixed(nav, "conv2d") == [
        {"Layer summary": "conv2d/index.md"},
        {"Units": [{"Overview": "conv2d/units/index.md"}, {"Unit 0": "conv2d/units/unit-0.md"}]},
    ]


def test_the_overview_sentences_follow_the_numbers():
    def row(name, readout, eta, share, count, distinct):
        return {"name": name, "readout": readout, "mean_eta_squared": eta, "dominant_share": share} | {
            "dominant_count": count,
            "distinct_dominant": distinct,
        }

    rows = [row("a", 0.4, 0.2, 1.0, 10, 1), row("b", 0.9, None, 0.5, 5, 4), row("c", None, 0.6, 1.0, 10, 7)]
    said = multilayer.overview_sentences(rows)
    assert (said["best_readout"]["name"], said["worst_readout"]["name"], said["most_eta"]["name"]) == ("b", "a", "c")
    assert [r["name"] for r in said["dominant_low"]] == ["b"]
    assert [r["name"] for r in said["dominant_high"]] == ["a", "c"]
    assert [r["name"] for r in said["one_unit_for_all"]] == ["a"]  # ten classes, one unit dominant for all
    alone = multilayer.overview_sentences(rows[:1])  # one layer: nothing to compare
    assert alone["best_readout"] is None and alone["dominant_low"] is None and alone["dominant_high"] is None
    same = multilayer.overview_sentences([rows[0], rows[2]])
    assert same["dominant_high"] is None and len(same["dominant_low"]) == 2  # the same share everywhere


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A convnet shaped like Keras's "Simple MNIST convnet" (8 and 16 channels), trained one epoch on 3,000
    MNIST images, and a data file of those and 500 test images."""
    root = tmp_path_factory.mktemp("multilayer")
    mnist = nu_keras.load_dataset("mnist")
    np.savez(
        root / "small.npz",
        x_train=mnist.x_train[:3000],
        y_train=mnist.y_train[:3000],
        x_test=mnist.x_test[:500],
        y_test=mnist.y_test[:500],
    )
    keras.utils.set_random_seed(0)
    model = simple_mnist_convnet((8, 16), name="small_convnet")
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(mnist.x_train[:3000, ..., None] / 255.0, mnist.y_train[:3000], epochs=1, batch_size=64, verbose=0)
    model.save(root / "convnet.keras")
    return root


def places(root: Path) -> list[str]:
    return ["--out", str(root / "artifacts"), "--pages-dir", str(root / "pages"), "--site-dir", str(root / "site")]


@pytest.fixture(scope="module")
def every_layer(files, tmp_path_factory):
    root = tmp_path_factory.mktemp("every-layer")
    flags = ["--model", str(files / "convnet.keras"), "--data", str(files / "small.npz"), *places(root)]
    code, out, err = cli(["report", "--layer", "all", *flags])
    assert code == 0, err
    return root, flags, out, err


@pytest.mark.e2e
def test_layer_all_builds_one_site_with_every_offered_layer_and_the_overview(every_layer):
    root, _, out, _ = every_layer
    assert f"layers: {', '.join(ALL)}" in out
    site, pages = root / "site", root / "pages"
    nav = json.loads((pages / ".nav.json").read_text())
    assert [next(iter(entry)) for entry in nav["nav"]] == [f"Layer {name}" for name in ALL]
    home = (site / "index.html").read_text()
    for name in ALL:
        assert (site / name / "index.html").is_file() and (site / name / "units" / "unit-0.html").is_file()
        assert f'href="{name}/index.html"' in home
    assert not (site / "flatten").exists()


@pytest.mark.e2e
def test_the_overview_prints_each_layers_numbers_from_its_record(every_layer):
    root = every_layer[0]
    overview = (root / "pages" / "index.md").read_text()
    rows = {line.split("|")[1].strip(): line for line in overview.splitlines() if line.startswith("| [")}
    assert len(rows) == len(ALL)
    for name in ALL:
        record = Measurements.from_json(json.loads((root / "artifacts" / "layers" / name / "metrics.json").read_text()))
        cells = [c.strip() for c in next(v for k, v in rows.items() if f"({name}/index.md)" in k).split("|")[2:-1]]
        assert cells[1] == str(len(record.units))
        assert cells[7] == f"{100 * record.layer.linear_readout_accuracy:.1f}\u00a0%"
        dominant = np.mean([d is not None for d in record.per_class.dominant_unit])
        assert cells[5] == f"{100 * dominant:.0f}\u00a0%"
        assert cells[6] == str(len({d for d in record.per_class.dominant_unit if d is not None}))
    readouts = {
        name: json.loads((root / "artifacts" / "layers" / name / "metrics.json").read_text())["layer"][
            "linear_readout_accuracy"
        ]
        for name in ALL
    }
    best = max(readouts, key=readouts.get)
    assert f"A linear read-out recovers the class best from [<code>{best.replace('_', '&#95;')}</code>]" in overview
    assert (root / "pages" / "img" / "layers-selectivity.png").stat().st_size > 1000


@pytest.mark.e2e
def test_the_first_convolutions_channel_pages_show_where_it_fires_its_filter_and_its_feature_visualisation(
    every_layer,
):
    site = every_layer[0] / "site" / "conv2d"
    page = (site / "units" / "unit-0.html").read_text()
    for figure in ("unit-0-maps", "unit-0-crops", "unit-0-class-maps", "unit-0-filter", "unit-0-featvis"):
        assert f"{figure}.png" in page, figure
        assert (site / "img" / f"{figure}.png").is_file()
    assert "unit-0-filter.png" not in (every_layer[0] / "site" / "conv2d_1" / "units" / "unit-0.html").read_text()


@pytest.mark.e2e
def test_a_rerun_reuses_every_layer_and_the_overview(every_layer, caplog):
    root, flags, _, _ = every_layer
    before = fingerprint(root / "site")
    with caplog.at_level(logging.INFO, logger="nu_keras"):
        code, _, err = cli(["report", "--layer", "all", *flags])
    assert code == 0, err
    said = [record.getMessage() for record in caplog.records]
    assert not [line for line in said if "running" in line], said
    assert sum("reused" in line for line in said) == 4 * len(ALL) + 2  # four stages per layer, overview, build
    assert fingerprint(root / "site") == before


@pytest.mark.e2e
def test_a_list_reads_just_those_layers(files, tmp_path):
    flags = ["--model", str(files / "convnet.keras"), "--data", str(files / "small.npz"), *places(tmp_path)]
    code, out, err = cli(["report", "--layer", "dense,conv2d", *flags])
    assert code == 0, err
    nav = json.loads((tmp_path / "pages" / ".nav.json").read_text())
    assert [next(iter(entry)) for entry in nav["nav"]] == ["Layer conv2d", "Layer dense"]  # in the model's order


def test_a_folder_nu_keras_did_not_write_where_a_layer_goes_is_refused_and_kept(files, tmp_path):
    planted = tmp_path / "artifacts" / "layers" / "conv2d"
    flags = ["--model", str(files / "convnet.keras"), "--data", str(files / "small.npz"), *places(tmp_path)]
    code, _, err = cli(["train", "--layer", "conv2d,dense", *flags])  # claims the artifacts folder
    assert code == 0, err
    for layer in ("conv2d", "dense"):
        assert (tmp_path / "artifacts" / "layers" / layer / "model.keras").is_file()
    planted.joinpath("model.keras").unlink()
    planted.joinpath(".nu-keras.json").unlink()
    planted.joinpath("notes.txt").write_text("mine")
    before = fingerprint(planted)
    assert_one_line_error(cli(["train", "--layer", "conv2d,dense", *flags]), "is not a layer folder nu-keras wrote")
    assert fingerprint(planted) == before


@pytest.mark.e2e
def test_load_run_reads_one_layers_record_of_a_run_of_several(every_layer):
    root = every_layer[0]
    record = nu_keras.load_run(root / "artifacts", layer="conv2d_1")
    assert record.provenance.subject["layer"] == "conv2d_1" and len(record.units) == 16
    with pytest.raises(nu_keras.NuKerasError, match="give layer= one of conv2d, conv2d_1, dense, max_pooling2d"):
        nu_keras.load_run(root / "artifacts")


@pytest.mark.e2e
def test_on_jax_the_chart_workers_are_started_without_forking_jax(files, tmp_path):
    """A user's model is loaded (and JAX started) before the chart workers: forking then risks a deadlock, which
    JAX warns of; the workers are spawned instead, layer after layer."""
    pytest.importorskip("jax")
    flags = ["--model", str(files / "convnet.keras"), "--data", str(files / "small.npz"), *places(tmp_path)]
    env = os.environ | {"KERAS_BACKEND": "jax"}
    command = [sys.executable, "-m", "nu_keras", "report", "--layer", "conv2d_1,dense", "--backend", "jax", *flags]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "os.fork()" not in done.stderr and (tmp_path / "site" / "dense" / "index.html").is_file()


@pytest.mark.e2e
def test_every_layers_explore_page_finds_its_script_and_style_from_the_layers_folder(files, tmp_path):
    """Explore pages sit one folder deeper in a run of several layers: their assets resolve from there."""
    mnist = np.load(files / "small.npz")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((28, 28)),
            layers.Flatten(),
            layers.Dense(12, activation="relu", name="h1"),
            layers.Dense(8, activation="relu", name="h2"),
            layers.Dense(10, activation="softmax", name="out"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(mnist["x_train"] / 255.0, mnist["y_train"], epochs=1, verbose=0)
    model.save(tmp_path / "mlp.keras")
    flags = ["--model", str(tmp_path / "mlp.keras"), "--data", str(files / "small.npz"), *places(tmp_path)]
    code, _, err = cli(["report", "--layer", "h1,h2", *flags])
    assert code == 0, err
    for layer in ("h1", "h2"):
        page = tmp_path / "site" / layer / "explore.html"
        text = page.read_text(encoding="utf-8")
        sources = re.findall(r'<script src="([^"]*explore[^"]*)"', text) + re.findall(
            r'href="([^"]*explore\.css)"', text
        )
        assert sorted(sources) == [
            "../assets/javascripts/explore.js",
            "../assets/stylesheets/explore.css",
            "explore-data.js",
        ]
        assert all((page.parent / source).is_file() for source in sources), sources

"""Charts only for what changed: a render whose record changed redraws the figures whose data changed and
copies the others from the previous run, and the result is the same files a render from nothing draws."""

from __future__ import annotations

import json
import logging

import keras
import numpy as np
import pytest
from helpers import cli, fingerprint
from keras import layers


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("reuse")
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (300, 28, 28), dtype=np.uint8), np.arange(300) % 10
    np.savez(root / "my.npz", x_train=x[:200], y_train=y[:200], x_test=x[200:], y_test=y[200:])
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((28, 28)), layers.Flatten(), layers.Dense(6, activation="relu", name="hidden"), layers.Dense(10)]
    )
    model.save(root / "my.keras")
    return root


def report(files, root, *extra):
    folders = ["--out", str(root / "a"), "--pages-dir", str(root / "p"), "--site-dir", str(root / "s")]
    argv = ["report", "--model", str(files / "my.keras"), "--layer", "hidden", "--data", str(files / "my.npz")]
    code, _, err = cli([*argv, *folders, *extra])
    assert code == 0, err


@pytest.mark.e2e
def test_fewer_examples_redraws_only_the_class_examples_and_equals_a_render_from_nothing(files, tmp_path, caplog):
    report(files, tmp_path / "warm", "--examples", "5")
    keys = json.loads((tmp_path / "warm" / "p" / ".charts.json").read_text())
    with caplog.at_level(logging.INFO, logger="nu_keras"):
        report(files, tmp_path / "warm", "--examples", "3")
    said = " ".join(record.getMessage() for record in caplog.records)
    classes = 10  # one examples figure per class changes; every unit figure and the class profiles do not
    assert f"rendered {classes} charts" in said and f"{len(keys) - classes} unchanged, copied" in said, said
    report(files, tmp_path / "cold", "--examples", "3")
    warm, cold = fingerprint(tmp_path / "warm" / "p"), fingerprint(tmp_path / "cold" / "p")
    images = {name for name in cold if name.startswith("img/")}
    assert len(images) == len(keys) and {name: warm[name] for name in images} == {name: cold[name] for name in images}


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"img/a.png": 3}', "\udcff"])
def test_keys_that_are_not_what_render_writes_reuse_nothing(tmp_path, text):
    from nu_keras import render

    (tmp_path / render.CHART_KEYS).write_text(text, encoding="utf-8", errors="surrogateescape")
    assert render.previous_keys(tmp_path) == {}
    assert render.previous_keys(tmp_path / "missing") == {}

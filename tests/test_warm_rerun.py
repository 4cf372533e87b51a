"""A warm rerun of a user's model: nothing changed, so no stage runs and Keras is never imported (it would
cost seconds); anything changed that the model check covers is still checked before any folder is touched."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import REPO
from helpers import assert_one_line_error, cli, fingerprint
from keras import layers

pytestmark = pytest.mark.e2e

SECOND_RUN = """
import json, sys, time
from nu_keras.cli import main
start = time.perf_counter()
code = main(sys.argv[1:])
print(json.dumps({"code": code, "seconds": time.perf_counter() - start, "keras": "keras" in sys.modules}))
"""


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    """A tiny user's model and data, reported once (cold): (the report's arguments, its folders' root)."""
    root = tmp_path_factory.mktemp("warm")
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (300, 28, 28), dtype=np.uint8), np.arange(300) % 10
    np.savez(root / "my.npz", x_train=x[:200], y_train=y[:200], x_test=x[200:], y_test=y[200:])
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((28, 28)), layers.Flatten(), layers.Dense(4, activation="relu", name="hidden"), layers.Dense(10)]
    )
    model.save(root / "my.keras")
    folders = ["--out", str(root / "a"), "--pages-dir", str(root / "p"), "--site-dir", str(root / "s")]
    argv = ["report", "--model", str(root / "my.keras"), "--data", str(root / "my.npz"), *folders]
    code, _, err = cli([*argv, "--layer", "hidden", "-q"])
    assert code == 0, err
    return argv, root


def test_a_second_report_reuses_every_stage_and_never_imports_keras(reported):
    argv, _ = reported
    env = os.environ | {"PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", SECOND_RUN, *argv, "--layer", "hidden"], env=env, capture_output=True, text=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 0, done.stderr
    for stage in ("train", "collect", "analyze", "render", "build"):
        assert f"== {stage} == reused" in done.stderr, done.stderr
    assert "running" not in done.stderr
    assert result["keras"] is False
    assert result["seconds"] < 1.0  # the target; importing Keras alone takes seconds


def test_another_layer_is_still_checked_before_any_folder_is_touched(reported):
    argv, root = reported
    before = fingerprint(root / "a")
    assert_one_line_error(cli([*argv, "--layer", "nope"]), "'nope' is not a layer that can be read out")
    assert fingerprint(root / "a") == before


def test_a_changed_model_file_is_checked_before_any_folder_is_touched(reported):
    argv, root = reported
    before = fingerprint(root / "a")
    (root / "my.keras").write_bytes(b"not a keras file")
    assert_one_line_error(cli([*argv, "--layer", "hidden"]), "my.keras")
    assert fingerprint(root / "a") == before

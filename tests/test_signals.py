"""Every way a run can end: one line and the right exit code for signals, a closed stdout, a full disk,
a path that is not UTF-8, a model of another shape; and a quiet log on a normal run."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import mark_as_built
from helpers import assert_one_line_error, cli, fingerprint

from nu_keras import artifacts, folders

NU_KERAS = [sys.executable, "-m", "nu_keras"]


@pytest.fixture(scope="module")
def fake_data_flag(tmp_path_factory, fake_mnist) -> list[str]:
    path = tmp_path_factory.mktemp("data") / "mnist.npz"
    np.savez(path, **fake_mnist)
    return ["--data", str(path)]


def quick(root: Path, fake_data_flag: list[str]) -> list[str]:
    """A report on synthetic MNIST that trains one short epoch and one sweep seed and draws one example image
    per digit page, every output under root."""
    folders_ = ["--out", str(root / "a"), "--pages-dir", str(root / "p"), "--site-dir", str(root / "s")]
    return [*folders_, *fake_data_flag, "--epochs", "1", "--seeds", "1", "--examples", "1"]


def our_lines_only(stderr: str) -> list[str]:
    """Lines that are neither ours ("nu-keras: ...") nor Keras's epoch progress."""
    progress = ("Epoch ", "nu-keras: ")
    return [line for line in stderr.splitlines() if not line.startswith(progress) and "/step" not in line]


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory, fake_data_flag) -> tuple[Path, subprocess.CompletedProcess]:
    root = tmp_path_factory.mktemp("quick")
    done = subprocess.run([*NU_KERAS, "report", *quick(root, fake_data_flag)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return root, done


@pytest.mark.e2e
def test_a_closed_stdout_ends_quietly_with_141(quick_report, fake_data_flag):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the summary is printed, as with `nu-keras report | head -0`
    # First in this file: every stage of the quick report is reused, so the run reaches its summary in seconds
    argv = [*NU_KERAS, "report", "-q", *quick(quick_report[0], fake_data_flag)]
    closed = subprocess.run(argv, stdout=write_end, stderr=subprocess.PIPE)
    os.close(write_end)
    assert closed.returncode == 141 and closed.stderr == b"", closed.stderr


@pytest.mark.e2e
def test_a_normal_run_prints_our_stage_lines_and_keras_progress_only(quick_report, fake_data_flag):
    root, done = quick_report
    assert our_lines_only(done.stderr) == [], done.stderr
    quiet = subprocess.run([*NU_KERAS, "train", "-q", "--force", *quick(root, fake_data_flag)], capture_output=True)
    assert quiet.returncode == 0 and quiet.stderr == b"", quiet.stderr


@pytest.mark.e2e
@pytest.mark.parametrize(
    "command, moment, wait",
    [("train", "== train == running", 0.3), ("render", "== render", 0.5), ("build", "== build", 0.05)],
)
def test_sigterm_in_any_stage_exits_143_in_one_line_and_the_next_run_cleans_up(
    quick_report, fake_data_flag, command, moment, wait
):
    root = quick_report[0]
    argv = [*NU_KERAS, command, "--force", *quick(root, fake_data_flag)]
    run = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, bufsize=1)
    seen = []
    for line in run.stderr:
        seen.append(line)
        if moment in line:
            time.sleep(wait)
            run.send_signal(signal.SIGTERM)
            break
    rest = run.stderr.read()
    assert run.wait(60) == 143, "".join(seen) + rest
    assert "Traceback" not in rest, rest
    assert rest.strip().splitlines()[-1] == "nu-keras: terminated; artifacts already written are intact", rest
    done = subprocess.run([*NU_KERAS, "build", *quick(root, fake_data_flag)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert [p.name for p in root.iterdir() if ".staging-" in p.name or ".old-" in p.name] == []
    assert folders.verified_digest(root / "s") is not None and folders.verified_digest(root / "p") is not None


@pytest.mark.parametrize("delay", [0.15, 0.3, 0.6, 1.0, 2.0])
def test_ctrl_c_during_start_up_is_one_line_and_130(tmp_path, fake_data_flag, delay):
    """From the import of nu_keras on, Ctrl-C ends in one line; before it is Python's own start-up.

    `train` imports Keras and trains for seconds, so every delay lands while the command is running."""
    run = subprocess.Popen(
        [*NU_KERAS, "train", "--out", str(tmp_path / "a"), *fake_data_flag],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    time.sleep(delay)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=120)
    text = err.decode()
    if "init_import_site" in text:
        pytest.skip("the signal came while Python itself was starting, before any code of ours")
    assert run.returncode in (130, -signal.SIGINT), text
    assert "Traceback" not in text and "error" not in text, text
    interrupted = [line for line in text.splitlines() if line.startswith("nu-keras: interrupted")]
    assert len(interrupted) == 1, text
    assert our_lines_only(text) == [], text


def test_a_path_that_is_not_utf8_is_refused_before_any_work(tmp_path):
    out = os.fsencode(str(tmp_path)) + b"/out-\xff"
    run = subprocess.run([*NU_KERAS, "train", "--out", out], capture_output=True)
    assert run.returncode == 2 and b"is not a UTF-8 path" in run.stderr and b"Traceback" not in run.stderr
    assert os.listdir(tmp_path) == []


def test_a_full_disk_is_one_line_naming_the_path_and_replaces_nothing(tmp_path, monkeypatch, fake_data_flag):
    out = tmp_path / "a"
    out.mkdir()
    artifacts.write_npz(out / "activations.npz", hidden=np.zeros(3))
    mark_as_built(out, "artifacts")
    before = fingerprint(out)

    def full(path, **arrays):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(artifacts.np, "savez_compressed", full)
    model = tmp_path / "model.keras"
    _save_network(model, width=10)
    (out / "model.keras").write_bytes(model.read_bytes())
    mark_as_built(out, "artifacts")
    before = fingerprint(out)
    code, _, err = cli(["collect", "--out", str(out), *fake_data_flag])
    assert code == 1 and err.strip().startswith("nu-keras: error: No space left on device"), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert fingerprint(out) == before


def _save_network(path: Path, width: int, kind: str = "dense") -> None:
    import keras
    from keras import layers

    hidden = {
        "dense": lambda: [layers.Flatten(name="flatten"), layers.Dense(width, activation="relu", name="hidden")],
        "unnamed": lambda: [layers.Flatten(name="flatten"), layers.Dense(width, activation="relu", name="h")],
        "conv": lambda: [layers.Reshape((28, 28, 1)), layers.Conv2D(width, 3, name="hidden"), layers.Flatten()],
    }[kind]()
    model = keras.Sequential([keras.Input(shape=(28, 28)), *hidden, layers.Dense(10, name="output")])
    model.save(path)


@pytest.mark.parametrize(
    "kind, width, fragment",
    [("dense", 20, '"hidden" layer has 20 units, expected 10'), ("unnamed", 10, 'no layer named "hidden"')]
    + [("conv", 10, '"hidden" layer is a Conv2D, not Dense')],
)
def test_a_model_of_another_shape_is_refused_before_any_page_claims_784_10_10(
    tmp_path, fake_data_flag, kind, width, fragment
):
    out = tmp_path / "a"
    out.mkdir()
    _save_network(out / "model.keras", width, kind)
    mark_as_built(out, "artifacts")
    assert_one_line_error(
        cli(["collect", "--out", str(out), *fake_data_flag]), "is not the 784-10-10 network", fragment
    )
    assert not (out / "activations.npz").exists()

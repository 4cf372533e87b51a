"""Progress: a bar with an ETA on a terminal, one log line per stage off a terminal, nothing with -q."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from conftest import REPO
from keras import layers

from nu_keras import progress

pytestmark = pytest.mark.e2e


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_bar_counts_the_steps_with_an_eta(monkeypatch, caplog):
    screen = Terminal()
    monkeypatch.setattr("sys.stderr", screen)
    caplog.set_level(logging.INFO, logger=progress.log.name)
    with progress.bar("collect", 4, "batch") as advance:
        for _ in range(4):
            time.sleep(0.12)  # tqdm redraws at most every 0.1 s
            advance(1)
    drawn = screen.getvalue()
    assert "\r" in drawn and "nu-keras: collect" in drawn
    assert "1/4 [00:00<00:00" in drawn and "4/4" in drawn  # tqdm's [elapsed<remaining]: an ETA once it can tell


def test_off_a_terminal_or_quiet_there_is_no_bar(monkeypatch, caplog):
    monkeypatch.setattr("sys.stderr", io.StringIO())
    caplog.set_level(logging.INFO, logger=progress.log.name)
    assert not progress.shown()
    monkeypatch.setattr("sys.stderr", Terminal())
    caplog.set_level(logging.WARNING, logger=progress.log.name)  # what -q sets
    assert not progress.shown()
    with progress.bar("render", 3, "chart") as advance:
        advance(1)
    assert "render" not in __import__("sys").stderr.getvalue()


@pytest.fixture(scope="module")
def user_files(tmp_path_factory):
    """A tiny convolutional user's model (so collect runs its ablation pass) and a data file."""
    root = tmp_path_factory.mktemp("progress")
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (300, 28, 28), dtype=np.uint8), np.arange(300) % 10
    np.savez(root / "my.npz", x_train=x[:200], y_train=y[:200], x_test=x[200:], y_test=y[200:])
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(3, 5, strides=3, activation="relu", name="conv"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(10, activation="softmax"),
        ]
    )
    model.save(root / "my.keras")
    return root


def report(root, out: str, *extra: str) -> tuple[int, str, str]:
    """`nu-keras report` of the user's model in a process of its own, its stderr a pipe (not a terminal)."""
    run = root / out
    folders = ["--out", str(run / "a"), "--pages-dir", str(run / "p"), "--site-dir", str(run / "s")]
    model = ["--model", str(root / "my.keras"), "--layer", "conv", "--data", str(root / "my.npz")]
    env = os.environ | {"PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "nu_keras", "report", *model, *folders, *extra]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    return done.returncode, done.stdout, done.stderr


def test_off_a_terminal_each_stage_says_once_what_it_did_and_draws_no_bar(user_files):
    code, _, err = report(user_files, "plain")
    assert code == 0, err
    assert "\r" not in err
    assert len([line for line in err.splitlines() if "collected layer conv" in line]) == 1
    assert len([line for line in err.splitlines() if line.startswith("nu-keras: rendered ")]) == 1


def test_quiet_prints_no_progress_at_all(user_files):
    code, out, err = report(user_files, "quiet", "-q")
    assert code == 0, err
    assert [line for line in err.splitlines() if line.startswith("nu-keras")] == []
    assert "\r" not in err and "batch" not in err and "chart" not in err
    assert "test accuracy" in out


def test_the_command_lines_filtered_stderr_hands_its_terminal_to_the_bars(caplog):
    """stderr's lines pass through `cli.native_logs_filtered`, a pipe that forwards whole lines only: the bar
    is drawn on the terminal behind it."""
    import fcntl
    import pty
    import struct
    import termios

    from nu_keras import cli as command_line

    caplog.set_level(logging.INFO, logger=progress.log.name)
    main, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a size: tqdm fits the bar to it
    saved = os.dup(2)
    os.dup2(terminal, 2)
    try:
        with command_line.native_logs_filtered():
            with progress.bar("render", 2, "chart") as advance:
                for _ in range(2):
                    time.sleep(0.12)
                    advance(1)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(terminal)
    drawn = os.read(main, 65536).decode()
    os.close(main)
    assert "nu-keras: render" in drawn and "1/2" in drawn and "\r" in drawn

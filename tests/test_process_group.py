"""A signal to the whole process group (what `timeout`, a CI cancellation and a terminal's hang-up send) ends
a run within seconds, with its exit code, and leaves no process of the group behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import processes_in_group

NU_KERAS = [sys.executable, "-m", "nu_keras"]


@pytest.fixture(scope="module")
def long_report(tmp_path_factory, fake_mnist) -> list[str]:
    """`nu-keras report` on synthetic MNIST, training long enough (200 epochs) to be stopped while its chart
    workers wait for work."""
    root = tmp_path_factory.mktemp("group")
    np.savez(root / "mnist.npz", **fake_mnist)
    folders = ["--out", str(root / "a"), "--pages-dir", str(root / "p"), "--site-dir", str(root / "s")]
    flags = ["--data", str(root / "mnist.npz"), "--epochs", "200", "--seeds", "1", "--examples", "1"]
    return [*NU_KERAS, "report", "--force", *folders, *flags]


def wait_for_line(log: Path, text: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while text not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"no {text!r} within {seconds} s:\n{log.read_text()}"
        time.sleep(0.2)


def stop_group(group: int) -> None:
    """SIGKILL whatever a failed test left in its process group."""
    try:
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_sigterm_to_the_process_group_while_training_exits_143_and_leaves_no_process(long_report, tmp_path):
    log = tmp_path / "stderr.txt"
    with open(log, "wb") as stderr:
        run = subprocess.Popen(long_report, stderr=stderr, stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_line(log, "nu-keras: training 200 epochs", seconds=120)  # its chart workers are forked
        time.sleep(3)  # and waiting for work: one of them holds the pool's task-queue lock
        os.killpg(run.pid, signal.SIGTERM)
        assert run.wait(timeout=30) == 143, log.read_text()
        time.sleep(0.5)  # the parent has reaped its workers; give the kernel a moment to drop their entries
        assert processes_in_group(run.pid) == []
        assert log.read_text().strip().splitlines()[-1] == "nu-keras: terminated; artifacts already written are intact"
    finally:
        stop_group(run.pid)


def test_timeout_on_the_whole_command_returns_124_within_30_seconds_and_leaves_no_process(long_report, tmp_path):
    log = tmp_path / "stderr.txt"
    with open(log, "wb") as stderr:
        argv = ["timeout", "-s", "TERM", "20", *long_report]
        run = subprocess.Popen(argv, stderr=stderr, stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        assert run.wait(timeout=20 + 30) == 124, log.read_text()
        time.sleep(0.5)
        assert processes_in_group(run.pid) == []
        assert "nu-keras: terminated" in log.read_text()
    finally:
        stop_group(run.pid)

"""Offline, the data chains leave no trace: Fashion-MNIST is served by Debian's package before any download
is tried, and a Keras download that fails prints nothing and leaves no folder in ~/.keras."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nu_keras import data


def files_below(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_fashion_mnist_offline_is_served_by_debian_without_a_download_or_a_trace_in_home(tmp_path, monkeypatch, capfd):
    if not data.FASHION_DEBIAN_DIR.is_dir():
        pytest.skip(f"Debian's dataset-fashion-mnist is not installed ({data.FASHION_DEBIAN_DIR}); `make data-deps`")
    monkeypatch.setenv("HOME", str(tmp_path))
    served = data.load_dataset("fashion-mnist", None, None)
    assert served.source.startswith("Debian's dataset-fashion-mnist")
    assert files_below(tmp_path) == []
    out, err = capfd.readouterr()
    assert "Downloading" not in out + err


def run_with_home(home: Path, code: str) -> subprocess.CompletedProcess:
    """`code` in a fresh Python whose home folder is `home` (Keras reads it when it is imported)."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_HOME"} | {"HOME": str(home)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True)


@pytest.mark.parametrize(
    "chain",
    [
        "data.load_dataset('fashion-mnist', None, None)",  # Debian's folder missing: the download is tried
        "data._keras_download()",  # MNIST's download source
    ],
)
def test_a_failed_keras_download_prints_nothing_and_leaves_no_folder_in_dot_keras(tmp_path, chain):
    home = tmp_path / "home"
    home.mkdir()
    done = run_with_home(
        home,
        f"""
        from pathlib import Path
        from nu_keras import data
        data.FASHION_DEBIAN_DIR = Path({str(tmp_path / "no-debian")!r})
        try:
            {chain}
            print("served")
        except Exception as exc:
            print("failed:", type(exc).__name__)
        """,
    )
    if "served" in done.stdout:
        pytest.skip("this machine reaches the internet: the download served")
    assert done.stdout.startswith("failed:") and "Downloading" not in done.stdout + done.stderr, done
    assert not (home / ".keras" / "datasets").exists(), files_below(home)

"""Runs never mix their files: two at once on one folder serialise or one fails cleanly, and runs with
their own artifacts but a shared site publish their own numbers. Real pipeline on synthetic MNIST."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def data_file(tmp_path_factory, fake_mnist) -> Path:
    path = tmp_path_factory.mktemp("data") / "mnist.npz"
    np.savez(path, **fake_mnist)
    return path


def report(root: Path, out: str, seed: int, data: Path) -> list[str]:
    folders = ["--out", str(root / out), "--pages-dir", str(root / "pages"), "--site-dir", str(root / "site")]
    return [sys.executable, "-m", "nu_keras", "report", *folders, "--seed", str(seed), "--data", str(data)]


def quick(argv: list[str]) -> list[str]:
    """Any trained network will do: one epoch, one sweep seed, one example image per digit page."""
    return [*argv, "--epochs", "1", "--seeds", "1", "--examples", "1"]


def published_seed(site: Path) -> int:
    """The seed the site says it shows: the Run page's configuration table, row `seed`."""
    found = re.search(r"<code>seed</code></td>\s*<td[^>]*><code>(\d+)</code>", (site / "run.html").read_text())
    return int(found.group(1))


def accuracy_from_model(out: Path, data: Path) -> float:
    import keras

    model = keras.saving.load_model(out / "model.keras", safe_mode=True)
    with np.load(data) as arrays:
        x, y = arrays["x_test"].astype(np.float32) / 255.0, arrays["y_test"]
    return float(np.mean(model.predict(x, verbose=0).argmax(axis=1) == y))


@pytest.fixture(scope="module")
def two_at_once(tmp_path_factory, data_file):
    root = tmp_path_factory.mktemp("together")
    runs = [
        subprocess.Popen(
            quick(report(root, "a", seed, data_file)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for seed in (0, 1)
    ]
    results = [(run.wait(900), *run.communicate()) for run in runs]
    return root, results


def test_two_reports_at_once_serialise_or_one_fails_cleanly_naming_the_other(two_at_once):
    _, results = two_at_once
    codes = sorted(code for code, _, _ in results)
    assert codes in ([0, 0], [0, 2]), results
    for code, _, err in results:
        if code == 2:
            errors = [line for line in err.splitlines() if line.startswith("nu-keras: error:")]
            assert len(errors) == 1 and "in use by another nu-keras run (pid" in errors[0], err


def test_the_published_site_is_the_run_that_printed_success(two_at_once, data_file):
    root, results = two_at_once
    seed, printed = next((s, out) for s, (code, out, _) in enumerate(results) if code == 0)
    metrics = json.loads((root / "a" / "metrics.json").read_text())
    assert metrics["provenance"]["config"]["seed"] == seed and published_seed(root / "site") == seed
    assert f"test accuracy: {metrics['test_accuracy']:.4f}" in printed
    assert metrics["test_accuracy"] == pytest.approx(accuracy_from_model(root / "a", data_file), abs=1e-9)


def test_runs_sharing_a_site_each_publish_their_own_numbers(two_at_once, data_file):
    root, results = two_at_once
    seed = next(s for s, (code, _, _) in enumerate(results) if code == 0)
    other = 1 - seed
    done = subprocess.run(quick(report(root, "b", other, data_file)), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert published_seed(root / "site") == other
    again = subprocess.run(quick(report(root, "a", seed, data_file)), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "== render == running" in again.stderr and "== train == reused" in again.stderr  # the folder changed
    assert published_seed(root / "site") == seed

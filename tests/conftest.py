"""Shared fixtures: a synthetic stand-in for MNIST that passes validation, and small hand-built runs."""

from __future__ import annotations

from nu_keras.config import set_backend_environment

set_backend_environment()  # before any test imports Keras, as the CLI does

import fcntl  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from nu_keras import data  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


# The test files that take longest, longest first (measured with --durations on the 2-core machine). They
# run first, so that under pytest-xdist (`make test`: one file per worker at a time, in this order) no long
# file starts last while the other worker idles. test_browser.py leads: it builds the session's real report,
# which test_e2e.py and test_explore_browser.py then reuse. Only an order: a stale entry costs time, not checks.
LONGEST_FIRST = [
    "test_browser.py",
    "test_faults.py",
    "test_concurrency.py",
    "test_pipeline.py",
    "test_wheel.py",
    "test_signals.py",
    "test_explore_browser.py",
    "test_fashion.py",
    "test_backends.py",
    "test_user_model.py",
    "test_cluster.py",
    "test_e2e.py",
]


def pytest_collection_modifyitems(items) -> None:
    """Run the files of LONGEST_FIRST first, in that order; every file keeps the order of its own tests."""
    rank = {name: position for position, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # a stable sort


def mark_as_built(folder: Path, kind: str) -> Path:
    """Give a hand-made folder the marker nu-keras leaves in folders it fills, listing what is in it."""
    from nu_keras import folders

    folders.write_marker(folder, kind, folders.manifest(folder))
    return folder


def report_argv(root: Path, *extra: str) -> list[str]:
    """`nu-keras report` in a subprocess, every output under `root` so tests never touch the repo's."""
    folders = ["--out", str(root / "artifacts"), "--pages-dir", str(root / "pages"), "--site-dir", str(root / "site")]
    return [sys.executable, "-m", "nu_keras", "report", *folders, *extra]


def random_images(n: int = 1200):
    """`Dataset` of n random 28x28 images with random labels (its first 100 as the test set): enough to
    train a few steps and compare weights, nothing to learn from."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    images = rng.integers(0, 256, size=(n, 28, 28)).astype(np.uint8)
    return data.Dataset(images, labels, images[:100], labels[:100], source="synthetic")


def labels_with_counts(counts, first=()) -> np.ndarray:
    """Labels with exactly `counts` of each digit, starting with the sequence `first`."""
    remaining = np.array(counts) - np.bincount(np.array(first, dtype=int), minlength=10)
    rest = np.repeat(np.arange(10), remaining)
    np.random.default_rng(0).shuffle(rest)
    return np.concatenate([np.array(first, dtype=np.uint8), rest]).astype(np.uint8)


@pytest.fixture(scope="session")
def fake_mnist() -> dict[str, np.ndarray]:
    """Arrays with MNIST's shapes, dtype and label counts; each image is its label's brightness."""
    y_train = labels_with_counts(data.TRAIN_COUNTS, data.FIRST_TRAIN_LABELS)
    y_test = labels_with_counts(data.TEST_COUNTS)
    x_train = np.broadcast_to((y_train * 20)[:, None, None], (60000, 28, 28)).astype(np.uint8)
    x_test = np.broadcast_to((y_test * 20)[:, None, None], (10000, 28, 28)).astype(np.uint8)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    """The package's sources copied where a test may edit them; code hashes (cache.py) read the copy."""
    from nu_keras import cache

    copy = tmp_path / "package" / "nu_keras"
    shutil.copytree(cache.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache, "PACKAGE", copy)
    return copy


@pytest.fixture
def fake_npz(tmp_path, fake_mnist):
    path = tmp_path / "mnist.npz"
    np.savez(path, **fake_mnist)
    return path


def synthetic_run(seed: int = 0, units: int = 10, per_digit: int = 30):
    """Hand-built activations and weights: unit d prefers digit d (mod units), with noise and zeros."""
    from nu_keras import ablation

    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), per_digit).astype(np.uint8)
    hidden = np.maximum(rng.normal(0.0, 1.0, size=(len(labels), units)), 0).astype(np.float32)
    hidden[np.arange(len(labels)), labels % units] += 3.0
    w2 = rng.normal(size=(units, 10)).astype(np.float32)
    w2[np.arange(units), np.arange(units) % 10] += 4.0
    b2 = np.zeros(10, np.float32)
    logits = hidden @ w2 + b2
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    acts = {
        "units": hidden,
        "labels": labels,
        "predictions": logits.argmax(axis=1).astype(np.uint8),
        "probabilities": probabilities.astype(np.float32),
    }
    tables = ablation.dense_ablation_table(hidden.astype(np.float64), w2, b2)
    acts |= {f"ablated_{kind}": table.astype(np.uint8) for kind, table in tables.items()}
    weights = {
        "hidden_kernel": rng.normal(size=(784, units)).astype(np.float32),
        "hidden_bias": np.zeros(units, np.float32),
        "output_kernel": w2,
        "output_bias": b2,
    }
    return acts, weights


def measured(acts, weights, cfg, images=None, class_names=None, provenance=None, dynamics=None, network=None):
    """`analysis.measure` of hand-built arrays: images default to a grey square per test image whose
    brightness is its label, class names to the labels' digits, provenance to a bare one."""
    from nu_keras import analysis, record

    labels = np.asarray(acts["labels"])
    classes = int(labels.max()) + 1
    images = (
        np.broadcast_to((labels * 20).astype(np.uint8)[:, None, None], (len(labels), 28, 28))
        if images is None
        else images
    )
    names = [str(c) for c in range(classes)] if class_names is None else class_names
    provenance = provenance or record.Provenance.bare()
    return analysis.measure(acts, weights, images, names, record.Method.from_config(cfg), provenance, dynamics, network)


def synthetic_record(acts, weights, cfg):
    """What `nu-keras analyze` would record for these arrays, with plausible run details."""
    from nu_keras import analysis, record

    provenance = record.Provenance(
        config=cfg.to_json(),
        versions={"python": "3.11", "keras": "3.x", "tensorflow": "2.x", "numpy": "2.x"},
        data_source="synthetic <test> & co",
        data_sha256="0" * 64,
        history={"loss": [1.0, 0.5], "accuracy": [0.7, 0.8], "val_loss": [0.9, 0.6], "val_accuracy": [0.72, 0.79]},
        fit_seconds=1.25,
        trained_with=[0, 1, 2, 3, 4],
        parameters=7960,
        layers=[{"name": "hidden", "type": "Dense", "output_shape": "(None, 10)", "parameters": 7850}],
        timings={"train": 3.5},
        dataset=MNIST_DESCRIPTION,
        subject=paper_subject(acts["units"].shape[1]),
    )
    network, _ = analysis.explore_network(
        provenance.subject,
        {
            "stack_0_kernel": weights["hidden_kernel"],
            "stack_0_bias": weights["hidden_bias"],
            "stack_1_kernel": weights["output_kernel"],
            "stack_1_bias": weights["output_bias"],
        },
        np.zeros((1, 28, 28), np.uint8),  # the images' shape and type: within the page's budget
        10,
    )
    return measured(acts, weights, cfg, provenance=provenance, network=network)


def synthetic_metrics(acts, weights, cfg) -> dict:
    """metrics.json as `nu-keras analyze` would write it for these arrays (the record's JSON)."""
    return synthetic_record(acts, weights, cfg).to_json()


MNIST_DESCRIPTION = {  # what Dataset.describe("unit") says of MNIST, for hand-built metrics
    "name": "mnist",
    "title": "MNIST",
    "class_names": [str(d) for d in range(10)],
    "image_shape": [28, 28],
    "n_train": 60000,
    "pixels": "unit",
    "pixel_note": "uint8 pixels divided by 255 into [0, 1]",
    "input_note": None,
}


def paper_subject(units: int = 10) -> dict:
    """What train.json says of the paper's network (subject.describe), for hand-built metrics."""
    return {
        "kind": "paper",
        "trained_here": True,
        "model": None,
        "model_name": "sequential",
        "layer": "hidden",
        "layer_kind": "dense",
        "layer_type": "Dense",
        "units": units,
        "signed": False,
        "pixel_weights": True,
        "tail_is_dense": True,
        "explorable": True,
        "explore_reason": None,
        "stack": [{"name": "hidden", "activation": "relu"}, {"name": "output", "activation": "softmax"}],
        "readout": 0,
        "spatial": None,
    }


# ------------------------------------------------------------- the browser suites' shared browser and real run


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium; never a browser downloaded by `playwright install`."""
    from browser_helpers import CHROMIUM, CHROMIUM_ARGS, need

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    need(sync_playwright, "Playwright for Python is not installed")
    need(CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK), f"Chromium is missing at {CHROMIUM}")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def axe_js() -> Path:
    """axe-core's script, which the browser suites run on every page they check."""
    from browser_helpers import axe_script, need

    path = axe_script()
    need(path, "axe-core (npm) is not installed: no axe.min.js")
    return path


@dataclass(frozen=True)
class RealReport:
    """A finished `nu-keras report` on real MNIST with the default recipe: its folders and what it printed."""

    root: Path  # artifacts/, pages/ and site/ below it
    returncode: int
    stdout: str
    stderr: str


@contextmanager
def _locked(path: Path):
    """An exclusive lock on `path` (created if missing), held for the block: one process at a time."""
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _session_folder(tmp_path_factory) -> Path:
    """A folder every process of this test session shares: the base temp folder, or, under pytest-xdist,
    the one above the workers' own."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def real_report(tmp_path_factory) -> RealReport:
    """One `nu-keras report` on real MNIST with the default recipe (about 25 s), run once per test session
    and shared by every test that needs a real run: tests/test_e2e.py and the browser suites. Under
    pytest-xdist the first worker to ask runs it and the others wait for it, under a file lock.

    Read only: a test that changes a run copies the folder first (`shutil.copytree`).
    """
    shared = _session_folder(tmp_path_factory)
    root = shared / "real-report"
    done_file = shared / "real-report.json"  # written once the run has ended
    with _locked(shared / "real-report.lock"):
        if not done_file.is_file():
            root.mkdir(exist_ok=True)
            done = subprocess.run(report_argv(root), capture_output=True, text=True, timeout=900, cwd=REPO)
            record = {"returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr}
            done_file.write_text(json.dumps(record), encoding="utf-8")
    report = RealReport(root.resolve(), **json.loads(done_file.read_text(encoding="utf-8")))
    assert report.returncode == 0, f"`nu-keras report` on real MNIST failed:\n{report.stderr[-3000:]}"
    return report


@pytest.fixture(scope="session")
def report_root(request) -> Path:
    """The folder of the real run the browser suites look at: the session's `real_report`.

    NU_KERAS_TEST_SITE=/path/to/site tests an already built site instead; its artifacts are then looked
    for beside it (`/path/to/artifacts`), as `report_argv` lays them out.
    """
    given = os.environ.get("NU_KERAS_TEST_SITE")
    if given:
        assert (Path(given) / "index.html").is_file(), f"NU_KERAS_TEST_SITE={given} holds no index.html"
        return Path(given).absolute().parent
    return request.getfixturevalue("real_report").root


@pytest.fixture(scope="session")
def site(report_root) -> Path:
    """The built site of that run."""
    given = os.environ.get("NU_KERAS_TEST_SITE")
    return Path(given).absolute() if given else report_root / "site"

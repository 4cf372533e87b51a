"""The paper's network on Fashion-MNIST, end to end on Debian's real files: the same recipe, sweep, controls
and verdicts, every page speaking of classes by their names."""

from __future__ import annotations

import json
import re
import subprocess

import numpy as np
import pytest
from conftest import REPO, report_argv

from nu_keras.data import FASHION_DEBIAN_DIR, FASHION_MNIST, load_dataset

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    """`nu-keras report --dataset fashion-mnist --seeds 2` (the sweep on two seeds keeps it short)."""
    if not FASHION_DEBIAN_DIR.is_dir():
        pytest.skip(f"Debian's dataset-fashion-mnist is not installed ({FASHION_DEBIAN_DIR}); `make data-deps`")
    root = tmp_path_factory.mktemp("fashion")
    done = subprocess.run(
        report_argv(root, "--dataset", "fashion-mnist", "--seeds", "2"), capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return root


def test_the_papers_network_trains_on_fashion_mnist_and_the_metrics_say_so(fashion):
    metrics = json.loads((fashion / "artifacts" / "metrics.json").read_text())
    assert metrics["dataset"]["name"] == "fashion-mnist" and metrics["dataset"]["title"] == "Fashion-MNIST"
    assert metrics["dataset"]["class_names"] == list(FASHION_MNIST.class_names)
    assert metrics["data_sha256"] == FASHION_MNIST.sha256
    assert metrics["subject"]["trained_here"] and metrics["parameters"] == 7960
    assert 0.75 <= metrics["test_accuracy"] <= 0.95  # the 784-10-10 network reaches about 84 % here
    assert metrics["digit_counts"] == [1000] * 10


def test_the_test_accuracy_equals_the_saved_model_on_the_real_test_set(fashion):
    import keras

    data = load_dataset("fashion-mnist", None, None)
    model = keras.saving.load_model(fashion / "artifacts" / "model.keras", safe_mode=True)
    predictions = model.predict(data.x_test / np.float32(255), verbose=0).argmax(axis=1)
    metrics = json.loads((fashion / "artifacts" / "metrics.json").read_text())
    assert metrics["test_accuracy"] == pytest.approx(float(np.mean(predictions == data.y_test)), abs=1e-12)


def test_the_sweep_and_its_verdicts_are_on_the_site(fashion):
    sweep = json.loads((fashion / "artifacts" / "sweep.json").read_text())
    assert sweep["seeds"] == [0, 1] and sweep["provenance"]["data_sha256"] == FASHION_MNIST.sha256
    robustness = (fashion / "site" / "robustness.html").read_text()
    assert "claim 1" in robustness.lower() and "claim 2" in robustness.lower()


def test_every_page_speaks_of_classes_by_their_names_and_never_of_digits(fashion):
    pages = list((fashion / "pages").rglob("*.md"))
    for page in pages:
        text = re.sub(r"<code>.*?</code>", "", page.read_text())  # configuration names such as claim_min_classes
        assert not re.search(r"\bdigits?\b", text, re.I), f"{page.relative_to(fashion)} speaks of digits"
    for d, name in enumerate(FASHION_MNIST.class_names):
        page = fashion / "site" / "classes" / f"class-{d}.html"
        assert page.is_file() and name in page.read_text().replace("&#47;", "/")
    home = (fashion / "site" / "index.html").read_text()
    assert "Trouser" in home and "Ankle boot" in home and "Fashion-MNIST" in home

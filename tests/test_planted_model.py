"""The planted prototype network, saved as a user's Keras model and published end to end: the site itself says
what the network was built to be (each digit has its own unit; the neurons are a privileged basis)."""

from __future__ import annotations

import json
import sys

import keras
import pytest
from test_planted import mnist_test, prototype_network  # noqa: F401  (a fixture)

from nu_keras.cli import main


@pytest.fixture(scope="module")
def planted_site(mnist_test, tmp_path_factory):  # noqa: F811
    _, _, detectors = mnist_test
    weights = prototype_network(detectors)
    model = keras.Sequential(
        [
            keras.Input((28, 28)),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(10, activation="relu", name="hidden"),
            keras.layers.Dense(10, activation="softmax", name="output"),
        ]
    )
    model.get_layer("hidden").set_weights([weights["hidden_kernel"], weights["hidden_bias"]])
    model.get_layer("output").set_weights([weights["output_kernel"] * 10, weights["output_bias"]])
    root = tmp_path_factory.mktemp("planted")
    model.save(root / "prototype.keras")
    folders = ["--out", str(root / "out"), "--pages-dir", str(root / "pages"), "--site-dir", str(root / "site")]
    argv = ["report", "--model", str(root / "prototype.keras"), "--layer", "hidden", "--dataset", "mnist", "-q"]
    assert main([*argv, *folders]) == 0
    sys.stdout.flush()
    return root


@pytest.mark.e2e
def test_planted_prototype_as_a_users_model_passes_all_three_claims_on_its_own(planted_site):
    metrics = json.loads((planted_site / "out" / "metrics.json").read_text())
    claims = metrics["claims"]
    assert claims["dominance"]["passes"] and claims["specificity"]["passes"] and claims["privileged"]["passes"]
    assert len(metrics["specificity"]["classes_with_own_unit"]) == 10


@pytest.mark.e2e
def test_planted_prototype_findings_say_specificity_holds_and_the_basis_is_privileged(planted_site):
    findings = (planted_site / "pages" / "findings.md").read_text()
    abstract = findings.split("## Abstract", 1)[1].split("What was analysed", 1)[0]
    assert "a dominant unit of its own for 10 (at least 8 required): **holds**" in abstract
    assert "a privileged basis (above 95\u00a0% of the rotations on every measure): **holds**" in abstract
    assert "10 digits have a dominant unit, from 10 distinct units; 10 have one of their own" in abstract
    assert (planted_site / "site" / "findings.html").is_file()
    assert len(abstract.split()) <= 150

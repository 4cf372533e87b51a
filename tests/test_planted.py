"""Planted truths: small networks on real MNIST test images whose answer is known, measured by the same
functions the report uses. The first evidence that each measure and verdict says what it should."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import rescaled

from nu_keras import analysis, data, robustness

THRESHOLD = 0.5
ROTATIONS = 1000


@pytest.fixture(scope="module")
def mnist_test() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, 784) test images in [0, 1], their labels, and (785, 10): per digit, the least-squares linear
    detector of that digit (weights and bias) fitted on the first 20,000 training images."""
    mnist = data.load_mnist()
    x_train = mnist.x_train[:20000].reshape(20000, -1) / 255.0
    targets = np.eye(10)[mnist.y_train[:20000]]
    detectors = np.linalg.lstsq(np.c_[x_train, np.ones(len(x_train))], targets, rcond=None)[0]
    return mnist.x_test.reshape(len(mnist.x_test), -1) / 255.0, mnist.y_test.astype(np.int64), detectors


def prototype_network(detectors: np.ndarray) -> dict[str, np.ndarray]:
    """Hidden unit d is a linear detector of digit d (least squares against "is it digit d"), through a
    ReLU; each unit votes for its digit only. So every digit has its own unit by construction.

    (Units whose weights are the raw mean images are a weaker plant: every mean image is mostly ink in the
    centre, so all ten units share one direction that dominates their variance, and on eta² and d' they sit
    below most rotations of their own layer.)"""
    return {
        "hidden_kernel": detectors[:-1],
        "hidden_bias": detectors[-1].copy(),
        "output_kernel": np.eye(10),
        "output_bias": np.zeros(10),
    }


def killed(weights: dict, units: list[int]) -> dict:
    out = {k: v.copy() for k, v in weights.items()}
    out["hidden_bias"][units] = -1e3
    return out


def measure(hidden: np.ndarray, labels: np.ndarray) -> dict:
    """Per network: the three claims' per-network tests and everything they rest on."""
    share = analysis.dominance_share(hidden, labels)
    dominant = analysis.dominant_units(share, THRESHOLD)
    null = robustness.place_in_rotation_null(hidden, labels, THRESHOLD, ROTATIONS, seed=1)
    invariant = analysis.invariant_measures(analysis.live_units(hidden), labels, THRESHOLD)
    return {
        "dominant_classes": sum(u is not None for u in dominant),
        "specificity": analysis.specificity(dominant, hidden.shape[1]),
        "null": null,
        "invariant": invariant,
        "privileged": all(null["percentile"][key] > 0.95 for key in robustness.NULL_MEASURES),
        "dead": analysis.dead_and_near_dead(analysis.dead_fraction(hidden))[0],
    }


@pytest.fixture(scope="module")
def prototype(mnist_test):
    x, labels, means = mnist_test
    weights = prototype_network(means)
    return weights, analysis.forward_hidden(x, weights)


def test_planted_a_prototype_network_has_dominant_specific_units_and_a_privileged_basis(prototype, mnist_test):
    _, hidden = prototype
    labels = mnist_test[1]
    result = measure(hidden, labels)
    assert result["dominant_classes"] == 10
    assert len(result["specificity"]["classes_with_own_unit"]) == 10 and result["specificity"]["p"] < 0.01
    for key in robustness.NULL_MEASURES:
        assert result["null"]["place"][key]["percentile"] >= 0.95, key
    assert result["privileged"]
    assert result["null"]["place"]["d_prime"]["side"] == "above"  # past the top 2.5 %, Monte Carlo error included


def test_planted_b_the_same_layer_in_a_rotated_basis_is_not_privileged(prototype, mnist_test):
    _, hidden = prototype
    labels = mnist_test[1]
    rotated = hidden @ robustness.random_rotation(10, seed=11)
    result = measure(rotated, labels)
    assert not result["privileged"]
    assert result["null"]["place"]["rescaled_matched_share"]["percentile"] < 0.95


def test_planted_c_rescaling_a_unit_changes_no_invariant_measure_percentile_or_verdict(prototype, mnist_test):
    x, labels, _ = mnist_test
    weights, hidden = prototype
    same_function = rescaled(weights, unit=3, c=10.0)
    after = analysis.forward_hidden(x, same_function)
    np.testing.assert_allclose(
        after @ same_function["output_kernel"], hidden @ weights["output_kernel"], rtol=1e-9, atol=1e-9
    )
    before, moved = measure(hidden, labels), measure(after, labels)
    for key, value in before["invariant"].items():
        assert moved["invariant"][key] == pytest.approx(value, rel=1e-9), key
    for key in robustness.NULL_MEASURES:
        assert moved["null"]["percentile"][key] == pytest.approx(before["null"]["percentile"][key]), key
        np.testing.assert_allclose(moved["null"]["values"][key], before["null"]["values"][key], rtol=1e-7)
    assert moved["privileged"] == before["privileged"]

    rescaled_before = analysis.dominant_units(analysis.rescaled_share(hidden, labels), THRESHOLD)
    rescaled_after = analysis.dominant_units(analysis.rescaled_share(after, labels), THRESHOLD)
    assert rescaled_before == rescaled_after


def test_planted_d_killed_units_are_disclosed_and_change_no_live_unit_statistic(prototype, mnist_test):
    x, labels, _ = mnist_test
    weights, hidden = prototype
    after = analysis.forward_hidden(x, killed(weights, [2, 7]))
    result = measure(after, labels)
    assert result["dead"] == [2, 7]
    live = [u for u in range(10) if u not in (2, 7)]
    np.testing.assert_allclose(analysis.eta_squared(after, labels)[live], analysis.eta_squared(hidden, labels)[live])
    np.testing.assert_allclose(analysis.d_prime(after, labels)[live], analysis.d_prime(hidden, labels)[live])
    expected = analysis.invariant_measures(hidden[:, live], labels, THRESHOLD)
    for key in ("eta_squared", "d_prime"):
        assert result["invariant"][key] == pytest.approx(expected[key]), key
    assert result["null"]["units"] == 8  # the null rotates the live subspace only
    mean = analysis.per_class_mean(after, labels)
    np.testing.assert_allclose(
        analysis.selectivity_index(mean)[live],
        analysis.selectivity_index(analysis.per_class_mean(hidden, labels))[live],
    )


def test_planted_e_one_unit_largest_everywhere_passes_raw_dominance_but_fails_specificity(prototype, mnist_test):
    _, hidden = prototype
    labels = mnist_test[1]
    loud = hidden.copy()
    loud[:, 0] = 3 * hidden.sum(axis=1)  # unit 0 is the largest on every image that is not silent
    result = measure(loud, labels)
    assert result["dominant_classes"] == 10
    assert result["specificity"]["distinct_dominant_units"] == 1
    assert result["specificity"]["classes_with_own_unit"] == []
    assert result["specificity"]["p"] > 0.5


def test_planted_f_a_pure_noise_layer_supports_no_claim(mnist_test):
    labels = mnist_test[1]
    noise = np.maximum(np.random.default_rng(0).normal(size=(len(labels), 10)), 0)
    result = measure(noise, labels)
    assert result["dominant_classes"] == 0
    assert result["specificity"]["classes_with_own_unit"] == []
    assert not result["privileged"]
    assert all(place["side"] != "above" for place in result["null"]["place"].values())

"""Measures that belong to the network's function: unchanged by the symmetries that leave every prediction alone."""

import numpy as np
import pytest
from helpers import rescaled

from nu_keras import analysis, robustness

LABELS = np.repeat(np.arange(10), 40)


def small_network(seed: int = 0):
    """A random 20-6-10 ReLU network and inputs on which its units respond to the digit."""
    rng = np.random.default_rng(seed)
    prototypes = rng.normal(size=(10, 20))
    x = prototypes[LABELS] + rng.normal(scale=0.8, size=(len(LABELS), 20))
    weights = {
        "hidden_kernel": rng.normal(size=(20, 6)),
        "hidden_bias": rng.normal(scale=0.1, size=6),
        "output_kernel": rng.normal(size=(6, 10)),
        "output_bias": rng.normal(scale=0.1, size=10),
    }
    return x, weights


def test_rescaling_a_unit_changes_no_prediction_nor_any_invariant_measure_but_raw_dominance():
    x, weights = small_network()
    before = analysis.forward_hidden(x, weights)
    after_weights = rescaled(weights, unit=2, c=40.0)
    after = analysis.forward_hidden(x, after_weights)
    np.testing.assert_allclose(
        analysis.output_logits(after, after_weights["output_kernel"], after_weights["output_bias"]),
        analysis.output_logits(before, weights["output_kernel"], weights["output_bias"]),
        atol=1e-9,
    )
    np.testing.assert_allclose(
        analysis.rescaled_share(after, LABELS),
        analysis.rescaled_share(before, LABELS),
    )
    np.testing.assert_allclose(analysis.eta_squared(after, LABELS), analysis.eta_squared(before, LABELS))
    np.testing.assert_allclose(analysis.d_prime(after, LABELS), analysis.d_prime(before, LABELS))
    # the paper's raw dominance is not a property of the function: the enlarged unit now wins far more often
    assert not np.allclose(analysis.dominance_matrix(after, LABELS), analysis.dominance_matrix(before, LABELS))


@pytest.mark.parametrize("c", [0.01, 3.0])
def test_invariant_summary_is_the_same_for_any_positive_rescaling(c):
    x, weights = small_network(seed=1)
    before = analysis.invariant_measures(analysis.forward_hidden(x, weights), LABELS, 0.5)
    after = analysis.invariant_measures(analysis.forward_hidden(x, rescaled(weights, 4, c)), LABELS, 0.5)
    for key, value in before.items():
        assert after[key] == pytest.approx(value), key


def test_a_hidden_layer_that_is_one_hot_by_digit_beats_every_rotation():
    rng = np.random.default_rng(0)
    hidden = np.eye(10)[LABELS] * rng.uniform(1.0, 2.0, size=(len(LABELS), 1))  # unit d fires on digit d only
    trained = analysis.invariant_measures(hidden, LABELS, 0.5)
    null = robustness.rotation_null(hidden, LABELS, count=100, seed=3)
    for key in robustness.NULL_MEASURES:
        assert len(null[key]) == 100
        assert null[key].max() <= trained[key] + 1e-9, key  # no rotation scores higher
    # eta² and d' put it strictly above every rotation; in a rotated basis one unit may still win every image
    # of a digit, but never a different unit for each digit, so the one-to-one matched share beats them too
    assert robustness.percentile_within(float(trained["eta_squared"]), null["eta_squared"]) == 1.0
    assert robustness.percentile_within(float(trained["d_prime"]), null["d_prime"]) == 1.0
    shares = robustness.percentile_within(float(trained["rescaled_matched_share"]), null["rescaled_matched_share"])
    assert shares > 0.95
    verdict = robustness.privileged_verdict([robustness_percentiles(hidden, null)], 0.95, 0.8)
    assert verdict["seeds_passing"] == 1


def robustness_percentiles(hidden, null):
    trained = analysis.invariant_measures(hidden, LABELS, 0.5)
    return {key: robustness.percentile_within(float(trained[key]), null[key]) for key in robustness.NULL_MEASURES}


def test_rotation_null_folds_rescaling_into_the_rotation_exactly():
    x, weights = small_network(seed=2)
    hidden = analysis.forward_hidden(x, weights)
    null = robustness.rotation_null(hidden, LABELS, count=100, seed=5)
    rotations = robustness.random_rotations(hidden.shape[1], 100, seed=5)
    direct = analysis.invariant_measures(analysis.spread_scaled(hidden) @ rotations[7], LABELS, 0.5)
    for key in robustness.NULL_MEASURES:
        assert null[key][7] == pytest.approx(direct[key], rel=1e-4), key


def test_percentile_counts_ties_half():
    assert robustness.percentile_within(2.0, np.array([1.0, 2.0, 3.0, 2.0])) == pytest.approx(0.5)
    assert robustness.percentile_within(9.0, np.arange(5.0)) == 1.0

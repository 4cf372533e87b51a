"""Known-answer tests of every statistic on small hand-built activations."""

import numpy as np
import pytest

from nu_keras import analysis

# 10 images, one per digit; neuron d fires 2.0 on digit d, plus a constant neuron 10 at 1.0.
LABELS = np.arange(10)
HIDDEN = np.hstack([np.eye(10) * 2.0, np.ones((10, 1))])


def test_per_digit_mean_and_std_of_one_image_per_digit():
    mean = analysis.per_digit_mean(HIDDEN, LABELS)
    assert mean.shape == (10, 11)
    np.testing.assert_allclose(mean, HIDDEN)
    np.testing.assert_allclose(analysis.per_digit_std(HIDDEN, LABELS), 0)


def test_ci95_is_196_standard_errors():
    labels = np.repeat(np.arange(10), 4)
    hidden = np.tile(np.array([[0.0], [2.0], [0.0], [2.0]]), (10, 1))  # sd (ddof=1) = 2/sqrt(3)
    expected = 1.96 * (2 / np.sqrt(3)) / 2
    np.testing.assert_allclose(analysis.per_digit_ci95(hidden, labels), expected)


def test_dominant_neuron_is_the_largest_mean_and_margin_is_over_the_runner_up():
    mean = np.array([[1.0, 5.0, 3.0]] + [[0.0, 0.0, 1.0]] * 9)
    winners, runners_up, margins = analysis.dominant_neurons(mean)
    assert winners[0] == 1 and runners_up[0] == 2 and margins[0] == pytest.approx(2.0)
    assert winners[1] == 2 and margins[1] == pytest.approx(1.0)


def test_dominance_counts_the_most_active_unit_per_image():
    labels = np.array([0, 0, 0, 0] + list(range(1, 10)))
    hidden = np.zeros((13, 3))
    hidden[[0, 1, 2], 1] = 5.0  # three of digit 0's four images: neuron 1 wins
    hidden[3, 2] = 1.0  # the fourth: neuron 2 wins
    hidden[4:, 0] = 1.0
    table = analysis.dominance_matrix(hidden, labels)
    np.testing.assert_allclose(table[0], [0, 0.75, 0.25])
    np.testing.assert_allclose(table[1:, 0], 1.0)


def test_images_with_every_unit_silent_have_no_winner():
    hidden = np.zeros((10, 3))
    hidden[1:, 0] = 1.0  # digit 0's only image is silent everywhere
    table = analysis.dominance_matrix(hidden, LABELS)
    assert table[0].sum() == 0
    assert analysis.silent_fraction(hidden, LABELS)[0] == 1.0
    assert analysis.most_active_neuron(hidden)[0] == -1


def test_selectivity_of_one_hot_unit_is_one():
    mean = np.zeros((10, 1))
    mean[3, 0] = 4.0
    assert analysis.selectivity_index(mean)[0] == pytest.approx(1.0)


def test_selectivity_of_flat_unit_is_zero_and_of_silent_unit_is_zero():
    mean = np.hstack([np.full((10, 1), 2.5), np.zeros((10, 1))])
    np.testing.assert_allclose(analysis.selectivity_index(mean), [0.0, 0.0])


def test_selectivity_of_a_known_profile():
    mean = np.ones((10, 1))
    mean[0, 0] = 3.0  # mu_max 3, mu_rest 1 -> (3 - 1) / (3 + 1)
    assert analysis.selectivity_index(mean)[0] == pytest.approx(0.5)


def test_dead_fraction_counts_exact_zeros():
    hidden = np.array([[0.0, 1.0], [0.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    np.testing.assert_allclose(analysis.dead_fraction(hidden), [1.0, 0.5])


def test_ablating_a_neuron_in_a_hand_set_model_changes_exactly_the_predictions_computed_by_hand():
    # Two hidden units, output unit k reads unit 0 for digits 0-4 and unit 1 for digits 5-9, with a
    # small bias towards digit 9 so an all-zero input predicts 9.
    w2 = np.zeros((2, 10))
    w2[0, 2] = 1.0
    w2[1, 7] = 1.0
    b2 = np.zeros(10)
    b2[9] = 0.1
    hidden = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 3.0]])
    assert analysis.output_logits(hidden, w2, b2).argmax(axis=1).tolist() == [2, 7, 7]
    assert analysis.ablated_predictions(hidden, w2, b2, 0).tolist() == [9, 7, 7]
    assert analysis.ablated_predictions(hidden, w2, b2, 1).tolist() == [2, 9, 2]


def test_ablation_accuracy_is_per_zeroed_neuron_and_per_digit():
    w2 = np.zeros((10, 10))
    np.fill_diagonal(w2, 1.0)
    hidden = np.eye(10)  # image d activates unit d, which votes for digit d
    table = analysis.ablation_accuracy(hidden, LABELS, w2, np.zeros(10))
    # zeroing unit u leaves image u with all-zero logits -> argmax 0, wrong unless u == 0
    expected = np.ones((10, 10))
    expected[np.arange(1, 10), np.arange(1, 10)] = 0.0
    np.testing.assert_allclose(table, expected)


def test_top_examples_are_sorted_strongest_first():
    hidden = np.array([[0.1], [0.9], [0.5], [0.7]])
    assert analysis.top_examples(hidden, k=3).tolist() == [[1, 3, 2]]


def test_silent_examples_are_images_of_the_preferred_digit_where_the_unit_is_zero():
    labels = np.array([4, 4, 1, 4])
    hidden = np.array([[0.0], [3.0], [0.0], [0.0]])
    assert analysis.silent_examples(hidden, labels, preferred=np.array([4])) == [[0, 3]]


def test_spearman_is_undefined_for_a_constant_side():
    assert analysis.spearman(np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0])) == pytest.approx(-1.0)
    assert analysis.spearman(np.ones(3), np.array([1.0, 2.0, 3.0])) is None


def test_claim_summary_finds_shared_unused_and_unclaimed():
    dominance = np.zeros((10, 4))
    dominance[:, 0] = 0.6
    dominance[9] = [0.4, 0.3, 0.3, 0.0]
    winners = np.array([0] * 5 + [1] * 4 + [2])
    summary = analysis.claim_summary(dominance, winners, threshold=0.5)
    assert summary["digits_without_dominant_neuron"] == [9]
    assert summary["shared_neurons"] == {"0": [0, 1, 2, 3, 4], "1": [5, 6, 7, 8]}
    assert summary["unused_neurons"] == [3]
    assert summary["distinct_dominant_neurons"] == 3


def test_analyze_on_a_perfect_one_hot_code():
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(10), 20)
    hidden = np.eye(10)[labels] * rng.uniform(1, 2, size=(200, 1))
    w2, b2 = np.eye(10), np.zeros(10)
    acts = {"hidden": hidden, "labels": labels, "predictions": labels}
    m = analysis.analyze(acts, {"output_kernel": w2, "output_bias": b2}, threshold=0.5)
    assert m["test_accuracy"] == 1.0
    assert m["dominant_neuron"] == list(range(10))
    np.testing.assert_allclose(m["dominance"], np.eye(10))
    np.testing.assert_allclose(m["selectivity"], 1.0)
    np.testing.assert_allclose(m["dead_fraction"], 0.9)
    # zeroing unit u makes every digit-u image predict 0 (all-zero logits), so digit u drops to 0
    assert m["ablation_drop"][3][3] == 1.0 and m["ablation_drop"][0][0] == 0.0
    assert m["claim"]["digits_with_dominant_neuron"] == list(range(10))


def test_exact_maximiser_equals_the_positive_weight_mask_and_beats_random_inputs():
    rng = np.random.default_rng(3)
    w, b = rng.normal(size=784), 0.2
    best = analysis.exact_maximizer(w)
    np.testing.assert_array_equal(best, (w > 0).astype(np.float32))
    value = max(w @ best + b, 0)
    assert value == pytest.approx(np.clip(w, 0, None).sum() + b)
    samples = rng.uniform(0, 1, size=(2000, 784))
    assert (np.maximum(samples @ w + b, 0) <= value).all()

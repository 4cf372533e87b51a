"""Known-answer tests of every statistic on small hand-built activations."""

import json

import numpy as np
import pytest
from conftest import measured
from scipy import stats

from nu_keras import ablation, analysis, record
from nu_keras.config import RunConfig

# 10 images, one per digit; neuron d fires 2.0 on digit d, plus a constant neuron 10 at 1.0.
LABELS = np.arange(10)
HIDDEN = np.hstack([np.eye(10) * 2.0, np.ones((10, 1))])


def test_per_digit_mean_and_std_of_one_image_per_digit():
    mean = analysis.per_class_mean(HIDDEN, LABELS)
    assert mean.shape == (10, 11)
    np.testing.assert_allclose(mean, HIDDEN)
    np.testing.assert_allclose(analysis.per_class_std(HIDDEN, LABELS), 0)


def test_ci95_is_196_standard_errors():
    labels = np.repeat(np.arange(10), 4)
    hidden = np.tile(np.array([[0.0], [2.0], [0.0], [2.0]]), (10, 1))  # sd (ddof=1) = 2/sqrt(3)
    expected = 1.96 * (2 / np.sqrt(3)) / 2
    np.testing.assert_allclose(analysis.per_class_ci95(hidden, labels), expected)


def test_preferred_unit_is_the_largest_mean_and_margin_is_over_the_runner_up():
    mean = np.array([[1.0, 5.0, 3.0]] + [[0.0, 0.0, 1.0]] * 9)
    winners, runners_up, margins = analysis.preferred_units(mean)
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
    assert analysis.most_active_unit(hidden)[0] == -1


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
    assert ablation.dense_ablated_predictions(hidden, w2, b2, 0).tolist() == [9, 7, 7]
    assert ablation.dense_ablated_predictions(hidden, w2, b2, 1).tolist() == [2, 9, 2]


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


def test_claim_summary_keeps_preferred_and_dominant_units_apart():
    share = np.zeros((10, 4))
    share[:, 0] = 0.6
    share[9] = [0.4, 0.3, 0.3, 0.0]
    preferred = np.array([0] * 5 + [1] * 4 + [2])
    summary = analysis.claim_summary(share, preferred, threshold=0.5)
    assert summary["classes_without_dominant_unit"] == [9]
    assert summary["units_preferred_by_several_classes"] == {"0": [0, 1, 2, 3, 4], "1": [5, 6, 7, 8]}
    assert summary["units_preferred_by_no_class"] == [3]
    assert summary["distinct_preferred_units"] == 3
    assert summary["distinct_dominant_units"] == 1
    # classes 5-8 prefer unit 1 but unit 0 wins on most of their images; class 9 has no dominant unit
    assert summary["classes_whose_preferred_unit_is_not_dominant"] == [5, 6, 7, 8, 9]
    assert analysis.dominant_units(share, 0.5) == [0] * 9 + [None]


def test_measure_on_a_perfect_one_hot_code():
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(10), 20)
    hidden = np.eye(10)[labels] * rng.uniform(1, 2, size=(200, 1))
    w2, b2 = np.eye(10), np.zeros(10)
    acts = {"units": hidden, "labels": labels, "predictions": labels}
    acts |= {f"ablated_{kind}": table for kind, table in ablation.dense_ablation_table(hidden, w2, b2).items()}
    m = measured(acts, {"output_kernel": w2, "output_bias": b2}, RunConfig(rotation_null_samples=100))
    assert m.test_accuracy == 1.0
    assert m.per_class.top_unit.tolist() == list(range(10)) and m.per_class.dominant_unit == tuple(range(10))
    np.testing.assert_allclose(m.class_unit.dominance_share, np.eye(10))
    np.testing.assert_allclose(m.per_unit.selectivity, 1.0)
    np.testing.assert_allclose(m.per_unit.dead_fraction, 0.9)
    # zeroing unit u makes every class-u image predict 0 (all-zero logits), so class u drops to 0
    drop = m.ablation["zero"]["drop"]
    assert drop[3][3] == 1.0 and drop[0][0] == 0.0
    assert m.claim["classes_with_dominant_unit"] == list(range(10))


def test_exact_maximiser_equals_the_positive_weight_mask_and_beats_random_inputs():
    rng = np.random.default_rng(3)
    w, b = rng.normal(size=784), 0.2
    best = analysis.exact_maximizer(w)
    np.testing.assert_array_equal(best, (w > 0).astype(np.float32))
    value = max(w @ best + b, 0)
    assert value == pytest.approx(np.clip(w, 0, None).sum() + b)
    samples = rng.uniform(0, 1, size=(2000, 784))
    assert (np.maximum(samples @ w + b, 0) <= value).all()


# 20 images, two per digit; unit 0 is 2 and 4 on digit 0 and zero elsewhere, unit 1 equals the digit,
# unit 2 is 0 and 2 on every digit (no digit structure), unit 3 is dead.
PAIR_LABELS = np.repeat(np.arange(10), 2)
PAIRS = np.zeros((20, 4))
PAIRS[:2, 0] = [2.0, 4.0]
PAIRS[:, 1] = PAIR_LABELS
PAIRS[:, 2] = np.tile([0.0, 2.0], 10)


def test_eta_squared_of_hand_built_units():
    # unit 0: grand mean 0.3; between 2 (3 - 0.3)² + 18 (0.3)² = 16.2; total 16.2 + (1 + 1) = 18.2
    np.testing.assert_allclose(analysis.eta_squared(PAIRS, PAIR_LABELS), [16.2 / 18.2, 1.0, 0.0, 0.0])


def test_d_prime_of_hand_built_units():
    # unit 0: preferred digit 0 with mean 3 and variance 1; the rest all zero -> 3 / sqrt((1 + 0) / 2)
    d = analysis.d_prime(PAIRS, PAIR_LABELS)
    assert d[0] == pytest.approx(3 / np.sqrt(0.5))
    # unit 1: preferred digit 9 (value 9, variance 0); the rest 0..8 twice each, mean 4, variance 20/3
    assert d[1] == pytest.approx(5 / np.sqrt(20 / 3 / 2))
    assert d[3] == 0.0  # a dead unit separates nothing


def test_invariant_measures_accept_a_stack_of_layers():
    stack = np.stack([PAIRS, PAIRS * 2.0 + 1.0])
    np.testing.assert_allclose(analysis.eta_squared(stack, PAIR_LABELS)[1], analysis.eta_squared(PAIRS, PAIR_LABELS))
    np.testing.assert_allclose(analysis.d_prime(stack, PAIR_LABELS)[1], analysis.d_prime(PAIRS, PAIR_LABELS))
    shares = analysis.win_share(stack, PAIR_LABELS)
    np.testing.assert_allclose(shares[0], analysis.win_share(PAIRS, PAIR_LABELS))


def class_structured_layer(seed: int = 0, units: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """(400, units) ReLU activations whose level depends on the digit, 40 images per digit."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), 40)
    prototypes = rng.normal(size=(10, units)) * 2.0
    return np.maximum(prototypes[labels] + rng.normal(size=(len(labels), units)), 0.0), labels


def test_moments_of_a_mapped_layer_give_the_eta_squared_and_d_prime_of_the_mapped_layer():
    hidden, labels = class_structured_layer()
    maps = np.random.default_rng(1).normal(size=(6, 5, 3))  # (K, U, V): any linear map, not only rotations
    moments = analysis.mapped_moments(analysis.class_moments(hidden, labels), maps)
    eta, d = analysis.eta_squared_from_moments(*moments), analysis.d_prime_from_moments(*moments)  # (K, V)
    for k, direct in enumerate(hidden @ maps):
        np.testing.assert_allclose(eta[k], analysis.eta_squared(direct, labels), rtol=1e-9)
        np.testing.assert_allclose(d[k], analysis.d_prime(direct, labels), rtol=1e-9)


def test_class_moments_are_each_digits_count_mean_and_population_covariance():
    hidden, labels = class_structured_layer(seed=2, units=3)
    counts, mean, covariance = analysis.class_moments(hidden, labels)
    np.testing.assert_array_equal(counts[:, 0], np.bincount(labels))
    np.testing.assert_allclose(mean, analysis.per_class_mean(hidden, labels))
    np.testing.assert_allclose(covariance[4], np.cov(hidden[labels == 4], rowvar=False, bias=True))


def test_largest_unit_is_the_argmax_over_units_and_the_first_of_tied_units():
    layers = np.random.default_rng(3).integers(0, 3, size=(4, 200, 5)).astype(float)  # (K, N, U), many ties
    winners = analysis.largest_unit(np.swapaxes(layers, -1, -2))  # takes the unit-major (K, U, N) layout
    np.testing.assert_array_equal(winners, layers.argmax(axis=-1))
    np.testing.assert_array_equal(
        analysis.win_table(winners, LABELS.repeat(20), 5), analysis.win_share(layers, LABELS.repeat(20))
    )


def test_spread_scaled_units_have_unit_spread_keep_their_zero_and_dead_units_stay_zero():
    z = analysis.spread_scaled(PAIRS)
    np.testing.assert_allclose(z[:, :3].std(axis=0), 1)
    np.testing.assert_array_equal(z[:, :3] == 0, PAIRS[:, :3] == 0)  # not centred: a silent unit stays silent
    np.testing.assert_array_equal(z[:, 3], 0)


def test_mean_ablation_replaces_a_unit_by_its_test_set_mean():
    w2 = np.zeros((2, 10))
    w2[0, 1] = 1.0
    w2[1, 2] = 1.0
    hidden = np.array([[3.0, 2.0], [0.0, 0.5], [0.0, 0.0]])  # unit 0's mean is 1.0
    assert analysis.output_logits(hidden, w2, np.zeros(10)).argmax(axis=1).tolist() == [1, 2, 0]
    assert ablation.dense_ablated_predictions(hidden, w2, np.zeros(10), 0, fill=1.0).tolist() == [2, 1, 1]
    np.testing.assert_allclose(ablation.ablation_fill(hidden, "mean"), [1.0, 2.5 / 3])
    np.testing.assert_allclose(ablation.ablation_fill(hidden, "zero"), [0.0, 0.0])


def test_confusion_row_says_where_a_digits_images_go_without_its_most_needed_unit():
    w2 = np.zeros((10, 10))
    np.fill_diagonal(w2, 1.0)
    b2 = np.zeros(10)
    b2[7] = 0.5  # with its unit removed an image falls to digit 7
    labels = np.repeat(np.arange(10), 2)
    hidden = np.eye(10)[labels]
    tables = ablation.dense_ablation_table(hidden, w2, b2)
    rows = analysis.ablation_confusion(tables["zero"], labels, np.arange(10))
    assert rows[3].tolist() == [0, 0, 0, 0, 0, 0, 0, 1.0, 0, 0]
    study = analysis.ablation_study(tables, labels, np.ones(10))
    assert study["zero"]["most_needed_unit"] == [0, 1, 2, 3, 4, 5, 6, 0, 8, 9]  # digit 7 loses nothing


def test_rank_correlation_p_value_is_a_permutation_p_and_the_interval_holds_rho():
    rng = np.random.default_rng(0)
    x = rng.normal(size=30)
    y = x + rng.normal(scale=1.5, size=30)
    result = analysis.rank_correlation(x, y, seed=1)
    reference = stats.spearmanr(x, y)
    assert result["rho"] == pytest.approx(reference.statistic)
    assert result["p"] == pytest.approx(reference.pvalue, abs=0.01)  # the t-approximation agrees at n = 30
    assert result["low"] < result["rho"] < result["high"]
    perfect = analysis.rank_correlation(np.arange(10.0), np.arange(10.0) ** 2)
    assert perfect["rho"] == pytest.approx(1.0) and perfect["p"] < 0.001
    assert analysis.rank_correlation(np.ones(5), np.arange(5.0)) is None


def test_dead_and_near_dead_units_are_told_apart():
    assert analysis.dead_and_near_dead(np.array([1.0, 0.97, 0.5, 0.95])) == ([0], [1, 3])


def planted_layer() -> tuple[dict, dict]:
    """Three classes of four images and three units: unit c fires 2 on class c's images, unit 2 never fires
    on class 0 (so class 0's images 1 and 3 are silent everywhere), the output layer reads unit c as class c,
    and image 11 (class 2) is misclassified as class 1."""
    labels = np.repeat(np.arange(3), 4)
    units = np.zeros((12, 3))
    units[np.arange(12), labels] = 2.0
    units[[1, 3], 0] = 0.0  # two silent images of class 0
    units[11] = [0.0, 1.0, 0.5]  # class 2's last image: unit 1 largest
    w2, b2 = np.eye(3), np.zeros(3)
    predictions = analysis.output_logits(units, w2, b2).argmax(axis=1)
    predictions[[1, 3]] = 0  # all-zero logits: argmax 0
    acts = {"units": units, "labels": labels, "predictions": predictions}
    acts |= {f"ablated_{kind}": t for kind, t in ablation.dense_ablation_table(units, w2, b2).items()}
    return acts, {"output_kernel": w2.astype(np.float32), "output_bias": b2}


def test_old_metrics_keys_are_record_fields_with_the_same_known_values():
    """metrics.json's old keys (left) hold the same numbers under their record names (right)."""
    acts, weights = planted_layer()
    m = measured(acts, weights, RunConfig(rotation_null_samples=100))
    assert m.schema_version == record.SCHEMA_VERSION and m.classes == ("0", "1", "2") and m.units == ("0", "1", "2")
    # digit_counts, per_class_accuracy -> per_class.count, per_class.accuracy
    assert m.per_class.count.tolist() == [4, 4, 4]
    np.testing.assert_allclose(m.per_class.accuracy, [1.0, 1.0, 0.75])
    # preferred_unit (per class) -> per_class.top_unit; mean_activation -> class_unit.mean
    assert m.per_class.top_unit.tolist() == [0, 1, 2]
    np.testing.assert_allclose(m.class_unit.mean[2], [0.0, 0.25, 1.625])
    np.testing.assert_allclose(m.per_class.top_unit_margin, [1.0, 2.0, 1.375])
    # win_share -> class_unit.dominance_share (silent images have no most active unit)
    np.testing.assert_allclose(m.class_unit.dominance_share, [[0.5, 0, 0], [0, 1, 0], [0, 0.25, 0.75]])
    # dominant_unit -> per_class.dominant_unit (above 50 %: class 0's share is exactly one half)
    assert m.per_class.dominant_unit == (None, 1, 2)
    # preferred_digit / preferred_digit_drop -> per_unit.preferred_class / per_unit.preferred_class_drop
    assert m.per_unit.preferred_class.tolist() == [0, 1, 2]
    # zeroing unit 0 leaves class 0's logits all zero, and argmax 0 is still right; class 1 goes to 0
    np.testing.assert_allclose(m.per_unit.preferred_class_drop, [0.0, 1.0, 0.75])
    # silent_fraction (per class: every unit zero), dead_fraction (per unit)
    np.testing.assert_allclose(m.per_class.silent_fraction, [0.5, 0.0, 0.0])
    np.testing.assert_allclose(m.per_unit.dead_fraction, [10 / 12, 7 / 12, 8 / 12])
    # selectivity: unit 0 has mean 1 on class 0 and 0 elsewhere
    assert m.per_unit.selectivity[0] == pytest.approx(1.0)
    # claim.digits_with_dominant_unit -> claim.classes_with_dominant_unit; live_units -> layer.live_units
    assert m.claim["classes_with_dominant_unit"] == [1, 2] and m.layer.live_units == (0, 1, 2)
    # output_weights -> per_unit.output_weights; selectivity_vs_preferred_drop -> correlations[...]
    np.testing.assert_array_equal(m.per_unit.output_weights, np.eye(3))
    assert "selectivity_vs_preferred_class_drop" in m.correlations
    # test order, and the images the pages show: every class's first images, the top and silent examples
    assert m.per_class.examples.tolist() == [
        [0, 1, 2, 3] + [-1] * 16,
        [4, 5, 6, 7] + [-1] * 16,
        [8, 9, 10, 11] + [-1] * 16,
    ]
    assert m.per_unit.silent_examples == ((1, 3), (), ())  # unit 0 is zero on images 1 and 3 of class 0
    assert m.images.index.tolist() == list(range(12))
    np.testing.assert_array_equal(m.images.units, acts["units"])
    back = record.Measurements.from_json(json.loads(json.dumps(m.to_json())))
    assert record.same(m, back)


def test_boxplot_summary_is_matplotlibs_boxplot_stats_without_fliers():
    from matplotlib import cbook

    rng = np.random.default_rng(4)
    labels = np.repeat(np.arange(3), 50)
    units = np.maximum(rng.standard_t(2, size=(150, 4)), 0)
    table = analysis.boxplot_summary(units, labels)
    for c in range(3):
        for u in range(4):
            s = cbook.boxplot_stats(units[labels == c, u])[0]
            np.testing.assert_allclose(
                table[c, u], [s["whislo"], s["q1"], s["med"], s["q3"], s["whishi"]], rtol=0, atol=0
            )


def keys_of(value) -> set[str]:
    """Every key of a JSON tree, at any depth (the settings' values and the layer names left out)."""
    if isinstance(value, dict):
        return set(value) | {k for key, v in value.items() if key not in ("provenance",) for k in keys_of(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_of(v)}
    return set()


def test_the_analyze_stage_writes_the_record_of_the_collected_files(tmp_path):
    """activations.npz, weights.npz, train.json and epochs.npz in, metrics.json out: the record's JSON, with
    the run's provenance, the epochs' dynamics and the Explore stack."""
    from types import SimpleNamespace

    from conftest import MNIST_DESCRIPTION, paper_subject, synthetic_run

    from nu_keras import artifacts
    from nu_keras.artifacts import ArtifactPaths

    acts, weights = synthetic_run()
    stack = {"stack_0_kernel": weights["hidden_kernel"], "stack_0_bias": weights["hidden_bias"]}
    stack |= {"stack_1_kernel": weights["output_kernel"], "stack_1_bias": weights["output_bias"]}
    files = ArtifactPaths(tmp_path)
    artifacts.write_npz(files.activations, **acts)
    artifacts.write_npz(files.weights, **weights, **stack)
    artifacts.write_npz(
        files.epochs, units=np.stack([acts["units"]] * 3), predictions=np.stack([acts["predictions"]] * 3)
    )
    train = {"history": None, "fit_seconds": 2.0, "test_accuracy": 0.5, "data_source": "here", "data_sha256": "0" * 64}
    train |= {"versions": {}, "config": {}, "subject": paper_subject(), "dataset": MNIST_DESCRIPTION}
    train |= {"parameters": 7960, "summary": [], "trained_with": [0, 1]}
    artifacts.write_json(files.train, train)
    labels = acts["labels"]
    data = SimpleNamespace(x_test=(labels * 20).astype(np.uint8)[:, None, None] + np.zeros((1, 28, 28), np.uint8))
    data.class_names = [str(c) for c in range(10)]
    cfg = RunConfig(out=tmp_path, rotation_null_samples=100)
    written = analysis.run_analyze(cfg, files, data)
    raw = json.loads(files.metrics.read_text())
    assert raw["schema_version"] == record.SCHEMA_VERSION
    assert not {k for k in keys_of(raw) if any(word in k for word in ("digit", "standardised", "hidden"))}
    m = record.Measurements.from_json(raw)
    assert record.same(m, written)
    assert m.provenance.config == json.loads(json.dumps(cfg.measured_fields())) and m.provenance.trained_with == [0, 1]
    assert m.provenance.subject["signed"] is False and m.provenance.fit_seconds == 2.0
    assert m.dynamics["epoch"] == [0, 1, 2] and len(set(m.dynamics["mean_eta_squared"])) == 1
    assert [layer["name"] for layer in m.network] == ["hidden", "output"]
    np.testing.assert_array_equal(m.network[1]["kernel"], weights["output_kernel"])  # arrays come back as arrays
    np.testing.assert_array_equal(m.images.pixels, data.x_test[m.images.index])


def test_a_record_of_a_thousand_classes_keeps_a_bounded_number_of_images():
    labels = np.repeat(np.arange(1000), 3)
    rng = np.random.default_rng(5)
    units = np.maximum(rng.normal(size=(3000, 4)), 0)
    w2 = rng.normal(size=(4, 1000))
    predictions = analysis.output_logits(units, w2, np.zeros(1000)).argmax(axis=1)
    acts = {"units": units, "labels": labels, "predictions": predictions}
    acts |= {f"ablated_{kind}": t for kind, t in ablation.dense_ablation_table(units, w2, np.zeros(1000)).items()}
    m = measured(acts, {"output_kernel": w2}, RunConfig(rotation_null_samples=100), network=({"name": "x"},))
    shown = analysis.TOP_EXAMPLES + analysis.SILENT_EXAMPLES
    assert 1000 <= len(m.images.index) <= record.MAX_IMAGES + 4 * shown  # one of each class at least
    assert m.class_unit.boxplot.shape == (1000, 4, 5) and m.per_class.examples.shape == (1000, analysis.EXAMPLE_COUNT)


def test_a_network_too_large_for_the_explore_page_is_not_carried():
    subject = {"explorable": True, "stack": [{"name": "wide", "activation": "relu"}]}
    images = np.zeros((1, 28, 28), np.uint8)
    small = {"stack_0_kernel": np.zeros((784, 10), np.float32), "stack_0_bias": np.zeros(10, np.float32)}
    large = {"stack_0_kernel": np.zeros((784, 1300), np.float32), "stack_0_bias": np.zeros(1300, np.float32)}
    network, reason = analysis.explore_network(subject, small, images, 10)
    assert network[0]["name"] == "wide" and reason is None
    network, reason = analysis.explore_network(subject, large, images, 10)  # 1,020,500 parameters
    assert network is None and "1,020,500 weights and biases" in reason
    network, reason = analysis.explore_network(subject, small, images, 2000)  # one image per class: over budget
    assert network is None and "one test image of each of its 2000 classes" in reason
    assert analysis.explore_network({"explorable": False, "explore_reason": "conv"}, small, images, 10) == (
        None,
        "conv",
    )


def test_a_record_made_in_memory_holds_its_provenance_as_its_json_does():
    acts, weights = planted_layer()
    provenance = record.Provenance.bare(config={"sweep_widths": (10, 20)}, layers=({"name": "x"},))
    m = measured(acts, weights, RunConfig(rotation_null_samples=100), provenance=provenance)
    back = record.Measurements.from_json(json.loads(json.dumps(m.to_json())))
    assert m.provenance == back.provenance and m.provenance.config == {"sweep_widths": [10, 20]}


def test_float_images_are_kept_as_float32_and_survive_the_json():
    acts, weights = planted_layer()
    images = np.random.default_rng(6).uniform(size=(12, 5, 4, 3))  # float64 colour images
    m = measured(acts, weights, RunConfig(rotation_null_samples=100), images=images)
    assert m.images.pixels.dtype == np.float32 and m.images.pixels.shape == (12, 5, 4, 3)
    back = record.Measurements.from_json(json.loads(json.dumps(m.to_json())))
    np.testing.assert_array_equal(back.images.pixels, images.astype(np.float32))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a, i: (a | {"units": a["units"][:, :1]}, i), "U >= 2"),
        (lambda a, i: (a | {"units": np.where(a["units"] > 1, np.nan, a["units"])}, i), "not finite"),
        (lambda a, i: (a | {"labels": a["labels"] + 1}, i), "labels must lie in 0..2"),
        (lambda a, i: (a, i[:5]), "5 images, 12 labels"),
        (lambda a, i: (a | {"labels": np.minimum(a["labels"], 1)}, i), "class 2 has none"),
    ],
    ids=["one-unit", "nan", "label-range", "image-count", "empty-class"],
)
def test_bad_arrays_are_one_line_errors(change, message):
    from nu_keras.errors import NuKerasError

    acts, weights = planted_layer()
    acts, images = change(acts, np.zeros((12, 4, 4), np.uint8))
    with pytest.raises(NuKerasError, match=message) as caught:
        measured(acts, weights, RunConfig(rotation_null_samples=100), images=images, class_names=["a", "b", "c"])
    assert "\n" not in str(caught.value)


def test_a_signed_layer_has_no_selectivity_and_no_correlation_with_it():
    acts, weights = planted_layer()
    signed = acts | {"units": acts["units"] - 0.5}  # no ReLU: negative values
    m = measured(signed, weights, RunConfig(rotation_null_samples=100))
    assert m.layer.signed and m.provenance.subject["signed"] is True
    assert m.per_unit.selectivity == (None, None, None)
    assert m.correlations == {
        "selectivity_vs_ablation": {"zero": None, "mean": None},
        "selectivity_vs_preferred_class_drop": None,
    }
    json.dumps(m.to_json(), allow_nan=False)  # no NaN anywhere


def test_the_analyze_stage_depends_on_every_setting_its_record_prints():
    from nu_keras import pipeline

    cfg = RunConfig(sweep_widths=(10, 20), examples=3)
    trained = {"versions": {}, "data_source": "", "data_sha256": "", "dataset": {}, "subject": {}, "history": None}
    trained |= {"fit_seconds": None, "parameters": 0, "summary": []}
    printed = analysis.run_provenance(cfg, trained, {}).config
    depends = pipeline.BY_NAME["analyze"].config(cfg)
    assert printed == depends and json.loads(json.dumps(depends)) == depends  # JSON-plain: reused when unchanged
    assert set(depends) >= {"dominance_threshold", "claim_min_classes", "specificity_min_classes", "seed"}
    assert not set(depends) & {"examples", "pages_dir", "site_dir", "templates"}  # how it is published: not measured


def test_a_linear_readout_recovers_a_class_the_units_encode_and_not_one_they_do_not():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 100)
    encoded = np.eye(4)[labels] * 2.0 + rng.normal(0, 0.3, (400, 4))  # unit c fires for class c
    mixed = encoded @ rng.normal(size=(4, 6))  # the same information, spread linearly over six units
    noise = rng.normal(size=(400, 6))  # nothing about the class
    assert analysis.linear_readout_accuracy(encoded, labels, 4) == 1.0
    assert analysis.linear_readout_accuracy(mixed, labels, 4) == 1.0  # a linear read-out undoes a linear mixing
    assert analysis.linear_readout_accuracy(noise, labels, 4) < 0.4  # chance is 0.25
    xor = np.array([[a, b] for a in (0, 1) for b in (0, 1)] * 50, dtype=float)
    parity = (xor[:, 0] != xor[:, 1]).astype(int)
    assert analysis.linear_readout_accuracy(xor, parity, 2) <= 0.5  # not linearly separable: no better than chance
    dead = np.zeros((400, 3))
    assert analysis.linear_readout_accuracy(dead, labels, 4) == 0.25  # the bias alone: the class it guesses


def test_the_readout_matches_an_independent_least_squares_fit_and_its_stated_penalty():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 300)
    units = np.eye(3)[labels] + rng.normal(0, 0.8, (300, 3))
    even = np.arange(300) % 2 == 0
    correct = 0
    for fit in (even, ~even):
        mu, sd = units[fit].mean(0), units[fit].std(0)
        a = np.c_[(units[fit] - mu) / sd, np.ones(fit.sum())]
        # the ridge solution as the minimiser of the augmented least-squares problem
        ridge = np.sqrt(analysis.READOUT_RIDGE * fit.sum()) * np.eye(4)[:3]
        w = np.linalg.lstsq(np.r_[a, ridge], np.r_[np.eye(3)[labels[fit]], np.zeros((3, 3))], rcond=None)[0]
        b = np.c_[(units[~fit] - mu) / sd, np.ones((~fit).sum())]
        correct += int(np.sum((b @ w).argmax(1) == labels[~fit]))
    assert analysis.linear_readout_accuracy(units, labels, 3) == correct / 300
    from nu_keras import measures

    formula = next(m.formula for m in measures.MEASURES if m.field == "layer.linear_readout_accuracy")
    assert f"penalty {analysis.READOUT_RIDGE:g} per image" in formula

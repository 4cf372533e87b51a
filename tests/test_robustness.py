"""Seeds, widths and controls: unit matching, rotation invariance, branch training, the sweep page."""

import numpy as np
import pytest
from conftest import measured, random_images, synthetic_record, synthetic_run
from scipy import stats

from nu_keras import ablation, analysis, inference, pages, robustness
from nu_keras.charts import chart_names
from nu_keras.config import RunConfig
from nu_keras.data import Dataset


def test_matching_recovers_a_known_permutation_of_profiles():
    rng = np.random.default_rng(0)
    reference = rng.uniform(0, 5, size=(10, 8))
    permutation = rng.permutation(8)
    other = reference[:, permutation] * 1.7 + 0.3  # rescaled: correlation ignores scale and offset
    order, corr = robustness.match_units(reference, other)
    np.testing.assert_array_equal(other[:, order], reference * 1.7 + 0.3)
    np.testing.assert_allclose(corr, 1.0)


def test_dead_units_correlate_zero_rather_than_nan():
    profiles = np.hstack([np.arange(10.0)[:, None], np.zeros((10, 1))])
    corr = robustness.profile_correlation(profiles, profiles)
    np.testing.assert_allclose(corr, [[1.0, 0.0], [0.0, 0.0]])


def test_rotation_leaves_every_prediction_unchanged():
    rng = np.random.default_rng(1)
    hidden = np.maximum(rng.normal(size=(500, 10)), 0)
    w2, b2 = rng.normal(size=(10, 10)), rng.normal(size=10)
    rotation = robustness.random_rotation(10, seed=3)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(10), atol=1e-12)
    rotated, rotated_w2 = robustness.rotate(hidden, w2, rotation)
    np.testing.assert_allclose(rotated @ rotated_w2 + b2, hidden @ w2 + b2, atol=1e-5)
    assert not np.allclose(rotated, hidden)


def test_rotation_null_equals_rescaling_rotating_rescaling_and_measuring_each_basis():
    rng = np.random.default_rng(4)
    labels = np.repeat(np.arange(10), 60)
    prototypes = rng.normal(size=(10, 6)) * np.array([3.0, 2.0, 1.0, 0.5, 0.2, 0.0])  # units from sharp to blind
    hidden = np.maximum(prototypes[labels] + rng.normal(size=(len(labels), 6)), 0.0).astype(np.float32)
    null = robustness.rotation_null(hidden, labels, count=23, seed=7, chunk=5)  # a last chunk of 3
    for k, rotation in enumerate(robustness.random_rotations(6, 23, seed=7)):
        z = analysis.spread_scaled(analysis.spread_scaled(hidden) @ rotation)
        best = analysis.matched_share(analysis.dominance_matrix(z, labels))
        assert null["rescaled_matched_share"][k] == pytest.approx(best)
        assert null["eta_squared"][k] == pytest.approx(analysis.eta_squared(z, labels).mean(), rel=1e-5)
        assert null["d_prime"][k] == pytest.approx(analysis.d_prime(z, labels).mean(), rel=1e-5)


def test_mutual_information_is_the_plug_in_estimate_of_the_bin_by_digit_table():
    rng = np.random.default_rng(5)
    labels = np.repeat(np.arange(10), 30)
    unit = np.maximum(labels + rng.normal(scale=3.0, size=len(labels)), 0.0)[:, None]
    codes = robustness._bin(unit[:, 0], robustness.MI_BINS)
    joint = np.array([[np.sum((codes == b) & (labels == d)) for d in range(10)] for b in range(codes.max() + 1)])
    p = joint / joint.sum()
    outer = p.sum(axis=1, keepdims=True) * p.sum(axis=0, keepdims=True)
    expected = sum(p[i, j] * np.log2(p[i, j] / outer[i, j]) for i, j in zip(*np.nonzero(p), strict=True))
    assert robustness.mutual_information(unit, labels)[0] == pytest.approx(expected, rel=1e-12)


def test_mutual_information_of_a_label_copy_is_the_label_entropy_and_noise_is_near_zero():
    labels = np.repeat(np.arange(10), 100)
    perfect = (labels + 1.0)[:, None]  # ten distinct positive values, one per digit
    assert robustness.mutual_information(perfect, labels, bins=11)[0] == pytest.approx(np.log2(10), abs=1e-9)
    noise = np.random.default_rng(0).uniform(0, 1, size=(1000, 1))
    assert abs(robustness.mutual_information_excess(noise, labels)[0]) < 0.05


def test_interval_is_a_t_interval_of_the_mean():
    summary = robustness.interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 * 1.0 / np.sqrt(3)  # t(0.975, 2) * sd / sqrt(n)
    assert summary["mean"] == 2.0 and summary["sd"] == 1.0
    assert summary["low"] == pytest.approx(2 - half) and summary["high"] == pytest.approx(2 + half)
    assert robustness.interval([5.0])["low"] == 5.0


def test_verdict_applies_the_thresholds_fixed_in_advance_and_can_say_not_settled():
    # 4 of 5 seeds pass: 80 % on the point, but the interval (28 %-99 %) holds both sides of 80 %
    assert robustness.verdict([9, 8, 8, 8, 7], 8, 0.8)["verdict"] == "not settled"
    result = robustness.verdict([9, 8, 7, 7, 5], 8, 0.8)
    assert result["verdict"] == "not settled" and result["seeds_passing"] == 2 and result["fraction_passing"] == 0.4
    assert (result["interval_low"], result["interval_high"]) == inference.clopper_pearson(2, 5)
    assert robustness.verdict([5] * 10, 8, 0.8)["verdict"] == "does not hold"  # 0 of 10: at most 31 %
    assert robustness.verdict([9] * 20, 8, 0.8)["verdict"] == "holds"  # 20 of 20: at least 83 %
    assert robustness.verdict([9] * 10, 8, 0.8)["seeds_to_settle"] == 17


@pytest.mark.parametrize("k, n", [(0, 5), (2, 5), (5, 5), (1, 10), (37, 50)])
def test_clopper_pearson_matches_scipys_exact_binomial_interval(k, n):
    reference = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    low, high = inference.clopper_pearson(k, n)
    assert low == pytest.approx(reference.low, abs=1e-9) and high == pytest.approx(reference.high, abs=1e-9)


def test_clopper_pearson_known_values():
    # 0 of n: the upper limit solves (1 - p)^n = 0.025; 2 of 5 is the textbook 0.0527-0.8534
    assert inference.clopper_pearson(0, 5) == (0.0, pytest.approx(1 - 0.025 ** (1 / 5)))
    low, high = inference.clopper_pearson(2, 5)
    assert low == pytest.approx(0.0527, abs=1e-4) and high == pytest.approx(0.8534, abs=1e-4)


def test_privileged_verdict_needs_every_measure_above_the_percentile():
    above = {"rescaled_matched_share": 0.99, "eta_squared": 0.97, "d_prime": 1.0}
    one_low = {**above, "eta_squared": 0.6}
    result = robustness.privileged_verdict([above] * 20, 0.95, 0.8)
    assert result["seeds_passing"] == 20 and result["verdict"] == "holds"  # 20 of 20: at least 83 %
    assert robustness.privileged_verdict([above] * 20 + [one_low], 0.95, 0.8)["verdict"] == "not settled"
    assert robustness.privileged_verdict([one_low] * 10, 0.95, 0.8)["verdict"] == "does not hold"


def test_shuffled_profiles_keep_each_units_values_and_lose_the_digit_order():
    profiles = np.arange(30.0).reshape(10, 3)
    shuffled = robustness.shuffled_profiles(profiles, seed=0)
    np.testing.assert_array_equal(np.sort(shuffled, axis=0), profiles)
    assert not np.array_equal(shuffled, profiles)


def test_a_branch_trained_with_others_matches_a_standalone_model_from_the_same_start():
    from nu_keras import model as mdl

    data = random_images()
    cfg = RunConfig(seed=4, epochs=2, batch_size=64, validation_size=200, steps_per_execution=4)
    alone = mdl.build_model(cfg)
    mdl.train(alone, data, cfg)
    branches = mdl.build_branches(
        cfg, [4, 9, 11], 10, mdl.training_images(data, cfg)
    )  # branch 0 starts where `alone` started
    mdl.fit_branches(branches, data, cfg, [4, 9, 11])
    together = mdl.branch_weights(branches, 0)
    for key, value in mdl.dense_weights(alone).items():
        np.testing.assert_allclose(together[key], value, atol=1e-5, err_msg=key)
    other = mdl.branch_weights(branches, 1)["hidden_kernel"]
    assert not np.allclose(other, together["hidden_kernel"])


def test_every_branch_reads_its_own_seeds_data_order_and_matches_that_network_alone():
    """Branch n of a block is the network `train --seed seeds[n]` fits alone: the same start and the same
    batches, drawn from its own seed's permutations, not branch 0's."""
    from nu_keras import model as mdl

    data = random_images()
    cfg = RunConfig(seed=4, epochs=2, batch_size=64, validation_size=200, steps_per_execution=4)
    branches = mdl.build_branches(cfg, [4, 9], 10, mdl.training_images(data, cfg))
    mdl.fit_branches(branches, data, cfg, [4, 9])
    second = cfg.replace(seed=9)
    alone = mdl.build_model(second)
    mdl.train(alone, data, second)
    for key, value in mdl.dense_weights(alone).items():
        np.testing.assert_allclose(mdl.branch_weights(branches, 1)[key], value, atol=1e-5, err_msg=key)
    shared = cfg.replace(seed=9, data_order_seed=4)  # seed 9's start, seed 4's batches: another network
    other = mdl.build_model(shared)
    mdl.train(other, data, shared)
    assert not np.allclose(mdl.dense_weights(other)["hidden_kernel"], mdl.dense_weights(alone)["hidden_kernel"])


def test_branch_zeros_curves_are_the_ones_keras_records_for_the_network_alone():
    """The report's training curves come from branch 0 of its block; they must be the standalone network's
    (Keras's own training metrics and validation pass), and neither the curve metrics nor the held-out pass
    may change the training."""
    from nu_keras import model as mdl

    data = random_images()
    cfg = RunConfig(seed=4, epochs=3, batch_size=64, validation_size=200, steps_per_execution=4)
    alone = mdl.train(mdl.build_model(cfg), data, cfg)["history"]
    watched = mdl.build_branches(cfg, [4, 9], 10, mdl.training_images(data, cfg), curves=True)
    curves = mdl.fit_branches(watched, data, cfg, [4, 9], validate=True)["history"]
    assert set(curves) == set(alone) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    for key, values in alone.items():
        np.testing.assert_allclose(curves[key], values, rtol=1e-4, err_msg=key)
    unwatched = mdl.build_branches(
        cfg, [4, 9], 10, mdl.training_images(data, cfg)
    )  # no curve metrics, no held-out pass
    assert mdl.fit_branches(unwatched, data, cfg, [4, 9], validate=False)["history"] == {}
    for branch in (0, 1):
        for key, value in mdl.branch_weights(watched, branch).items():
            np.testing.assert_array_equal(mdl.branch_weights(unwatched, branch)[key], value, err_msg=key)


@pytest.fixture(scope="module")
def tiny_sweep():
    from nu_keras.sweep import train_and_measure

    rng = np.random.default_rng(0)
    y_train = np.tile(np.arange(10, dtype=np.uint8), 60)
    y_test = np.tile(np.arange(10, dtype=np.uint8), 20)
    prototypes = rng.integers(0, 256, size=(10, 28, 28))
    x_train = np.clip(prototypes[y_train] + rng.normal(0, 30, size=(600, 28, 28)), 0, 255).astype(np.uint8)
    x_test = np.clip(prototypes[y_test] + rng.normal(0, 30, size=(200, 28, 28)), 0, 255).astype(np.uint8)
    data = Dataset(x_train, y_train, x_test, y_test, source="synthetic prototypes")
    cfg = RunConfig(
        epochs=3, batch_size=32, validation_size=100, steps_per_execution=4, sweep_seeds=2, sweep_widths=(5, 10)
    )
    return train_and_measure(data, cfg), cfg


def test_sweep_on_a_tiny_dataset_holds_every_per_seed_and_control_number(tiny_sweep):
    sweep, cfg = tiny_sweep
    assert sweep["seeds"] == [0, 1] and list(sweep["widths"]) == ["5", "10"]
    for width, entry in sweep["widths"].items():
        assert len(entry["models"]) == 2
        for model in entry["models"]:
            for kind in ("trained", "untrained"):
                assert len(model[kind]["eta_squared"]) == int(width)
            # the rotated control rotates the live units only (the whole silent layer when every unit is dead)
            live = model["trained"]["live_units"]
            assert len(model["rotated"]["eta_squared"]) == (len(live) or int(width))
            for kind in ("trained", "untrained", "rotated"):
                assert 0 <= model[kind]["rescaled_dominant_classes"] <= 10
            for kind in ("trained", "untrained"):
                assert len(model[kind]["selectivity"]) == int(width)
                assert 0 <= model[kind]["classes_with_dominant_unit"] <= 10
            # rotated units can be negative: the measures that need non-negative rates are not computed
            assert model["rotated"]["selectivity"] is None and model["rotated"]["classes_with_dominant_unit"] is None
            assert model["rotated"]["test_accuracy"] == pytest.approx(model["trained"]["test_accuracy"])
            assert all(len(v) == cfg.rotation_null_samples for v in model["null"]["values"].values())
            assert all(0 <= p <= 1 for p in model["null"]["percentile"].values())
            assert set(model["matching"]) == {"trained", "shuffled", "untrained", "rotated"}
    assert sweep["verdict"]["seeds"] == 2 and sweep["privileged_verdict"]["seeds"] == 2


def test_sweep_reports_threshold_curves_effect_sizes_fisher_tests_and_one_holm_family(tiny_sweep):
    sweep, cfg = tiny_sweep
    summary = sweep["widths"]["10"]["summary"]
    curve = summary["threshold_curve"]
    assert curve["thresholds"][0] == 0.3 and curve["thresholds"][-1] == 0.9
    for name in ("trained", "untrained", "rotated", "trained_rescaled"):
        means = curve[name]["mean"]
        assert len(means) == len(curve["thresholds"]) and means == sorted(means, reverse=True)  # fewer as t rises
    models = sweep["widths"]["10"]["models"]
    at_half = curve["thresholds"].index(cfg.dominance_threshold)
    assert curve["trained"]["mean"][at_half] == pytest.approx(
        np.mean([m["trained"]["classes_with_dominant_unit"] for m in models])
    )
    effect = summary["effect_sizes"]["eta_squared"]
    expected = np.mean([m["trained"]["mean_eta_squared"] - m["rotated"]["mean_eta_squared"] for m in models])
    assert effect["mean"] == pytest.approx(expected) and effect["side"] in ("above", "within", "below")
    assert set(summary["effect_sizes"]["vs_untrained"]) == {"eta_squared", "d_prime"}
    assert set(sweep["fisher"]) == {"claim_1", "claim_3"} and all(0 <= p <= 1 for p in sweep["fisher"].values())
    tests = sweep["tests"]
    assert {"fisher_claim_1", "seed_0_specificity", "seed_1_selectivity_vs_mean_ablation"} <= set(tests)
    for entry in tests.values():
        assert set(entry) == {"p", "adjusted", "significant", "label"}
        assert entry["p"] is None or entry["adjusted"] >= entry["p"]


def one_unit_per_class(scale_unit: float = 1.0) -> tuple[np.ndarray, np.ndarray, dict]:
    """A planted layer: unit d fires on class d's images only (plus a little noise), and votes for class d.
    Unit 0 is scaled by `scale_unit` and its outgoing weights by the inverse: the same function."""
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(10), 100)
    hidden = np.maximum(3.0 * np.eye(10)[labels] + rng.normal(scale=0.5, size=(1000, 10)), 0.0)
    hidden[:, 0] *= scale_unit
    w2 = np.eye(10)
    w2[0] /= scale_unit
    acts = {"units": hidden, "labels": labels, "predictions": (hidden @ w2).argmax(axis=1)}
    acts |= {
        f"ablated_{kind}": table for kind, table in ablation.dense_ablation_table(hidden, w2, np.zeros(10)).items()
    }
    return hidden, labels, acts | {"weights": {"output_kernel": w2}}


def controls_of(scale_unit: float = 1.0) -> dict:
    """The single-network controls `analysis.measure` records for the planted layer."""
    _, _, acts = one_unit_per_class(scale_unit)
    m = measured(acts, acts.pop("weights"), RunConfig(rotation_null_samples=1000))
    return {"claims": m.claims, "null": m.null, "important_units": m.important_units, "tests": m.tests}


def test_a_single_network_with_one_unit_per_class_passes_all_three_claims_and_lists_its_needed_units():
    controls = controls_of()
    assert controls["claims"]["dominance"] == {"classes": 10, "required": 8, "passes": True}
    assert controls["claims"]["specificity"] == {"classes": 10, "required": 8, "passes": True}
    assert controls["claims"]["privileged"]["passes"]
    assert {place["side"] for place in controls["null"]["place"].values()} == {"above"}
    assert len(controls["null"]["values"]["eta_squared"]) == 1000
    needed = controls["important_units"]["zero"]
    assert sorted(needed) == list(range(10))  # each unit is its class's only vote
    assert set(controls["tests"]) == {
        "selectivity_vs_zero_ablation",
        "selectivity_vs_mean_ablation",
        "selectivity_vs_preferred_drop",
        "specificity",
    }
    assert controls["tests"]["specificity"]["significant"]


def test_rescaling_a_unit_moves_no_single_network_control():
    plain, scaled = controls_of(), controls_of(scale_unit=10.0)
    assert scaled["claims"] == plain["claims"]
    for key in robustness.NULL_MEASURES:
        assert scaled["null"]["percentile"][key] == pytest.approx(plain["null"]["percentile"][key])
    assert scaled["important_units"] == plain["important_units"]


def test_a_layer_without_measurable_ablation_effects_lists_no_important_unit():
    noise = {"zero": [inference.paired_drop(np.ones(100, bool), np.ones(100, bool))] * 3, "mean": []}
    one_image = np.r_[False, np.ones(99, bool)]
    noise["mean"] = [inference.paired_drop(np.ones(100, bool), one_image)]  # 1 of 100 lost: within noise
    assert robustness.important_units(noise) == {"zero": [], "mean": []}


def test_sweep_page_prints_the_sweep_numbers(tiny_sweep, tmp_path):
    sweep, cfg = tiny_sweep
    acts, weights = synthetic_run()
    record = synthetic_record(acts, weights, cfg)
    pages.render_all(
        record, 5, cfg.project_root / "report_templates", tmp_path, sweep, charts=chart_names(record, sweep)
    )
    text = (tmp_path / "robustness.md").read_text()
    for width in ("5", "10"):
        accuracy = sweep["widths"][width]["summary"]["accuracy"]
        assert f"| {width} | {pages.pct(accuracy['mean'], 2)} ({pages.pct(accuracy['sd'], 2)})" in text
    verdict = sweep["verdict"]
    assert f"{verdict['seeds_passing']} of {verdict['seeds']} seeds" in text
    assert f"the claim {verdict['verdict']}" in text
    assert "Verdict, claim 2: the claim" in text
    assert "## By width" in text  # two widths were swept
    findings = (tmp_path / "findings.md").read_text()
    assert "Verdict, claim 1 (dominant units)" in findings and "[Robustness](robustness.md)" in findings
    assert "Verdict, claim 2 (privileged basis)" in findings

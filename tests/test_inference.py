"""How sure each finding is: Holm's correction, places in a Monte Carlo null, paired ablation drops, tests that
permute within seeds, effect sizes over seeds, the threshold curve and the families of tests the pages report."""

import numpy as np
import pytest
from scipy import stats

from nu_keras import inference, robustness, sweep
from nu_keras.config import RunConfig


def test_holm_multiplies_the_smallest_p_by_the_family_size_and_keeps_the_adjusted_values_monotone():
    result = inference.holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.5})
    assert result["a"]["adjusted"] == pytest.approx(0.04)
    assert result["c"]["adjusted"] == pytest.approx(0.09)
    assert result["b"]["adjusted"] == pytest.approx(0.09)  # 2 x 0.04 = 0.08, raised to the step before it
    assert result["d"]["adjusted"] == pytest.approx(0.5)
    assert [name for name, entry in result.items() if entry["significant"]] == ["a"]


def test_holm_lists_a_test_without_p_and_leaves_it_out_of_the_family():
    result = inference.holm({"a": 0.02, "missing": None})
    assert result["a"]["adjusted"] == pytest.approx(0.02)  # a family of one
    assert result["missing"] == {"p": None, "adjusted": None, "significant": False}


def test_a_value_above_every_one_of_1000_rotations_is_above_and_97_percent_of_200_is_within():
    null = np.linspace(0, 1, 1000)
    assert inference.null_place(2.0, null)["side"] == "above"
    assert inference.null_place(-1.0, null)["side"] == "below"
    place = inference.null_place(0.5, null)
    assert place["side"] == "within" and place["percentile"] == pytest.approx(0.5, abs=1e-3)
    near_top = inference.null_place(193.5, np.arange(200.0))  # beats 194 of 200 (97 %)
    assert near_top["percentile"] == pytest.approx(0.97) and near_top["side"] == "within"
    assert near_top["low"] < 0.975 < near_top["high"]


def test_the_monte_carlo_interval_of_a_percentile_narrows_with_more_rotations():
    few, many = inference.null_place(0.5, np.linspace(0, 1, 200)), inference.null_place(0.5, np.linspace(0, 1, 5000))
    assert many["high"] - many["low"] < few["high"] - few["low"]
    assert few["high"] - few["low"] == pytest.approx(0.14, abs=0.02)  # about +-7 points with 200 rotations


def test_a_paired_drop_without_discordant_images_is_exactly_zero_and_not_measurable():
    correct = np.array([True] * 90 + [False] * 10)
    result = inference.paired_drop(correct, correct)
    assert (result["drop"], result["low"], result["high"], result["measurable"]) == (0.0, 0.0, 0.0, False)


def test_a_paired_drop_is_measurable_only_when_the_exact_mcnemar_test_rejects():
    intact = np.ones(1000, dtype=bool)
    for lost, measurable in ((2, False), (10, True)):
        ablated = intact.copy()
        ablated[:lost] = False
        result = inference.paired_drop(intact, ablated)
        mcnemar = stats.binomtest(lost, lost, 0.5).pvalue
        assert result["drop"] == pytest.approx(lost / 1000)
        assert result["measurable"] == measurable == bool(mcnemar < 0.05)
        assert result["low"] <= result["drop"] <= result["high"]


def test_units_correlated_only_through_their_network_are_not_significant_when_shuffled_within_networks():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(5), 10)
    level = rng.normal(scale=3.0, size=5)[groups]  # what the units of one network share
    x, y = level + rng.normal(size=50), level + rng.normal(size=50)
    pooled = inference.within_group_rank_correlation(x, y, groups, seed=1, permutations=2000)
    naive = stats.spearmanr(x, y)
    assert naive.pvalue < 0.01 and pooled["rho"] == pytest.approx(naive.statistic)
    assert pooled["p"] > 0.05 and pooled["groups"] == 5


def test_bootstrap_mean_of_one_seed_is_that_value_with_no_width():
    assert inference.bootstrap_mean(np.array([0.3])) == {"mean": 0.3, "low": 0.3, "high": 0.3, "n": 1}


def test_side_of_zero_and_fishers_exact_known_answers():
    assert [inference.side_of_zero(*span) for span in ((0.1, 0.2), (-0.2, -0.1), (-0.1, 0.1))] == [
        "above",
        "below",
        "within",
    ]
    assert inference.fisher_exact(10, 10, 0, 10) == pytest.approx(2 / 184756)  # 2 / C(20, 10)
    assert inference.fisher_exact(3, 5, 3, 5) == pytest.approx(1.0)


def test_threshold_counts_count_classes_whose_best_share_exceeds_each_threshold():
    share = np.array([[0.95, 0.05], [0.6, 0.4], [0.5, 0.5], [0.31, 0.2]])
    counts = robustness.threshold_counts(share)
    by_threshold = dict(zip(robustness.CURVE_THRESHOLDS, counts, strict=True))
    assert robustness.CURVE_THRESHOLDS[0] == 0.3 and robustness.CURVE_THRESHOLDS[-1] == 0.9
    assert by_threshold[0.3] == 4 and by_threshold[0.5] == 2 and by_threshold[0.6] == 1 and by_threshold[0.9] == 1


def seed_entry(seed: int, trained_eta: float, rotated_eta: float, counts: list[int]) -> dict:
    """The parts of a measured seed that the effect sizes and the threshold curve read."""
    part = {"mean_eta_squared": trained_eta, "mean_d_prime": 2 * trained_eta, "threshold_counts": counts}
    control = {"mean_eta_squared": rotated_eta, "mean_d_prime": 2 * rotated_eta, "threshold_counts": counts}
    return {
        "seed": seed,
        "trained": part | {"rescaled_threshold_counts": counts},
        "untrained": control | {"rescaled_threshold_counts": counts},
        "rotated": control | {"threshold_counts": None, "rescaled_threshold_counts": [c - 1 for c in counts]},
    }


def test_effect_sizes_are_trained_minus_control_per_seed_with_a_bootstrap_interval_and_a_side():
    models = [seed_entry(s, 0.5 + 0.01 * s, 0.3, [5] * 13) for s in range(6)]
    effects = sweep.effect_sizes(models)
    assert effects["eta_squared"]["mean"] == pytest.approx(0.2 + 0.025)
    assert effects["eta_squared"]["side"] == "above" and effects["eta_squared"]["n"] == 6
    assert effects["d_prime"]["mean"] == pytest.approx(2 * 0.225)
    assert effects["vs_untrained"]["eta_squared"]["mean"] == pytest.approx(0.225)
    same = sweep.effect_sizes([seed_entry(s, 0.3 + 0.01 * (-1) ** s, 0.3, [5] * 13) for s in range(6)])
    assert same["eta_squared"]["side"] == "within"


def test_threshold_curve_is_the_mean_and_t_interval_over_seeds_at_each_threshold():
    models = [seed_entry(s, 0.5, 0.3, list(range(13, 0, -1)) if s else [13] * 13) for s in range(2)]
    curve = sweep.threshold_curve(models)
    assert curve["thresholds"] == list(robustness.CURVE_THRESHOLDS)
    assert curve["trained"]["mean"][0] == 13 and curve["trained"]["mean"][-1] == pytest.approx(7.0)
    assert curve["trained"]["low"][-1] < 7.0 < curve["trained"]["high"][-1]
    assert curve["rotated"]["mean"][0] == 12  # read on the spread-scaled table: a rotated unit is signed
    assert set(curve) == {"thresholds", "trained", "untrained", "rotated", "trained_rescaled", "untrained_rescaled"}


def sweep_of(models: list[dict], pooled_p: float) -> dict:
    """A sweep with one width whose tests have the given p-values."""
    pooled = {"rho": -0.5, "p": pooled_p}
    summary = {"selectivity_vs_ablation_pooled": {"zero": pooled, "mean": None}}
    return {
        "recipe": {"hidden_units": 10},
        "widths": {"10": {"models": models, "summary": summary}},
        "fisher": {"claim_1": 0.5, "claim_3": 0.001},
    }


def seed_with_p(seed: int, p: float) -> dict:
    correlation = {"rho": 0.1, "p": p}
    return {
        "seed": seed,
        "selectivity_vs_ablation": {"zero": correlation, "mean": correlation},
        "trained": {"specificity": {"p": p}},
    }


def test_the_sweeps_test_family_names_every_reported_test_and_holm_corrects_them_together():
    family = robustness.test_family(sweep_of([seed_with_p(0, 0.02), seed_with_p(1, 0.6)], pooled_p=0.0001))
    assert set(family) == {
        "pooled_selectivity_vs_zero_ablation",
        "pooled_selectivity_vs_mean_ablation",
        "seed_0_selectivity_vs_zero_ablation",
        "seed_0_selectivity_vs_mean_ablation",
        "seed_0_specificity",
        "seed_1_selectivity_vs_zero_ablation",
        "seed_1_selectivity_vs_mean_ablation",
        "seed_1_specificity",
        "fisher_claim_1",
        "fisher_claim_3",
    }
    m = 9  # the mean-ablation pooled test has no p (a constant side) and stays out of the family
    assert family["pooled_selectivity_vs_mean_ablation"]["adjusted"] is None
    assert family["pooled_selectivity_vs_zero_ablation"]["adjusted"] == pytest.approx(m * 0.0001)
    assert family["seed_0_specificity"]["p"] == 0.02 and not family["seed_0_specificity"]["significant"]
    assert family["fisher_claim_3"]["significant"]
    assert family["seed_1_specificity"]["label"] == "specificity of seed 1 vs chance"
    assert "permuted within seeds" in family["pooled_selectivity_vs_zero_ablation"]["label"]


def test_fisher_tests_compare_trained_and_untrained_pass_counts_for_claims_1_and_3():
    cfg = RunConfig()
    trained = {"classes_with_dominant_unit": 9, "specificity": {"classes_with_own_unit": list(range(9))}}
    untrained = {"classes_with_dominant_unit": 3, "specificity": {"classes_with_own_unit": [0]}}
    models = [{"trained": trained, "untrained": untrained} for _ in range(10)]
    result = sweep.fisher_tests(models, cfg)
    assert result == {"claim_1": pytest.approx(2 / 184756), "claim_3": pytest.approx(2 / 184756)}
    assert sweep.fisher_tests([], cfg) == {"claim_1": None, "claim_3": None}


def test_a_wide_layer_gets_fewer_rotations_but_never_fewer_than_can_place_it_above_every_one():
    assert robustness.affordable_rotations(1000, 10, 10_000) == 1000
    assert robustness.affordable_rotations(1000, 64, 10_000) == 250
    assert robustness.affordable_rotations(1000, 256, 10_000) == robustness.FEWEST_ROTATIONS
    assert robustness.affordable_rotations(100, 256, 10_000) == 100  # never more than asked
    fewest = robustness.FEWEST_ROTATIONS
    assert inference.null_place(1.0, np.zeros(fewest))["side"] == "above"

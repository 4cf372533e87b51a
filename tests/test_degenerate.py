"""Degenerate input gives numbers the pages can state: every unit dead, a constant layer, a class with a single
test image, a seed whose network fails to train. No exception, and no NaN anywhere in the JSON."""

import json

import numpy as np
import pytest
from conftest import measured, synthetic_run

from nu_keras import ablation, analysis, robustness, sweep
from nu_keras.config import RunConfig

CFG = RunConfig(rotation_null_samples=100)


def assert_json_without_nan(value) -> None:
    json.dumps(value, allow_nan=False)  # raises ValueError on NaN or infinity anywhere in the tree


def with_hidden(hidden: np.ndarray, acts: dict, weights: dict) -> dict:
    """`acts` with another layer of units, its predictions and ablation tables recomputed to match."""
    w2, b2 = weights["output_kernel"], weights["output_bias"]
    hidden = hidden.astype(np.float64)
    tables = ablation.dense_ablation_table(hidden, w2, b2)
    return acts | {
        "units": hidden.astype(np.float32),
        "predictions": analysis.output_logits(hidden, w2, b2).argmax(axis=1).astype(np.uint8),
        **{f"ablated_{kind}": table.astype(np.uint8) for kind, table in tables.items()},
    }


def analysed(acts: dict, weights: dict):
    """What the analyze stage records of these arrays (`analysis.measure`)."""
    return measured(acts, weights, CFG)


@pytest.fixture(scope="module")
def run():
    return synthetic_run()


def test_a_layer_whose_units_are_all_dead_is_flagged_and_supports_no_claim(run):
    acts, weights = run
    m = analysed(with_hidden(np.zeros_like(acts["units"]), acts, weights), weights)
    assert_json_without_nan(m.to_json())
    assert m.layer.all_units_dead is True and m.layer.dead_units == tuple(range(10))
    assert m.layer.live_units == ()
    assert m.null is None and m.important_units == {"zero": [], "mean": []}
    assert not any(claim["passes"] for claim in m.claims.values())
    assert m.invariant["eta_squared"] == 0 and m.correlations["selectivity_vs_ablation"]["zero"] is None
    assert all(entry["adjusted"] is None for name, entry in m.tests.items() if name != "specificity")


def test_a_constant_layer_has_no_separation_and_no_privileged_basis(run):
    acts, weights = run
    m = analysed(with_hidden(np.ones_like(acts["units"]), acts, weights), weights)
    assert_json_without_nan(m.to_json())
    assert m.layer.all_units_dead is False
    assert m.invariant["eta_squared"] == 0 and m.invariant["d_prime"] == 0
    assert m.claims["privileged"]["passes"] is False
    assert m.claims["specificity"]["passes"] is False  # one unit at most, however ties fall


def test_a_class_with_a_single_test_image_is_named_and_its_interval_is_zero_not_nan(run):
    acts, weights = run
    keep = np.r_[np.flatnonzero(acts["labels"] != 3), np.flatnonzero(acts["labels"] == 3)[:1]]
    single = {key: value[keep] if len(value) == len(acts["labels"]) else value for key, value in acts.items()}
    single |= {key: acts[key][:, keep] for key in acts if key.startswith("ablated_")}
    m = analysed(single, weights)
    assert_json_without_nan(m.to_json())
    assert m.layer.classes_with_one_image == (3,) and m.per_class.count[3] == 1
    assert m.class_unit.ci95[3].tolist() == [0.0] * 10


def test_the_rotation_null_of_a_constant_or_dead_layer_places_the_neurons_within_it():
    labels = np.repeat(np.arange(10), 20)
    for hidden in (np.ones((200, 6)), np.zeros((200, 6))):
        null = robustness.place_in_rotation_null(hidden, labels, 0.5, 100, seed=1)
        assert_json_without_nan(null)
        assert {place["side"] for place in null["place"].values()} == {"within"}  # every basis alike


def images_and_networks(seed: int = 0):
    """Synthetic flattened images of ten prototypes, a network that reads them, and one that never fires."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), 40)
    prototypes = rng.uniform(size=(10, 784))
    x = np.clip(prototypes[labels] + rng.normal(scale=0.1, size=(len(labels), 784)), 0, 1)
    detectors = {
        "hidden_kernel": (prototypes - prototypes.mean(axis=0)).T,  # (784, 10): unit d reads class d
        "hidden_bias": np.zeros(10),
        "output_kernel": np.eye(10),
        "output_bias": np.zeros(10),
    }
    initial = detectors | {"hidden_kernel": rng.normal(scale=0.05, size=(784, 10))}
    failed = detectors | {"hidden_bias": np.full(10, -1e3)}  # every unit dead: it predicts one class
    return x, labels, detectors, initial, failed


@pytest.mark.parametrize("failed_seed", [0, 1])  # seed 0 is also the reference every other seed is matched to
def test_a_sweep_with_a_seed_that_failed_to_train_summarises_without_nan(failed_seed):
    x, labels, detectors, initial, failed = images_and_networks()
    networks = [failed if seed == failed_seed else detectors for seed in range(3)]
    models = [sweep.measure_seed(x, labels, trained, initial, seed, CFG) for seed, trained in enumerate(networks)]
    assert models[failed_seed]["trained"]["test_accuracy"] == pytest.approx(0.1)  # chance: one class everywhere
    entry = sweep.width_entry([{"seeds": [0, 1, 2], "fit_seconds": 0.0, "models": models}])
    result = {
        "recipe": {"hidden_units": 10},
        "widths": {"10": entry},
        "fisher": sweep.fisher_tests(models, CFG),
    }
    result["tests"] = robustness.test_family(result)
    assert_json_without_nan(result)
    summary = entry["summary"]
    assert models[failed_seed]["trained"]["live_units"] == []  # the failed seed adds no unit to any pool
    assert summary["selectivity_vs_ablation_pooled"]["zero"]["n"] == 20
    assert summary["dead_units"] == [10 if seed == failed_seed else 0 for seed in range(3)]
    assert len(summary["threshold_curve"]["trained"]["mean"]) == len(robustness.CURVE_THRESHOLDS)
    assert summary["effect_sizes"]["eta_squared"]["n"] == 3
    assert result["tests"][f"seed_{failed_seed}_selectivity_vs_zero_ablation"]["p"] is None  # nothing to correlate


def test_a_sweep_of_one_seed_gives_intervals_of_width_zero_not_nan():
    x, labels, detectors, initial, _ = images_and_networks()
    models = [sweep.measure_seed(x, labels, detectors, initial, 0, CFG)]
    summary = sweep.width_entry([{"seeds": [0], "fit_seconds": 0.0, "models": models}])["summary"]
    assert_json_without_nan(summary)
    effect = summary["effect_sizes"]["eta_squared"]
    assert effect["low"] == effect["mean"] == effect["high"]


def test_a_constant_layer_has_no_dominant_unit_because_no_unit_is_the_largest_alone(run):
    acts, weights = run
    m = analysed(with_hidden(np.full_like(acts["units"], 2.0), acts, weights), weights)
    assert m.claim["classes_with_dominant_unit"] == [] and m.claims["dominance"]["passes"] is False

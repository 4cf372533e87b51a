"""The words that carry a result are chosen by the numbers: directions, sides of a null, verdicts; and the
pages of planted networks, whose answer is known, say that answer."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from conftest import synthetic_record
from page_fixtures import paper_fields
from test_pages import render
from test_planted import killed, mnist_test, prototype_network  # noqa: F401  (a fixture)

from nu_keras import ablation, analysis, formats, inference, pages, robustness, statements
from nu_keras.config import RunConfig


@pytest.mark.parametrize(
    "rho, p, word",
    [(0.6, 0.001, "positively related"), (-0.6, 0.001, "negatively related"), (0.6, 0.2, "no clear relation")],
)
def test_a_correlation_is_named_by_its_sign_only_when_its_p_value_is_below_the_level(rho, p, word):
    assert statements.relation({"rho": rho, "p": p}) == word


def test_a_holm_adjusted_p_value_can_take_the_direction_away():
    assert statements.relation({"rho": 0.6, "p": 0.01}, adjusted_p=0.12) == "no clear relation"
    assert statements.relation(None) == "cannot be compared"


def test_the_selectivity_heading_follows_the_relation():
    assert "least" in statements.selectivity_heading({"rho": -0.5, "p": 0.001})
    assert statements.selectivity_heading({"rho": 0.5, "p": 0.001}) == "Selective units are the ones the network needs"
    assert statements.selectivity_heading({"rho": 0.5, "p": 0.3}) == "Selectivity does not predict importance"


def test_the_basis_phrase_names_each_side_that_holds():
    places = {
        "eta_squared": {"side": "above"},
        "d_prime": {"side": "above"},
        "rescaled_matched_share": {"side": "within"},
    }
    assert statements.basis_phrase(places) == "above random on η² and d′; within random on the matched share"


@pytest.mark.parametrize(
    "low, high, word", [(0.83, 1.0, "holds"), (0.0, 0.31, "does not hold"), (0.44, 0.97, "not settled")]
)
def test_a_verdict_has_three_values_on_the_interval_of_its_pass_rate(low, high, word):
    assert inference.three_valued(low, high, 0.8) == word


def planted_metrics(hidden: np.ndarray, labels: np.ndarray, w2: np.ndarray) -> dict:
    """What the analyze stage writes for a planted layer feeding the output layer `w2` directly, with the
    layer's rotation null, rendered as the paper's network without a sweep."""
    b2 = np.zeros(w2.shape[1])
    logits = hidden @ w2
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    acts = {
        "units": hidden.astype(np.float32),
        "labels": labels.astype(np.uint8),
        "predictions": logits.argmax(axis=1).astype(np.uint8),
        "probabilities": (probabilities / probabilities.sum(axis=1, keepdims=True)).astype(np.float32),
    }
    tables = ablation.dense_ablation_table(hidden, w2, b2)
    acts |= {f"ablated_{kind}": table.astype(np.uint8) for kind, table in tables.items()}
    weights = {"hidden_kernel": np.zeros((784, hidden.shape[1])), "hidden_bias": np.zeros(hidden.shape[1])}
    weights |= {"output_kernel": w2, "output_bias": b2}
    record = paper_fields(synthetic_record(acts, weights, RunConfig()))
    return dataclasses.replace(record, null=robustness.place_in_rotation_null(hidden, labels, 0.5, 1000, seed=1))


@pytest.fixture(scope="module")
def planted_pages(mnist_test, tmp_path_factory):  # noqa: F811
    """Home and Findings of the planted cases: (a) one detector per digit, (e) one unit louder than all, (f) noise."""
    x, labels, detectors = mnist_test
    weights = prototype_network(detectors)
    prototype = analysis.forward_hidden(x, weights)
    loud = prototype.copy()
    loud[:, 0] = 3 * prototype.sum(axis=1)
    noise = np.maximum(np.random.default_rng(0).normal(size=prototype.shape), 0)
    cases = {"prototype": prototype, "loud": loud, "noise": noise, "killed": None}
    cases["killed"] = analysis.forward_hidden(x, killed(weights, [2, 7]))
    pages = {}
    for name, hidden in cases.items():
        out = tmp_path_factory.mktemp(name)
        render(planted_metrics(hidden, labels, np.eye(10)), out)
        pages[name] = {page: (out / page).read_text() for page in ("index.md", "findings.md")}
    return pages


def test_planted_a_pages_say_each_digit_has_its_own_unit_and_the_basis_is_above_random(planted_pages):
    for page in planted_pages["prototype"].values():
        assert "10 digits have a dominant unit, from 10 distinct units; 10 have one of their own" in page
        assert "sit above random on" in page and "d′" in page
        assert "below random" not in page


def test_planted_e_pages_say_one_unit_dominates_every_digit_and_none_has_its_own(planted_pages):
    for page in planted_pages["loud"].values():
        assert "10 digits have a dominant unit, from 1 distinct unit; 0 have one of their own" in page


def test_planted_f_pages_of_noise_state_no_dominant_unit_and_no_place_above_random(planted_pages):
    for page in planted_pages["noise"].values():
        assert "0 digits have a dominant unit" in page
        assert "above random" not in page


def test_planted_d_pages_disclose_killed_units_and_leave_them_out(planted_pages):
    home = planted_pages["killed"]["index.md"]
    assert "2 of 10 neurons are dead (zero on every test image)" in home
    assert "left out of every statistic over units" in home


def test_the_abstract_stays_under_150_words_and_home_under_six_bullets(planted_pages):
    for case in planted_pages.values():
        abstract = case["findings.md"].split("## Abstract", 1)[1].split("##", 1)[0].split("What was analysed")[0]
        assert len(abstract.split()) <= 150
        plain = case["index.md"].split("**In plain words.**", 1)[1].split("\n\n", 2)[1]
        assert 1 <= plain.count("\n- ") + plain.startswith("- ") <= 6


def test_an_ablation_interval_is_printed_with_the_decimals_its_width_needs():
    assert formats.pp_interval({"low": 0.0012, "high": 0.0031}) == "0.12 to 0.31 pp"
    assert formats.pp_interval({"low": 0.012, "high": 0.031}) == "1.2 to 3.1 pp"
    assert formats.pp_interval({"low": -0.0002, "high": 0.0001}) == "\u22120.020 to 0.010 pp"
    assert formats.pp_interval({"low": 0.0, "high": 0.0}) == "0.0 to 0.0 pp"


def test_top_importance_lists_hold_only_units_with_a_measurable_effect():
    intact = np.ones(1000, dtype=bool)
    flipped = intact.copy()
    flipped[:40] = False  # 40 of 1000 images lost: measurable
    one = intact.copy()
    one[0] = False  # one image lost: within the noise
    rows = [
        {"index": 0, "importance": 0.04, "zero_noise": inference.paired_drop(intact, flipped)},
        {"index": 1, "importance": 0.001, "zero_noise": inference.paired_drop(intact, one)},
    ]
    assert [r["index"] for r in pages.measurable(rows, "zero_noise")] == [0]


@pytest.mark.parametrize("layer", ["all dead", "constant"])
def test_a_degenerate_layer_gets_pages_that_say_so_without_a_crash_or_nan(layer, tmp_path):
    labels = np.repeat(np.arange(10), 30)
    hidden = np.zeros((len(labels), 10)) if layer == "all dead" else np.ones((len(labels), 10))
    metrics = planted_metrics(hidden, labels, np.eye(10))
    render(metrics, tmp_path)
    home, findings = (tmp_path / "index.md").read_text(), (tmp_path / "findings.md").read_text()
    for page in (home, findings):
        assert not re.search(r"\bnan\b", page, re.IGNORECASE)
        assert "0 digits have a dominant unit" in page
    if layer == "all dead":
        assert "10 of 10 neurons are dead" in home


def test_a_mean_and_its_interval_show_the_width_of_the_interval():
    assert formats.plus_minus(0.3123, 0.0041) == "0.3123 ± 0.0041"
    assert formats.plus_minus(0.31, 0.12) == "0.31 ± 0.12"
    assert formats.plus_minus(0.31, 0.0) == "0.31 ± 0.00"

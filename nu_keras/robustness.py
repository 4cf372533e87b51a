"""Does the finding survive other seeds, other widths and controls? Pure numpy (plus scipy).

Shapes: `units` (N, W) activations of one network, `labels` (N,), profiles (10, W) per-digit means.
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from scipy.optimize import linear_sum_assignment

from nu_keras import ablation, analysis, inference
from nu_keras.record import Layer, Method

MI_BINS = 16


def model_summary(
    units: np.ndarray, labels: np.ndarray, w2: np.ndarray, b2: np.ndarray, threshold: float, signed: bool = False
) -> dict:
    """The per-model measures of the sweep, for a trained, untrained or rotated layer.

    The paper's raw measures (selectivity index, dominance of the raw activations) need non-negative
    rates, so a `signed` layer (rotated units) gets None for them; the symmetry-invariant measures
    (rescaled dominance, eta², d') and the mutual information need no shift and are computed for all;
    their network-level means leave dead units out (see `analysis.live_units`).
    """
    mean = analysis.per_class_mean(units, labels)
    predictions = analysis.output_logits(units, w2, b2).argmax(axis=1)
    intact = analysis.per_class_accuracy(predictions, labels)
    importance = {
        kind: analysis.ablation_importance(
            intact, analysis.ablation_accuracy(units, labels, w2, b2, ablation.ablation_fill(units, kind)), labels
        ).tolist()
        for kind in ablation.ABLATIONS
    }
    share = analysis.dominance_share(units, labels)
    dominance = None if signed else share.max(axis=1) > threshold
    live = analysis.live_units(units)
    rescaled = analysis.rescaled_share(live, labels)
    invariant = analysis.invariant_measures(live, labels, threshold)
    dead, near_dead = analysis.dead_and_near_dead(analysis.dead_fraction(units))
    return {
        "test_accuracy": float(np.mean(predictions == labels)),
        "selectivity": None if signed else analysis.selectivity_index(mean).tolist(),
        "dead_fraction": analysis.dead_fraction(units).tolist(),
        "dead_units": [] if signed else dead,
        "near_dead_units": [] if signed else near_dead,
        "classes_with_dominant_unit": None if signed else int(dominance.sum()),
        "class_has_dominant_unit": None if signed else dominance.tolist(),
        "rescaled_dominant_classes": int(invariant["rescaled_dominant_classes"]),
        "rescaled_matched_share": float(invariant["rescaled_matched_share"]),
        "eta_squared": analysis.eta_squared(units, labels).tolist(),
        "d_prime": analysis.d_prime(units, labels).tolist(),
        "mean_eta_squared": float(invariant["eta_squared"]),
        "mean_d_prime": float(invariant["d_prime"]),
        "ablation_importance": importance,
        "mutual_information": mutual_information_excess(units, labels).tolist(),
        "profiles": mean.tolist(),
        "live_units": analysis.live_unit_indices(units),  # empty when all are dead: no unit enters a pool
        "specificity": analysis.specificity(analysis.dominant_units(share, threshold), units.shape[1]),
        "threshold_counts": None if signed else threshold_counts(share),
        "rescaled_threshold_counts": threshold_counts(rescaled),
    }


# The dominance threshold moved over this range: is a count of classes with a dominant unit an artefact of 50 %?
CURVE_THRESHOLDS = tuple(round(0.3 + 0.05 * i, 2) for i in range(13))  # 0.3, 0.35, ..., 0.9


def threshold_counts(share: np.ndarray, thresholds: tuple[float, ...] = CURVE_THRESHOLDS) -> list[int]:
    """Classes with a dominant unit (best share above t) at each threshold t, from a (C, U) dominance table."""
    best = np.asarray(share).max(axis=1) if np.size(share) else np.zeros(len(share))
    return [int(np.sum(best > t)) for t in thresholds]


NULL_MEASURES = ("rescaled_matched_share", "eta_squared", "d_prime")  # continuous, so percentiles rarely tie


def rotation_null(
    units: np.ndarray, labels: np.ndarray, count: int, seed: int, chunk: int | None = None
) -> dict[str, np.ndarray]:
    """(count,) values of each invariant measure for the same layer in `count` random rotated bases.

    Every rotation gives the same predictions (h R Rᵀ W2 = h W2), so this is the distribution of a
    measure over bases that the network's function cannot tell apart from its own neurons. The layer is
    first divided by each unit's spread (`analysis.spread_scaled`), so rescaling a unit -- the same function
    -- cannot move the null; each rotated unit is then divided by its own spread, as the neurons are:
    z = s S, S = R / sd, sd² = diag(Rᵀ C R) for the covariance C of s. z is linear in s, so eta² and d'
    come from the per-class moments of s alone (`analysis.mapped_moments`); only the dominance share needs
    every image's z. The rotations are drawn and measured `chunk` at a time (by default as many as keep
    one chunk's z near `CHUNK_VALUES` numbers), so memory stays bounded for a wide layer; the draws are those
    of `random_rotations(W, count, seed)`. Pass live units only. All in float64.
    """
    scaled = analysis.spread_scaled(units)  # (N, W)
    width = units.shape[1]
    chunk = chunk or max(1, CHUNK_VALUES // max(1, width * len(scaled)))
    moments = analysis.class_moments(scaled, labels)
    # no unit wins an image on which every scaled unit is zero (a constant unit scales to 0), as on the neurons' side
    silent = np.all(scaled == 0, axis=1)
    rng = np.random.default_rng(seed)
    parts = []
    for size in [min(chunk, count - i) for i in range(0, count, chunk)]:
        rotations = haar_rotations(rng, width, size)  # (chunk, W, W)
        maps = rotations / rotation_sd(scaled, rotations)[:, None, :]
        mapped = analysis.mapped_moments(moments, maps)
        parts.append(
            {
                "rescaled_matched_share": rotated_matched_share(scaled, labels, maps, silent, size),
                "eta_squared": analysis.eta_squared_from_moments(*mapped).mean(axis=-1),
                "d_prime": analysis.d_prime_from_moments(*mapped).mean(axis=-1),
            }
        )
    return {key: np.concatenate([part[key] for part in parts]) for key in NULL_MEASURES}


CHUNK_VALUES = 5_000_000  # rotated activations held at once by the rotation null (40 MB of float64)


def rotation_sd(scaled: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """(K, W) sd of each rotated unit, sqrt(diag(Rᵀ C R)); 1 where a rotated unit is constant (z = 0 there)."""
    centred = scaled - scaled.mean(axis=0)
    covariance = centred.T @ centred / len(centred)
    sd = np.sqrt(np.maximum(np.einsum("kij,il,klj->kj", rotations, covariance, rotations), 0))
    return np.where(sd > 0, sd, 1.0)


def rotated_matched_share(
    scaled: np.ndarray, labels: np.ndarray, maps: np.ndarray, silent: np.ndarray, chunk: int
) -> np.ndarray:
    """(K,) `analysis.matched_share` of the dominance table in each basis `scaled @ maps[k]`; images on
    which every unit is silent have no winner, as in the neurons' own table."""
    images = np.ascontiguousarray(scaled.T)  # (W, N): unit-major, so each unit is one contiguous row
    units = scaled.shape[1]
    parts = []
    for i in range(0, len(maps), chunk):
        z = np.swapaxes(maps[i : i + chunk], -1, -2) @ images  # (chunk, W, N), unit-major
        winners = np.where(silent, units, analysis.largest_unit(z))  # (chunk, N); `units` means none
        tables = analysis.win_table(winners, labels, units + 1)[..., :units]  # (chunk, C, W)
        parts.append(np.array([analysis.matched_share(table) for table in tables]))
    return np.concatenate(parts)


def place_in_rotation_null(units: np.ndarray, labels: np.ndarray, threshold: float, count: int, seed: int) -> dict:
    """The neurons' invariant measures against `count` random rotations of the same layer, each with its
    place (`inference.null_place`: percentile, its Monte Carlo interval, above / within / below).

    Dead units are left out of both sides (`analysis.live_units`); it needs no retraining, so a user's
    model gets it too.
    """
    live = analysis.live_units(units)
    trained = analysis.invariant_measures(live, labels, threshold)
    null = rotation_null(live, labels, count, seed=seed)
    places = {key: inference.null_place(float(trained[key]), null[key]) for key in NULL_MEASURES}
    return {
        "units": int(live.shape[1]),
        "trained": {key: float(trained[key]) for key in NULL_MEASURES},
        "values": {key: values.tolist() for key, values in null.items()},
        "percentile": {key: place["percentile"] for key, place in places.items()},
        "place": places,
    }


def percentile_within(value: float, null: np.ndarray) -> float:
    """Share of the null below `value`, ties counted half (mid-rank): 1.0 means above every rotation."""
    return inference.null_place(value, null)["percentile"]


def match_units(reference: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pair each unit of `other` with one of `reference` by their per-class profiles ((C, Wa) and (C, Wb)).

    Hungarian assignment maximising the summed Pearson correlation of the profiles. Returns `order` (Wa,)
    with other[:, order[i]] matched to reference[:, i] (-1 where `other` has fewer units, e.g. a control
    that rotates only the live ones) and the matched correlations (0 where unmatched). Units with a
    constant profile (dead units) correlate 0 with everything.
    """
    corr = profile_correlation(reference, other)
    rows, cols = linear_sum_assignment(-corr)
    order = np.full(reference.shape[1], -1, dtype=int)
    order[rows] = cols
    matched = np.zeros(reference.shape[1])
    matched[rows] = corr[rows, cols]
    return order, matched


def profile_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(Wa, Wb) Pearson correlation between the columns of two (10, W) profile tables."""
    za, zb = _standardise(a), _standardise(b)
    return za.T @ zb / a.shape[0]


def _standardise(profiles: np.ndarray) -> np.ndarray:
    centred = profiles - profiles.mean(axis=0)
    scale = centred.std(axis=0)
    return np.divide(centred, scale, out=np.zeros_like(centred), where=scale > 0)


def mutual_information(units: np.ndarray, labels: np.ndarray, bins: int = MI_BINS) -> np.ndarray:
    """(W,) mutual information in bits between each unit's binned activation and the digit.

    Exact zeros get a bin of their own (a ReLU unit's "off" state); the rest is split into
    `bins - 1` equal-width bins over the unit's positive range.
    """
    return np.array([_mi_bits(_bin(units[:, u], bins), labels) for u in range(units.shape[1])])


def mutual_information_excess(units: np.ndarray, labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Mutual information minus the same estimate with shuffled labels (the estimator's bias)."""
    shuffled = np.random.default_rng(seed).permutation(labels)
    return mutual_information(units, labels) - mutual_information(units, shuffled)


def _bin(values: np.ndarray, bins: int) -> np.ndarray:
    low, high = values.min(), values.max()
    if high <= low:
        return np.zeros(len(values), dtype=int)
    edges = np.linspace(low, high, bins)[1:-1]
    return np.where(values <= 0, 0, 1 + np.digitize(values, edges)) if low >= 0 else np.digitize(values, edges)


def _mi_bits(codes: np.ndarray, labels: np.ndarray) -> float:
    cells = (codes.max() + 1, 10)  # (bins, digits); one bincount of the joint code, not a slow np.add.at
    joint = np.bincount(np.ravel_multi_index((codes, labels), cells), minlength=cells[0] * cells[1])
    joint = joint.reshape(cells) / len(codes)
    outer = joint.sum(axis=1, keepdims=True) @ joint.sum(axis=0, keepdims=True)
    nonzero = joint > 0
    return float(np.sum(joint[nonzero] * np.log2(joint[nonzero] / outer[nonzero])))


def random_rotation(width: int, seed: int) -> np.ndarray:
    """A (W, W) orthogonal matrix drawn uniformly (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(width, width)))
    return q * np.sign(np.diag(r))


def random_rotations(width: int, count: int, seed: int) -> np.ndarray:
    """(count, W, W) orthogonal matrices drawn uniformly (Haar), as `random_rotation` but stacked."""
    return haar_rotations(np.random.default_rng(seed), width, count)


def haar_rotations(rng: np.random.Generator, width: int, count: int) -> np.ndarray:
    """(count, W, W) Haar rotations, the next `count` of `rng`'s stream (drawing in chunks gives the same ones)."""
    q, r = np.linalg.qr(rng.normal(size=(count, width, width)))
    return q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[:, None, :]


def rotate(units: np.ndarray, w2: np.ndarray, rotation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotated "units" h R and the output kernel R.T W2 that gives the same logits: h R R.T W2 = h W2."""
    return units @ rotation, rotation.T @ w2


def interval(values, confidence: float = analysis.CONFIDENCE) -> dict:
    """Mean, sd and a t-interval of the mean over seeds (n = 1 gives an interval of width 0)."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    sd = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    half = (
        float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * sd / np.sqrt(len(values)))
        if len(values) > 1
        else 0.0
    )
    return {
        "mean": mean,
        "sd": sd,
        "low": mean - half,
        "high": mean + half,
        "n": int(len(values)),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def verdict(classes_with_dominant: list[int], min_classes: int, min_seed_fraction: float) -> dict:
    """The paper's claim, as fixed before the run: at least `min_classes` classes have a dominant unit in
    at least `min_seed_fraction` of the seeds; three-valued on the pass rate's Clopper-Pearson interval."""
    rate = inference.pass_rate([count >= min_classes for count in classes_with_dominant], min_seed_fraction)
    return {"min_classes": min_classes, "min_seed_fraction": min_seed_fraction, **rate}


def specificity_verdict(own_counts: list[int], min_classes: int, min_seed_fraction: float) -> dict:
    """The third claim, fixed before the run: different classes have different dominant units -- at least
    `min_classes` classes have a dominant unit of their own in at least `min_seed_fraction` of the seeds."""
    rate = inference.pass_rate([count >= min_classes for count in own_counts], min_seed_fraction)
    return {"min_classes": min_classes, "min_seed_fraction": min_seed_fraction, **rate}


def privileged_verdict(percentiles: list[dict[str, float]], min_percentile: float, min_seed_fraction: float) -> dict:
    """The second claim, fixed before the run: the neuron basis is privileged when, in at least
    `min_seed_fraction` of the seeds, the trained neurons lie above `min_percentile` of the rotation null
    on every invariant measure."""
    passing = [all(p[key] > min_percentile for key in NULL_MEASURES) for p in percentiles]
    rate = inference.pass_rate(passing, min_seed_fraction)
    return {"min_percentile": min_percentile, "min_seed_fraction": min_seed_fraction, **rate}


def shuffled_profiles(profiles: np.ndarray, seed: int) -> np.ndarray:
    """(10, W) each unit's per-digit profile with its digits shuffled: same values, no digit structure."""
    return np.random.default_rng(seed).permuted(profiles, axis=0)


def test_family(sweep: dict) -> dict[str, dict]:
    """Every test with a p-value that the pages report for the sweep, Holm-corrected as one family.

    Name -> {"p", "adjusted", "significant", "label"}: the pooled selectivity-importance correlations
    (permuted within seeds), each seed's own correlations and specificity against chance, and the two Fisher
    tests of trained against untrained pass counts. Reported together, about 30 tests would give one false
    "significant" in twenty runs at 5 % each; Holm keeps that chance under 5 % for the whole family.
    """
    entry = sweep["widths"].get(str(sweep["recipe"]["hidden_units"]))
    tests: dict[str, tuple[float | None, str]] = {}
    if entry is not None:
        for kind in ablation.ABLATIONS:
            pooled = entry["summary"]["selectivity_vs_ablation_pooled"][kind]
            label = f"selectivity vs importance, {kind} ablation, pooled over seeds (permuted within seeds)"
            tests[f"pooled_selectivity_vs_{kind}_ablation"] = (_p(pooled), label)
        for model in entry["models"]:
            tests |= _seed_tests(model)
    names = {"claim_1": "claim 1 (dominant units)", "claim_3": "claim 3 (specificity)"}
    for claim, p in sweep.get("fisher", {}).items():
        tests[f"fisher_{claim}"] = (p, f"{names[claim]}: trained vs untrained pass counts (Fisher's exact test)")
    return labelled_holm(tests)


def _seed_tests(model: dict) -> dict[str, tuple[float | None, str]]:
    """One seed's tests: selectivity against each kind of ablation importance, and specificity vs chance."""
    seed = model["seed"]
    tests = {
        f"seed_{seed}_selectivity_vs_{kind}_ablation": (
            _p(model["selectivity_vs_ablation"][kind]),
            f"selectivity vs importance, {kind} ablation, seed {seed}",
        )
        for kind in ablation.ABLATIONS
    }
    tests[f"seed_{seed}_specificity"] = (model["trained"]["specificity"]["p"], f"specificity of seed {seed} vs chance")
    return tests


def network_test_family(correlations: dict, specificity: dict) -> dict[str, dict]:
    """The single network's tests with a p-value (a user's model, or the report's network), Holm-corrected:
    selectivity against zero- and mean-ablation importance, against the drop on the preferred class, and
    specificity against chance. A test that could not be computed (signed layer, constant side) has p None
    and stays out of the family."""
    tests = {
        f"selectivity_vs_{kind}_ablation": (
            _p(correlations["selectivity_vs_ablation"][kind]),
            f"selectivity vs importance, {kind} ablation",
        )
        for kind in ablation.ABLATIONS
    }
    tests["selectivity_vs_preferred_drop"] = (
        _p(correlations["selectivity_vs_preferred_class_drop"]),
        "selectivity vs accuracy lost on the unit's preferred class",
    )
    tests["specificity"] = (specificity["p"], "specificity vs chance")
    return labelled_holm(tests)


def labelled_holm(tests: dict[str, tuple[float | None, str]]) -> dict[str, dict]:
    """`inference.holm` over name -> (p, label), each entry keeping its label."""
    corrected = inference.holm({name: p for name, (p, _) in tests.items()})
    return {name: corrected[name] | {"label": label} for name, (_, label) in tests.items()}


def _p(correlation: dict | None) -> float | None:
    return None if correlation is None else correlation.get("p")


def network_controls(
    units: np.ndarray,
    labels: np.ndarray,
    method: Method,
    layer: Layer,
    noise: dict,
    correlations: dict,
    claim: dict,
    specificity: dict,
) -> dict:
    """The controls a single network gets without retraining (a user's model as much as the report's):
    its layer's place in the rotation null, the units whose ablation measurably costs accuracy, the three
    claims judged on this one network, and its Holm-corrected test family (parts of `analysis.measure`).

    With every unit dead there is no live layer to rotate: the null is None and the privileged claim fails.
    """
    null = None
    if not layer.all_units_dead:
        rotations = affordable_rotations(method.rotation_null_samples, len(layer.live_units), len(labels))
        null = place_in_rotation_null(units, labels, method.dominance_threshold, rotations, method.seed + 1)
        null["rotations_requested"] = method.rotation_null_samples
    classes = int(np.max(labels)) + 1
    return {
        "null": null,
        "important_units": important_units(noise),
        "claims": network_claims(classes, claim, specificity, null, method),
        "tests": network_test_family(correlations, specificity),
    }


# Multiply-adds the analyze stage spends on rotated activations (1,000 rotations of 32 units x 10,000 images);
# the rotation null costs about units² x images per rotation, so a wide layer of a user's model gets fewer.
ROTATION_BUDGET = 1000 * 32**2 * 10_000
FEWEST_ROTATIONS = 200  # still enough to place a layer above every rotation: 200 of 200 has an interval above 98 %


def affordable_rotations(requested: int, units: int, images: int, budget: float = ROTATION_BUDGET) -> int:
    """Rotations for one network's null: `requested`, or as many as the budget pays for a wide layer, never
    fewer than `FEWEST_ROTATIONS`. The place in the null carries its Monte Carlo interval either way, so
    fewer rotations show as a wider interval, never as a firmer verdict."""
    affordable = int(budget // max(1, units**2 * images))
    return max(min(requested, affordable), min(requested, FEWEST_ROTATIONS))


def important_units(noise: dict[str, list[dict]]) -> dict[str, list[int]]:
    """Per ablation kind, the units whose removal measurably costs accuracy (the paired interval of the drop
    lies above 0), largest drop first: a top-k list never shows a unit whose effect is within noise."""
    costly = {kind: [u for u, d in enumerate(drops) if d["low"] > 0] for kind, drops in noise.items()}
    return {kind: sorted(units, key=lambda u: -noise[kind][u]["drop"]) for kind, units in costly.items()}


def network_claims(classes: int, claim: dict, specificity: dict, null: dict | None, method: Method) -> dict:
    """Claims 1-3 judged on one network (no seeds, so no pass rate): dominance and specificity against the
    class counts fixed in advance (scaled to this data set's classes), privilege against the rotation null."""
    dominant = len(claim["classes_with_dominant_unit"])
    own = len(specificity["classes_with_own_unit"])
    dominance_required = analysis.required_classes(method.claim_min_classes, classes)
    specific_required = analysis.required_classes(method.specificity_min_classes, classes)
    percentiles = null["percentile"] if null else None
    return {
        "dominance": {"classes": dominant, "required": dominance_required, "passes": dominant >= dominance_required},
        "specificity": {"classes": own, "required": specific_required, "passes": own >= specific_required},
        "privileged": {
            "percentiles": percentiles,
            "min_percentile": method.privileged_percentile,
            "passes": bool(percentiles) and all(p > method.privileged_percentile for p in percentiles.values()),
        },
    }

"""Does the finding survive other seeds, other widths and controls? Pure numpy (plus scipy).

Shapes: `hidden` (N, W) activations of one network, `labels` (N,), profiles (10, W) per-digit means.
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from scipy.optimize import linear_sum_assignment

from nu_keras import analysis

MI_BINS = 16


def model_summary(
    hidden: np.ndarray,
    labels: np.ndarray,
    w2: np.ndarray,
    b2: np.ndarray,
    threshold: float,
    rates: np.ndarray | None = None,
) -> dict:
    """The per-model measures of the sweep, for a trained, untrained or rotated hidden layer.

    Accuracy and ablation use `hidden` (what the output layer reads); the descriptive statistics use
    `rates`, which defaults to `hidden` and differs only for rotated units (see `shift_nonnegative`).
    """
    rates = hidden if rates is None else rates
    mean = analysis.per_digit_mean(rates, labels)
    dominance = analysis.dominance_matrix(rates, labels)
    predictions = analysis.output_logits(hidden, w2, b2).argmax(axis=1)
    intact = analysis.per_digit_accuracy(predictions, labels)
    importance = analysis.ablation_importance(intact, analysis.ablation_accuracy(hidden, labels, w2, b2), labels)
    return {
        "test_accuracy": float(np.mean(predictions == labels)),
        "selectivity": analysis.selectivity_index(mean).tolist(),
        "dead_fraction": analysis.dead_fraction(rates).tolist(),
        "digits_with_dominant_unit": int((dominance.max(axis=1) > threshold).sum()),
        "digit_has_dominant_unit": (dominance.max(axis=1) > threshold).tolist(),
        "ablation_importance": importance.tolist(),
        "mutual_information": mutual_information_excess(rates, labels).tolist(),
        "profiles": mean.tolist(),
    }


def match_units(reference: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pair each unit of `other` with one of `reference` by their per-digit profiles (10, W each).

    Hungarian assignment maximising the summed Pearson correlation of the profiles. Returns
    `order` (W,) with other[:, order[i]] matched to reference[:, i], and the matched correlations.
    Units with a constant profile (dead units) correlate 0 with everything.
    """
    corr = profile_correlation(reference, other)
    rows, cols = linear_sum_assignment(-corr)
    order = np.empty(reference.shape[1], dtype=int)
    order[rows] = cols
    return order, corr[rows, cols]


def profile_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(Wa, Wb) Pearson correlation between the columns of two (10, W) profile tables."""
    za, zb = _standardise(a), _standardise(b)
    return za.T @ zb / a.shape[0]


def _standardise(profiles: np.ndarray) -> np.ndarray:
    centred = profiles - profiles.mean(axis=0)
    scale = centred.std(axis=0)
    return np.divide(centred, scale, out=np.zeros_like(centred), where=scale > 0)


def mutual_information(hidden: np.ndarray, labels: np.ndarray, bins: int = MI_BINS) -> np.ndarray:
    """(W,) mutual information in bits between each unit's binned activation and the digit.

    Exact zeros get a bin of their own (a ReLU unit's "off" state); the rest is split into
    `bins - 1` equal-width bins over the unit's positive range.
    """
    return np.array([_mi_bits(_bin(hidden[:, u], bins), labels) for u in range(hidden.shape[1])])


def mutual_information_excess(hidden: np.ndarray, labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Mutual information minus the same estimate with shuffled labels (the estimator's bias)."""
    shuffled = np.random.default_rng(seed).permutation(labels)
    return mutual_information(hidden, labels) - mutual_information(hidden, shuffled)


def _bin(values: np.ndarray, bins: int) -> np.ndarray:
    low, high = values.min(), values.max()
    if high <= low:
        return np.zeros(len(values), dtype=int)
    edges = np.linspace(low, high, bins)[1:-1]
    return np.where(values <= 0, 0, 1 + np.digitize(values, edges)) if low >= 0 else np.digitize(values, edges)


def _mi_bits(codes: np.ndarray, labels: np.ndarray) -> float:
    joint = np.zeros((codes.max() + 1, 10))
    np.add.at(joint, (codes, labels), 1)
    joint /= joint.sum()
    outer = joint.sum(axis=1, keepdims=True) @ joint.sum(axis=0, keepdims=True)
    nonzero = joint > 0
    return float(np.sum(joint[nonzero] * np.log2(joint[nonzero] / outer[nonzero])))


def random_rotation(width: int, seed: int) -> np.ndarray:
    """A (W, W) orthogonal matrix drawn uniformly (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(width, width)))
    return q * np.sign(np.diag(r))


def rotate(hidden: np.ndarray, w2: np.ndarray, rotation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotated "units" h R and the output kernel R.T W2 that gives the same logits: h R R.T W2 = h W2."""
    return hidden @ rotation, rotation.T @ w2


def shift_nonnegative(hidden: np.ndarray) -> np.ndarray:
    """Rotated units can be negative; the selectivity index needs non-negative rates, so shift each
    unit by its minimum over the test set (a unit's "off" level becomes 0)."""
    return hidden - hidden.min(axis=0)


def interval(values, confidence: float = 0.95) -> dict:
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


def verdict(digits_with_dominant: list[int], min_digits: int, min_seed_fraction: float) -> dict:
    """The claim, as fixed before the run: at least `min_digits` digits have a dominant unit in at
    least `min_seed_fraction` of the seeds."""
    passing = [count >= min_digits for count in digits_with_dominant]
    fraction = float(np.mean(passing))
    return {
        "min_digits": min_digits,
        "min_seed_fraction": min_seed_fraction,
        "seeds_passing": int(sum(passing)),
        "seeds": len(passing),
        "fraction_passing": fraction,
        "holds": fraction >= min_seed_fraction,
    }

"""Statistics of the analysed layer's units, pure numpy: activations and weights in, arrays and dicts out;
`measure` gathers them into the measurement record (record.py) and `run_analyze` is the analyze stage.

Shapes: `units` (N, U) the layer's activations on N images, `labels` (N,) classes 0..C-1, `w2` (U, C), `b2` (C,).
Per-class tables are (C, U): row = class, column = unit. "Digit" in an older function name means a class index
(on MNIST the classes are the digits). The symmetry-invariant measures also accept a stack of layers
(..., N, U) (the rotation null evaluates many at once).

Two words are kept apart everywhere: a class's *top unit* (in older names its preferred unit) has the largest
mean activation over the class's images (every class has one); its *dominant unit* is the most active unit on
more than the threshold share of the class's images (a class may have none). A unit's *preferred class* is the
class on which its mean is largest.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats
from scipy.optimize import linear_sum_assignment

from nu_keras import artifacts, inference, record
from nu_keras.ablation import ABLATIONS, dense_ablated_predictions
from nu_keras.errors import NuKerasError
from nu_keras.record import ClassUnit, Images, Layer, Measurements, Method, PerClass, PerUnit, Provenance
from nu_keras.stack import exact_maximizer  # noqa: F401  (moved to the neutral stack module)

if TYPE_CHECKING:
    from nu_keras.config import RunConfig

log = logging.getLogger(__name__)

NEAR_DEAD = record.NEAR_DEAD  # a unit exactly zero on at least this share of the test images (but not all) is near-dead
# The method's interval settings: the computations use them and the pages print them (the level is inference's).
CONFIDENCE = inference.CONFIDENCE  # every interval: t over seeds (robustness.interval), normal over images
NORMAL_QUANTILE = record.NORMAL_QUANTILE  # z of the two-sided 95 % normal interval of a per-class mean
NULL_WHISKERS = record.NULL_WHISKERS  # percentiles of the rotation null that the Robustness chart's whiskers span


def class_count(labels: np.ndarray) -> int:
    """C: the data sets guarantee every class appears among the test images, so the largest label is C - 1."""
    return int(np.max(labels)) + 1


def one_hot(labels: np.ndarray) -> np.ndarray:
    """(N, C) indicator of each image's class."""
    return (labels[:, None] == np.arange(class_count(labels))).astype(np.float64)


def per_class_mean(units: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(..., C, U) mean activation of each unit over the images of each class."""
    return diagonal_class_moments(units, labels)[1]


def per_class_std(units: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(C, U) standard deviation matching `per_class_mean`."""
    return np.stack([units[labels == d].std(axis=0) for d in range(class_count(labels))])


def per_class_ci95(units: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(C, U) half-width of the normal 95 % interval of each per-class mean (1.96 s / sqrt(n)).

    A class with a single image has no spread to estimate: its half-width is 0, and `classes_with_one_image`
    names it so the pages can say the interval is missing rather than narrow.
    """
    classes = class_count(labels)
    counts = np.bincount(labels, minlength=classes)[:, None]
    std = np.stack([_sample_sd(units[labels == d]) for d in range(classes)])
    return NORMAL_QUANTILE * std / np.sqrt(counts)


def _sample_sd(rows: np.ndarray) -> np.ndarray:
    """(U,) sd with n - 1 in the denominator; 0 for fewer than two rows (undefined, never NaN)."""
    return rows.std(axis=0, ddof=1) if len(rows) > 1 else np.zeros(rows.shape[1])


def classes_with_one_image(labels: np.ndarray) -> list[int]:
    """Classes with a single test image: no interval, spread or d' of theirs can be trusted."""
    return np.flatnonzero(np.bincount(labels, minlength=class_count(labels)) == 1).tolist()


def all_units_dead(units: np.ndarray) -> bool:
    """True when every unit is zero on every image: no statistic over live units exists."""
    return not bool(np.any(dead_fraction(units) < 1.0))


def preferred_units(mean: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per digit: the unit with the largest mean (its preferred unit), the runner-up, and the margin."""
    order = np.argsort(-mean, axis=1, kind="stable")
    rows = np.arange(len(mean))
    winner, runner_up = order[:, 0], order[:, 1]
    return winner, runner_up, mean[rows, winner] - mean[rows, runner_up]


def most_active_unit(units: np.ndarray) -> np.ndarray:
    """(N,) index of each image's largest activation; -1 when every unit is silent (all zero) or when the
    largest value is shared by several units (a constant layer would otherwise hand every image to unit 0)."""
    winners = units.argmax(axis=1)
    tied = np.sum(units == units.max(axis=1, keepdims=True), axis=1) > 1
    return np.where(np.any(units != 0, axis=1) & ~tied, winners, -1)


def dominance_matrix(units: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(10, U) share of digit-d images whose most active unit is n (the paper's raw activations).

    Images on which every unit is silent have no most active unit, so a row can sum to less than 1.
    """
    winners = most_active_unit(units)
    count = units.shape[1]
    table = np.zeros((class_count(labels), count))
    for d in range(len(table)):
        w = winners[labels == d]
        table[d] = np.bincount(w[w >= 0], minlength=count) / len(w)
    return table


def dominance_share(units: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(C, U) the paper's dominance table, for ReLU units and signed layers alike: an image on which every
    unit is exactly zero has no most active unit (it never happens on a signed layer that is not constant)."""
    return dominance_matrix(units, labels)


def dominant_units(share: np.ndarray, threshold: float) -> list[int | None]:
    """Per digit, the unit that wins on more than `threshold` of its images, or None."""
    return [int(row.argmax()) if row.max() > threshold else None for row in share]


def spread_scaled(units: np.ndarray) -> np.ndarray:
    """(..., N, U) each unit divided by its spread (sd over the images), not centred; a constant unit -> 0.

    Scaling a ReLU unit by c > 0 and its outgoing weights by 1/c changes no prediction; dividing by the
    spread undoes that scale, so a measure of the result belongs to the function, not the weights.
    Centring would also undo a shift, but shifting a ReLU unit is not a symmetry (it changes the function
    and which unit is largest on an image), so the units keep their zero.
    """
    units = np.asarray(units, dtype=np.float64)
    sd = units.std(axis=-2, keepdims=True)
    return np.divide(units, sd, out=np.zeros_like(units), where=sd > 0)


def rescaled_share(units: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(C, U) the dominance table of the units put on one scale (`spread_scaled`), with the paper's
    silent-image rule."""
    return dominance_share(spread_scaled(units), labels)


def win_share(units: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(..., 10, U) share of digit-d images on which unit n is the largest (argmax, no silence rule)."""
    return win_table(units.argmax(axis=-1), labels, units.shape[-1])


def win_table(winners: np.ndarray, labels: np.ndarray, units: int) -> np.ndarray:
    """(..., C, U) share of class-d images whose winning unit (`winners` (..., N), from 0..U-1) is n."""
    classes = class_count(labels)
    cells = labels.astype(np.int64) * units + winners  # (..., N): class and winning unit in one code
    stacks = cells.reshape(-1, cells.shape[-1])
    offsets = np.arange(len(stacks))[:, None] * classes * units
    counts = np.bincount((stacks + offsets).ravel(), minlength=len(stacks) * classes * units)
    table = counts.reshape(cells.shape[:-1] + (classes, units))
    return table / np.bincount(labels, minlength=classes)[:, None]


def matched_share(share: np.ndarray) -> float:
    """Mean over classes of the share won by the unit assigned to each class, one unit per class at most,
    the assignment maximising the total (Hungarian).

    Unlike each class's best share, one loud unit that wins every image scores high for one class only:
    a rotation that lines a unit up with what all images share cannot pass for a unit per class.
    """
    rows, cols = linear_sum_assignment(-np.asarray(share))
    return float(share[rows, cols].sum() / share.shape[0])


def largest_unit(unit_major: np.ndarray) -> np.ndarray:
    """(..., N) index of each image's largest unit in a unit-major (..., U, N) stack, the first on ties.

    The same as `argmax` over the units, but U passes over contiguous rows instead of a loop per image of
    U values, which is several times faster when U is small and N large (the rotation null).
    """
    best = unit_major.max(axis=-2)  # (..., N)
    winners = np.full(best.shape, unit_major.shape[-2] - 1, dtype=np.int64)
    for unit in range(unit_major.shape[-2] - 2, -1, -1):  # downwards, so the first maximum is kept last
        winners = np.where(unit_major[..., unit, :] == best, unit, winners)
    return winners


def diagonal_class_moments(units: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per class: image count (C, 1), mean (..., C, U) and variance (..., C, U) of each unit (the diagonal of
    `class_moments`' covariance).

    Two matrix products give every moment at once, so eta² and d' cost little even for a stack of layers.
    """
    indicator = one_hot(labels).T  # (C, N)
    counts = indicator.sum(axis=1)[:, None]
    mean = indicator @ units / counts
    return counts, mean, indicator @ units**2 / counts - mean**2


def class_moments(units: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per class: image count (C, 1), mean (C, U) and covariance (C, U, U) of the units of one (N, U) layer.

    In float64. Enough for the per-class moments of any linear map of the layer (`mapped_moments`), so many
    bases of one layer cost one pass over the images.
    """
    groups = [np.asarray(units[labels == d], dtype=np.float64) for d in range(class_count(labels))]
    counts = np.array([[len(g)] for g in groups], dtype=np.float64)
    mean = np.stack([g.mean(axis=0) for g in groups])
    centred = [g - mu for g, mu in zip(groups, mean, strict=True)]
    return counts, mean, np.stack([c.T @ c / len(c) for c in centred])


def mapped_moments(
    moments: tuple[np.ndarray, np.ndarray, np.ndarray], maps: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per class: count (C, 1), mean (K, C, V) and variance (K, C, V) of the units of `units @ maps[k]`.

    `moments` is `class_moments(units, labels)`, `maps` (K, U, V). For one map S and unit j:
    mean_d(h S) = mu_d S and var_d((h S)_j) = S_jᵀ Σ_d S_j, so no image is touched again.
    """
    counts, mean, covariance = moments
    variance = np.einsum("kuj,cuv,kvj->kcj", maps, covariance, maps, optimize=True)
    return counts, mean @ maps, variance


def eta_squared(units: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(..., U) share of each unit's variance over the images explained by the digit; 0 for a constant unit.

    eta² = sum_d n_d (mu_d - mu)² / sum_i (h_i - mu)²: unchanged by h -> a h + b for any a != 0.
    """
    return eta_squared_from_moments(*diagonal_class_moments(units, labels))


def eta_squared_from_moments(counts: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """(..., U) `eta_squared` from per-class counts (C, 1), means and variances (..., C, U)."""
    grand = (counts * mean).sum(axis=-2) / counts.sum()  # (..., U)
    between = (counts * (mean - grand[..., None, :]) ** 2).sum(axis=-2)
    total = between + (counts * var).sum(axis=-2)  # total = between + within
    return np.divide(between, total, out=np.zeros_like(total), where=total > 1e-12 * counts.sum())


def d_prime(units: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(..., U) separation of each unit's preferred digit (largest mean) from all other images.

    d' = (mu_pref - mu_rest) / sqrt((var_pref + var_rest) / 2); 0 for a constant unit. Unchanged by
    h -> a h + b for a > 0.
    """
    return d_prime_from_moments(*diagonal_class_moments(units, labels))


def d_prime_from_moments(counts: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """(..., U) `d_prime` from per-class counts (C, 1), means and variances (..., C, U)."""
    preferred = mean.argmax(axis=-2)[..., None, :]  # (..., 1, U)
    n_in = np.take_along_axis(np.broadcast_to(counts, mean.shape), preferred, axis=-2)[..., 0, :]
    mu_in = np.take_along_axis(mean, preferred, axis=-2)[..., 0, :]
    var_in = np.take_along_axis(var, preferred, axis=-2)[..., 0, :]
    n_out = counts.sum() - n_in
    first = (counts * mean).sum(axis=-2) - n_in * mu_in  # sum of the other images' activations
    second = (counts * (var + mean**2)).sum(axis=-2) - n_in * (var_in + mu_in**2)
    mu_out = first / n_out
    var_out = second / n_out - mu_out**2
    spread = np.sqrt(np.maximum((var_in + var_out) / 2, 0))
    return np.divide(mu_in - mu_out, spread, out=np.zeros_like(spread), where=spread > 1e-9)


def invariant_measures(units: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, np.ndarray]:
    """The network-level measures that survive rescaling a unit, for one (N, U) or many (K, N, U) layers.

    `rescaled_dominant_classes`: classes with a dominant unit once each unit is divided by its spread
    (`rescaled_share`); `rescaled_matched_share`: the share of its images each class's own unit wins
    there, units assigned to classes one to one (`matched_share`), a continuous measure of "a different
    dominant unit per class"; `eta_squared` and `d_prime`: means over units. Pass live units only
    (`live_units`): a dead unit would count as a zero in every mean.
    """
    share = rescaled_share(units, labels)  # (C, U)
    return {
        "rescaled_dominant_classes": (share.max(axis=-1) > threshold).sum(axis=-1),
        "rescaled_matched_share": matched_share(share),
        "eta_squared": eta_squared(units, labels).mean(axis=-1),
        "d_prime": d_prime(units, labels).mean(axis=-1),
    }


def silent_fraction(units: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(10,) share of each digit's images on which every unit is exactly zero."""
    silent = np.all(units == 0, axis=1)
    return np.array([silent[labels == d].mean() for d in range(class_count(labels))])


def selectivity_index(mean: np.ndarray) -> np.ndarray:
    """(U,) class selectivity (mu_max - mu_rest) / (mu_max + mu_rest) of each unit; 0 if both are 0.

    mu_max is the unit's largest per-digit mean, mu_rest the mean of its other nine per-digit means.
    Defined for non-negative activations only (ReLU units, not rotated ones).
    """
    top = mean.max(axis=0)
    rest = (mean.sum(axis=0) - top) / (len(mean) - 1)
    total = top + rest
    return np.divide(top - rest, total, out=np.zeros_like(total, dtype=float), where=total > 0)


READOUT_RIDGE = 1e-3  # the read-out's ridge penalty, per image, on standardised units


def linear_readout_accuracy(units: np.ndarray, labels: np.ndarray, classes: int) -> float:
    """How much of the class a linear read-out of the layer recovers: a least-squares classifier (ridge
    regression of the one-hot class on the standardised units and a bias, argmax) fit on the even-numbered
    test images and scored on the odd ones, then the other way round; the share classified correctly.

    Closed form and deterministic, so the cross-layer overview compares layers without a training recipe of
    its own. It is a lower bound on what the layer carries (a logistic read-out, or a non-linear one, may do
    better), and it reads a channel's spatial mean, as every other measure does.
    """
    x, y = np.asarray(units, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    folds = np.arange(len(y)) % 2 == 0
    correct = 0
    for fit in (folds, ~folds):
        mean, spread = x[fit].mean(axis=0), x[fit].std(axis=0)
        spread[spread == 0] = 1.0  # a constant unit stays zero after centring
        train = _readout_design(x[fit], mean, spread)
        penalty = READOUT_RIDGE * len(train) * np.eye(train.shape[1])
        penalty[-1, -1] = 0.0  # the bias is not penalised
        w = np.linalg.solve(train.T @ train + penalty, train.T @ np.eye(classes)[y[fit]])
        correct += int(np.sum((_readout_design(x[~fit], mean, spread) @ w).argmax(axis=1) == y[~fit]))
    return correct / len(y)


def _readout_design(x: np.ndarray, mean: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """The read-out's inputs: the units standardised with the fitting half's statistics, and a column of ones."""
    return np.hstack([(x - mean) / spread, np.ones((len(x), 1))])


def dead_fraction(units: np.ndarray) -> np.ndarray:
    """(U,) share of images on which each unit outputs exactly zero."""
    return (units == 0).mean(axis=0)


def live_mask(units: np.ndarray) -> np.ndarray:
    """(U,) True for each unit that is not zero on every image (every unit when all are dead)."""
    alive = dead_fraction(units) < 1.0
    return alive if alive.any() else np.ones_like(alive)


def live_units(units: np.ndarray) -> np.ndarray:
    """(N, U') the units that are not zero on every image (all units if every one is dead).

    A dead unit carries nothing; left in, it would count as a zero in a mean over units, tie with others
    in a rank correlation, and a rotation would spread its zero over the live units. So every statistic
    over units, controls included, uses these.
    """
    return units[:, live_mask(units)]


def live_unit_indices(units: np.ndarray) -> list[int]:
    """The units that are not zero on every image, by index; empty when every unit is dead (unlike
    `live_mask`, which then keeps them all so the arrays it selects are never empty)."""
    return np.flatnonzero(dead_fraction(units) < 1.0).tolist()


def dead_and_near_dead(dead: np.ndarray) -> tuple[list[int], list[int]]:
    """Units zero on every image, and units zero on at least NEAR_DEAD of them but not all."""
    dead = np.asarray(dead)
    return np.flatnonzero(dead >= 1.0).tolist(), np.flatnonzero((dead >= NEAR_DEAD) & (dead < 1.0)).tolist()


def forward_hidden(x: np.ndarray, weights: dict) -> np.ndarray:
    """relu(x W1 + b1) for flattened, scaled images x (N, 784): the hidden layer without Keras."""
    return np.maximum(x @ weights["hidden_kernel"] + weights["hidden_bias"], 0.0)


def output_logits(hidden: np.ndarray, w2: np.ndarray, b2: np.ndarray) -> np.ndarray:
    """(N, 10) pre-softmax scores; softmax preserves the argmax, so these decide the prediction."""
    return hidden @ w2 + b2


def per_class_accuracy(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(C,) accuracy over the images of each class; a (K, N) stack of predictions gives (K, C)."""
    hits = (np.asarray(predictions) == labels).astype(np.float64)
    return hits @ one_hot(labels) / np.bincount(labels, minlength=class_count(labels))


def ablation_accuracy(
    hidden: np.ndarray, labels: np.ndarray, w2: np.ndarray, b2: np.ndarray, fill: np.ndarray | None = None
) -> np.ndarray:
    """(U, C) per-class accuracy with unit u replaced by fill[u] (row u); zero ablation by default."""
    fill = np.zeros(hidden.shape[1]) if fill is None else fill
    predictions = np.stack([dense_ablated_predictions(hidden, w2, b2, u, fill[u]) for u in range(hidden.shape[1])])
    return per_class_accuracy(predictions, labels)


def ablation_importance(intact: np.ndarray, ablated: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(U,) overall test-accuracy drop per ablated unit: per-class drops weighted by class frequency."""
    counts = np.bincount(labels, minlength=class_count(labels))
    return (intact[None, :] - ablated) @ counts / counts.sum()


def ablation_confusion(table: np.ndarray, labels: np.ndarray, units: np.ndarray) -> np.ndarray:
    """(C, C) row d: where class d's images go (share predicted as each class) with units[d] ablated,
    read from the (U, N) table of ablated predictions."""
    classes = class_count(labels)
    rows = [np.bincount(table[int(unit)][labels == d], minlength=classes)[:classes] for d, unit in enumerate(units)]
    return np.stack(rows) / np.bincount(labels, minlength=classes)[:, None]


def ablation_study(tables: dict[str, np.ndarray], labels: np.ndarray, intact: np.ndarray) -> dict:
    """Zero and mean ablation of every unit, from the (U, N) tables of ablated predictions: per-class
    accuracy and drop, overall importance, and per class the most-needed unit (largest drop) with the
    confusion row of its images once it is removed."""
    result = {}
    for kind in ABLATIONS:
        accuracy = per_class_accuracy(tables[kind], labels)  # (U, C)
        drop = intact[None, :] - accuracy
        needed = drop.argmax(axis=0)  # (C,) per class
        result[kind] = {
            "accuracy": accuracy.tolist(),
            "drop": drop.tolist(),
            "importance": ablation_importance(intact, accuracy, labels).tolist(),
            "most_needed_unit": needed.tolist(),
            "most_needed_drop": drop[needed, np.arange(len(intact))].tolist(),
            "confusion_without_most_needed": ablation_confusion(tables[kind], labels, needed).tolist(),
        }
    return result


def top_examples(units: np.ndarray, k: int = 16) -> np.ndarray:
    """(U, k) indices of the k images that activate each unit most, strongest first (ties: test order)."""
    return np.argsort(-units, axis=0, kind="stable")[:k].T


def silent_examples(units: np.ndarray, labels: np.ndarray, preferred: np.ndarray, k: int = 8) -> list[list[int]]:
    """Per unit, up to k images of its preferred digit (first in test order) on which it is zero."""
    return [np.flatnonzero((labels == preferred[u]) & (units[:, u] <= 0))[:k].tolist() for u in range(units.shape[1])]


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Rank correlation, or None when either side is constant and the correlation is undefined."""
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(stats.spearmanr(x, y).statistic)


def _row_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation of matching rows of two (B, n) arrays; nan where a row is constant."""
    xc, yc = x - x.mean(axis=1, keepdims=True), y - y.mean(axis=1, keepdims=True)
    denominator = np.sqrt((xc**2).sum(axis=1) * (yc**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (xc * yc).sum(axis=1) / denominator


def rank_correlation(
    x: np.ndarray, y: np.ndarray, seed: int = 0, permutations: int = 10000, resamples: int = 2000
) -> dict | None:
    """Spearman rho with a two-sided permutation p-value and a 95 % percentile bootstrap interval.

    p = (1 + #{|rho_perm| >= |rho|}) / (1 + permutations), y's order shuffled against x's; the interval
    resamples the points (units) with replacement. None when either side is constant.
    """
    rho = spearman(np.asarray(x), np.asarray(y))
    if rho is None:
        return None
    rng = np.random.default_rng(seed)
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    shuffled = rng.permuted(np.tile(ry, (permutations, 1)), axis=1)
    null = _row_pearson(np.tile(rx, (permutations, 1)), shuffled)
    p = (1 + np.sum(np.abs(null) >= abs(rho) - 1e-12)) / (1 + permutations)
    picks = rng.integers(0, len(rx), size=(resamples, len(rx)))
    boot = _row_pearson(stats.rankdata(np.asarray(x)[picks], axis=1), stats.rankdata(np.asarray(y)[picks], axis=1))
    if np.all(np.isnan(boot)):  # every resample had a constant side (a handful of units): no interval
        return {"rho": rho, "p": float(p), "low": None, "high": None, "n": int(len(rx))}
    low, high = np.nanpercentile(boot, [2.5, 97.5])
    return {"rho": rho, "p": float(p), "low": float(low), "high": float(high), "n": int(len(rx))}


def spatial_max_summary(spatial_max: np.ndarray | None, labels: np.ndarray) -> dict | None:
    """For a convolutional layer, the per-class mean (C, U) of each channel's spatial maximum, which the
    pages print beside the spatial mean: a channel can fire strongly in one place and little on average."""
    if spatial_max is None:
        return None
    return {"mean": per_class_mean(spatial_max.astype(np.float64), labels).tolist()}


def specificity(dominant: list[int | None], units: int, seed: int = 0, permutations: int = 10000) -> dict:
    """Do different classes have different dominant units? Counts, and how they compare with chance.

    A class's dominant unit is *its own* when it dominates no other class. The null keeps which classes
    have a dominant unit and relabels each one's units at random (its dominant unit drawn uniformly from
    the U units): p is the chance of at least as many classes with a unit of their own. One unit that wins
    for five classes gives five classes a dominant unit (claim 1) but none of them its own.
    """
    owners = np.array([u for u in dominant if u is not None], dtype=np.int64)
    counts = np.bincount(owners, minlength=units)
    own = [d for d, u in enumerate(dominant) if u is not None and counts[u] == 1]
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, units, size=(permutations, len(owners)))
    tallies = (draws[..., None] == np.arange(units)).sum(axis=1)  # (P, U)
    null_own = (np.take_along_axis(tallies, draws, axis=1) == 1).sum(axis=1)  # (P,)
    return {
        "classes_with_dominant_unit": int(len(owners)),
        "distinct_dominant_units": int(np.count_nonzero(counts)),
        "classes_with_own_unit": own,
        "shared_units": {str(u): [d for d, o in enumerate(dominant) if o == u] for u in np.flatnonzero(counts > 1)},
        "chance_own": float(null_own.mean()) if len(owners) else 0.0,
        "p": float((1 + np.sum(null_own >= len(own))) / (1 + permutations)),
    }


def required_classes(min_classes_of_ten: int, classes: int) -> int:
    """A claim's class count, fixed for MNIST's ten classes, as the same share of another class count."""
    return int(np.ceil(min_classes_of_ten * classes / 10 - 1e-9))


def ablation_noise(tables: dict[str, np.ndarray], predictions: np.ndarray, labels: np.ndarray) -> dict:
    """Per kind, per unit: the accuracy drop with its 95 % interval paired over the same test images, and
    whether the effect is measurable (the interval excludes 0; `inference.paired_drop`)."""
    intact = predictions == labels
    return {kind: [inference.paired_drop(intact, row == labels) for row in tables[kind]] for kind in ABLATIONS}


def claim_summary(share: np.ndarray, preferred: np.ndarray, threshold: float) -> dict:
    """What the per-digit tables say about the paper's claim, in plain lists the pages can print."""
    best_share = share.max(axis=1)
    best_unit = share.argmax(axis=1)
    dominant = dominant_units(share, threshold)
    classes_of = {}
    for d, unit in enumerate(preferred):
        classes_of.setdefault(int(unit), []).append(d)
    classes = range(len(share))
    return {
        "classes_with_dominant_unit": [d for d in classes if dominant[d] is not None],
        "classes_without_dominant_unit": [d for d in classes if dominant[d] is None],
        "best_share": best_share.tolist(),
        "best_share_unit": best_unit.tolist(),
        "units_preferred_by_several_classes": {str(u): ds for u, ds in sorted(classes_of.items()) if len(ds) > 1},
        "units_preferred_by_no_class": [u for u in range(share.shape[1]) if u not in classes_of],
        "distinct_preferred_units": len(classes_of),
        "distinct_dominant_units": len({u for u in dominant if u is not None}),
        "classes_whose_preferred_unit_is_not_dominant": [d for d in classes if dominant[d] != preferred[d]],
    }


def ablation_tables(acts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The (U, N) ablated predictions the collect stage wrote, per kind."""
    return {kind: acts[f"ablated_{kind}"].astype(np.int64) for kind in ABLATIONS}


# ---------------------------------------------------------------------------------------- the record

EXAMPLE_COUNT = 20  # per_class.examples: the first images of each class, the most a class page shows
TOP_EXAMPLES = 16  # per_unit.top_examples: the images that activate a unit most
SILENT_EXAMPLES = 8  # per_unit.silent_examples: preferred-class images on which a unit is zero


def measure(
    acts: dict[str, np.ndarray],
    weights: dict[str, np.ndarray],
    images: np.ndarray,
    class_names: Sequence[str],
    method: Method,
    provenance: Provenance,
    dynamics: dict | None = None,
    network: tuple[dict, ...] | None = None,
) -> Measurements:
    """Every measure of one layer, as the record the pages, charts and Explore read.

    `acts`: `units` (N, U) the layer's activations on the test images, `labels` and `predictions` (N,),
    `ablated_zero` / `ablated_mean` (U, N) the predictions with each unit zeroed or set to its mean, and
    `spatial_max` (N, U) for a convolution's channels; `weights` may hold `output_kernel` (U, C), where the
    units feed the output layer directly, and `hidden_kernel` (pixels, U), where they read the pixels;
    `images` the test images as stored, of which the record keeps those the pages show. Signed activations
    (a layer without ReLU) have no class selectivity index: it is None there.
    """
    from nu_keras import robustness  # robustness builds on this module

    units, labels = checked_layer(acts, images, class_names)
    predictions = np.asarray(acts["predictions"]).astype(np.int64)
    threshold, seed, count = method.dominance_threshold, method.seed, units.shape[1]
    signed = bool(units.min() < 0)
    mean = per_class_mean(units, labels)
    top, runner_up, margin = preferred_units(mean)
    share, rescaled = dominance_share(units, labels), rescaled_share(units, labels)
    dominant, rescaled_dominant = dominant_units(share, threshold), dominant_units(rescaled, threshold)
    intact = per_class_accuracy(predictions, labels)
    tables = ablation_tables(acts)
    ablation = ablation_study(tables, labels, intact)
    selectivity = None if signed else selectivity_index(mean)
    preferred_class = mean.argmax(axis=0)
    preferred_drop = np.array(ablation["zero"]["drop"])[np.arange(count), preferred_class]  # (U,)
    dead, near_dead = dead_and_near_dead(dead_fraction(units))
    live = live_mask(units)
    noise = ablation_noise(tables, predictions, labels)
    correlations = selectivity_correlations(selectivity, ablation, preferred_drop, live, seed)
    claim = claim_summary(share, top, threshold)
    specific = specificity(dominant, count, seed=seed)
    layer = Layer(
        signed=signed,
        all_units_dead=all_units_dead(units),
        live_units=tuple(live_unit_indices(units)),
        dead_units=tuple(dead),
        near_dead_units=tuple(near_dead),
        classes_with_one_image=tuple(classes_with_one_image(labels)),
        spatial_max=spatial_max_summary(acts.get("spatial_max"), labels),
        receptive_field=receptive_field_of(acts.get("receptive_field")),
        feature_visualisation_note=optional_text(acts.get("feature_visualisation_note")),
        feature_visualisation_method=optional_text(acts.get("feature_visualisation_method")),
        linear_readout_accuracy=linear_readout_accuracy(units, labels, len(class_names)),
    )
    controls = robustness.network_controls(units, labels, method, layer, noise, correlations, claim, specific)
    top_images = top_examples(units, TOP_EXAMPLES)
    silent = silent_examples(units, labels, preferred_class, SILENT_EXAMPLES)
    kept = record.image_rows(
        labels, predictions, len(class_names), images, network is not None, [top_images.ravel(), *silent]
    )
    return Measurements(
        schema_version=record.SCHEMA_VERSION,
        classes=tuple(str(name) for name in class_names),
        units=tuple(str(u) for u in range(count)),
        test_accuracy=float(np.mean(predictions == labels)),
        n_test=int(len(labels)),
        method=method,
        layer=layer,
        per_class=PerClass(
            count=np.bincount(labels, minlength=len(class_names)),
            accuracy=intact,
            top_unit=top,
            runner_up_unit=runner_up,
            top_unit_margin=margin,
            dominant_unit=tuple(dominant),
            rescaled_dominant_unit=tuple(rescaled_dominant),
            silent_fraction=silent_fraction(units, labels),
            examples=first_of_each_class(labels, len(class_names), EXAMPLE_COUNT),
        ),
        per_unit=PerUnit(
            mean=units.mean(axis=0),
            selectivity=(None,) * count if selectivity is None else tuple(float(s) for s in selectivity),
            eta_squared=eta_squared(units, labels),
            d_prime=d_prime(units, labels),
            dead_fraction=dead_fraction(units),
            preferred_class=preferred_class,
            preferred_class_drop=preferred_drop,
            top_examples=top_images,
            silent_examples=tuple(tuple(s) for s in silent),
            output_weights=weights.get("output_kernel"),
            input_weights=weights.get("hidden_kernel"),
            top_maps=optional_float32(acts.get("top_maps")),
            filters=optional_float32(acts.get("filters")),
            feature_visualisation=optional_float32(acts.get("feature_visualisation")),
        ),
        class_unit=ClassUnit(
            mean=mean,
            std=per_class_std(units, labels),
            ci95=per_class_ci95(units, labels),
            dominance_share=share,
            rescaled_dominance_share=rescaled,
            boxplot=boxplot_summary(np.asarray(acts["units"]), labels),  # as stored: as the charts drew them
            mean_maps=optional_float32(acts.get("mean_maps")),
        ),
        images=Images(
            index=kept,
            pixels=stored_pixels(np.asarray(images)[kept]),
            label=labels[kept],
            prediction=predictions[kept],
            units=np.asarray(acts["units"])[kept],
        ),
        ablation=ablation,
        ablation_noise=noise,
        important_units=controls["important_units"],
        invariant={k: float(v) for k, v in invariant_measures(units[:, live], labels, threshold).items()},
        null=controls["null"],
        claim=claim,
        claims=controls["claims"],
        specificity=specific,
        rescaled_specificity=specificity(rescaled_dominant, count, seed=seed),
        correlations=correlations,
        tests=controls["tests"],
        dynamics=dynamics,
        network=network,
        provenance=plain_provenance(provenance, signed),
    )


def optional_float32(values: np.ndarray | None) -> np.ndarray | None:
    """A picture array the collect stage wrote (maps, filters, feature visualisations), as float32, or None."""
    return None if values is None else np.asarray(values, dtype=np.float32)


def optional_text(value: np.ndarray | None) -> str | None:
    """A note the collect stage wrote as a 0-d string array, as text, or None."""
    return None if value is None else str(value)


def receptive_field_of(field: np.ndarray | None) -> dict | None:
    """A convolution's receptive field (activations.receptive_field's size, stride, start) by name, or None."""
    if field is None:
        return None
    size, stride, start = (float(v) for v in field)
    return {"size": int(size), "stride": int(stride), "start": start}


def plain_provenance(provenance: Provenance, signed: bool) -> Provenance:
    """`provenance` as its JSON holds it (tuples as lists), so a record made in memory prints as one read back
    from metrics.json; its subject says whether the layer is signed."""
    plain = {f.name: record.to_plain(getattr(provenance, f.name)) for f in dataclasses.fields(provenance)}
    return Provenance(**plain | {"subject": plain["subject"] | {"signed": signed}})


def checked_layer(acts: dict[str, np.ndarray], images: np.ndarray, class_names: Sequence[str]) -> tuple:
    """`units` (N, U) in float64 and `labels` (N,) in int64, or one line saying why they cannot be measured."""
    units, labels = np.asarray(acts["units"]), np.asarray(acts["labels"])
    if units.ndim != 2 or units.shape[1] < 2:
        raise NuKerasError(f"the layer's units must be an (N, U) array with U >= 2, not of shape {units.shape}")
    if not len(labels) == len(units) == len(acts["predictions"]) == len(images):
        raise NuKerasError(f"{len(images)} images, {len(labels)} labels but {len(units)} rows of units")
    if not np.all(np.isfinite(units)):
        raise NuKerasError("the layer's units are not finite (NaN or infinity)")
    if len(labels) == 0 or labels.min() < 0 or labels.max() >= len(class_names):
        raise NuKerasError(f"labels must lie in 0..{len(class_names) - 1} for {len(class_names)} class names")
    missing = np.setdiff1d(np.arange(len(class_names)), labels)
    if len(missing):
        raise NuKerasError(f"every class needs a test image; class {int(missing[0])} has none")
    return units.astype(np.float64), labels.astype(np.int64)


def selectivity_correlations(
    selectivity: np.ndarray | None, ablation: dict, preferred_drop: np.ndarray, live: np.ndarray, seed: int
) -> dict:
    """Rank correlations of selectivity with each kind of ablation importance and with the drop on the unit's
    preferred class; over live units only: dead units tie at selectivity 0 and importance 0 and would pull rho
    around. None throughout for a signed layer (no selectivity)."""
    if selectivity is None:
        return {"selectivity_vs_ablation": dict.fromkeys(ABLATIONS), "selectivity_vs_preferred_class_drop": None}
    importance = {kind: np.array(ablation[kind]["importance"]) for kind in ABLATIONS}
    return {
        "selectivity_vs_ablation": {
            kind: rank_correlation(selectivity[live], importance[kind][live], seed=seed) for kind in ABLATIONS
        },
        "selectivity_vs_preferred_class_drop": rank_correlation(selectivity[live], preferred_drop[live], seed=seed),
    }


def stored_pixels(images: np.ndarray) -> np.ndarray:
    """Images as the record keeps them: uint8 as they are, float ones as float32 (what the Explore page reads)."""
    return images if images.dtype == np.uint8 else images.astype(np.float32)


def first_of_each_class(labels: np.ndarray, classes: int, k: int) -> np.ndarray:
    """(C, k) test indices of each class's first k images, in test order; -1 past a class's size."""
    table = np.full((classes, k), -1, dtype=np.int64)
    for c in range(classes):
        first = np.flatnonzero(labels == c)[:k]
        table[c, : len(first)] = first
    return table


def boxplot_summary(units: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(C, U, 5) lower whisker, first quartile, median, third quartile and upper whisker of each unit over
    each class's images, as matplotlib's `boxplot_stats` computes them (whiskers at 1.5 IQR, fliers left out),
    so the box plots drawn from the record are those drawn from the raw activations."""
    table = np.zeros((class_count(labels), units.shape[1], 5))
    for c in range(len(table)):
        rows = units[labels == c]
        q1, median, q3 = np.percentile(rows, [25, 50, 75], axis=0)
        iqr = q3 - q1
        for u in range(units.shape[1]):
            values = rows[:, u]
            inside_low = values[values >= q1[u] - 1.5 * iqr[u]]
            inside_high = values[values <= q3[u] + 1.5 * iqr[u]]
            low = inside_low.min() if len(inside_low) and inside_low.min() <= q1[u] else q1[u]
            high = inside_high.max() if len(inside_high) and inside_high.max() >= q3[u] else q3[u]
            table[c, u] = (low, q1[u], median[u], q3[u], high)
    return table


# ---------------------------------------------------------------------------------------- the analyze stage

PROVENANCE_KEYS = (  # what the record copies from train.json
    "history",
    "fit_seconds",
    "data_source",
    "data_sha256",
    "versions",
    "subject",
    "dataset",
    "summary",
    "parameters",
)


def run(cfg: RunConfig) -> None:
    """The analyze stage, as the pipeline runs it: this run's artifacts and data."""
    from nu_keras.data import dataset

    run_analyze(cfg, artifacts.paths(cfg), dataset(cfg))


def run_analyze(cfg: RunConfig, files: Any, data: Any) -> Measurements:
    """The analyze stage: activations.npz, weights.npz, train.json (and epochs.npz for a network trained
    here) and the test images of `data` -> metrics.json, the record's JSON. `files` names the artifacts
    (`artifacts.ArtifactPaths`). timings.json, how long the earlier stages took, is copied in but is no input of
    the stage's fingerprint: it changes with every run."""
    acts = artifacts.read_npz(files.activations, artifacts.ACTIVATION_KEYS)
    weights = artifacts.read_npz(files.weights)
    trained = artifacts.read_json(files.train, PROVENANCE_KEYS)
    labels = acts["labels"].astype(np.int64)
    network, reason = explore_network(trained["subject"], weights, data.x_test, len(data.class_names))
    if reason:  # the pages say why there is no Explore page
        log.info("no Explore page: %s", reason)
        trained["subject"] = trained["subject"] | {"explorable": False, "explore_reason": reason}
    measured = measure(
        acts,
        weights,
        data.x_test,
        list(data.class_names),
        Method.from_config(cfg),
        run_provenance(cfg, trained, artifacts.read_json(files.timings) if files.timings.exists() else {}),
        epoch_dynamics(files.epochs, labels, cfg.dominance_threshold) if cfg.trains_here else None,
        network,
    )
    artifacts.write_json(files.metrics, measured.to_json())
    log.info(
        "test accuracy %.4f; %d of %d classes have a dominant unit",
        measured.test_accuracy,
        len(measured.claim["classes_with_dominant_unit"]),
        len(measured.classes),
    )
    return measured


def run_provenance(cfg: RunConfig, trained: dict, timings: dict) -> Provenance:
    """Where a run's numbers come from: its settings, and what the train stage recorded (train.json)."""
    return Provenance(
        config=cfg.measured_fields(),
        versions=trained["versions"],
        data_source=trained["data_source"],
        data_sha256=trained["data_sha256"],
        dataset=trained["dataset"],
        subject=trained["subject"],
        history=trained["history"],
        fit_seconds=trained["fit_seconds"],
        trained_with=trained.get("trained_with"),
        parameters=trained["parameters"],
        layers=trained["summary"],
        timings=timings,
    )


def epoch_dynamics(path: Path, labels: np.ndarray, threshold: float) -> dict:
    """The measures of the report network's layer at every epoch of its fit (epochs.npz)."""
    from nu_keras import dynamics

    recorded = artifacts.read_npz(path, ("units", "predictions"))
    return dynamics.recorded_series(recorded, labels, threshold)


def explore_network(
    subject: dict, weights: dict[str, np.ndarray], images: np.ndarray, classes: int
) -> tuple[tuple[dict, ...] | None, str | None]:
    """The Dense stack the Explore page runs (name, activation, kernel, bias per layer), when the subject
    can be run exactly in the browser and the page stays within its size (`record.network_left_out_because`);
    else None and the reason."""
    if not subject.get("explorable"):
        return None, subject.get("explore_reason")
    network = tuple(
        {"name": layer["name"], "activation": layer["activation"]}
        | {"kernel": weights[f"stack_{i}_kernel"], "bias": weights[f"stack_{i}_bias"]}
        for i, layer in enumerate(subject["stack"])
    )
    parameters = sum(int(np.size(layer["kernel"]) + np.size(layer["bias"])) for layer in network)
    reason = record.network_left_out_because(parameters, images, classes)
    return (None, reason) if reason else (network, None)

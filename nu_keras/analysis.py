"""Statistics of the hidden layer, pure numpy: activations and weights in, arrays and dicts out.

Shapes: `hidden` (N, U) activations, `labels` (N,) classes 0..C-1, `w2` (U, C), `b2` (C,). Per-class
tables are (C, U): row = class, column = unit. "Digit" in a name means a class index: on MNIST the
classes are the digits (C = 10), on another data set they are its classes. The symmetry-invariant measures also accept a
stack of hidden layers (..., N, U) (the rotation null evaluates many at once).

Two words are kept apart everywhere: a digit's *preferred unit* has the largest mean activation over the
digit's images (every digit has one); its *dominant unit* is the most active unit on more than the
threshold share of the digit's images (a digit may have none).
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from scipy.optimize import linear_sum_assignment

from nu_keras import inference
from nu_keras.ablation import ABLATIONS, dense_ablated_predictions

NEAR_DEAD = 0.95  # a unit exactly zero on at least this share of the test images (but not all) is near-dead
# The method's interval settings: the computations use them and the pages print them (the level is inference's).
CONFIDENCE = inference.CONFIDENCE  # every interval: t over seeds (robustness.interval), normal over images
NORMAL_QUANTILE = 1.96  # z of the two-sided 95 % normal interval of a per-class mean over its images
NULL_WHISKERS = (2.5, 97.5)  # percentiles of the rotation null that the Robustness chart's whiskers span


def class_count(labels: np.ndarray) -> int:
    """C: the data sets guarantee every class appears among the test images, so the largest label is C - 1."""
    return int(np.max(labels)) + 1


def one_hot(labels: np.ndarray) -> np.ndarray:
    """(N, C) indicator of each image's class."""
    return (labels[:, None] == np.arange(class_count(labels))).astype(np.float64)


def per_digit_mean(hidden: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(..., 10, U) mean activation of each unit over the images of each digit."""
    return digit_moments(hidden, labels)[1]


def per_digit_std(hidden: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(10, U) standard deviation matching `per_digit_mean`."""
    return np.stack([hidden[labels == d].std(axis=0) for d in range(class_count(labels))])


def per_digit_ci95(hidden: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(10, U) half-width of the normal 95 % interval of each per-digit mean (1.96 s / sqrt(n)).

    A class with a single image has no spread to estimate: its half-width is 0, and `classes_with_one_image`
    names it so the pages can say the interval is missing rather than narrow.
    """
    classes = class_count(labels)
    counts = np.bincount(labels, minlength=classes)[:, None]
    std = np.stack([_sample_sd(hidden[labels == d]) for d in range(classes)])
    return NORMAL_QUANTILE * std / np.sqrt(counts)


def _sample_sd(rows: np.ndarray) -> np.ndarray:
    """(U,) sd with n - 1 in the denominator; 0 for fewer than two rows (undefined, never NaN)."""
    return rows.std(axis=0, ddof=1) if len(rows) > 1 else np.zeros(rows.shape[1])


def classes_with_one_image(labels: np.ndarray) -> list[int]:
    """Classes with a single test image: no interval, spread or d' of theirs can be trusted."""
    return np.flatnonzero(np.bincount(labels, minlength=class_count(labels)) == 1).tolist()


def all_units_dead(hidden: np.ndarray) -> bool:
    """True when every unit is zero on every image: no statistic over live units exists."""
    return not bool(np.any(dead_fraction(hidden) < 1.0))


def preferred_units(mean: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per digit: the unit with the largest mean (its preferred unit), the runner-up, and the margin."""
    order = np.argsort(-mean, axis=1, kind="stable")
    rows = np.arange(len(mean))
    winner, runner_up = order[:, 0], order[:, 1]
    return winner, runner_up, mean[rows, winner] - mean[rows, runner_up]


def most_active_neuron(hidden: np.ndarray) -> np.ndarray:
    """(N,) index of each image's largest activation; -1 when every unit is silent (all zero) or when the
    largest value is shared by several units (a constant layer would otherwise hand every image to unit 0)."""
    winners = hidden.argmax(axis=1)
    tied = np.sum(hidden == hidden.max(axis=1, keepdims=True), axis=1) > 1
    return np.where(np.any(hidden != 0, axis=1) & ~tied, winners, -1)


def dominance_matrix(hidden: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(10, U) share of digit-d images whose most active unit is n (the paper's raw activations).

    Images on which every unit is silent have no most active unit, so a row can sum to less than 1.
    """
    winners = most_active_neuron(hidden)
    units = hidden.shape[1]
    table = np.zeros((class_count(labels), units))
    for d in range(len(table)):
        w = winners[labels == d]
        table[d] = np.bincount(w[w >= 0], minlength=units) / len(w)
    return table


def dominance_share(hidden: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(C, U) the paper's dominance table, for ReLU units and signed layers alike: an image on which every
    unit is exactly zero has no most active unit (it never happens on a signed layer that is not constant)."""
    return dominance_matrix(hidden, labels)


def dominant_units(share: np.ndarray, threshold: float) -> list[int | None]:
    """Per digit, the unit that wins on more than `threshold` of its images, or None."""
    return [int(row.argmax()) if row.max() > threshold else None for row in share]


def spread_scaled(hidden: np.ndarray) -> np.ndarray:
    """(..., N, U) each unit divided by its spread (sd over the images), not centred; a constant unit -> 0.

    Scaling a ReLU unit by c > 0 and its outgoing weights by 1/c changes no prediction; dividing by the
    spread undoes that scale, so a measure of the result belongs to the function, not the weights.
    Centring would also undo a shift, but shifting a ReLU unit is not a symmetry (it changes the function
    and which unit is largest on an image), so the units keep their zero.
    """
    hidden = np.asarray(hidden, dtype=np.float64)
    sd = hidden.std(axis=-2, keepdims=True)
    return np.divide(hidden, sd, out=np.zeros_like(hidden), where=sd > 0)


def rescaled_share(hidden: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(C, U) the dominance table of the units put on one scale (`spread_scaled`), with the paper's
    silent-image rule."""
    return dominance_share(spread_scaled(hidden), labels)


def win_share(hidden: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(..., 10, U) share of digit-d images on which unit n is the largest (argmax, no silence rule)."""
    return win_table(hidden.argmax(axis=-1), labels, hidden.shape[-1])


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


def digit_moments(hidden: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per digit: image count (10, 1), mean (..., 10, U) and variance (..., 10, U) of each unit.

    Two matrix products give every moment at once, so eta² and d' cost little even for a stack of layers.
    """
    indicator = one_hot(labels).T  # (10, N)
    counts = indicator.sum(axis=1)[:, None]
    mean = indicator @ hidden / counts
    return counts, mean, indicator @ hidden**2 / counts - mean**2


def class_moments(hidden: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per class: image count (C, 1), mean (C, U) and covariance (C, U, U) of the units of one (N, U) layer.

    In float64. Enough for the per-class moments of any linear map of the layer (`mapped_moments`), so many
    bases of one layer cost one pass over the images.
    """
    groups = [np.asarray(hidden[labels == d], dtype=np.float64) for d in range(class_count(labels))]
    counts = np.array([[len(g)] for g in groups], dtype=np.float64)
    mean = np.stack([g.mean(axis=0) for g in groups])
    centred = [g - mu for g, mu in zip(groups, mean, strict=True)]
    return counts, mean, np.stack([c.T @ c / len(c) for c in centred])


def mapped_moments(
    moments: tuple[np.ndarray, np.ndarray, np.ndarray], maps: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per class: count (C, 1), mean (K, C, V) and variance (K, C, V) of the units of `hidden @ maps[k]`.

    `moments` is `class_moments(hidden, labels)`, `maps` (K, U, V). For one map S and unit j:
    mean_d(h S) = mu_d S and var_d((h S)_j) = S_jᵀ Σ_d S_j, so no image is touched again.
    """
    counts, mean, covariance = moments
    variance = np.einsum("kuj,cuv,kvj->kcj", maps, covariance, maps, optimize=True)
    return counts, mean @ maps, variance


def eta_squared(hidden: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(..., U) share of each unit's variance over the images explained by the digit; 0 for a constant unit.

    eta² = sum_d n_d (mu_d - mu)² / sum_i (h_i - mu)²: unchanged by h -> a h + b for any a != 0.
    """
    return eta_squared_from_moments(*digit_moments(hidden, labels))


def eta_squared_from_moments(counts: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """(..., U) `eta_squared` from per-class counts (C, 1), means and variances (..., C, U)."""
    grand = (counts * mean).sum(axis=-2) / counts.sum()  # (..., U)
    between = (counts * (mean - grand[..., None, :]) ** 2).sum(axis=-2)
    total = between + (counts * var).sum(axis=-2)  # total = between + within
    return np.divide(between, total, out=np.zeros_like(total), where=total > 1e-12 * counts.sum())


def d_prime(hidden: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(..., U) separation of each unit's preferred digit (largest mean) from all other images.

    d' = (mu_pref - mu_rest) / sqrt((var_pref + var_rest) / 2); 0 for a constant unit. Unchanged by
    h -> a h + b for a > 0.
    """
    return d_prime_from_moments(*digit_moments(hidden, labels))


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


def invariant_measures(hidden: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, np.ndarray]:
    """The network-level measures that survive rescaling a unit, for one (N, U) or many (K, N, U) layers.

    `standardised_dominant_digits`: classes with a dominant unit once each unit is divided by its spread
    (`rescaled_share`); `standardised_matched_share`: the share of its images each class's own unit wins
    there, units assigned to classes one to one (`matched_share`), a continuous measure of "a different
    dominant unit per class"; `eta_squared` and `d_prime`: means over units. Pass live units only
    (`live_units`): a dead unit would count as a zero in every mean.
    """
    share = rescaled_share(hidden, labels)  # (C, U)
    return {
        "standardised_dominant_digits": (share.max(axis=-1) > threshold).sum(axis=-1),
        "standardised_matched_share": matched_share(share),
        "eta_squared": eta_squared(hidden, labels).mean(axis=-1),
        "d_prime": d_prime(hidden, labels).mean(axis=-1),
    }


def silent_fraction(hidden: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(10,) share of each digit's images on which every hidden unit is exactly zero."""
    silent = np.all(hidden == 0, axis=1)
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


def dead_fraction(hidden: np.ndarray) -> np.ndarray:
    """(U,) share of images on which each unit outputs exactly zero."""
    return (hidden == 0).mean(axis=0)


def live_mask(hidden: np.ndarray) -> np.ndarray:
    """(U,) True for each unit that is not zero on every image (every unit when all are dead)."""
    alive = dead_fraction(hidden) < 1.0
    return alive if alive.any() else np.ones_like(alive)


def live_units(hidden: np.ndarray) -> np.ndarray:
    """(N, U') the units that are not zero on every image (all units if every one is dead).

    A dead unit carries nothing; left in, it would count as a zero in a mean over units, tie with others
    in a rank correlation, and a rotation would spread its zero over the live units. So every statistic
    over units, controls included, uses these.
    """
    return hidden[:, live_mask(hidden)]


def live_unit_indices(hidden: np.ndarray) -> list[int]:
    """The units that are not zero on every image, by index; empty when every unit is dead (unlike
    `live_mask`, which then keeps them all so the arrays it selects are never empty)."""
    return np.flatnonzero(dead_fraction(hidden) < 1.0).tolist()


def dead_and_near_dead(dead: np.ndarray) -> tuple[list[int], list[int]]:
    """Units zero on every image, and units zero on at least NEAR_DEAD of them but not all."""
    dead = np.asarray(dead)
    return np.flatnonzero(dead >= 1.0).tolist(), np.flatnonzero((dead >= NEAR_DEAD) & (dead < 1.0)).tolist()


def exact_maximizer(kernel_column: np.ndarray) -> np.ndarray:
    """The input in [0, 1]^784 that maximises relu(w . x + b): 1 where the weight is positive, else 0.

    w . x + b is linear in x and the box constraint separates per pixel, so each pixel independently
    takes the end of [0, 1] that increases the sum; ReLU is monotone, so the same x maximises it.
    """
    return (np.asarray(kernel_column) > 0).astype(np.float32)


def forward_hidden(x: np.ndarray, weights: dict) -> np.ndarray:
    """relu(x W1 + b1) for flattened, scaled images x (N, 784): the hidden layer without Keras."""
    return np.maximum(x @ weights["hidden_kernel"] + weights["hidden_bias"], 0.0)


def output_logits(hidden: np.ndarray, w2: np.ndarray, b2: np.ndarray) -> np.ndarray:
    """(N, 10) pre-softmax scores; softmax preserves the argmax, so these decide the prediction."""
    return hidden @ w2 + b2


def per_digit_accuracy(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(C,) accuracy over the images of each class; a (K, N) stack of predictions gives (K, C)."""
    hits = (np.asarray(predictions) == labels).astype(np.float64)
    return hits @ one_hot(labels) / np.bincount(labels, minlength=class_count(labels))


def ablation_accuracy(
    hidden: np.ndarray, labels: np.ndarray, w2: np.ndarray, b2: np.ndarray, fill: np.ndarray | None = None
) -> np.ndarray:
    """(U, C) per-class accuracy with unit u replaced by fill[u] (row u); zero ablation by default."""
    fill = np.zeros(hidden.shape[1]) if fill is None else fill
    predictions = np.stack([dense_ablated_predictions(hidden, w2, b2, u, fill[u]) for u in range(hidden.shape[1])])
    return per_digit_accuracy(predictions, labels)


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
        accuracy = per_digit_accuracy(tables[kind], labels)  # (U, C)
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


def top_examples(hidden: np.ndarray, k: int = 16) -> np.ndarray:
    """(U, k) indices of the k images that activate each unit most, strongest first (ties: test order)."""
    return np.argsort(-hidden, axis=0, kind="stable")[:k].T


def silent_examples(hidden: np.ndarray, labels: np.ndarray, preferred: np.ndarray, k: int = 8) -> list[list[int]]:
    """Per unit, up to k images of its preferred digit (first in test order) on which it is zero."""
    return [np.flatnonzero((labels == preferred[u]) & (hidden[:, u] <= 0))[:k].tolist() for u in range(hidden.shape[1])]


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
    return {"mean": per_digit_mean(spatial_max.astype(np.float64), labels).tolist()}


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
    digits_of = {}
    for d, unit in enumerate(preferred):
        digits_of.setdefault(int(unit), []).append(d)
    classes = range(len(share))
    return {
        "digits_with_dominant_unit": [d for d in classes if dominant[d] is not None],
        "digits_without_dominant_unit": [d for d in classes if dominant[d] is None],
        "best_share": best_share.tolist(),
        "best_share_unit": best_unit.tolist(),
        "units_preferred_by_several_digits": {str(u): ds for u, ds in sorted(digits_of.items()) if len(ds) > 1},
        "units_preferred_by_no_digit": [u for u in range(share.shape[1]) if u not in digits_of],
        "distinct_preferred_units": len(digits_of),
        "distinct_dominant_units": len({u for u in dominant if u is not None}),
        "digits_whose_preferred_unit_is_not_dominant": [d for d in classes if dominant[d] != preferred[d]],
    }


def ablation_tables(acts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The (U, N) ablated predictions the collect stage wrote, per kind."""
    return {kind: acts[f"ablated_{kind}"].astype(np.int64) for kind in ABLATIONS}


def analyze(acts: dict[str, np.ndarray], weights: dict[str, np.ndarray], threshold: float, seed: int = 0) -> dict:
    """Every statistic the pages print, as JSON-ready lists (see the module docstring for shapes).

    `acts` holds hidden, labels, predictions, ablated_zero and ablated_mean (and spatial_max for a conv
    layer); `weights` may hold output_kernel (U, C), which the pages show as each unit's votes.
    Signed activations (a layer without ReLU) have no class selectivity index: it is None there.
    """
    hidden, labels = acts["hidden"].astype(np.float64), acts["labels"].astype(np.int64)
    signed = bool(hidden.min() < 0)
    mean = per_digit_mean(hidden, labels)
    preferred, runners_up, margins = preferred_units(mean)
    share = dominance_share(hidden, labels)
    standardised_share = rescaled_share(hidden, labels)
    intact = per_digit_accuracy(acts["predictions"], labels)
    ablation = ablation_study(ablation_tables(acts), labels, intact)
    counts = np.bincount(labels, minlength=class_count(labels))
    selectivity = None if signed else selectivity_index(mean)
    preferred_digit = mean.argmax(axis=0)
    drop = np.array(ablation["zero"]["drop"])
    preferred_drop = drop[np.arange(len(preferred_digit)), preferred_digit]  # (U,)
    dead, near_dead = dead_and_near_dead(dead_fraction(hidden))
    live = live_mask(hidden)
    noise = ablation_noise(ablation_tables(acts), acts["predictions"], labels)
    importance = {kind: np.array(ablation[kind]["importance"]) for kind in ABLATIONS}
    return {
        "test_accuracy": float(np.mean(acts["predictions"] == labels)),
        "n_test": int(len(labels)),
        "digit_counts": counts.tolist(),
        "mean_activation": mean.tolist(),
        "std_activation": per_digit_std(hidden, labels).tolist(),
        "ci95_activation": per_digit_ci95(hidden, labels).tolist(),
        "preferred_unit": preferred.tolist(),
        "runner_up_unit": runners_up.tolist(),
        "preferred_margin": margins.tolist(),
        "win_share": share.tolist(),
        "dominant_unit": dominant_units(share, threshold),
        "standardised_win_share": standardised_share.tolist(),
        "standardised_dominant_unit": dominant_units(standardised_share, threshold),
        "eta_squared": eta_squared(hidden, labels).tolist(),
        "d_prime": d_prime(hidden, labels).tolist(),
        "invariant": {k: float(v) for k, v in invariant_measures(hidden[:, live], labels, threshold).items()},
        "live_units": live_unit_indices(hidden),
        "all_units_dead": all_units_dead(hidden),
        "classes_with_one_image": classes_with_one_image(labels),
        "silent_fraction": silent_fraction(hidden, labels).tolist(),
        "per_digit_accuracy": intact.tolist(),
        # (U, C): what each unit votes for and against, where it feeds the output layer directly
        "output_weights": np.asarray(weights["output_kernel"]).tolist() if "output_kernel" in weights else None,
        "selectivity": [None] * hidden.shape[1] if signed else selectivity.tolist(),
        "signed": signed,
        "spatial_max": spatial_max_summary(acts.get("spatial_max"), labels),
        "preferred_digit": preferred_digit.tolist(),
        "dead_fraction": dead_fraction(hidden).tolist(),
        "dead_units": dead,
        "near_dead_units": near_dead,
        "ablation": ablation,
        "ablation_noise": noise,
        "top_examples": top_examples(hidden).tolist(),
        "silent_examples": silent_examples(hidden, labels, preferred_digit),
        # over live units only: dead units tie at selectivity 0 and importance 0 and would pull rho around
        "selectivity_vs_ablation": {
            kind: None if signed else rank_correlation(selectivity[live], importance[kind][live], seed=seed)
            for kind in ABLATIONS
        },
        "preferred_digit_drop": preferred_drop.tolist(),
        "selectivity_vs_preferred_drop": (
            None if signed else rank_correlation(selectivity[live], preferred_drop[live], seed=seed)
        ),
        "claim": claim_summary(share, preferred, threshold),
        "specificity": specificity(dominant_units(share, threshold), hidden.shape[1], seed=seed),
        "standardised_specificity": specificity(
            dominant_units(standardised_share, threshold), hidden.shape[1], seed=seed
        ),
    }

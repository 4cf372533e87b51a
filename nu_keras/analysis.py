"""Statistics of the hidden layer, pure numpy: activations and weights in, arrays and dicts out.

Shapes: `hidden` (N, U) ReLU activations, `labels` (N,) digits 0-9, `w2` (U, 10), `b2` (10,).
Per-digit tables are (10, U): row = digit, column = neuron.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

DIGITS = 10


def per_digit_mean(hidden: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(10, U) mean activation of each neuron over the images of each digit."""
    return np.stack([hidden[labels == d].mean(axis=0) for d in range(DIGITS)])


def per_digit_std(hidden: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(10, U) standard deviation matching `per_digit_mean`."""
    return np.stack([hidden[labels == d].std(axis=0) for d in range(DIGITS)])


def per_digit_ci95(hidden: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(10, U) half-width of the normal 95 % interval of each per-digit mean (1.96 s / sqrt(n))."""
    counts = np.bincount(labels, minlength=DIGITS)[:, None]
    std = np.stack([hidden[labels == d].std(axis=0, ddof=1) for d in range(DIGITS)])
    return 1.96 * std / np.sqrt(counts)


def dominant_neurons(mean: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per digit: the neuron with the largest mean, the runner-up, and the winner's margin over it."""
    order = np.argsort(-mean, axis=1, kind="stable")
    rows = np.arange(len(mean))
    winner, runner_up = order[:, 0], order[:, 1]
    return winner, runner_up, mean[rows, winner] - mean[rows, runner_up]


def most_active_neuron(hidden: np.ndarray) -> np.ndarray:
    """(N,) index of each image's largest activation; -1 when every unit is silent (all zero)."""
    winners = hidden.argmax(axis=1)
    return np.where(hidden.max(axis=1) > 0, winners, -1)


def dominance_matrix(hidden: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(10, U) share of digit-d images whose most active neuron is n.

    Images on which every unit is silent have no most active neuron, so a row can sum to less than 1.
    """
    winners = most_active_neuron(hidden)
    units = hidden.shape[1]
    table = np.zeros((DIGITS, units))
    for d in range(DIGITS):
        w = winners[labels == d]
        table[d] = np.bincount(w[w >= 0], minlength=units) / len(w)
    return table


def silent_fraction(hidden: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(10,) share of each digit's images on which every hidden unit is exactly zero."""
    silent = hidden.max(axis=1) <= 0
    return np.array([silent[labels == d].mean() for d in range(DIGITS)])


def selectivity_index(mean: np.ndarray) -> np.ndarray:
    """(U,) class selectivity (mu_max - mu_rest) / (mu_max + mu_rest) of each neuron; 0 if both are 0.

    mu_max is the neuron's largest per-digit mean, mu_rest the mean of its other nine per-digit means.
    """
    top = mean.max(axis=0)
    rest = (mean.sum(axis=0) - top) / (len(mean) - 1)
    total = top + rest
    return np.divide(top - rest, total, out=np.zeros_like(total, dtype=float), where=total > 0)


def dead_fraction(hidden: np.ndarray) -> np.ndarray:
    """(U,) share of images on which each unit outputs exactly zero."""
    return (hidden <= 0).mean(axis=0)


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


def ablated_predictions(hidden: np.ndarray, w2: np.ndarray, b2: np.ndarray, neuron: int) -> np.ndarray:
    """(N,) predictions with one hidden unit's activation set to zero before the output layer."""
    ablated = hidden.copy()
    ablated[:, neuron] = 0.0
    return output_logits(ablated, w2, b2).argmax(axis=1)


def per_digit_accuracy(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(10,) accuracy over the images of each digit."""
    return np.array([np.mean(predictions[labels == d] == d) for d in range(DIGITS)])


def ablation_accuracy(hidden: np.ndarray, labels: np.ndarray, w2: np.ndarray, b2: np.ndarray) -> np.ndarray:
    """(U, 10) per-digit accuracy with neuron u zeroed (row u)."""
    return np.stack(
        [per_digit_accuracy(ablated_predictions(hidden, w2, b2, u), labels) for u in range(hidden.shape[1])]
    )


def ablation_importance(intact: np.ndarray, ablated: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(U,) overall test-accuracy drop per zeroed unit: per-digit drops weighted by digit frequency."""
    counts = np.bincount(labels, minlength=DIGITS)
    return (intact[None, :] - ablated) @ counts / counts.sum()


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


def claim_summary(dominance: np.ndarray, winners: np.ndarray, threshold: float) -> dict:
    """What the per-digit tables say about the paper's claim, in plain lists the pages can print."""
    best_share = dominance.max(axis=1)
    best_unit = dominance.argmax(axis=1)
    clear = [d for d in range(DIGITS) if best_share[d] > threshold]
    units_for = {}
    for d, unit in enumerate(winners):
        units_for.setdefault(int(unit), []).append(d)
    return {
        "digits_with_dominant_neuron": clear,
        "digits_without_dominant_neuron": [d for d in range(DIGITS) if d not in clear],
        "best_share": best_share.tolist(),
        "best_share_neuron": best_unit.tolist(),
        "shared_neurons": {str(u): ds for u, ds in sorted(units_for.items()) if len(ds) > 1},
        "unused_neurons": [u for u in range(dominance.shape[1]) if u not in units_for],
        "distinct_dominant_neurons": len(units_for),
    }


def analyze(acts: dict[str, np.ndarray], weights: dict[str, np.ndarray], threshold: float) -> dict:
    """Every statistic the pages print, as JSON-ready lists (see the module docstring for shapes)."""
    hidden, labels = acts["hidden"].astype(np.float64), acts["labels"].astype(np.int64)
    w2, b2 = weights["output_kernel"], weights["output_bias"]
    mean = per_digit_mean(hidden, labels)
    winners, runners_up, margins = dominant_neurons(mean)
    dominance = dominance_matrix(hidden, labels)
    intact = per_digit_accuracy(acts["predictions"], labels)
    ablated = ablation_accuracy(hidden, labels, w2, b2)
    counts = np.bincount(labels, minlength=DIGITS)
    overall_drop = ablation_importance(intact, ablated, labels)
    selectivity = selectivity_index(mean)
    preferred = mean.argmax(axis=0)
    preferred_drop = (intact[None, :] - ablated)[np.arange(len(preferred)), preferred]  # (U,)
    return {
        "test_accuracy": float(np.mean(acts["predictions"] == labels)),
        "n_test": int(len(labels)),
        "digit_counts": counts.tolist(),
        "mean_activation": mean.tolist(),
        "std_activation": per_digit_std(hidden, labels).tolist(),
        "ci95_activation": per_digit_ci95(hidden, labels).tolist(),
        "dominant_neuron": winners.tolist(),
        "runner_up_neuron": runners_up.tolist(),
        "dominant_margin": margins.tolist(),
        "dominance": dominance.tolist(),
        "silent_fraction": silent_fraction(hidden, labels).tolist(),
        "per_digit_accuracy": intact.tolist(),
        "output_weights": np.asarray(w2).tolist(),  # (U, 10): what each unit votes for and against
        "selectivity": selectivity.tolist(),
        "preferred_digit": preferred.tolist(),
        "dead_fraction": dead_fraction(hidden).tolist(),
        "ablation_accuracy": ablated.tolist(),
        "ablation_drop": (intact[None, :] - ablated).tolist(),
        "ablation_importance": overall_drop.tolist(),
        "top_examples": top_examples(hidden).tolist(),
        "silent_examples": silent_examples(hidden, labels, preferred),
        "selectivity_ablation_spearman": spearman(selectivity, overall_drop),
        "preferred_digit_drop": preferred_drop.tolist(),
        "selectivity_preferred_drop_spearman": spearman(selectivity, preferred_drop),
        "claim": claim_summary(dominance, winners, threshold),
    }

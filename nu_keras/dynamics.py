"""When does dominance appear? The report network's units measured on the test images after every epoch.

The train stage records, during the fit it runs anyway (no extra training), branch 0's layer and predictions on
the test images before the first step and after every epoch (`model.Dynamics` -> epochs.npz: plain arrays); the
analyze stage measures them here. So an edit of the measures re-runs analyze, never the training.
"""

from __future__ import annotations

import numpy as np

from nu_keras import analysis

SERIES = (
    "test_accuracy",
    "dominant_classes",
    "rescaled_dominant_classes",
    "distinct_dominant_units",
    "own_unit_classes",
    "mean_eta_squared",
    "dead_units",
)


def snapshot(images: np.ndarray, labels: np.ndarray, weights: dict[str, np.ndarray], threshold: float) -> dict:
    """The network's test accuracy and its units' dominance, specificity, η² and dead count right now.

    `images` (N, 784) float32 as the network reads them, `labels` (N,); `weights` as `dense_weights` gives.
    """
    units = np.maximum(images @ weights["hidden_kernel"] + weights["hidden_bias"], 0)  # (N, U)
    predictions = (units @ weights["output_kernel"] + weights["output_bias"]).argmax(axis=1)  # (N,)
    return epoch_measures(units, predictions, labels, threshold)


def epoch_measures(units: np.ndarray, predictions: np.ndarray, labels: np.ndarray, threshold: float) -> dict:
    """`snapshot` from the layer's units (N, U) and the predictions (N,) recorded at one epoch."""
    units, labels = np.asarray(units, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    dominant = analysis.dominant_units(analysis.dominance_share(units, labels), threshold)
    rescaled = analysis.dominant_units(analysis.rescaled_share(units, labels), threshold)
    # the counts do not depend on the permutation null, so a small one keeps this cheap
    specific = analysis.specificity(dominant, units.shape[1], permutations=10)
    dead = analysis.dead_fraction(units) == 1.0
    live_eta = analysis.eta_squared(units[:, ~dead], labels) if (~dead).any() else np.zeros(0)
    return {
        "test_accuracy": float(np.mean(np.asarray(predictions) == labels)),
        "dominant_classes": sum(u is not None for u in dominant),
        "rescaled_dominant_classes": sum(u is not None for u in rescaled),
        "distinct_dominant_units": specific["distinct_dominant_units"],
        "own_unit_classes": len(specific["classes_with_own_unit"]),
        "mean_eta_squared": float(live_eta.mean()) if live_eta.size else 0.0,
        "dead_units": int(dead.sum()),
    }


def recorded_series(recorded: dict[str, np.ndarray], labels: np.ndarray, threshold: float) -> dict[str, list]:
    """The record's `dynamics` from epochs.npz: `units` (E+1, N, U) and `predictions` (E+1, N), epoch 0 first."""
    return series(
        [
            epoch_measures(u, p, labels, threshold)
            for u, p in zip(recorded["units"], recorded["predictions"], strict=True)
        ]
    )


def series(snapshots: list[dict]) -> dict[str, list]:
    """The record's `dynamics`: one list per measure, indexed by epoch (0 = before the first step)."""
    return {"epoch": list(range(len(snapshots)))} | {key: [s[key] for s in snapshots] for key in SERIES}

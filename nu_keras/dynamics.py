"""When does dominance appear? The report network's units measured on the test images after every epoch.

Pure numpy from one network's four weight arrays, so the train stage can call it from a callback during
the fit it runs anyway (no extra training): a 10 000 x 784 product and a few tables per epoch.
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
    hidden = np.maximum(images @ weights["hidden_kernel"] + weights["hidden_bias"], 0)  # (N, U)
    logits = hidden @ weights["output_kernel"] + weights["output_bias"]  # (N, 10)
    dominant = analysis.dominant_units(analysis.dominance_share(hidden, labels), threshold)
    rescaled = analysis.dominant_units(analysis.rescaled_share(hidden, labels), threshold)
    # the counts do not depend on the permutation null, so a small one keeps this cheap
    specific = analysis.specificity(dominant, hidden.shape[1], permutations=10)
    dead = analysis.dead_fraction(hidden) == 1.0
    live_eta = analysis.eta_squared(hidden[:, ~dead], labels) if (~dead).any() else np.zeros(0)
    return {
        "test_accuracy": float(np.mean(logits.argmax(axis=1) == labels)),
        "dominant_classes": sum(u is not None for u in dominant),
        "rescaled_dominant_classes": sum(u is not None for u in rescaled),
        "distinct_dominant_units": specific["distinct_dominant_units"],
        "own_unit_classes": len(specific["classes_with_own_unit"]),
        "mean_eta_squared": float(live_eta.mean()) if live_eta.size else 0.0,
        "dead_units": int(dead.sum()),
    }


def series(snapshots: list[dict]) -> dict[str, list]:
    """metrics["dynamics"]: one list per measure, indexed by epoch (0 = before the first step)."""
    return {"epoch": list(range(len(snapshots)))} | {key: [s[key] for s in snapshots] for key in SERIES}

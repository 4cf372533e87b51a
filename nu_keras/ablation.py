"""Ablation: the model's predictions with one unit of the analysed layer replaced by a fill value.

Two ways to compute them, the same numbers: when the units feed the output layer directly, a matrix
product (`dense_ablation_table`, numpy only); otherwise the rest of the model (the *tail*,
`subject.split`) is run on the layer's output with each unit replaced in turn (`tail_ablation_table`).
The collect stage computes the tables; the analysis reads them. Neither Keras nor the analysis is imported
here: a tail is anything with `predict_on_batch`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

ABLATIONS = ("zero", "mean")
ABLATION_VALUES = 2**25  # float32 values of ablated layer outputs held at once (128 MB)


def ablation_fill(hidden: np.ndarray, kind: str) -> np.ndarray:
    """(U,) the value an ablated unit is replaced by: 0 ("zero") or its mean over the test set ("mean").

    Zero ablation also removes a unit's average level, which costs accuracy even if the unit carries no
    information about the digit; mean ablation removes only what varies from image to image.
    """
    return np.zeros(hidden.shape[1]) if kind == "zero" else hidden.mean(axis=0)


def dense_ablated_predictions(
    hidden: np.ndarray, w2: np.ndarray, b2: np.ndarray, unit: int, fill: float = 0.0
) -> np.ndarray:
    """(N,) predictions with one unit's activation replaced by `fill` before the output layer (U, C)."""
    ablated = hidden.copy()
    ablated[:, unit] = fill
    return (ablated @ w2 + b2).argmax(axis=1)  # softmax keeps the argmax of the logits


def dense_ablation_table(hidden: np.ndarray, w2: np.ndarray, b2: np.ndarray) -> dict[str, np.ndarray]:
    """Per kind ("zero", "mean"), (U, N) predictions with unit u replaced by its fill (row u), when the
    units feed the output layer directly (a user's deeper model runs its own layers: `tail_ablation_table`)."""
    tables = {}
    for kind in ABLATIONS:
        fill = ablation_fill(hidden, kind)
        rows = [dense_ablated_predictions(hidden, w2, b2, u, fill[u]) for u in range(hidden.shape[1])]
        tables[kind] = np.stack(rows)
    return tables


def tail_ablation_table(
    outputs: Iterable[np.ndarray], tail, fills: dict[str, np.ndarray], units: list[int] | None = None
) -> dict[str, np.ndarray]:
    """Per fill kind, (U, N) predictions with each unit replaced in turn by its fill, the tail run on the
    result (only the given `units`, in their order, when given: `nu_keras.ablate`). `outputs` is the layer's
    full output one batch at a time (`activations.head_outputs`), so the head runs once per batch whatever
    the number of units; the tail runs on several ablated copies of the batch at once (one call per chunk of
    units, not one per unit)."""
    tables = {kind: [] for kind in fills}
    for out in outputs:
        chosen = list(range(out.shape[-1])) if units is None else list(units)
        per_call = max(1, ABLATION_VALUES // out.size)  # ablated copies per tail call: memory stays bounded
        for kind, fill in fills.items():
            rows = [_ablated_chunk(tail, out, chosen[i : i + per_call], fill) for i in range(0, len(chosen), per_call)]
            tables[kind].append(np.concatenate(rows))
    return {kind: np.concatenate(parts, axis=1) for kind, parts in tables.items()}


def _ablated_chunk(tail, out: np.ndarray, chunk: list[int], fill: np.ndarray) -> np.ndarray:
    """(len(chunk), B) predictions: copy k of the batch's layer output has unit chunk[k] replaced by its fill."""
    changed = np.repeat(out[None], len(chunk), axis=0)  # (k, B, ...)
    for k, unit in enumerate(chunk):
        changed[k, ..., unit] = fill[..., unit]
    flat = changed.reshape(-1, *out.shape[1:])
    predicted = np.asarray(tail.predict_on_batch(flat)).argmax(axis=-1)
    return predicted.reshape(len(chunk), len(out))

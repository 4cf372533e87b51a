"""Ablation: the model's predictions with one unit of the analysed layer replaced by a fill value.

Three ways to compute them, the same numbers: when the units feed the output layer directly, a matrix
product (`dense_ablation_table`, numpy only); when a conv layer's channels reach it through pooling and a
Flatten, the change each channel makes to the logits (`flat_dense_ablation_table`); otherwise the rest of the
model (the *tail*, `subject.split`) is run on the layer's output with each unit replaced in turn
(`tail_ablation_table`).
The collect stage computes the tables; the analysis reads them. Neither Keras nor the analysis is imported
here: a masked tail is anything with `predict_on_batch`.
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


def flat_dense_ablation_table(
    outputs: Iterable[np.ndarray], fills: dict[str, np.ndarray], w: np.ndarray, b: np.ndarray
) -> dict[str, np.ndarray]:
    """Per fill kind, (C, N) predictions with each channel replaced in turn by its fill, when the channels
    (after layers that keep them apart, `activations.channelwise_prefix`) are flattened into the output
    layer (w (H*W*C, O), b (O,)): Keras's Simple MNIST convnet read at its second convolution.

    The output layer is linear before its softmax, so replacing channel c changes the logits by the fill
    minus the channel's values, times the channel's weight rows: all C ablated copies of a batch cost one
    product of the batch's size, whatever the number of fills (the copies themselves are never made).
    float64, as `dense_ablation_table`: the same predictions as the tail run in Keras but where two classes'
    logits tie within float32's rounding.
    `outputs` and `fills` are the values and fills after the channel-wise layers, shape (B, ..., C) and (..., C).
    """
    tables = {kind: [] for kind in fills}
    w, rows = np.asarray(w, dtype=np.float64), None
    for out in outputs:
        values = np.asarray(out, dtype=np.float64).reshape(len(out), -1, out.shape[-1])  # (B, P positions, C)
        if rows is None:  # channel c's weight rows (C, P, O), and what its fill alone gives (C, O) per kind
            rows = w.reshape(*values.shape[1:], w.shape[1]).transpose(1, 0, 2)
            filled = {kind: np.einsum("pc,cpo->co", np.reshape(f, values.shape[1:]), rows) for kind, f in fills.items()}
        base = values.reshape(len(values), -1) @ w + b  # (B, O): the unablated logits
        own = np.einsum("bpc,cpo->cbo", values, rows, optimize=True)  # (C, B, O): each channel's share of them
        for kind in fills:
            # replacing channel c swaps its share for its fill's: the logits change by the difference
            tables[kind].append((base[None] - own + filled[kind][:, None]).argmax(axis=-1))
    return {kind: np.concatenate(parts, axis=1) for kind, parts in tables.items()}


def tail_ablation_table(
    outputs: Iterable[np.ndarray], masked_tail, fills: dict[str, np.ndarray], copy_values: int | None = None
) -> dict[str, np.ndarray]:
    """Per fill kind, (U, N) predictions with each unit replaced in turn by its fill, the tail run on the
    result. `outputs` is the layer's full output one batch at a time (`activations.head_outputs`), so the
    head runs once per batch whatever the number of units. `masked_tail` (`activations.masked_tail`) takes
    [output (B, ...), mask (K, U) bool, fill (1, ...)] and returns (K, B) predictions, copy k with the units
    of mask row k replaced by the fill: the copies are made inside its compiled graph, not here in numpy,
    and the masks have one shape for the whole run, so it is compiled once per batch size. `copy_values`:
    the values of one image's ablated copy inside it (smaller than the output's after a pooling; default the
    output's), which bounds how many copies one call makes."""
    tables = {kind: [] for kind in fills}
    for out in outputs:
        per_copy = len(out) * (copy_values or out[0].size)
        per_call = max(1, ABLATION_VALUES // per_copy)  # ablated copies per tail call: memory stays bounded
        chunks = unit_masks(out.shape[-1], per_call)
        for kind, fill in fills.items():
            fill_one = np.asarray(fill, dtype=out.dtype)[None]
            rows = [np.asarray(masked_tail.predict_on_batch([out, mask, fill_one]))[:used] for mask, used in chunks]
            tables[kind].append(np.concatenate(rows))
    return {kind: np.concatenate(parts, axis=1) for kind, parts in tables.items()}


def unit_masks(units: int, per_call: int) -> list[tuple[np.ndarray, int]]:
    """The units in chunks of `per_call`: per chunk a (K, U) one-hot mask, K = min(per_call, U) rows (row k
    ablates one unit), and how many rows are real (the last chunk is padded with rows that ablate nothing)."""
    rows = min(per_call, units)
    chunks = []
    for first in range(0, units, rows):
        chosen = np.arange(first, min(first + rows, units))
        mask = np.zeros((rows, units), dtype=bool)
        mask[chosen - first, chosen] = True
        chunks.append((mask, len(chosen)))
    return chunks

"""The network the Explore page runs: a stack of Dense layers over the flattened image, each a dict of
`name`, `kernel` (in, out), `bias` (out,) and `activation`. What explore.js can compute, the check that a
stack is one it can run, and its forward pass in numpy (the reference explore.js is held to).

Pure numpy, apart from the rest of the Explore export (explore.py): the train stage checks a user's model
against this forward pass, and must not depend on the analysis code.
"""

from __future__ import annotations

import numpy as np

from nu_keras.errors import NuKerasError

ACTIVATIONS = ("relu", "linear", "sigmoid", "tanh", "softmax")  # what explore.js computes
LAST_ACTIVATIONS = ("softmax", "linear")  # the output layer: the page shows softmax of its pre-activations


def check_stack(stack: list[dict], readout: int, inputs: int, classes: int) -> None:
    """Raise a one-line NuKerasError unless `stack` is Dense layers from `inputs` to `classes` that
    explore.js can run, and `readout` one of its layers before the last."""
    if len(stack) < 2:
        raise NuKerasError(f"the explorer needs at least two Dense layers, not {len(stack)}")
    if not isinstance(readout, int | np.integer) or not 0 <= readout < len(stack) - 1:
        raise NuKerasError(f"the explored layer must be one of the first {len(stack) - 1}, not index {readout}")
    width = inputs
    for layer in stack:
        kernel, bias, name = np.shape(layer["kernel"]), np.shape(layer["bias"]), layer["name"]
        if len(kernel) != 2 or kernel[0] != width or bias != kernel[1:]:
            raise NuKerasError(f"layer {name!r}: kernel {kernel} and bias {bias} do not take {width} inputs")
        if layer["activation"] not in ACTIVATIONS:
            raise NuKerasError(f"layer {name!r}: the explorer cannot compute activation {layer['activation']!r}")
        width = kernel[1]
    if width != classes or stack[-1]["activation"] not in LAST_ACTIVATIONS:
        raise NuKerasError(f"the last layer must give {classes} class scores (softmax or linear)")


def forward(stack: list[dict], x: np.ndarray) -> np.ndarray:
    """(N, C) the last layer's outputs, its own activation applied, as explore.js computes them in float64
    from the float32 weights; x is (N, inputs), the flattened model input. The page then shows the softmax
    of the last layer's pre-activations, the same numbers for a softmax output."""
    a = np.asarray(x, dtype=np.float64)
    for layer in stack:
        a = _activate(layer["activation"], a @ np.asarray(layer["kernel"], np.float64) + layer["bias"])
    return a


def _activate(name: str, pre: np.ndarray) -> np.ndarray:
    if name == "relu":
        return np.maximum(pre, 0.0)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-pre))
    if name == "tanh":
        return np.tanh(pre)
    if name == "softmax":
        shifted = np.exp(pre - pre.max(axis=-1, keepdims=True))
        return shifted / shifted.sum(axis=-1, keepdims=True)
    return pre  # linear


def exact_maximizer(kernel_column: np.ndarray) -> np.ndarray:
    """The input in [0, 1]^784 that maximises relu(w . x + b): 1 where the weight is positive, else 0.

    w . x + b is linear in x and the box constraint separates per pixel, so each pixel independently
    takes the end of [0, 1] that increases the sum; ReLU is monotone, so the same x maximises it.
    """
    return (np.asarray(kernel_column) > 0).astype(np.float32)

"""What a unit wants: feature visualisation by regularised gradient ascent on the input.

For a unit of a Dense layer (its output) or a channel of a convolutional layer (its spatial mean), find an
input in the data's pixel range that makes it large. Every requested unit gets its own image in one batch,
so a 64-channel layer is one optimisation. The image is not optimised pixel by pixel, which gives
high-frequency noise that fools the unit; as Lucid does, it is parameterised in a decorrelated basis (a 2-D
cosine spectrum whose coefficients are scaled by 1 / frequency) and squashed into the pixel range by a
sigmoid, and it is jittered (shifted by a few random pixels) at every step. Adam runs on the spectrum with
numpy; only the gradient comes from the backend's own autodiff (`keras.ops` has none), chosen in one place
(`_gradient_function`), so TensorFlow and JAX give the same kind of picture.

    pictures = visualise(model, "conv2d_1", steps=256)  # (64, 28, 28, 1), in [0, 1]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np

from nu_keras.errors import NuKerasError
from nu_keras.names import shown

STEPS = 256  # Adam steps: on MNIST-sized models the pictures no longer change visibly after about 200
LEARNING_RATE = 0.05  # Adam's step on the spectrum's coefficients (Adam's updates are scale-free in the objective)
# Largest random shift per axis and step, as a share of the picture's shorter side (at least one pixel): a
# picture must work wherever it lies. One pixel of a 28-pixel MNIST image; more blurs a 2-3 pixel stroke away.
JITTER_SHARE = 1 / 28
DECAY = 1.0  # the spectrum's coefficients are scaled by 1 / frequency ** DECAY (Lucid's decay_power)
INIT_SCALE = 0.01  # standard deviation of the starting coefficients: a near-uniform mid-range image
LEAK = 0.01  # a channel's objective adds this share of its mean before the activation (a gradient when dead)
UNIT_BATCH = 256  # units optimised together at most: bounds memory for a layer with many units (a Flatten)

METHOD_TEXT = """\
**Feature visualisation.** For each unit, an input is found that makes the unit large: gradient ascent on the
input, started from a near-uniform mid-range image drawn from a fixed seed, for {steps} steps of Adam
(learning rate {learning_rate}). The objective is a Dense unit's value before the layer's own activation: a
ReLU or a sigmoid is monotone, so the input that maximises the one maximises the other, and a unit that starts
below zero still has a gradient (for a softmax layer, this is the class's logit). A channel of a convolutional
layer is its activation's mean over the positions, as everywhere in this report, plus {leak} times its mean
before the activation, so that a channel that is zero everywhere on the starting image has a gradient too. The
image is parameterised as in Lucid: a 2-D cosine spectrum whose coefficients are scaled by 1 / frequency, put
through a sigmoid so every pixel stays in the data's range; at each step it is shifted at random by up to
{jitter} of its shorter side (at least one pixel). Both choices are regularisers: without them the ascent
finds high-frequency patterns that drive the unit but look like noise. **Limits.** The picture is one input
that drives the unit, not what the unit responds to on the data (the top images show that), and it depends on
the regularisers, the seed and the number of steps; it can show several features at once when a unit responds
to several (Lucid's "polysemantic" units). The regularisers smooth: where a unit's weights change from pixel
to pixel, the picture is a blurred version of what maximises it, so for the paper's Dense layer, where the
exact maximiser is known (1 where the weight is positive, else 0), both are shown. A unit with no gradient at
the start keeps its starting picture. Colour channels are not decorrelated.
"""


def method_text() -> str:
    """The Method page's paragraph on how the pictures are made, with this module's settings."""
    jitter = f"1/{round(1 / JITTER_SHARE)}"
    return METHOD_TEXT.format(steps=STEPS, learning_rate=LEARNING_RATE, jitter=jitter, leak=LEAK)


# ---------------------------------------------------------------------------------------------- the API


def visualise(
    model: keras.Model,
    layer: str,
    units: Sequence[int] | None = None,
    *,
    steps: int = STEPS,
    seed: int = 0,
    image_shape: tuple[int, ...] | None = None,
    value_range: tuple[float, float] = (0.0, 1.0),
    learning_rate: float = LEARNING_RATE,
    jitter: int | None = None,
) -> np.ndarray:
    """(K, *image_shape) float32: for each of `units` (all of the layer's by default) an input in
    `value_range` that maximises it. `image_shape` defaults to the model's input shape, a flat input of
    a square size shown as a square ((784,) as (28, 28)); `value_range` is the data's pixel range as the
    model reads it ((0, 255) for `--pixels raw`); `jitter` is the largest shift in pixels (by default
    JITTER_SHARE of the shorter side). The same arguments give bit-identical pictures.

    >>> visualise(model, "hidden", [3], steps=64).shape
    (1, 28, 28)
    """
    target, count = _target_layer(model, layer)
    chosen = _check_units(units, count, layer)
    shape = _picture_shape(model, image_shape)
    jitter = max(1, round(min(shape[:2]) * JITTER_SHARE)) if jitter is None else jitter
    _check_settings(steps, value_range, learning_rate, jitter)
    ascent = Ascent(int(steps), float(learning_rate), int(jitter))
    gradient = _gradient_function(_objective(model, target, shape, value_range))
    try:
        parts = [
            _ascend(gradient, chosen[start : start + UNIT_BATCH], count, shape, ascent, seed)
            for start in range(0, len(chosen), UNIT_BATCH)
        ]
    except _NoGradient as exc:
        raise NuKerasError(_not_differentiable(model, target, str(exc))) from None
    pictures = np.concatenate(parts) if parts else np.zeros((0, *shape), np.float32)
    return _pixels(pictures, value_range)


# ------------------------------------------------------------------------------------------- checks


def _target_layer(model: keras.Model, name: str) -> tuple[keras.layers.Layer, int]:
    """The named layer and its number of units; one line for a missing layer or an unreadable output."""
    if len(getattr(model, "inputs", None) or []) != 1:
        raise NuKerasError("feature visualisation needs a built functional or Sequential model of one input")
    try:
        layer = model.get_layer(name)
    except ValueError:
        raise NuKerasError(f"the model has no layer '{shown(name)}'") from None
    try:
        shape = tuple(layer.output.shape)
    except (AttributeError, ValueError):  # a layer called more than once has no single output
        raise NuKerasError(f"layer '{shown(name)}' has no single output (is it used more than once?)") from None
    if len(shape) not in (2, 4) or shape[-1] is None:
        raise NuKerasError(
            f"layer '{shown(name)}' outputs shape {shape}: feature visualisation reads a Dense output (N, U) "
            "or a convolutional one (N, H, W, U)"
        )
    return layer, int(shape[-1])


def _check_units(units: Sequence[int] | None, count: int, layer: str) -> list[int]:
    chosen = list(range(count)) if units is None else [int(u) for u in units]
    bad = [u for u in chosen if not 0 <= u < count]
    if bad:
        raise NuKerasError(f"unit {bad[0]} is not a unit of layer '{shown(layer)}', which has units 0 to {count - 1}")
    return chosen


def _picture_shape(model: keras.Model, image_shape: tuple[int, ...] | None) -> tuple[int, ...]:
    """The picture's shape: `image_shape`, else the input's, a flat input of square size as a square."""
    given = tuple(model.inputs[0].shape[1:])
    if None in given:
        raise NuKerasError(f"the model takes inputs of shape {given}; feature visualisation needs a fixed size")
    size = int(np.prod(given))
    side = int(round(size**0.5))
    shape = tuple(image_shape) if image_shape else (side, side) if len(given) == 1 and side * side == size else given
    if len(shape) not in (2, 3) or int(np.prod(shape)) != size:
        raise NuKerasError(
            f"image_shape {shape} does not fit the model's input {given}: give (H, W) or (H, W, C) of {size} values"
        )
    return shape


def _check_settings(steps: int, value_range: tuple[float, float], learning_rate: float, jitter: int) -> None:
    if not all(isinstance(n, int | np.integer) for n in (steps, jitter)):
        raise NuKerasError(f"steps and jitter must be whole numbers, not {steps!r} and {jitter!r}")
    if steps < 1:
        raise NuKerasError(f"steps must be at least 1, not {steps}")
    low, high = value_range
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise NuKerasError(f"value_range must be (low, high) with low < high, not {value_range}")
    if not learning_rate > 0 or jitter < 0:
        raise NuKerasError(f"learning_rate must be positive and jitter at least 0 (got {learning_rate}, {jitter})")


# ---------------------------------------------------------------------------------------- objective


def _pre_activation(layer: keras.layers.Layer) -> keras.layers.Layer:
    """The layer itself, or a twin with the same weights and no activation when it has one of its own
    (Dense, Conv2D with activation=...): the objective then keeps a gradient where a ReLU is at zero."""
    config = layer.get_config()
    if config.get("activation") in (None, "linear"):
        return layer
    twin = type(layer).from_config({**config, "activation": "linear", "name": f"{layer.name}_pre_activation"})
    twin.build(layer.input.shape)
    twin.set_weights(layer.get_weights())
    return twin


def _layer_function(model: keras.Model, layer: keras.layers.Layer) -> Callable:
    """x (model input) -> (before, after): the layer's value before its own activation, and its output
    ((K, U) or (K, H, W, U)); the same tensor twice for a layer without an activation of its own."""
    twin = _pre_activation(layer)
    if twin is layer:
        head = keras.Model(model.inputs, layer.output)

        def read(x):
            out = head(x, training=False)
            return out, out

        return read
    before = None if layer.input is model.inputs[0] else keras.Model(model.inputs, layer.input)

    def read_twice(x):
        pre = twin(x if before is None else before(x, training=False), training=False)
        return pre, layer.activation(pre)

    return read_twice


def _unit_values(before, after):
    """(K, U) what is maximised. A Dense unit: its value before the layer's activation. A unit is one
    number and a ReLU or sigmoid is monotone, so the same input maximises it before and after, and before,
    it has a gradient where a ReLU is at zero. A channel: its activation's spatial mean, as the pages read
    it (the mean before a ReLU is another, nearly linear objective), plus LEAK times the mean before, so a
    channel that is zero everywhere at the start still has a gradient until it is positive somewhere."""
    if len(before.shape) == 2:
        return before
    mean = keras.ops.mean(after, axis=(1, 2))
    return mean if before is after else mean + LEAK * keras.ops.mean(before, axis=(1, 2))


def _objective(model: keras.Model, layer: keras.layers.Layer, shape: tuple[int, ...], value_range) -> Callable:
    """(coefficients (K, H, W, C), rows (H, H), columns (W, W), choice (K, U)) -> the sum over the batch of
    each picture's unit: the function whose gradient is ascended. Each picture only reaches its own unit, so
    the gradient of the sum with respect to one picture is the gradient of its unit alone. `rows` and
    `columns` are the inverse cosine bases shifted by the step's jitter (`_shifted_bases`)."""
    height, width = shape[0], shape[1]
    scale = _spectrum_scale(height, width)[None, :, :, None]
    low, high = value_range
    model_shape = tuple(model.inputs[0].shape[1:])
    read = _layer_function(model, layer)

    def objective(coefficients, rows, columns, choice):
        spectrum = keras.ops.multiply(coefficients, scale)
        logits = keras.ops.einsum("hi,khwc,wj->kijc", rows, spectrum, columns)  # (K, H, W, C), shifted
        pictures = low + (high - low) * keras.ops.sigmoid(logits)
        values = _unit_values(*read(keras.ops.reshape(pictures, (-1, *model_shape))))
        return keras.ops.sum(values * choice)

    return objective


def _shifted_bases(shape: tuple[int, ...], shifts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The inverse cosine bases of the picture's rows and columns, rolled by the shifts: the picture they
    make is the unshifted one rolled (wrapping round), with no roll in the objective (JAX rolls slowly)."""
    return np.roll(_inverse_dct(shape[0]), shifts[0], axis=1), np.roll(_inverse_dct(shape[1]), shifts[1], axis=1)


def _inverse_dct(n: int) -> np.ndarray:
    """(n, n) orthonormal DCT-II matrix D (rows: frequencies): a signal x has spectrum D x, and x = Dᵀ X."""
    k, i = np.arange(n)[:, None], np.arange(n)[None, :]
    basis = np.cos(np.pi * (i + 0.5) * k / n) * np.sqrt(2.0 / n)
    basis[0] /= np.sqrt(2.0)
    return basis.astype(np.float32)


def _spectrum_scale(height: int, width: int) -> np.ndarray:
    """(H, W) 1 / frequency ** DECAY, the lowest frequency clipped at one cycle per picture: equal steps
    on every coefficient then change the picture mostly at low frequencies, as natural images do."""
    fy, fx = np.arange(height)[:, None] / (2.0 * height), np.arange(width)[None, :] / (2.0 * width)
    frequency = np.maximum(np.sqrt(fy**2 + fx**2), 1.0 / max(height, width))
    scale = frequency**-DECAY
    return (scale / scale.max() * np.sqrt(height * width) / 4).astype(np.float32)


# ------------------------------------------------------------------------------------------ ascent


class _NoGradient(Exception):
    """The first step's gradient raised or is zero for every unit (the reason, if it raised)."""


@dataclass(frozen=True)
class Ascent:
    steps: int  # Adam steps
    learning_rate: float  # Adam's step on the coefficients
    jitter: int  # largest random shift in pixels, per axis and step


def _ascend(
    gradient: Callable, units: list[int], count: int, shape: tuple[int, ...], ascent: Ascent, seed: int
) -> np.ndarray:
    """(K, *shape) the pictures' logits after the ascent's steps of Adam on the coefficients (numpy, so both
    backends update alike). The shifts are drawn from `seed`, and each unit's start from `seed` and the unit:
    a unit gets the same picture whichever units share its batch."""
    coefficients = np.stack([_start(seed, unit, shape) for unit in units])
    rng = np.random.default_rng((seed, 0))
    choice = np.eye(count, dtype=np.float32)[units]  # (K, U): picture k reads unit units[k]
    adam = _Adam(coefficients.shape, ascent.learning_rate)
    for step in range(ascent.steps):
        rows, columns = _shifted_bases(shape, rng.integers(-ascent.jitter, ascent.jitter + 1, size=2))
        grad = gradient(coefficients, rows, columns, choice)
        if step == 0 and not np.any(grad):
            raise _NoGradient("")
        coefficients = coefficients + adam.update(grad)
    return _logits(coefficients, shape)


def _start(seed: int, unit: int, shape: tuple[int, ...]) -> np.ndarray:
    """(H, W, C) a unit's starting coefficients: small, so the picture starts near-uniform mid-range."""
    channels = shape[2] if len(shape) == 3 else 1
    rng = np.random.default_rng((seed, 1, unit))
    return (rng.standard_normal((shape[0], shape[1], channels)) * INIT_SCALE).astype(np.float32)


class _Adam:
    """Adam (Kingma & Ba) ascending, in float32 numpy: the same arithmetic on every backend."""

    def __init__(self, shape: tuple[int, ...], rate: float, beta1: float = 0.9, beta2: float = 0.999) -> None:
        self.rate, self.beta1, self.beta2, self.t = np.float32(rate), np.float32(beta1), np.float32(beta2), 0
        self.m, self.v = np.zeros(shape, np.float32), np.zeros(shape, np.float32)

    def update(self, grad: np.ndarray) -> np.ndarray:
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * grad
        self.v = self.beta2 * self.v + (1 - self.beta2) * grad * grad
        m_hat = self.m / (1 - self.beta1**self.t)
        v_hat = self.v / (1 - self.beta2**self.t)
        return (self.rate * m_hat / (np.sqrt(v_hat) + np.float32(1e-8))).astype(np.float32)


def _logits(coefficients: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The unshifted pictures' logits from the coefficients, in numpy (the objective's own transform)."""
    height, width = shape[0], shape[1]
    spectrum = coefficients * _spectrum_scale(height, width)[None, :, :, None]
    logits = np.einsum("hi,khwc,wj->kijc", _inverse_dct(height), spectrum, _inverse_dct(width))
    return logits.reshape((len(coefficients), *shape))


def _pixels(logits: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    low, high = value_range
    return (low + (high - low) / (1.0 + np.exp(-logits.astype(np.float64)))).astype(np.float32)


# ---------------------------------------------------------------------------- the backend's autodiff


def _gradient_function(objective: Callable, compiled: bool = True) -> Callable[..., np.ndarray]:
    """The gradient of `objective` with respect to its first argument, as a numpy function: the one place
    that knows the backend (`keras.ops` has no gradient). Compiled (jax.jit, tf.function) for the ascent's
    many steps; eager for a gradient taken once. No gradient (an op without one) comes back as zeros; an op
    that raises on differentiation raises _NoGradient."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        step = jax.jit(jax.grad(objective)) if compiled else jax.grad(objective)
        return lambda *args: _as_numpy(lambda: step(*args))
    if backend == "tensorflow":
        import tensorflow as tf

        def step(variable, *rest):
            with tf.GradientTape() as tape:
                tape.watch(variable)
                value = objective(variable, *rest)
            grad = tape.gradient(value, variable)
            return tf.zeros_like(variable) if grad is None else grad

        step = tf.function(step, reduce_retracing=True) if compiled else step
        return lambda *args: _as_numpy(lambda: step(*(tf.constant(a) for a in args)))
    raise NuKerasError(f"feature visualisation runs on the tensorflow and jax backends, not {backend}")


def _as_numpy(compute: Callable) -> np.ndarray:
    try:
        return np.asarray(compute(), dtype=np.float32)
    except NuKerasError:
        raise
    except Exception as exc:  # an op that refuses differentiation raises its own type on each backend
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
        raise _NoGradient(lines[-1][:160]) from exc  # the last line: TensorFlow puts its traceback first


# ---------------------------------------------------------------------------- a layer without gradient


def _not_differentiable(model: keras.Model, target: keras.layers.Layer, reason: str) -> str:
    """One line naming the first layer on the way to `target` through which no gradient reaches the input,
    or saying that the units themselves have none there (dead at the start, or zero weights)."""
    blocking = _blocking_layer(model, target)
    why = f" ({reason})" if reason else " (its gradient with respect to the input is zero or missing)"
    if blocking is None:
        return (
            f"the requested units of layer '{shown(target.name)}' have no gradient with respect to the input "
            f"at the start{why.replace(' (its', ' (their')}; they may be dead or have zero weights"
        )
    return (
        f"layer '{shown(blocking.name)}' is not differentiable{why}, so layer '{shown(target.name)}' has "
        "no feature visualisation"
    )


def _blocking_layer(model: keras.Model, target: keras.layers.Layer) -> keras.layers.Layer | None:
    """The first layer, in the model's order before `target`, whose value before its activation has no
    gradient with respect to the input at a mid-range input (None when each has one)."""
    shape = tuple(model.inputs[0].shape[1:])
    x = (0.5 + 0.1 * np.random.default_rng(0).standard_normal((1, *shape))).astype(np.float32)
    for layer in model.layers:
        if layer is target:
            return None
        if not isinstance(layer, keras.layers.InputLayer) and not _has_gradient(model, layer, x):
            return layer
    return None


def _has_gradient(model: keras.Model, layer: keras.layers.Layer, x: np.ndarray) -> bool:
    try:
        read = _layer_function(model, layer)
    except Exception:  # a layer not on the input's path (a shared or constant branch): nothing to test
        return True
    weights = np.random.default_rng(1).standard_normal((1, *layer.output.shape[1:])).astype(np.float32)

    def value(inputs):
        return keras.ops.sum(keras.ops.cast(read(inputs)[0], "float32") * weights)

    try:
        return bool(np.any(_gradient_function(value, compiled=False)(x)))
    except _NoGradient:
        return False

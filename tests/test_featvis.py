"""Feature visualisation: pictures of units whose preferred input is known (a template set into a Dense
kernel, an oriented edge filter, the paper's exact maximiser), reproducibility, the JAX backend, and
one-line errors for a layer without gradient and for bad arguments."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import layers

from nu_keras import featvis
from nu_keras.analysis import exact_maximizer
from nu_keras.config import PROJECT_ROOT
from nu_keras.errors import NuKerasError
from nu_keras.model import network


def ring(side: int = 28, radius: float = 8.0, width: float = 2.5) -> np.ndarray:
    """(side, side) a ring stroke in [0, 1], like a drawn zero: 1 on the circle, fading over `width` pixels."""
    y, x = np.mgrid[:side, :side] - (side - 1) / 2
    return np.clip(1.0 - np.abs(np.hypot(y, x) - radius) / width, 0.0, 1.0)


def template_model(template: np.ndarray) -> keras.Model:
    """784 -> Dense(1, relu) whose kernel is the template, centred (so the unit wants the stroke and dark
    elsewhere): its preferred input in [0, 1] is the stroke itself."""
    image = keras.Input((template.size,), name="image")
    unit = layers.Dense(1, activation="relu", name="unit")
    model = keras.Model(image, unit(image))
    kernel = (template - template.mean()).reshape(-1, 1).astype(np.float32)
    unit.set_weights([kernel, np.zeros(1, np.float32)])
    return model


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def edge_model(bias: float = 0.0) -> keras.Model:
    """A conv layer of two ReLU channels: a Sobel filter for vertical edges (0) and its transpose (1)."""
    image = keras.Input((28, 28, 1), name="image")
    conv = layers.Conv2D(2, 3, activation="relu", name="edges")
    model = keras.Model(image, conv(image))
    sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32)
    conv.set_weights([np.stack([sobel, sobel.T], -1)[:, :, None, :], np.full(2, bias, np.float32)])
    return model


class Round(layers.Layer):
    """Rounds its input: the gradient is zero (JAX) or missing (TensorFlow) everywhere."""

    def call(self, x):
        return keras.ops.round(x)


class ArgmaxOneHot(layers.Layer):
    """The one-hot of the largest input: integer in the middle, no gradient."""

    def call(self, x):
        return keras.ops.one_hot(keras.ops.argmax(x, axis=-1), x.shape[-1])


def blocked_model(blocker: layers.Layer) -> keras.Model:
    keras.utils.set_random_seed(0)
    image = keras.Input((784,), name="image")
    dense = layers.Dense(5, activation="relu", name="dense")(blocker(image))
    return keras.Model(image, layers.Dense(3, name="out")(dense))


def test_a_dense_unit_whose_kernel_is_a_ring_draws_that_ring_in_the_pixel_range():
    template = ring()
    pictures = featvis.visualise(template_model(template), "unit")
    assert pictures.shape == (1, 28, 28) and pictures.dtype == np.float32  # a flat 784 input shown as 28 x 28
    assert pictures.min() >= 0.0 and pictures.max() <= 1.0
    assert pearson(pictures[0], template) > 0.8


def test_a_dense_unit_below_zero_on_every_image_still_draws_its_template():
    """The objective is the value before the ReLU: the same maximiser, and a gradient where the ReLU is 0."""
    model = template_model(ring())
    kernel, _ = model.get_layer("unit").get_weights()
    model.get_layer("unit").set_weights([kernel, np.full(1, -1000.0, np.float32)])
    assert pearson(featvis.visualise(model, "unit")[0], ring()) > 0.8


def test_a_softmax_layer_draws_each_class_its_own_logit_template():
    """Class k's logit is w_k . x: its picture is template k, not the other class's."""
    templates = [ring(radius=5.0), ring(radius=10.0)]
    image = keras.Input((784,), name="image")
    out = layers.Dense(2, activation="softmax", name="out")
    model = keras.Model(image, out(image))
    out.set_weights([np.stack([(t - t.mean()).ravel() for t in templates], 1), np.zeros(2)])
    pictures = featvis.visualise(model, "out")
    assert pearson(pictures[0], templates[0]) > 0.8 and pearson(pictures[1], templates[1]) > 0.8
    assert pearson(pictures[0], templates[1]) < 0.5


def test_the_picture_stays_in_a_raw_pixel_range_and_keeps_the_template():
    pictures = featvis.visualise(template_model(ring()), "unit", value_range=(0.0, 255.0), steps=128)
    assert pictures.min() >= 0.0 and pictures.max() <= 255.0 and pictures.max() > 200.0
    assert pearson(pictures[0], ring()) > 0.8


@pytest.mark.parametrize("bias", [0.0, -3.0])  # -3: zero everywhere on the starting image (no ReLU gradient)
def test_a_vertical_edge_channel_draws_vertical_stripes_and_a_horizontal_one_horizontal_stripes(bias):
    pictures = featvis.visualise(edge_model(bias), "edges", steps=128)[..., 0]  # (2, 28, 28)
    across = np.abs(np.diff(pictures, axis=2)).mean(axis=(1, 2))  # change along x: vertical stripes
    down = np.abs(np.diff(pictures, axis=1)).mean(axis=(1, 2))
    assert across[0] > 1.3 * down[0]
    assert down[1] > 1.3 * across[1]


def test_the_same_run_twice_gives_bit_identical_pictures_and_another_seed_others():
    model = edge_model()
    first = featvis.visualise(model, "edges", steps=32, seed=4)
    np.testing.assert_array_equal(first, featvis.visualise(model, "edges", steps=32, seed=4))
    assert not np.array_equal(first, featvis.visualise(model, "edges", steps=32, seed=5))


def test_all_units_are_drawn_in_one_batch_each_as_it_is_drawn_alone():
    model = edge_model()
    both = featvis.visualise(model, "edges", steps=16)
    assert both.shape == (2, 28, 28, 1)
    np.testing.assert_allclose(featvis.visualise(model, "edges", [0], steps=16)[0], both[0], atol=1e-5)


def test_jitter_rolls_the_picture_through_its_bases():
    coefficients = np.random.default_rng(0).standard_normal((1, 6, 5, 1)).astype(np.float32)
    rows, columns = featvis._shifted_bases((6, 5), np.array([2, -1]))
    shifted = np.einsum("hi,khwc,wj->kijc", rows, coefficients, columns)
    unshifted = np.einsum("hi,khwc,wj->kijc", featvis._inverse_dct(6), coefficients, featvis._inverse_dct(5))
    np.testing.assert_allclose(shifted, np.roll(unshifted, (2, -1), axis=(1, 2)), atol=1e-6)
    np.testing.assert_allclose(featvis._inverse_dct(6) @ featvis._inverse_dct(6).T, np.eye(6), atol=1e-6)


def test_a_paper_network_unit_draws_its_exact_maximiser():
    """The paper's hidden unit relu(w . x + b) is maximised over [0, 1]^784 by the mask w > 0; a unit with
    smooth, stroke-like weights (as a trained one has) is drawn as that mask."""
    net = network(seed=0, width=10)
    hidden = net.get_layer("hidden")
    kernel, bias = hidden.get_weights()
    smooth = ring(radius=6.0, width=3.0) - 0.3 + 0.05 * np.random.default_rng(0).standard_normal((28, 28))
    kernel[:, 3] = smooth.ravel()
    hidden.set_weights([kernel, bias])
    pictures = featvis.visualise(net, "hidden", [3, 3])
    assert pictures.shape == (2, 28, 28)
    assert pearson(pictures[0], exact_maximizer(kernel[:, 3])) > 0.8
    np.testing.assert_array_equal(pictures[0], pictures[1])  # the same unit twice in a batch: the same start


def backend_figures() -> str:
    """What the JAX test checks, measured on this process's backend: the backend, the ring picture's
    correlation with the ring, whether a second run repeats it bit for bit, and the error for a Round layer."""
    model = template_model(ring())
    first, second = (featvis.visualise(model, "unit", steps=128) for _ in range(2))
    try:
        featvis.visualise(blocked_model(Round(name="blocker")), "dense", steps=4)
        refusal = "none"
    except NuKerasError as exc:
        refusal = str(exc)
    figures = [keras.backend.backend(), pearson(first[0], ring()), np.array_equal(first, second), refusal]
    return json.dumps(figures)


def test_the_ring_is_drawn_on_the_jax_backend_too_reproducibly_and_a_round_layer_refused():
    pytest.importorskip("jax")
    code = "import sys; sys.path.insert(0, 'tests'); from test_featvis import backend_figures; print(backend_figures())"
    path = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH")) if p)
    env = os.environ | {"KERAS_BACKEND": "jax", "PYTHONPATH": path}
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    backend, correlation, repeated, refusal = json.loads(done.stdout.strip().splitlines()[-1])
    assert backend == "jax" and correlation > 0.8 and repeated
    assert refusal.startswith("layer 'blocker' is not differentiable") and "\n" not in refusal


@pytest.mark.parametrize("blocker", [Round, ArgmaxOneHot])
def test_a_layer_without_gradient_before_the_unit_is_named_in_one_line(blocker):
    with pytest.raises(NuKerasError) as caught:
        featvis.visualise(blocked_model(blocker(name="blocker")), "dense", steps=4)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("layer 'blocker' is not differentiable") and "layer 'dense'" in message


def test_a_layer_whose_gradient_raises_is_named_in_one_line():
    @keras.ops.custom_gradient
    def refuse(x):
        def grad(*args, upstream=None):
            raise ValueError("this operation has no derivative")

        return x, grad

    class Refusing(layers.Layer):
        def call(self, x):
            return refuse(x)

    with pytest.raises(NuKerasError, match=r"^layer 'refusing' is not differentiable \(.*no derivative\)") as caught:
        featvis.visualise(blocked_model(Refusing(name="refusing")), "dense", steps=4)
    assert "\n" not in str(caught.value)


def test_units_with_zero_weights_are_said_to_have_no_gradient():
    model = template_model(np.zeros((28, 28)))
    with pytest.raises(NuKerasError, match="units of layer 'unit' have no gradient .* zero weights$"):
        featvis.visualise(model, "unit", steps=4)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"layer": "nope"}, "the model has no layer 'nope'"),
        ({"layer": "unit", "units": [1]}, "unit 1 is not a unit of layer 'unit', which has units 0 to 0"),
        ({"layer": "unit", "image_shape": (27, 29)}, r"image_shape \(27, 29\) does not fit the model's input"),
        ({"layer": "unit", "steps": 0}, "steps must be at least 1"),
        ({"layer": "unit", "steps": 2.5}, "steps and jitter must be whole numbers"),
        ({"layer": "unit", "jitter": -1}, "jitter at least 0"),
        ({"layer": "unit", "value_range": (1.0, 0.0)}, "value_range must be"),
    ],
)
def test_bad_arguments_are_refused_in_one_line(arguments, message):
    with pytest.raises(NuKerasError, match=message) as caught:
        featvis.visualise(template_model(ring()), **arguments)
    assert "\n" not in str(caught.value)


def test_the_method_text_states_the_steps_learning_rate_and_jitter_used():
    text = featvis.method_text()
    assert f"for {featvis.STEPS} steps of Adam" in text and f"learning rate {featvis.LEARNING_RATE}" in text
    assert "by up to 1/28 of its shorter side" in " ".join(text.split()) and "Limits" in text

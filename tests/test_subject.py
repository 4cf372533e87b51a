"""A user's Keras 3 classifier: the layers that can be read out, a unit read as a Dense output or a channel's
spatial mean, and ablation of one unit at that layer -- each checked against an independent computation."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

from nu_keras import ablation, activations, subject
from nu_keras.errors import NuKerasError


@pytest.fixture(scope="module")
def conv_model():
    """A small functional model with a convolutional and a dense layer (random weights suffice here)."""
    keras.utils.set_random_seed(0)
    image = keras.Input((12, 12, 1), name="image")
    conv = layers.Conv2D(4, 3, activation="relu", name="conv")(image)
    flat = layers.Flatten(name="flatten")(layers.MaxPooling2D(name="pool")(conv))
    dense = layers.Dense(6, activation="relu", name="dense")(flat)
    return keras.Model(image, layers.Dense(3, activation="softmax", name="out")(dense))


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).random((50, 12, 12, 1)).astype(np.float32)


def test_the_readable_layers_are_listed_with_their_units(conv_model):
    found = [(r.name, r.kind, r.units) for r in subject.readable_layers(conv_model)]
    assert found == [
        ("conv", "conv", 4),
        ("pool", "conv", 4),
        ("flatten", "dense", 100),
        ("dense", "dense", 6),
        ("out", "dense", 3),  # the output layer: its probabilities are units too
    ]
    with pytest.raises(NuKerasError, match=r"--layer is required; offered: conv \(4 conv units\)"):
        subject.find_layer(conv_model, None)
    with pytest.raises(NuKerasError, match="'nope' is not a layer that can be read out"):
        subject.find_layer(conv_model, "nope")


def test_head_then_tail_is_the_model(conv_model, images):
    head, tail = subject.split(conv_model, "dense")
    np.testing.assert_allclose(
        tail.predict(head.predict(images, verbose=0), verbose=0), conv_model.predict(images, verbose=0), atol=1e-6
    )


def test_a_channel_is_read_as_its_spatial_mean_and_max(conv_model, images):
    head, _ = subject.split(conv_model, "conv")
    read = activations.read_units(head, images, batch=7)  # batches of 7: the reduction must not depend on them
    kernel, bias = conv_model.get_layer("conv").get_weights()
    patches = np.lib.stride_tricks.sliding_window_view(images[..., 0], (3, 3), axis=(1, 2))  # (N, 10, 10, 3, 3)
    maps = np.maximum(np.einsum("nhwij,ijc->nhwc", patches, kernel[:, :, 0, :]) + bias, 0)  # numpy conv + relu
    np.testing.assert_allclose(read["units"], maps.mean(axis=(1, 2)), atol=1e-5)
    np.testing.assert_allclose(read["spatial_max"], maps.max(axis=(1, 2)), atol=1e-5)
    np.testing.assert_allclose(read["mean_output"], maps.mean(axis=0), atol=1e-5)


@pytest.mark.parametrize("kind", ["zero", "mean"])
def test_ablating_a_dense_unit_equals_numpy_with_the_unit_replaced(conv_model, images, kind):
    head, tail = subject.split(conv_model, "dense")
    hidden = head.predict(images, verbose=0).astype(np.float64)
    mean = activations.read_units(head, images, batch=16)["mean_output"]
    fill = np.zeros_like(mean) if kind == "zero" else mean
    w, b = conv_model.get_layer("out").get_weights()
    masked = activations.masked_tail(conv_model, "dense", tail)
    table = ablation.tail_ablation_table(activations.head_outputs(head, images, 16), masked, {kind: fill})[kind]
    for unit in range(6):
        changed = hidden.copy()
        changed[:, unit] = 0.0 if kind == "zero" else hidden[:, unit].mean()
        np.testing.assert_array_equal(table[unit], (changed @ w + b).argmax(axis=1))


def test_a_model_that_does_not_fit_the_data_is_one_line(conv_model):
    with pytest.raises(
        NuKerasError, match=r"takes inputs of shape \(12, 12, 1\), but the data's images are \(28, 28\)"
    ):
        subject.check_classifier(conv_model, (28, 28), 3)
    with pytest.raises(NuKerasError, match="expected a 10-way classifier"):
        subject.check_classifier(conv_model, (12, 12, 1), 10)
    subject.check_classifier(conv_model, (12, 12, 1), 3)


def test_a_model_with_a_lambda_layer_is_refused_and_never_runs(tmp_path):
    marker = str(tmp_path / "ran")
    model = keras.Sequential(
        [keras.Input((4,)), layers.Lambda(lambda x: x + float(open(marker, "w").close() or 0)), layers.Dense(2)]
    )
    model.save(tmp_path / "lambda.keras")
    (tmp_path / "ran").unlink()  # it ran once, when the model was built here
    with pytest.raises(NuKerasError, match="was refused or is not a Keras 3 model"):
        subject.load_user_model(tmp_path / "lambda.keras")
    assert not (tmp_path / "ran").exists()


def test_a_sequential_model_splits_like_a_functional_one(images):
    model = keras.Sequential([keras.Input((12, 12, 1)), layers.Flatten(), layers.Dense(5, activation="relu", name="h")])
    model.add(layers.Dense(3, activation="softmax", name="o"))
    head, tail = subject.split(model, "h")
    np.testing.assert_allclose(
        tail.predict(head.predict(images, verbose=0), verbose=0), model.predict(images, verbose=0), atol=1e-6
    )

"""Ablation inside the tail's compiled graph (`activations.masked_tail`) against the same ablation done in
numpy: the ablated copies made with np.repeat and run through the tail one chunk at a time (the previous
implementation), and, for a Dense tail, a matrix product. Also run on JAX (tests/test_backends.py)."""

import keras
import numpy as np
import pytest
from keras import layers

from nu_keras import ablation, activations, subject


@pytest.fixture(scope="module")
def convnet():
    """Keras's "Simple MNIST convnet" in small: conv -> pool -> conv -> pool -> flatten -> dropout -> dense."""
    keras.utils.set_random_seed(1)
    return keras.Sequential(
        [
            keras.Input((14, 14, 1)),
            layers.Conv2D(4, 3, activation="relu", name="conv"),
            layers.MaxPooling2D(2, name="pool"),
            layers.Conv2D(6, 3, activation="relu", name="conv_1"),
            layers.MaxPooling2D(2, name="pool_1"),
            layers.Flatten(name="flatten"),
            layers.Dropout(0.5, name="dropout"),
            layers.Dense(10, activation="softmax", name="out"),
        ]
    )


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(2).random((37, 14, 14, 1)).astype(np.float32)


def repeated_copies_table(head, tail, images: np.ndarray, fill: np.ndarray, batch: int) -> np.ndarray:
    """(U, N) predictions the way collect made them before: np.repeat copies, one tail call per unit."""
    columns = []
    for out in activations.head_outputs(head, images, batch):
        changed = np.repeat(out[None], out.shape[-1], axis=0)
        for unit in range(out.shape[-1]):
            changed[unit, ..., unit] = fill[..., unit]
        flat = changed.reshape(-1, *out.shape[1:])
        columns.append(np.asarray(tail.predict_on_batch(flat)).argmax(axis=-1).reshape(out.shape[-1], len(out)))
    return np.concatenate(columns, axis=1)


@pytest.mark.parametrize("layer", ["conv", "conv_1", "flatten"])
def test_masked_tail_predictions_equal_numpy_copies_through_the_tail(convnet, images, layer, monkeypatch):
    monkeypatch.setattr(ablation, "ABLATION_VALUES", 2000)  # several chunks per batch, the last one padded
    head, tail = subject.split(convnet, layer)
    mean = activations.read_units(head, images, batch=16)["mean_output"]
    fills = {"zero": np.zeros_like(mean), "mean": mean}
    masked = activations.masked_tail(convnet, layer, tail)
    table = ablation.tail_ablation_table(activations.head_outputs(head, images, 16), masked, fills)
    for kind, fill in fills.items():
        assert table[kind].shape == (head.outputs[0].shape[-1], len(images))
        np.testing.assert_array_equal(table[kind], repeated_copies_table(head, tail, images, fill, 16), err_msg=kind)


def test_a_dense_tail_equals_the_matrix_product_with_the_unit_replaced(convnet, images):
    head, tail = subject.split(convnet, "flatten")
    hidden = np.concatenate(list(activations.head_outputs(head, images, 16))).astype(np.float64)
    w, b = convnet.get_layer("out").get_weights()
    fill = hidden.mean(axis=0)
    table = ablation.tail_ablation_table(
        activations.head_outputs(head, images, 16), activations.masked_tail(convnet, "flatten", tail), {"mean": fill}
    )["mean"]
    expected = ablation.dense_ablation_table(hidden, w, b)["mean"]
    assert (table == expected).mean() > 0.99  # float32 in Keras, float64 here: a near tie may flip


def test_only_layers_that_keep_channels_apart_are_moved_before_the_copies(convnet):
    names = lambda layer: [item.name for item in activations.channelwise_prefix(convnet, layer)]  # noqa: E731
    assert names("conv") == ["pool"]  # the next conv mixes channels
    assert names("conv_1") == ["pool_1"]  # Flatten lays channels out by position: the copies are made there
    assert names("out") == []
    softmax = keras.Sequential([keras.Input((3, 4)), layers.Dense(4, name="d"), layers.Activation("softmax")])
    relu = keras.Sequential([keras.Input((3, 4)), layers.Dense(4, name="d"), layers.Activation("relu", name="r")])
    assert activations.channelwise_prefix(softmax, "d") == []
    assert [item.name for item in activations.channelwise_prefix(relu, "d")] == ["r"]
    inputs = keras.Input((4,))
    dense = layers.Dense(4, name="d")(inputs)
    chain = keras.Model(inputs, layers.Dense(2)(layers.ReLU(name="r")(dense)))
    skip = keras.Model(inputs, layers.Add()([layers.ReLU(name="r")(dense), dense]))  # the ReLU is not all that reads d
    assert [item.name for item in activations.channelwise_prefix(chain, "d")] == ["r"]
    assert activations.channelwise_prefix(skip, "d") == []


def test_unit_masks_are_one_hot_rows_in_chunks_with_the_last_padded():
    chunks = ablation.unit_masks(5, 2)
    assert [used for _, used in chunks] == [2, 2, 1]
    np.testing.assert_array_equal(np.concatenate([mask for mask, _ in chunks]), np.eye(6, 5, dtype=bool))
    ((whole, used),) = ablation.unit_masks(3, 10)
    assert used == 3 and whole.shape == (3, 3)


@pytest.mark.parametrize("kind", ["zero", "mean"])
def test_channels_flattened_into_the_output_layer_are_ablated_through_its_weights(convnet, images, kind):
    head, tail = subject.split(convnet, "conv_1")
    mean = activations.read_units(head, images, batch=16)["mean_output"]
    fill = np.zeros_like(mean) if kind == "zero" else mean
    table = activations.tail_ablation(convnet, "conv_1", tail, activations.head_outputs(head, images, 16), {kind: fill})
    # float64 logits against Keras's float32: equal but for a tie within float32 rounding (none here)
    np.testing.assert_array_equal(table[kind], repeated_copies_table(head, tail, images, fill, 16))


def test_the_output_layer_is_used_directly_only_after_channelwise_layers_and_a_flatten(convnet):
    prefix, output = activations.flat_dense_output(convnet, "conv_1")
    assert [item.name for item in prefix] == ["pool_1"] and output.name == "out"
    assert activations.flat_dense_output(convnet, "conv") is None  # a convolution lies between
    relu_out = keras.Sequential(
        [keras.Input((4, 4, 2)), layers.Conv2D(2, 1, name="c"), layers.Flatten(), layers.Dense(3, activation="relu")]
    )
    assert activations.flat_dense_output(relu_out, "c") is None  # the prediction is not the argmax of the logits
    direct = keras.Sequential(
        [keras.Input((4, 4, 2)), layers.Conv2D(2, 1, name="c"), layers.Flatten(), layers.Dense(3)]
    )
    assert activations.flat_dense_output(direct, "c")[0] == []


def test_a_conv_layer_flattened_straight_into_the_output_layer_is_ablated_through_its_weights():
    keras.utils.set_random_seed(4)
    model = keras.Sequential(
        [keras.Input((6, 6, 1)), layers.Conv2D(3, 3, name="c"), layers.Flatten(), layers.Dense(4, activation="softmax")]
    )
    x = np.random.default_rng(5).random((29, 6, 6, 1)).astype(np.float32)
    head, tail = subject.split(model, "c")
    mean = activations.read_units(head, x, batch=8)["mean_output"]
    table = activations.tail_ablation(model, "c", tail, activations.head_outputs(head, x, 8), {"mean": mean})
    np.testing.assert_array_equal(table["mean"], repeated_copies_table(head, tail, x, mean, 8))

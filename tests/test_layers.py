"""Which layers --layer offers, and why: on the Keras "Simple MNIST convnet" (untrained; the list depends on the
architecture only), the output layer is offered, Dropout is shown once as the Flatten it equals, the Flatten
of 1,600 units is read only by name, and every refusal is one line listing what is offered."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from helpers import assert_one_line_error, cli, simple_mnist_convnet
from keras import layers

from nu_keras import api, subject
from nu_keras.config import RunConfig
from nu_keras.errors import NuKerasError

OFFERED = ["conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1", "dense"]


@pytest.fixture(scope="module")
def convnet():
    keras.utils.set_random_seed(0)
    return simple_mnist_convnet()  # as keras-io builds it: 32 and 64 channels


@pytest.fixture(scope="module")
def files(tmp_path_factory, convnet):
    """convnet.keras and a tiny data file: 60 training and 40 test images of noise, every class present."""
    root = tmp_path_factory.mktemp("layers")
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (60, 28, 28), dtype=np.uint8),
        "y_train": np.arange(60, dtype=np.int64) % 10,
        "x_test": rng.integers(0, 256, (40, 28, 28), dtype=np.uint8),
        "y_test": np.arange(40, dtype=np.int64) % 10,
    }
    np.savez(root / "tiny.npz", **arrays)
    convnet.save(root / "convnet.keras")
    return root


def test_the_convnet_offers_its_conv_pool_and_output_layers(convnet):
    found = subject.survey(convnet)
    assert [r.name for r in found.offered] == OFFERED
    assert [(r.kind, r.units) for r in found.offered] == [
        ("conv", 32),
        ("conv", 32),
        ("conv", 64),
        ("conv", 64),
        ("dense", 10),
    ]
    assert [r.name for r in found.offered if r.output] == ["dense"]
    assert [(r.name, r.units, r.large) for r in found.readable if r.large] == [("flatten", 1600, True)]
    assert [(f.name, f.into, f.why) for f in found.folded] == [("dropout", "flatten", "dropout = flatten at inference")]
    listing = found.listing()
    assert "dense (10 dense units, the output)" in listing
    assert (
        "only by name (more than 512 units): flatten (1,600 dense units, the max_pooling2d_1 maps laid flat)" in listing
    )
    assert listing.endswith("shown once: dropout = flatten at inference")


def test_all_is_the_offered_layers_and_a_large_one_is_read_by_name(convnet):
    assert [r.name for r in subject.find_layers(convnet, ("all",))] == OFFERED
    assert subject.find_layer(convnet, "flatten").units == 1600
    assert [r.name for r in subject.find_layers(convnet, ("conv2d_1", "flatten"))] == ["conv2d_1", "flatten"]


def test_the_output_layer_splits_into_the_model_and_an_identity_tail(convnet):
    images = np.random.default_rng(1).random((5, 28, 28, 1)).astype(np.float32)
    head, tail = subject.split(convnet, "dense")
    np.testing.assert_allclose(tail.predict_on_batch(head.predict_on_batch(images)), convnet.predict_on_batch(images))
    np.testing.assert_array_equal(api.read_layer(convnet, "dense", images), convnet.predict_on_batch(images))


def test_a_linear_layer_is_read_after_the_activation_layer_that_follows_it():
    image = keras.Input((8, 8, 1))
    conv = layers.Conv2D(4, 3, name="conv")(image)
    relu = layers.ReLU(name="relu")(conv)
    logits = layers.Dense(3, name="logits")(layers.Flatten(name="flat")(relu))
    model = keras.Model(image, layers.Activation("softmax", name="probabilities")(logits))
    found = subject.survey(model)
    assert [(r.name, r.note) for r in found.offered] == [
        ("relu", "conv after relu"),
        ("probabilities", "logits after softmax"),
    ]
    # the maps laid flat are the relu layer's values, one unit per position: read only by name
    assert [(r.name, r.note, r.flat_maps) for r in found.readable if r not in found.offered] == [
        ("flat", "the relu maps laid flat", True)
    ]
    assert "only by name (the values of the maps they lay flat, one unit per position): flat (144" in found.listing()
    assert [(f.name, f.into) for f in found.folded] == [("conv", "relu"), ("logits", "probabilities")]
    with pytest.raises(
        NuKerasError, match="^--layer 'conv': conv is read after its activation, as relu; use --layer relu$"
    ):
        subject.find_layer(model, "conv")


@pytest.mark.parametrize(
    "text, names",
    [(None, ()), ("dense", ("dense",)), ("conv2d, dense", ("conv2d", "dense")), ("all", ("all",))],
)
def test_layer_names_are_parsed_into_a_tuple(text, names):
    assert RunConfig(model="m.keras", layer=text).layers == names


@pytest.mark.parametrize(
    "text, message",
    [
        ("conv2d,,dense", "has an empty name"),
        ("dense,dense", "names a layer twice"),
        ("all,dense", "all means every offered layer; give it alone"),
    ],
)
def test_a_malformed_layer_list_is_one_line(text, message):
    with pytest.raises(NuKerasError, match=message):
        RunConfig(model="m.keras", layer=text)


@pytest.mark.e2e
def test_the_output_layer_is_reported_end_to_end(files, convnet):
    flags = ["--model", str(files / "convnet.keras"), "--layer", "dense", "--data", str(files / "tiny.npz")]
    folders = ["--out", str(files / "out"), "--pages-dir", str(files / "pages"), "--site-dir", str(files / "site")]
    for stage in ("train", "collect", "analyze", "render"):
        code, _, err = cli([stage, *flags, *folders])
        assert code == 0, err
    metrics = json.loads((files / "out" / "metrics.json").read_text())
    assert metrics["provenance"]["subject"]["layer"] == "dense" and len(metrics["units"]) == 10
    assert sorted(p.name for p in (files / "pages" / "units").glob("unit-*.md")) == [f"unit-{k}.md" for k in range(10)]
    # known answer: silencing output unit k (zero) changes the predicted class exactly where the model said k
    data = np.load(files / "tiny.npz")
    probabilities = convnet.predict(data["x_test"][..., None] / 255.0, verbose=0)
    intact = per_class_accuracy(probabilities.argmax(axis=1), data["y_test"])
    np.testing.assert_allclose(metrics["per_class"]["accuracy"], intact, atol=1e-12)
    for k in range(10):
        silenced = probabilities.copy()
        silenced[:, k] = 0.0
        zeroed = per_class_accuracy(silenced.argmax(axis=1), data["y_test"])
        np.testing.assert_allclose(metrics["ablation"]["zero"]["drop"][k], intact - zeroed, atol=1e-12)


def per_class_accuracy(predicted: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(10,) the share of each class's images predicted as that class."""
    return np.array([np.mean(predicted[labels == c] == c) for c in range(10)])


@pytest.mark.parametrize(
    "layer, fragments",
    [
        (
            "nope",
            [
                "--layer 'nope' is not a layer that can be read out (the model has no layer of that name)",
                "offered: conv2d (32 conv units), max_pooling2d",
                "dense (10 dense units, the output)",
            ],
        ),
        ("dropout", ["--layer 'dropout': dropout = flatten at inference; use --layer flatten"]),
        ("conv2d,nope", ["--layer 'nope' is not a layer that can be read out"]),
    ],
)
def test_a_wrong_or_several_layers_are_one_line_before_any_folder(files, tmp_path, layer, fragments):
    argv = ["train", "--model", str(files / "convnet.keras"), "--layer", layer, "--data", str(files / "tiny.npz")]
    assert_one_line_error(cli([*argv, "--out", str(tmp_path / "out")]), *fragments)
    assert not (tmp_path / "out").exists()


def test_a_model_with_no_readable_layer_is_one_line(tmp_path):
    model = keras.Sequential([keras.Input((28, 28)), layers.Reshape((14, 56), name="reshape")], name="odd")
    with pytest.raises(NuKerasError, match=r"^model 'odd' has no layer that can be read out \(reshape: its output"):
        subject.find_layer(model, "reshape")
    with pytest.raises(NuKerasError, match="has no layer that can be read out"):
        subject.find_layers(model, ("all",))


def test_all_of_one_offered_layer_names_it_and_a_list_reaching_a_later_stage_is_refused():
    model = keras.Sequential(
        [keras.Input((28, 28)), layers.Flatten(name="flatten"), layers.Dense(10, activation="softmax", name="out")]
    )
    found = subject.survey(model)
    assert [r.listed() for r in found.readable] == [
        "flatten (784 dense units, the input's pixels laid flat)",
        "out (10 dense units, the output)",
    ]
    with pytest.raises(NuKerasError, match="^--layer all is one layer here: give --layer out "):
        subject.requested_layer(model, "all")
    with pytest.raises(NuKerasError, match="^--layer 'flatten,out': this reads one layer "):
        subject.find_layer(model, "flatten,out")  # one layer's reader (the API's) given a list
    assert subject.requested_layer(model, "flatten").units == 784


def test_a_layer_whose_name_holds_a_comma_is_read_by_that_name():
    model = keras.Sequential([keras.Input((6,)), layers.Dense(3, activation="softmax", name="out,put")])
    assert subject.requested_layer(model, "out,put").name == "out,put"
    assert subject.find_layer(model, "out,put").output

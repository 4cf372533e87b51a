"""Models users bring that are valid Keras but unusual: NaN weights, a convolutional layer flattened into a
Dense layer, output layers or reshapes the Explore page cannot run, Dense layers without a bias. Each is
either analysed correctly (checked against Keras) or refused in one line before anything is published, and
Explore is offered only where its forward pass is the model's own.

The models are built here with random weights (nothing to learn: the numbers are checked against Keras,
not against a trained model's accuracy) on a small data file of 8x8 grey images of 4 classes.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from helpers import assert_one_line_error, cli
from keras import layers

from nu_keras import activations, explore, model, stack, subject
from nu_keras.config import RunConfig
from nu_keras.errors import NuKerasError

SIDE, CLASSES = 8, 4


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    """small.npz: 200 training and 80 test images, 8x8 uint8, labels cycling through 4 classes."""
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (200, SIDE, SIDE), dtype=np.uint8),
        "y_train": (np.arange(200) % CLASSES).astype(np.uint8),
        "x_test": rng.integers(0, 256, (80, SIDE, SIDE), dtype=np.uint8),
        "y_test": (np.arange(80) % CLASSES).astype(np.uint8),
    }
    path = tmp_path_factory.mktemp("data") / "small.npz"
    np.savez(path, **arrays)
    return path, arrays


def dense_model(*hidden: layers.Layer, out: str = "softmax", use_bias: bool = True) -> keras.Model:
    """Input (8, 8) -> Flatten -> Dense "a" (16, relu) -> `hidden` layers -> Dense "out" (4, `out`)."""
    keras.utils.set_random_seed(1)
    image = keras.Input((SIDE, SIDE))
    x = layers.Dense(16, activation="relu", use_bias=use_bias, name="a")(layers.Flatten()(image))
    for layer in hidden:
        x = layer(x)
    return keras.Model(image, layers.Dense(CLASSES, activation=out, use_bias=use_bias, name="out")(x))


def conv_flatten_model() -> keras.Model:
    """Input (8, 8, 1) -> Conv2D "conv" (3 channels, 6x6) -> Flatten (108) -> Dense "out" (4, softmax)."""
    keras.utils.set_random_seed(2)
    image = keras.Input((SIDE, SIDE, 1))
    conv = layers.Conv2D(3, 3, activation="relu", name="conv")(image)
    return keras.Model(image, layers.Dense(CLASSES, activation="softmax", name="out")(layers.Flatten()(conv)))


def save(net: keras.Model, path) -> str:
    net.save(path)
    return str(path)


def run(stage: str, model_path, layer: str, data_path, root) -> tuple[int, str, str]:
    """`nu-keras STAGE --model ... --layer ... --data ...` with every output under `root`, in this process."""
    folders = ["--out", str(root / "out"), "--pages-dir", str(root / "pages"), "--site-dir", str(root / "site")]
    return cli([stage, "--model", str(model_path), "--layer", layer, "--data", str(data_path), *folders])


def run_all(stages: list[str], model_path, layer: str, data_path, root) -> None:
    for stage in stages:
        code, _, err = run(stage, model_path, layer, data_path, root)
        assert code == 0, err


def with_kernel_filled(net: keras.Model, layer: str, value: float = np.nan) -> keras.Model:
    kernel, *rest = net.get_layer(layer).get_weights()
    net.get_layer(layer).set_weights([np.full_like(kernel, value), *rest])
    return net


# ------------------------------------------------------------------------------------- non-finite values


def test_a_model_with_nan_weights_is_refused_at_train_in_one_line_and_nothing_is_written(data_file, tmp_path):
    path, _ = data_file
    broken = save(with_kernel_filled(dense_model(), "out"), tmp_path / "nan.keras")
    error = assert_one_line_error(run("train", broken, "a", path, tmp_path), "its class probabilities are not finite")
    assert "on 80 of 80 test images" in error
    assert not (tmp_path / "out" / "model.keras").exists() and not (tmp_path / "out" / "train.json").exists()


def test_a_model_whose_read_out_layer_gives_infinity_is_refused_at_train(data_file, tmp_path):
    path, _ = data_file
    broken = save(with_kernel_filled(dense_model(), "a", np.inf), tmp_path / "inf.keras")  # relu(inf) = inf
    assert_one_line_error(run("train", broken, "a", path, tmp_path), "its layer 'a' outputs are not finite")


def test_collect_refuses_a_model_file_whose_outputs_are_not_finite_and_writes_no_activations(data_file, tmp_path):
    path, _ = data_file
    run_all(["train"], save(dense_model(), tmp_path / "good.keras"), "a", path, tmp_path)
    with_kernel_filled(dense_model(), "out").save(tmp_path / "out" / "model.keras")  # replaced after train
    result = run("collect", tmp_path / "good.keras", "a", path, tmp_path)
    assert_one_line_error(result, "its class probabilities are not finite (NaN or infinity)")
    assert not (tmp_path / "out" / "activations.npz").exists()


def test_the_papers_network_that_diverges_in_training_is_one_line_naming_the_learning_rate():
    weights = {key: np.zeros((2, 2), np.float32) for key in model.BLOCK_ARRAYS}
    fitted = {"trained": [weights | {"output_bias": np.array([np.nan, 0.0])}], "history": {"loss": [2.3, np.nan]}}
    with pytest.raises(NuKerasError, match=r"training diverged: .* after epoch 2\); try a lower --learning-rate"):
        model.check_converged(fitted, RunConfig(epochs=2))
    fitted["trained"][0]["output_bias"] = np.zeros(2, np.float32)
    model.check_converged(fitted, RunConfig(epochs=2))  # finite weights pass


def test_training_the_papers_network_at_an_absurd_learning_rate_is_one_line_and_saves_no_model(fake_npz, tmp_path):
    folders = [
        "--out",
        str(tmp_path / "out"),
        "--pages-dir",
        str(tmp_path / "pg"),
        "--site-dir",
        str(tmp_path / "site"),
    ]
    argv = ["train", "--data", str(fake_npz), *folders, "--epochs", "1"]
    assert_one_line_error(
        cli([*argv, "--learning-rate", "1e30"]), "training diverged", "the loss was nan after epoch 1"
    )
    assert not (tmp_path / "out" / "model.keras").exists() and not (tmp_path / "out" / "train.json").exists()


# --------------------------------------------------------------------------- a conv layer, then Flatten


def test_ablating_a_channel_before_flatten_equals_keras_with_the_channel_silenced(data_file):
    _, arrays = data_file
    net = conv_flatten_model()
    images = arrays["x_test"][..., None]
    acts = activations.collect(net, "conv", images, arrays["y_test"], "unit")
    x = images / np.float32(255)
    maps = np.asarray(keras.Model(net.inputs, net.get_layer("conv").output).predict(x, verbose=0))  # (N, 6, 6, 3)
    kernel, bias = net.get_layer("conv").get_weights()
    for channel in range(3):
        # zero: the channel's kernel and bias zeroed, so relu gives 0 at every position; the whole model re-run
        k, b = kernel.copy(), bias.copy()
        k[..., channel], b[channel] = 0.0, 0.0
        net.get_layer("conv").set_weights([k, b])
        zeroed = net.predict(x, verbose=0).argmax(axis=1)
        net.get_layer("conv").set_weights([kernel, bias])
        np.testing.assert_array_equal(acts["ablated_zero"][channel], zeroed)
        # mean: the channel's map replaced by its mean map over the test images, Flatten and Dense applied
        changed = maps.copy()
        changed[..., channel] = maps[..., channel].mean(axis=0)
        meaned = np.asarray(net.get_layer("out")(net.layers[-2](changed))).argmax(axis=1)
        np.testing.assert_array_equal(acts["ablated_mean"][channel], meaned)
    assert subject.dense_tail(subject.split(net, "conv")[1]) is None  # no per-channel weight rows to show


def test_a_conv_flatten_dense_model_runs_through_analyze(data_file, tmp_path):
    path, arrays = data_file
    run_all(["train", "collect", "analyze"], save(conv_flatten_model(), tmp_path / "m.keras"), "conv", path, tmp_path)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    subject = metrics["provenance"]["subject"]
    assert subject["layer_kind"] == "conv" and not subject["tail_is_dense"] and metrics["layer"]["spatial_max"]
    assert len(metrics["ablation"]["zero"]["drop"]) == 3


# ------------------------------------------------------------------------------ what Explore can run


@pytest.mark.parametrize(
    "net, reason",
    [
        (lambda: dense_model(out="sigmoid"), "its output layer 'out' uses the sigmoid activation"),
        (
            lambda: dense_model(layers.Reshape((4, 4)), layers.Dense(4, activation="relu"), layers.Flatten()),
            "is a Reshape; the browser runs stacks of Dense layers only",
        ),
    ],
    ids=["sigmoid-output", "reshape-between-dense"],
)
def test_a_model_the_browser_cannot_run_gets_no_explore_page_and_home_says_why(data_file, tmp_path, net, reason):
    path, _ = data_file
    run_all(["train", "collect", "analyze", "render"], save(net(), tmp_path / "m.keras"), "a", path, tmp_path)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    subject = metrics["provenance"]["subject"]
    assert not subject["explorable"] and reason in subject["explore_reason"] and metrics["network"] is None
    assert not (tmp_path / "pages" / "explore.md").exists()
    assert "No Explore page: " in (tmp_path / "pages" / "index.md").read_text()


def test_explore_is_offered_only_when_its_forward_pass_matches_the_model_on_test_images(data_file):
    _, arrays = data_file
    net = dense_model(layers.Dense(8, activation="tanh", name="b"))
    sample = arrays["x_test"][:64] / np.float32(255)
    dense, readout = subject.dense_stack(net, "a")
    assert subject.explore_mismatch(net, dense, sample) is None and readout == 0
    np.testing.assert_allclose(stack.forward(dense, sample.reshape(64, -1)), net.predict(sample, verbose=0), atol=1e-5)
    shifted = [dict(layer) for layer in dense]
    shifted[1]["bias"] = shifted[1]["bias"] + 0.01  # a stack that is not quite the model
    assert "does not match the model on 64 test images" in subject.explore_mismatch(net, shifted, sample)
    described = subject.describe(net, "a", (SIDE, SIDE), False, None, sample)
    assert described["explorable"] and described["stack"][1] == {"name": "b", "activation": "tanh"}


# ------------------------------------------------------------------------------- Dense without a bias


def test_dense_densewithout_a_bias_are_analysed_with_a_zero_bias_and_explored(data_file, tmp_path):
    path, arrays = data_file
    net = dense_model(use_bias=False)
    stages = ["train", "collect", "analyze", "render"]
    run_all(stages, save(net, tmp_path / "m.keras"), "a", path, tmp_path)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["subject"]["explorable"] and metrics["subject"]["pixel_weights"]
    assert (tmp_path / "pages" / explore.SCRIPT_NAME).exists()
    weights = np.load(tmp_path / "out" / "weights.npz")
    assert not weights["hidden_bias"].any() and not weights["output_bias"].any()
    x = arrays["x_test"].reshape(80, -1) / np.float32(255)
    hidden = np.maximum(x @ net.get_layer("a").get_weights()[0], 0).astype(np.float64)
    w = net.get_layer("out").get_weights()[0]
    acts = np.load(tmp_path / "out" / "activations.npz")
    for unit in range(16):
        changed = hidden.copy()
        changed[:, unit] = 0.0
        np.testing.assert_array_equal(acts["ablated_zero"][unit], (changed @ w).argmax(axis=1))

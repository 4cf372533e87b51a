"""A user's own Keras 3 model and data, reported end to end for a convolutional and a Dense layer; every
number checked against an independent computation (a Keras submodel, numpy, or a model with the unit's
weights zeroed), and hostile models and files refused in one line.

The model is trained here, for a few seconds, on 3 000 real MNIST images given as a user's file with class
names of its own (some of them hostile to Markdown and HTML).
"""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import REPO
from helpers import assert_one_line_error, cli
from keras import layers

from nu_keras import analysis
from nu_keras.data import load_mnist

pytestmark = pytest.mark.e2e

CLASS_NAMES = ["zero", "one", "two <b>", "three", "[four](javascript:x)", "five", "six*", "seven", "eight|", "nine"]


@pytest.fixture(scope="module")
def user_files(tmp_path_factory):
    """my.npz (3 000 training and 1 000 test images of real MNIST, with class names) and my.keras: a
    functional model taking (28, 28, 1) images with a conv layer and a Dense layer, trained one epoch."""
    root = tmp_path_factory.mktemp("user")
    mnist = load_mnist(None, None)
    arrays = {
        "x_train": mnist.x_train[:3000],
        "y_train": mnist.y_train[:3000],
        "x_test": mnist.x_test[:1000],
        "y_test": mnist.y_test[:1000],
    }
    np.savez(root / "my.npz", **arrays, class_names=np.array(CLASS_NAMES))
    keras.utils.set_random_seed(0)
    image = keras.Input((28, 28, 1), name="image")
    conv = layers.Conv2D(6, 5, strides=2, activation="relu", name="conv")(image)
    flat = layers.Flatten(name="flatten")(layers.MaxPooling2D(name="pool")(conv))
    dense = layers.Dense(16, activation="relu", name="dense")(flat)
    model = keras.Model(image, layers.Dense(10, activation="softmax", name="out")(dense), name="my_net")
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(arrays["x_train"][..., None] / 255.0, arrays["y_train"], epochs=1, batch_size=64, verbose=0)
    model.save(root / "my.keras")
    return root, arrays


def user_cli(stage: str, model, layer: str | None, data, out, *extra: str) -> tuple[int, str, str]:
    """`nu-keras STAGE --model MODEL [--layer LAYER] --data DATA --out OUT ...` in this process."""
    layer_flag = ["--layer", layer] if layer is not None else []
    return cli([stage, "--model", str(model), *layer_flag, "--data", str(data), "--out", str(out), *extra])


def report(root, layer: str, *stages: str) -> dict:
    """Run the stages for one layer in this process; returns metrics.json."""
    flags = ["--model", str(root / "my.keras"), "--layer", layer, "--data", str(root / "my.npz")]
    folders = ["--out", str(root / layer / "artifacts"), "--pages-dir", str(root / layer / "pages")]
    folders += ["--site-dir", str(root / layer / "site")]
    for stage in stages:
        code, _, err = cli([stage, *flags, *folders])
        assert code == 0, err
    return json.loads((root / layer / "artifacts" / "metrics.json").read_text())


@pytest.fixture(scope="module")
def conv_metrics(user_files):
    return report(user_files[0], "conv", "train", "collect", "analyze")


@pytest.fixture(scope="module")
def dense_metrics(user_files):
    return report(user_files[0], "dense", "train", "collect", "analyze")


def reference(root, layer: str, images: np.ndarray) -> tuple[keras.Model, np.ndarray]:
    """The user's model, loaded independently, and the named layer's output on the test images."""
    model = keras.saving.load_model(root / "my.keras")
    readout = keras.Model(model.inputs, model.get_layer(layer).output)
    return model, readout.predict(images[..., None] / np.float32(255), verbose=0).astype(np.float64)


def per_class_accuracy(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.array([np.mean(predictions[labels == c] == c) for c in range(10)])


def test_the_report_describes_what_it_analysed(conv_metrics, dense_metrics, user_files):
    root, arrays = user_files
    for metrics, layer, kind, units in ((conv_metrics, "conv", "conv", 6), (dense_metrics, "dense", "dense", 16)):
        subject = metrics["provenance"]["subject"]
        assert (subject["kind"], subject["trained_here"], subject["layer"], subject["layer_kind"]) == (
            "user",
            False,
            layer,
            kind,
        )
        assert subject["units"] == units and len(metrics["per_unit"]["selectivity"]) == units
        assert (
            metrics["provenance"]["dataset"]["class_names"] == CLASS_NAMES
            and metrics["provenance"]["dataset"]["title"] == "my.npz"
        )
        assert (
            metrics["provenance"]["dataset"]["input_note"]
            == "images of shape (28, 28) were given to the model as (28, 28, 1)"
        )
        assert metrics["provenance"]["history"] is None and not subject["explorable"]
    assert (
        conv_metrics["provenance"]["subject"]["spatial"] == [12, 12]
        and not conv_metrics["provenance"]["subject"]["tail_is_dense"]
    )
    assert dense_metrics["provenance"]["subject"]["tail_is_dense"] and dense_metrics["layer"]["spatial_max"] is None


def test_dense_units_dominance_selectivity_and_ablation_equal_numpy(dense_metrics, user_files):
    root, arrays = user_files
    model, hidden = reference(root, "dense", arrays["x_test"])
    labels = arrays["y_test"].astype(int)
    mean = np.stack([hidden[labels == c].mean(axis=0) for c in range(10)])
    np.testing.assert_allclose(dense_metrics["class_unit"]["mean"], mean, rtol=1e-5, atol=1e-6)
    winners = hidden.argmax(axis=1)
    silent = hidden.max(axis=1) <= 0
    share = np.stack(
        [np.bincount(winners[(labels == c) & ~silent], minlength=16) / np.sum(labels == c) for c in range(10)]
    )
    np.testing.assert_allclose(dense_metrics["class_unit"]["dominance_share"], share)
    top, rest = mean.max(axis=0), (mean.sum(axis=0) - mean.max(axis=0)) / 9
    np.testing.assert_allclose(
        dense_metrics["per_unit"]["selectivity"], (top - rest) / np.where(top + rest > 0, top + rest, 1)
    )
    w, b = model.get_layer("out").get_weights()
    intact = per_class_accuracy((hidden @ w + b).argmax(axis=1), labels)
    for unit in range(16):
        for kind, value in (("zero", 0.0), ("mean", hidden[:, unit].mean())):
            changed = hidden.copy()
            changed[:, unit] = value
            drop = intact - per_class_accuracy((changed @ w + b).argmax(axis=1), labels)
            np.testing.assert_allclose(dense_metrics["ablation"][kind]["drop"][unit], drop, atol=1e-12)


def test_a_users_layer_gets_the_rotation_null_the_noise_floor_and_the_three_claims_without_retraining(
    conv_metrics, dense_metrics
):
    for metrics in (conv_metrics, dense_metrics):
        json.dumps(metrics, allow_nan=False)
        null = metrics["null"]
        assert null["units"] == len(metrics["layer"]["live_units"]) and null["rotations_requested"] == 1000
        for key, place in null["place"].items():
            values, trained = np.array(null["values"][key]), null["trained"][key]
            expected = (np.sum(values < trained) + 0.5 * np.sum(values == trained)) / len(values)
            assert place["percentile"] == pytest.approx(expected) and place["rotations"] == len(values) == 1000
            assert place["side"] in ("above", "within", "below")
            assert place["low"] <= place["percentile"] <= place["high"]
        for kind, units in metrics["important_units"].items():
            drops = [metrics["ablation_noise"][kind][u] for u in units]
            assert all(d["low"] > 0 for d in drops) and drops == sorted(drops, key=lambda d: -d["drop"])
        claims = metrics["claims"]
        assert claims["dominance"]["classes"] == len(metrics["claim"]["classes_with_dominant_unit"])
        assert claims["privileged"]["passes"] == all(p > 0.95 for p in null["percentile"].values())
        assert set(metrics["tests"]) >= {"specificity", "selectivity_vs_zero_ablation"}


def test_conv_channels_are_spatial_means_and_their_ablation_equals_keras(conv_metrics, user_files):
    root, arrays = user_files
    model, maps = reference(root, "conv", arrays["x_test"])  # (N, 12, 12, 6)
    labels = arrays["y_test"].astype(int)
    units, peaks = maps.mean(axis=(1, 2)), maps.max(axis=(1, 2))
    mean = np.stack([units[labels == c].mean(axis=0) for c in range(10)])
    np.testing.assert_allclose(conv_metrics["class_unit"]["mean"], mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        conv_metrics["layer"]["spatial_max"]["mean"], [peaks[labels == c].mean(axis=0) for c in range(10)], rtol=1e-5
    )
    assert conv_metrics["per_unit"]["eta_squared"] == pytest.approx(
        analysis.eta_squared(units, labels).tolist(), rel=1e-4
    )
    x = arrays["x_test"][..., None] / np.float32(255)
    intact = per_class_accuracy(model.predict(x, verbose=0).argmax(axis=1), labels)
    kernel, bias = model.get_layer("conv").get_weights()
    tail = [model.get_layer(name) for name in ("pool", "flatten", "dense", "out")]
    for unit in range(6):
        # zero: the channel's kernel and bias zeroed, so relu gives 0 everywhere; the whole model re-run
        k, b = kernel.copy(), bias.copy()
        k[..., unit], b[unit] = 0.0, 0.0
        model.get_layer("conv").set_weights([k, b])
        zeroed = per_class_accuracy(model.predict(x, verbose=0).argmax(axis=1), labels)
        model.get_layer("conv").set_weights([kernel, bias])
        np.testing.assert_allclose(conv_metrics["ablation"]["zero"]["drop"][unit], intact - zeroed, atol=1e-12)
        # mean: the channel's map replaced by its mean map over the test images, the later layers applied
        changed = maps.copy()
        changed[..., unit] = maps[..., unit].mean(axis=0)
        out = changed.astype(np.float32)
        for layer in tail:
            out = layer(out)
        meaned = per_class_accuracy(np.asarray(out).argmax(axis=1), labels)
        np.testing.assert_allclose(conv_metrics["ablation"]["mean"]["drop"][unit], intact - meaned, atol=1e-12)


def test_without_a_layer_the_readable_layers_are_listed_and_nothing_is_written(user_files, tmp_path):
    root, _ = user_files
    result = user_cli("report", root / "my.keras", None, root / "my.npz", tmp_path / "a")
    assert_one_line_error(result, "--layer is required", "conv (6 conv units)", "dense (16 dense units)")
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize(
    "layer, message",
    [
        ("nope", "'nope' is not a layer that can be read out (the model has no layer of that name); offered: conv"),
        ("image", "'image' is not a layer that can be read out (it is the model's input"),
    ],
)
def test_a_wrong_layer_is_one_line_naming_the_choices(user_files, tmp_path, layer, message):
    root, _ = user_files
    assert_one_line_error(user_cli("train", root / "my.keras", layer, root / "my.npz", tmp_path), message)


def test_a_model_that_does_not_fit_the_data_is_one_line(user_files, tmp_path):
    root, arrays = user_files
    small = {k: v[:, :20, :20] if k.startswith("x") else v for k, v in arrays.items()}
    np.savez(tmp_path / "small.npz", **small)
    result = user_cli("train", root / "my.keras", "dense", tmp_path / "small.npz", tmp_path / "a")
    assert_one_line_error(result, "the model takes inputs of shape (28, 28, 1), but the data's images are (20, 20)")
    four = {k: (v % 4 if k.startswith("y") else v) for k, v in arrays.items()}
    np.savez(tmp_path / "four.npz", **four)
    result = user_cli("train", root / "my.keras", "dense", tmp_path / "four.npz", tmp_path / "b")
    assert_one_line_error(result, "expected a 4-way classifier")


def test_a_model_with_a_lambda_layer_or_an_unknown_class_is_refused_and_never_runs(tmp_path, user_files):
    root, _ = user_files
    marker = str(tmp_path / "ran")
    model = keras.Sequential(
        [
            keras.Input((28, 28)),
            layers.Flatten(),
            layers.Lambda(lambda x: x + float(open(marker, "w").close() or 0)),
            layers.Dense(10),
        ]
    )
    model.save(tmp_path / "lambda.keras")
    (tmp_path / "ran").unlink()  # it ran once, when the model was built here
    result = user_cli("report", tmp_path / "lambda.keras", "dense", root / "my.npz", tmp_path / "a")
    assert_one_line_error(result, "was refused or is not a Keras 3 model")
    assert not (tmp_path / "ran").exists() and not (tmp_path / "a").exists()
    (tmp_path / "junk.keras").write_bytes(b"PK\x03\x04 not a model")
    result = user_cli("report", tmp_path / "junk.keras", "x", root / "my.npz", tmp_path / "b")
    assert_one_line_error(result, "was refused or is not a Keras 3 model")


def test_the_sweep_does_not_apply_to_a_users_model(user_files, tmp_path):
    root, _ = user_files
    result = user_cli("sweep", root / "my.keras", "dense", root / "my.npz", tmp_path)
    assert_one_line_error(result, "retrains the paper's network; it does not apply to --model")


def test_the_site_has_a_page_for_every_class_and_unit_and_prints_the_names_as_text(conv_metrics, user_files):
    root, _ = user_files
    flags = ["--model", str(root / "my.keras"), "--layer", "conv", "--data", str(root / "my.npz")]
    folders = ["--out", str(root / "conv" / "artifacts"), "--pages-dir", str(root / "conv" / "pages")]
    folders += ["--site-dir", str(root / "conv" / "site")]
    code, _, err = cli(["report", *flags, *folders])
    assert code == 0, err
    site = root / "conv" / "site"
    for c in range(len(CLASS_NAMES)):
        page = (site / "classes" / f"class-{c}.html").read_text()
        assert "<b>" not in page and 'href="javascript' not in page
    for n in range(6):
        page = (site / "units" / f"unit-{n}.html").read_text()
        assert f"Channel {n}" in page and "spatial max" in page
    assert not (site / "robustness.html").exists() and not (site / "explore.html").exists()
    home = (site / "index.html").read_text()
    assert "No Explore page" in home and "Conv2D" in home and "<b>" not in home
    assert "two &lt;b&gt;" in home or "two &#60;b&#62;" in home  # the name, shown as text


def _save(model: keras.Model, path) -> str:
    model.save(path)
    return str(path)


def test_models_nu_keras_cannot_split_or_run_are_one_line_each(user_files, tmp_path):
    root, _ = user_files
    image = keras.Input((28, 28))
    flat = layers.Flatten()(image)
    a = layers.Dense(8, activation="relu", name="a")(flat)
    b = layers.Dense(8, activation="relu", name="b")(a)
    out = layers.Dense(10, activation="softmax")(layers.Concatenate()([a, b]))
    skip = _save(keras.Model(image, out), tmp_path / "skip.keras")
    extra = keras.Input((3,))
    joined = layers.Dense(5, name="h")(layers.Concatenate()([flat, extra]))
    two = _save(keras.Model([image, extra], layers.Dense(10, activation="softmax")(joined)), tmp_path / "two.keras")
    hidden = layers.Dense(4, activation="relu", name="h")(flat)
    # TensorFlow refuses this model name as a scope when the model runs: a failure of the user's model
    odd = keras.Model(image, layers.Dense(10, activation="softmax")(hidden), name="<i>m<_i>")
    odd = _save(odd, tmp_path / "odd.keras")
    cases = [
        (skip, "b", "--layer 'b' does not split the model in two"),
        (two, "h", "the model has 2 inputs and 1 outputs"),
    ]
    for model, layer, message in cases:
        out = tmp_path / f"out-{layer}-{len(message)}"
        assert_one_line_error(user_cli("report", model, layer, root / "my.npz", out), message)
    assert user_cli("train", skip, "a", root / "my.npz", tmp_path / "ok")[0] == 0  # every path goes through a
    if keras.backend.backend() != "tensorflow":
        return  # JAX runs such names; only TensorFlow refuses them as scopes
    # In its own process: the failed run leaves TensorFlow's name scope behind, as it would in any process
    command = [
        sys.executable,
        "-m",
        "nu_keras",
        "train",
        "--model",
        odd,
        "--layer",
        "h",
        "--data",
        str(root / "my.npz"),
    ]
    done = subprocess.run([*command, "--out", str(tmp_path / "odd")], capture_output=True, text=True, cwd=REPO)
    errors = [line for line in done.stderr.splitlines() if line.startswith("nu-keras: error: ")]
    assert done.returncode == 2 and len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "failed to run on the data (ValueError" in errors[0] and "is not a valid root scope name" in errors[0]


def test_raw_pixels_reach_the_model_unscaled_and_the_report_says_so(user_files, tmp_path):
    root, arrays = user_files
    code, _, err = user_cli("train", root / "my.keras", "dense", root / "my.npz", tmp_path, "--pixels", "raw")
    assert code == 0, err
    trained = json.loads((tmp_path / "train.json").read_text())
    assert trained["dataset"]["pixel_note"].startswith("uint8 pixels given to the model unchanged")
    model = keras.saving.load_model(root / "my.keras")
    raw = model.predict(arrays["x_test"][..., None].astype(np.float32), verbose=0).argmax(axis=1)
    assert trained["test_accuracy"] == pytest.approx(float(np.mean(raw == arrays["y_test"])), abs=1e-12)

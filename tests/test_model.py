"""The Keras side: model shape, the hidden read-out against numpy, ablation against the Keras model."""

import os

import keras
import numpy as np
import pytest

from nu_keras import ablation, activations, analysis, artifacts
from nu_keras import model as mdl
from nu_keras.config import RunConfig
from nu_keras.errors import NuKerasError


@pytest.fixture(scope="module")
def net():
    return mdl.build_model(RunConfig(seed=0))


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, size=(64, 28, 28), dtype=np.uint8)


def test_model_is_784_10_10_with_7960_parameters(net):
    assert [layer.name for layer in net.layers] == ["flatten", "hidden", "output"]
    assert net.count_params() == 784 * 10 + 10 + 10 * 10 + 10 == 7960
    assert tuple(net.compute_output_shape((None, 28, 28))) == (None, 10)


def test_same_seed_same_initial_weights_other_seed_different():
    a = mdl.dense_weights(mdl.build_model(RunConfig(seed=5)))
    b = mdl.dense_weights(mdl.build_model(RunConfig(seed=5)))
    c = mdl.dense_weights(mdl.build_model(RunConfig(seed=6)))
    np.testing.assert_array_equal(a["hidden_kernel"], b["hidden_kernel"])
    assert not np.array_equal(a["hidden_kernel"], c["hidden_kernel"])


def test_hidden_submodel_equals_numpy_relu_forward_pass(net, images):
    w = mdl.dense_weights(net)
    expected = np.maximum(mdl.scale(images).reshape(-1, 784) @ w["hidden_kernel"] + w["hidden_bias"], 0)
    got = activations.hidden_submodel(net).predict(mdl.scale(images), verbose=0)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_collect_returns_consistent_arrays(net, images):
    labels = np.arange(64, dtype=np.uint8) % 10
    acts = activations.collect(net, "hidden", images, labels, "unit")
    assert acts["units"].shape == (64, 10) and acts["probabilities"].shape == (64, 10)
    assert acts["ablated_zero"].shape == acts["ablated_mean"].shape == (10, 64)
    np.testing.assert_array_equal(acts["predictions"], acts["probabilities"].argmax(axis=1))
    np.testing.assert_allclose(acts["probabilities"].sum(axis=1), 1, atol=1e-5)


def test_ablation_on_hidden_activations_equals_keras_model_with_outgoing_weights_zeroed(net, images):
    w = mdl.dense_weights(net)
    hidden = activations.hidden_submodel(net).predict(mdl.scale(images), verbose=0)
    clone = mdl.build_model(RunConfig(seed=0))
    clone.set_weights(net.get_weights())
    for unit in range(10):
        kernel = w["output_kernel"].copy()
        kernel[unit] = 0.0
        clone.get_layer("output").set_weights([kernel, w["output_bias"]])
        keras_probs = clone.predict(mdl.scale(images), verbose=0)
        ablated = hidden.copy()
        ablated[:, unit] = 0.0
        logits = analysis.output_logits(ablated, w["output_kernel"], w["output_bias"])
        numpy_probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        numpy_probs /= numpy_probs.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(numpy_probs, keras_probs, atol=1e-5)
        np.testing.assert_array_equal(
            ablation.dense_ablated_predictions(hidden, w["output_kernel"], w["output_bias"], unit),
            keras_probs.argmax(axis=1),
        )


def test_saved_model_round_trips_and_a_truncated_file_is_a_clear_error(net, tmp_path):
    path = tmp_path / "model.keras"
    mdl.save_model(net, path)
    loaded = mdl.load_model(path)
    for a, b in zip(net.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    broken = tmp_path / "broken.keras"
    broken.write_bytes(path.read_bytes()[:500])
    with pytest.raises(NuKerasError, match="not a loadable Keras model"):
        mdl.load_model(broken)
    with pytest.raises(NuKerasError, match="does not exist"):
        mdl.load_model(tmp_path / "absent.keras")


def test_atomic_write_leaves_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "metrics.json"
    artifacts.write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with artifacts.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert artifacts.read_json(target) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_keras_runs_on_the_session_backend_and_versions_name_its_packages():
    backend = os.environ["KERAS_BACKEND"]  # conftest sets tensorflow unless the session asked for another
    assert keras.backend.backend() == backend == RunConfig().backend
    versions = mdl.versions()
    assert versions["backend"] == backend and versions["keras"] == keras.__version__
    if backend == "jax":
        assert {"jax", "jaxlib"} <= set(versions) and "tensorflow" not in versions
    else:
        assert "tensorflow" in versions


def test_asking_for_another_backend_than_keras_was_imported_with_is_a_clear_error():
    other = "jax" if keras.backend.backend() == "tensorflow" else "tensorflow"
    with pytest.raises(NuKerasError, match=f"asks for {other}; start a new process"):
        mdl.build_model(RunConfig(backend=other))
    with pytest.raises(NuKerasError, match=f"asks for {other}"):
        mdl.build_branches(RunConfig(backend=other), [0, 1], 10, np.zeros((1, 784), np.float32))


def test_a_saved_block_is_reused_only_whole_and_by_its_own_recipe(tmp_path):
    from nu_keras import model as mdl

    rng = np.random.default_rng(0)

    def weights(width):
        shapes = {"hidden_kernel": (784, width), "hidden_bias": (width,), "output_kernel": (width, 10)}
        return {key: rng.normal(size=shape).astype(np.float32) for key, shape in shapes.items()} | {
            "output_bias": np.zeros(10, np.float32)
        }

    fitted = {"width": 4, "seeds": [7, 8], "fit_seconds": 1.5}
    fitted |= {"initial": [weights(4), weights(4)], "trained": [weights(4), weights(4)]}
    path = tmp_path / "branches.npz"
    mdl.save_block(path, fitted, {"epochs": 10})
    loaded = mdl.load_block(path, {"epochs": 10})
    assert loaded["seeds"] == [7, 8] and loaded["width"] == 4
    for when in ("initial", "trained"):
        for got, kept in zip(loaded[when], fitted[when], strict=True):
            for key, value in kept.items():
                np.testing.assert_array_equal(got[key], value)
    assert mdl.load_block(path, {"epochs": 9}) is None  # another recipe's block
    assert mdl.load_block(tmp_path / "absent.npz", {"epochs": 10}) is None
    mdl.save_block(path, fitted | {"width": 5}, {"epochs": 10})  # arrays of another width than it says
    assert mdl.load_block(path, {"epochs": 10}) is None
    path.write_bytes(b"not an npz")
    assert mdl.load_block(path, {"epochs": 10}) is None

"""A legacy `.h5` model is loaded with Keras's legacy loader (safe mode on) and adopted as a real `.keras`
file; a file that is neither format is one line, before any folder is touched."""

from __future__ import annotations

import zipfile

import keras
import numpy as np
import pytest
from helpers import assert_one_line_error, cli, fingerprint
from keras import layers

from nu_keras import subject
from nu_keras.errors import NuKerasError


@pytest.fixture(scope="module")
def user_files(tmp_path_factory):
    """small.h5 (a 784-8-6 Dense network saved in the legacy HDF5 format), the same HDF5 bytes named
    renamed.keras, and small.npz (random images of six classes)."""
    root = tmp_path_factory.mktemp("legacy")
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, size=(120, 28, 28), dtype=np.uint8),
        "y_train": np.arange(120, dtype=np.uint8) % 6,
        "x_test": rng.integers(0, 256, size=(60, 28, 28), dtype=np.uint8),
        "y_test": np.arange(60, dtype=np.uint8) % 6,
    }
    np.savez(root / "small.npz", **arrays)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((784,), name="image")
    hidden = layers.Dense(8, activation="relu", name="hidden")(inputs)
    model = keras.Model(inputs, layers.Dense(6, activation="softmax", name="out")(hidden))
    model.save(root / "small.h5")
    (root / "renamed.keras").write_bytes((root / "small.h5").read_bytes())
    return root, model, arrays["x_test"].reshape(-1, 784) / 255.0


def test_an_h5_model_loads_with_the_same_outputs(user_files):
    root, model, x = user_files
    assert subject.model_format(root / "small.h5") == "h5"
    loaded = subject.load_user_model(root / "small.h5")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_a_keras_name_on_hdf5_bytes_is_read_as_hdf5(user_files):
    root, model, x = user_files
    loaded = subject.load_user_model(root / "renamed.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_an_h5_name_on_other_bytes_is_one_line(tmp_path):
    (tmp_path / "fake.h5").write_text("not a model")
    with pytest.raises(NuKerasError, match=r"neither a Keras 3 \.keras file .* nor a legacy \.h5"):
        subject.load_user_model(tmp_path / "fake.h5")


def test_an_h5_model_with_a_lambda_layer_is_refused_and_never_runs(tmp_path):
    marker = str(tmp_path / "ran")
    model = keras.Sequential(
        [keras.Input((4,)), layers.Lambda(lambda x: x + float(open(marker, "w").close() or 0)), layers.Dense(2)]
    )
    model.save(tmp_path / "lambda.h5")
    (tmp_path / "ran").unlink()  # it ran once, when the model was built here
    with pytest.raises(NuKerasError, match="was refused or is not a legacy .h5 model"):
        subject.load_user_model(tmp_path / "lambda.h5")
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("name", ["small.h5", "renamed.keras"])
def test_an_h5_model_is_adopted_as_a_real_keras_file_and_collected(user_files, tmp_path, name):
    root, model, x = user_files
    out = tmp_path / "artifacts"
    flags = ["--model", str(root / name), "--layer", "hidden", "--data", str(root / "small.npz"), "--out", str(out)]
    flags += ["--pages-dir", str(tmp_path / "pages"), "--site-dir", str(tmp_path / "site")]  # not the checkout's
    for stage in ("train", "collect"):
        code, _, err = cli([stage, *flags])
        assert code == 0, err
    assert zipfile.is_zipfile(out / "model.keras")
    adopted = keras.saving.load_model(out / "model.keras", safe_mode=True, compile=False)
    np.testing.assert_allclose(adopted.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert (out / "activations.npz").is_file()


def test_a_file_of_neither_format_is_one_line_before_any_folder_is_touched(user_files, tmp_path):
    root = user_files[0]
    (tmp_path / "fake.h5").write_bytes(b"\x00" * 64)
    before = fingerprint(tmp_path)
    flags = ["--model", str(tmp_path / "fake.h5"), "--layer", "hidden", "--data", str(root / "small.npz")]
    places = ["--out", str(tmp_path / "artifacts"), "--pages-dir", str(tmp_path / "pages")]
    result = cli(["report", *flags, *places, "--site-dir", str(tmp_path / "site")])
    assert_one_line_error(result, "fake.h5 is neither a Keras 3 .keras file")
    assert fingerprint(tmp_path) == before

"""The paper's network: 28x28 image -> Flatten -> Dense(10, relu) "hidden" -> Dense(10, softmax)."""

from __future__ import annotations

import logging
import platform
import time
from pathlib import Path

import keras
import numpy as np
from keras import layers

from nu_keras import artifacts
from nu_keras.config import RunConfig
from nu_keras.data import Dataset
from nu_keras.errors import NuKerasError

log = logging.getLogger(__name__)


def build_model(cfg: RunConfig) -> keras.Sequential:
    """784-10-10 with named layers so the hidden layer can be read out later (7,960 parameters)."""
    keras.utils.set_random_seed(cfg.seed)  # the initial weights depend on the seed alone
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28), name="image"),
            layers.Flatten(name="flatten"),
            layers.Dense(cfg.hidden_units, activation="relu", name="hidden"),
            layers.Dense(10, activation="softmax", name="output"),
        ],
        name="nu_keras_mlp",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=cfg.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=cfg.steps_per_execution,
    )
    return model


def scale(images: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 in [0, 1], the input range the model is trained on."""
    return images.astype(np.float32) / 255.0


def train(model: keras.Sequential, data: Dataset, cfg: RunConfig) -> dict:
    """Fit on the training images less the last `validation_size`, which give the curves' held-out line.

    Returns the per-epoch history and the fit's wall time; the test set is not touched here.
    """
    n_fit = len(data.x_train) - cfg.validation_size
    x, y = scale(data.x_train), data.y_train
    validation = (x[n_fit:], y[n_fit:]) if cfg.validation_size else None
    keras.utils.set_random_seed(cfg.seed)  # the shuffling order depends on the seed alone
    start = time.perf_counter()
    history = model.fit(
        x[:n_fit], y[:n_fit], batch_size=cfg.batch_size, epochs=cfg.epochs,
        validation_data=validation, shuffle=True, verbose=2,
    )
    seconds = time.perf_counter() - start
    return {"history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
            "fit_seconds": seconds}


def evaluate(model: keras.Sequential, data: Dataset) -> float:
    """Test accuracy computed from predictions, so it matches what the activations stage sees."""
    probabilities = model.predict(scale(data.x_test), batch_size=2048, verbose=0)
    return float(np.mean(probabilities.argmax(axis=1) == data.y_test))


def save_model(model: keras.Sequential, path: Path) -> None:
    with artifacts.atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)


def load_model(path: Path) -> keras.Sequential:
    """Load with safe_mode=True so a model file cannot run arbitrary code (no lambda layers)."""
    path = Path(path)
    if not path.exists():
        raise NuKerasError(f"{path} does not exist; run `nu-keras train` first")
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as exc:
        reason = " ".join(str(exc).split())[:200]
        raise NuKerasError(f"{path} is not a loadable Keras model ({reason}); run `nu-keras train`") from exc


def dense_weights(model: keras.Sequential) -> dict[str, np.ndarray]:
    """The two Dense layers' kernels and biases as numpy (784x10, 10, 10x10, 10 for the default)."""
    hidden, output = model.get_layer("hidden"), model.get_layer("output")
    w1, b1 = (np.asarray(w) for w in hidden.get_weights())
    w2, b2 = (np.asarray(w) for w in output.get_weights())
    return {"hidden_kernel": w1, "hidden_bias": b1, "output_kernel": w2, "output_bias": b2}


def versions() -> dict[str, str]:
    import tensorflow as tf  # only for its version string; the model code itself uses keras only

    return {"python": platform.python_version(), "keras": keras.__version__,
            "tensorflow": tf.__version__, "numpy": np.__version__, "backend": keras.backend.backend()}

"""Read the hidden layer out of a trained model with an intermediate-output submodel."""

from __future__ import annotations

import keras
import numpy as np

from nu_keras.model import scale


def hidden_submodel(model: keras.Sequential) -> keras.Model:
    """A model sharing `model`'s layers whose output is the hidden layer's ReLU activations."""
    return keras.Model(model.inputs, model.get_layer("hidden").output, name="hidden_readout")


def collect(model: keras.Sequential, images: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Hidden activations (N, 10), labels (N,), predictions (N,) and probabilities (N, 10)."""
    x = scale(images)
    hidden = hidden_submodel(model).predict(x, batch_size=2048, verbose=0)
    probabilities = model.predict(x, batch_size=2048, verbose=0)
    return {
        "hidden": hidden.astype(np.float32),
        "labels": labels.astype(np.uint8),
        "predictions": probabilities.argmax(axis=1).astype(np.uint8),
        "probabilities": probabilities.astype(np.float32),
    }

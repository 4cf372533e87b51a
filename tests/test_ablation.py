"""Ablation in numpy against the same ablation done inside a Keras model."""

import numpy as np

from nu_keras import ablation, analysis


def test_mean_and_zero_ablation_equal_a_keras_model_whose_hidden_unit_outputs_that_value():
    import keras
    from keras import layers

    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [keras.Input((20,)), layers.Dense(6, activation="relu", name="hidden"), layers.Dense(10, name="output")]
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 20)).astype(np.float32)
    labels = np.repeat(np.arange(10), 30)
    kernel, bias = model.get_layer("hidden").get_weights()
    w2, b2 = model.get_layer("output").get_weights()
    hidden = np.maximum(x @ kernel + bias, 0).astype(np.float64)
    for kind in ablation.ABLATIONS:
        fill = ablation.ablation_fill(hidden, kind)
        ours = analysis.ablation_accuracy(hidden, labels, w2, b2, fill)
        for unit in (0, 4):
            # the unit ignores its input and outputs relu(fill) = fill (fill >= 0): it is replaced by that value
            k, b = kernel.copy(), bias.copy()
            k[:, unit], b[unit] = 0.0, fill[unit]
            model.get_layer("hidden").set_weights([k, b])
            predictions = model.predict(x, verbose=0).argmax(axis=1)
            model.get_layer("hidden").set_weights([kernel, bias])
            np.testing.assert_allclose(ours[unit], analysis.per_class_accuracy(predictions, labels), err_msg=kind)

"""When dominance appears: the report network measured on the test images before and after every epoch."""

from __future__ import annotations

import dataclasses

import numpy as np

from nu_keras import dynamics
from nu_keras.config import RunConfig
from nu_keras.data import Dataset
from tests.conftest import random_images


def one_hot_network(classes: int = 10, pixels: int = 20) -> tuple[np.ndarray, np.ndarray, dict]:
    """Images that are one lit pixel per class, and a network whose unit d copies pixel d and votes for d."""
    labels = np.repeat(np.arange(classes), 5)
    images = np.zeros((len(labels), pixels), dtype=np.float32)
    images[np.arange(len(labels)), labels] = 1.0
    weights = {
        "hidden_kernel": np.eye(pixels, classes, dtype=np.float32),
        "hidden_bias": np.zeros(classes, dtype=np.float32),
        "output_kernel": np.eye(classes, dtype=np.float32),
        "output_bias": np.zeros(classes, dtype=np.float32),
    }
    return images, labels, weights


def test_a_network_with_one_unit_per_class_has_ten_dominant_units_of_their_own():
    images, labels, weights = one_hot_network()
    seen = dynamics.snapshot(images, labels, weights, threshold=0.5)
    assert seen == {
        "test_accuracy": 1.0,
        "dominant_classes": 10,
        "rescaled_dominant_classes": 10,
        "distinct_dominant_units": 10,
        "own_unit_classes": 10,
        "mean_eta_squared": 1.0,
        "dead_units": 0,
    }


def test_killed_units_are_counted_dead_and_left_out_of_the_mean_eta_squared():
    images, labels, weights = one_hot_network()
    weights["hidden_bias"][[3, 7]] = -1e3
    seen = dynamics.snapshot(images, labels, weights, threshold=0.5)
    assert seen["dead_units"] == 2
    assert seen["mean_eta_squared"] == 1.0  # the eight live units, each explained wholly by the class
    assert seen["dominant_classes"] == 8 and seen["own_unit_classes"] == 8


def test_one_unit_that_wins_for_every_class_is_one_distinct_dominant_unit_of_no_class_alone():
    images, labels, weights = one_hot_network()
    weights["hidden_kernel"][:, 0] = 10.0  # unit 0 is the largest on every image
    seen = dynamics.snapshot(images, labels, weights, threshold=0.5)
    assert seen["dominant_classes"] == 10
    assert seen["distinct_dominant_units"] == 1 and seen["own_unit_classes"] == 0


def test_the_series_runs_from_epoch_zero_before_training_to_the_last_epoch():
    from nu_keras import model as mdl

    data = random_images()
    cfg = RunConfig(seed=4, epochs=3, batch_size=64, validation_size=200, steps_per_execution=4)
    watched = mdl.Dynamics(mdl.scale(data.x_test))
    fitted = mdl.fit_block(data, cfg, 10, [4, 9], validate=False, watchers=(watched,))
    series = dynamics.recorded_series(watched.arrays(), data.y_test, cfg.dominance_threshold)
    assert series["epoch"] == [0, 1, 2, 3]
    assert set(series) == {"epoch", *dynamics.SERIES} and all(len(v) == 4 for v in series.values())
    x = mdl.scale(data.x_test).reshape(len(data.x_test), -1)
    labels = data.y_test.astype(np.int64)
    for epoch, weights in ((0, fitted["initial"][0]), (3, fitted["trained"][0])):
        expected = dynamics.snapshot(x, labels, weights, cfg.dominance_threshold)
        assert {key: values[epoch] for key, values in series.items() if key != "epoch"} == expected


def test_recording_the_dynamics_does_not_change_the_training():
    from nu_keras import model as mdl

    data = random_images()
    cfg = RunConfig(seed=4, epochs=2, batch_size=64, validation_size=200, steps_per_execution=4)
    watched = mdl.Dynamics(mdl.scale(data.x_test))
    with_it = mdl.fit_block(data, cfg, 10, [4, 9], validate=False, watchers=(watched,))
    without = mdl.fit_block(data, cfg, 10, [4, 9], validate=False)
    for branch in (0, 1):
        for key, value in without["trained"][branch].items():
            np.testing.assert_array_equal(with_it["trained"][branch][key], value, err_msg=key)


def test_the_dynamics_chart_is_named_and_drawn_only_for_a_network_trained_here(tmp_path):
    from nu_keras import charts
    from nu_keras.charts import overview

    series = dynamics.series([{key: 0 for key in dynamics.SERIES} | {"dominant_classes": e} for e in range(4)])
    from page_fixtures import paper_record

    record = dataclasses.replace(paper_record()[0], dynamics=series)
    assert charts.chart_names(record, None)["overview"]["dynamics"] == "img/dynamics.png"
    assert "dynamics" not in charts.chart_names(dataclasses.replace(record, dynamics=None), None)["overview"]
    overview.dynamics(tmp_path / "dynamics.png", series, classes=10, units=10)
    assert (tmp_path / "dynamics.png").stat().st_size > 1000


def test_float_pixels_train_a_block_like_the_network_alone():
    """Images stored as floats in [0, 1] (a user's data set) reach the block's model unscaled, as `scale`
    gives them to the network alone."""
    from nu_keras import model as mdl

    base = random_images()
    data = Dataset(base.x_train / 255.0, base.y_train, base.x_test / 255.0, base.y_test, source="float")
    cfg = RunConfig(seed=4, epochs=1, batch_size=64, validation_size=200, steps_per_execution=4)
    alone = mdl.build_model(cfg)
    mdl.train(alone, data, cfg)
    block = mdl.fit_block(data, cfg, 10, [4], validate=False)
    for key, value in mdl.dense_weights(alone).items():
        np.testing.assert_allclose(block["trained"][0][key], value, atol=1e-5, err_msg=key)

"""A convolution's channels, seen: their maps on their top images and per class, the receptive field and its
crops, a first layer's filters and every unit's feature visualisation, from the collect stage to the pages.

A small model (two Conv2D layers with a pooling between) is trained briefly on real MNIST and read out on a
few hundred test images; the maps are checked against Keras's own output for the same images, the mean maps
against the mean of the maps, and the receptive field against the layers' sizes by hand.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

import nu_keras
from nu_keras import activations, analysis, api
from nu_keras.record import Measurements

TEST = 300


@pytest.fixture(scope="module")
def mnist():
    data = nu_keras.load_dataset("mnist")
    return data.x_train[:1000], data.y_train[:1000], data.x_test[:TEST], data.y_test[:TEST]


@pytest.fixture(scope="module")
def model(mnist):
    """(28, 28, 1) -> conv1 (4 channels, 3x3) -> pool (2x2) -> conv2 (6 channels, 3x3) -> flatten -> out."""
    x_train, y_train, _, _ = mnist
    keras.utils.set_random_seed(0)
    image = keras.Input((28, 28, 1))
    conv1 = layers.Conv2D(4, 3, activation="relu", name="conv1")(image)
    conv2 = layers.Conv2D(6, 3, activation="relu", name="conv2")(layers.MaxPooling2D(name="pool")(conv1))
    net = keras.Model(image, layers.Dense(10, activation="softmax", name="out")(layers.Flatten()(conv2)))
    net.compile("adam", "sparse_categorical_crossentropy")
    net.fit(x_train[..., None] / 255.0, y_train, epochs=1, batch_size=32, verbose=0)
    return net


@pytest.fixture(scope="module")
def collected(model, mnist):
    _, _, x_test, y_test = mnist
    x = x_test[..., None].astype(np.float32) / 255.0
    return {layer: activations.collect(model, layer, x_test, y_test, "unit") for layer in ("conv1", "conv2")}, x


def test_the_top_maps_are_the_layers_output_on_the_top_images(model, mnist, collected):
    acts, x = collected
    maps = keras.Model(model.inputs, model.get_layer("conv2").output).predict(x, verbose=0)  # (N, 11, 11, 6)
    top = analysis.top_examples(acts["conv2"]["units"].astype(np.float64), analysis.TOP_EXAMPLES)
    assert acts["conv2"]["top_maps"].shape == (6, 16, 11, 11)
    for u, j in ((0, 0), (3, 7), (5, 15)):
        np.testing.assert_allclose(acts["conv2"]["top_maps"][u, j], maps[top[u, j], :, :, u], rtol=1e-5, atol=1e-6)
    # each top map's mean is the channel's value on that image, as the measures read it
    means = acts["conv2"]["top_maps"].mean(axis=(2, 3))
    np.testing.assert_allclose(means, np.take_along_axis(acts["conv2"]["units"].T, top, axis=1), rtol=1e-4, atol=1e-6)


def test_the_mean_map_per_class_is_the_mean_of_the_maps(model, mnist, collected):
    acts, x = collected
    _, _, _, y_test = mnist
    maps = keras.Model(model.inputs, model.get_layer("conv2").output).predict(x, verbose=0)
    expected = np.stack([maps[y_test == c].mean(axis=0).transpose(2, 0, 1) for c in range(10)])  # (C, U, h, w)
    assert acts["conv2"]["mean_maps"].shape == (10, 6, 11, 11)
    np.testing.assert_allclose(acts["conv2"]["mean_maps"], expected, rtol=1e-5, atol=1e-6)


def test_the_read_out_pass_sums_the_class_mean_maps_collect_runs_no_pass_of_their_own(model, mnist, monkeypatch):
    _, _, x_test, y_test = mnist
    x, labels = x_test[..., None].astype(np.float32) / 255.0, y_test.astype(np.int64)
    head = activations.split(model, "conv2")[0]
    own_pass = activations.class_mean_maps(head, x, labels, 10, batch=64)
    read = activations.read_units(head, x, 64, labels=labels)
    assert read["mean_maps"].dtype == np.float32 and read["mean_maps"].tobytes() == own_pass.tobytes()
    assert "mean_maps" not in activations.read_units(head, x, 64)  # without labels: the units alone

    def second_pass(*args, **kwargs):
        raise AssertionError("collect ran the head over the images again for the class mean maps")

    monkeypatch.setattr(activations, "class_mean_maps", second_pass)
    monkeypatch.setattr(activations, "feature_pictures", lambda *args: {})  # not what this test is about
    acts = activations.collect(model, "conv2", x_test, y_test, "unit")
    assert (
        acts["mean_maps"].tobytes()
        == activations.read_units(head, x, activations.CONV_BATCH, labels=labels)["mean_maps"].tobytes()
    )


def test_maps_are_kept_for_the_top_images_only(collected):
    acts, _ = collected
    # bounded whatever N: U * k top maps and C * U class means, never (N, h, w, U)
    sizes = {key: value.size for key, value in acts["conv2"].items() if key.endswith("maps")}
    assert sizes == {"top_maps": 6 * 16 * 11 * 11, "mean_maps": 10 * 6 * 11 * 11}


def test_the_receptive_field_follows_the_layers_sizes_and_strides(model):
    # conv1 3x3: 3 pixels, centre 1; pool 2x2 stride 2: 4 pixels, centre 1.5; conv2 3x3 at stride 2: 8, centre 3.5
    assert activations.receptive_field(model, "conv1") == (3, 1, 1.0)
    assert activations.receptive_field(model, "conv2") == (8, 2, 3.5)
    same = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(2, 5, strides=2, padding="same", name="c")])
    assert activations.receptive_field(same, "c") == (5, 2, 0.0)  # "same" padding: position 0 centred on pixel 0


def test_a_first_layer_keeps_its_filters_and_a_later_one_none(model, collected):
    acts, _ = collected
    kernel = np.asarray(model.get_layer("conv1").kernel)  # (3, 3, 1, 4)
    np.testing.assert_array_equal(acts["conv1"]["filters"], kernel.transpose(3, 0, 1, 2))
    assert "filters" not in acts["conv2"]


def test_every_channel_has_a_feature_visualisation_in_the_pixel_range(collected):
    acts, _ = collected
    pictures = acts["conv2"]["feature_visualisation"]
    assert pictures.shape == (6, 28, 28, 1) and 0 <= pictures.min() and pictures.max() <= 1
    assert "Feature visualisation" in str(acts["conv2"]["feature_visualisation_method"])


def test_a_dense_layer_keeps_no_maps():
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((16,)), layers.Dense(4, activation="relu", name="h"), layers.Dense(3)])
    x, y = np.random.default_rng(0).random((30, 16)).astype(np.float32), np.arange(30) % 3
    extras = activations.conv_extras(net, "h", x, y, np.zeros((30, 4)), "unit")
    assert set(extras) == {"feature_visualisation", "feature_visualisation_method"}
    assert extras["feature_visualisation"].shape == (4, 4, 4)  # a flat input of a square size, as a square


def test_a_model_that_cannot_be_visualised_records_why():
    net = keras.Sequential([keras.Input((6,)), layers.Dense(4, activation="relu", name="h"), layers.Dense(3)])
    x = np.zeros((4, 6), dtype=np.float32)
    note = str(activations.feature_pictures(net, "h", x, "unit")["feature_visualisation_note"])
    assert "\n" not in note and "6" in note  # one line: a flat input of 6 values has no picture's shape


def test_the_channel_pages_show_the_new_figures(model, mnist, tmp_path):
    _, _, x_test, y_test = mnist
    record = nu_keras.analyse(model, "conv1", x_test, y_test)
    back = Measurements.from_json(record.to_json())  # the maps survive metrics.json
    np.testing.assert_array_equal(back.per_unit.top_maps, record.per_unit.top_maps)
    np.testing.assert_array_equal(back.class_unit.mean_maps, record.class_unit.mean_maps)
    assert back.layer.receptive_field == {"size": 3, "stride": 1, "start": 1.0}
    pages = tmp_path / "pages"
    with api.drawing_style():
        api.render_pages(back, pages, 5, None)
    page = next(p for p in pages.rglob("*.md") if p.read_text().startswith("# Channel 2"))
    text = page.read_text()
    for key in ("maps", "crops", "class_maps", "filter", "featvis"):
        name = f"img/unit-2-{key.replace('_', '-')}.png"
        assert name in text, key
        assert (pages / name).stat().st_size > 1000, key
    assert "## Feature visualisation" in (pages / "method.md").read_text()


def test_a_dense_layer_on_the_pixels_shows_its_picture_beside_the_exact_maximiser(mnist, tmp_path):
    x_train, y_train, x_test, y_test = mnist
    keras.utils.set_random_seed(0)
    net = keras.Sequential(
        [keras.Input((28, 28)), layers.Flatten(), layers.Dense(10, activation="relu", name="hidden"), layers.Dense(10)]
    )
    net.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    net.fit(x_train / 255.0, y_train, epochs=1, batch_size=32, verbose=0)
    record = nu_keras.analyse(net, "hidden", x_test, y_test)
    assert record.per_unit.feature_visualisation.shape == (10, 28, 28)
    assert record.per_unit.top_maps is None and record.class_unit.mean_maps is None
    assert record.layer.receptive_field is None
    names = api.charts_module().chart_names(record, None)["units"][0]
    assert "weights" in names and not {"maps", "crops", "class_maps", "filter", "featvis"} & set(names)
    pages = tmp_path / "pages"
    with api.drawing_style():
        api.render_pages(record, pages, 5, None)
    page = next(p for p in pages.rglob("*.md") if p.read_text().startswith("# Unit 0"))
    assert "The third image is the feature visualisation" in page.read_text()
    assert (pages / "img" / "unit-0-weights.png").is_file()


def test_the_crop_is_the_receptive_field_of_the_maps_maximum():
    from nu_keras.charts import units

    image = np.arange(28 * 28, dtype=np.uint8).reshape(28, 28)
    channel_map = np.zeros((11, 11))
    channel_map[2, 5] = 1.0  # centre start + stride * position: 3.5 + 2 * 2 = 7.5 rows, 13.5 columns
    field = {"size": 8, "stride": 2, "start": 3.5}
    np.testing.assert_array_equal(units.crop(image, channel_map, field), image[4:12, 10:18] / 255.0)
    channel_map[:] = 0
    channel_map[0, 0] = 1.0  # same padding: a field centred on pixel 0 reaches past the edge
    edge = units.crop(image, channel_map, {"size": 5, "stride": 2, "start": 0.0})
    assert np.isnan(edge[:2]).all() and np.isnan(edge[:, :2]).all()
    np.testing.assert_array_equal(edge[2:, 2:], image[:3, :3] / 255.0)


def test_a_map_upsampled_puts_each_position_at_its_fields_centre():
    from nu_keras.charts import units

    channel_map = np.arange(9, dtype=float).reshape(1, 3, 3)
    big = units.upsampled(channel_map, {"size": 3, "stride": 2, "start": 1.0}, (7, 7))
    np.testing.assert_array_equal(big[0, 1::2, 1::2], channel_map[0])  # pixels 1, 3, 5 are the centres
    assert big[0, 1, 2] == 0.5 and big[0, 0, 0] == 0.0 and big[0, 6, 6] == 8.0  # between: linear; edges: held


def test_a_layer_with_maps_past_the_budget_keeps_none(model, mnist, monkeypatch):
    _, _, x_test, y_test = mnist
    monkeypatch.setattr(activations, "MAX_MAP_VALUES", 10 * 6 * 11 * 11 - 1)  # one value short of the class maps
    x = x_test[..., None].astype(np.float32) / 255.0
    extras = activations.conv_extras(model, "conv2", x, y_test.astype(np.int64), np.zeros((TEST, 6)), "unit")
    assert set(extras) == {"feature_visualisation", "feature_visualisation_method"}

"""The public Python API, used as a notebook would use it: only names `import nu_keras` exports.

A small user model (a Conv2D layer, then a Dense layer, then a softmax) is trained for a few hundred steps on
real MNIST; its layers are read, ablated, analysed and published, and every number checked against numpy or
against the model with the unit's weights zeroed. Every bad input gives one `NuKerasError` of one line.
"""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import layers

import nu_keras

TRAIN, TEST = 3000, 500


@pytest.fixture(scope="module")
def mnist():
    """(x_train, y_train, x_test, y_test): a few thousand real MNIST images, through the public loader."""
    data = nu_keras.load_dataset("mnist")
    return data.x_train[:TRAIN], data.y_train[:TRAIN], data.x_test[:TEST], data.y_test[:TEST]


@pytest.fixture(scope="module")
def model(mnist):
    """A user's functional model taking (28, 28, 1) images: conv (6 channels) -> pool -> dense (12) -> out."""
    x_train, y_train, _, _ = mnist
    keras.utils.set_random_seed(0)
    image = keras.Input((28, 28, 1), name="image")
    conv = layers.Conv2D(6, 5, strides=2, activation="relu", name="conv")(image)
    flat = layers.Flatten(name="flatten")(layers.MaxPooling2D(name="pool")(conv))
    dense = layers.Dense(12, activation="relu", name="dense")(flat)
    net = keras.Model(image, layers.Dense(10, activation="softmax", name="out")(dense), name="my_net")
    net.compile("adam", "sparse_categorical_crossentropy")
    net.fit(x_train[..., None] / 255.0, y_train, epochs=1, batch_size=32, verbose=0)
    return net


def output_classes(h: np.ndarray, out: keras.layers.Dense) -> np.ndarray:
    """The output layer's class for units `h`, in numpy (the argmax of its logits is the softmax's)."""
    kernel, bias = (np.asarray(w, dtype=np.float64) for w in out.get_weights())
    return (h.astype(np.float64) @ kernel + bias).argmax(axis=1)


def test_a_dense_layer_reads_as_relu_of_its_affine_map(model, mnist):
    _, _, x_test, _ = mnist
    units = nu_keras.read_layer(model, "dense", x_test)
    # the same numbers in numpy: the conv layer's maps, pooled and flattened, through the Dense layer's weights
    before = keras.Model(model.inputs, model.get_layer("flatten").output).predict(x_test[..., None] / 255.0, verbose=0)
    kernel, bias = model.get_layer("dense").get_weights()
    expected = np.maximum(before @ kernel + bias, 0)
    assert units.shape == (TEST, 12) and units.dtype == np.float32
    np.testing.assert_allclose(units, expected, rtol=1e-4, atol=1e-5)
    assert (units == 0).any() and (units > 0).any()  # a ReLU layer: both sides of the hinge occur


def test_a_conv_layer_reads_as_each_channels_spatial_mean(model, mnist):
    _, _, x_test, _ = mnist
    units = nu_keras.read_layer(model, "conv", x_test, batch_size=64)  # several batches
    maps = keras.Model(model.inputs, model.get_layer("conv").output).predict(x_test[..., None] / 255.0, verbose=0)
    assert maps.shape == (TEST, 12, 12, 6) and units.shape == (TEST, 6)
    np.testing.assert_allclose(units, maps.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)


def test_the_model_may_be_a_keras_file_and_images_may_be_float(model, mnist, tmp_path):
    _, _, x_test, _ = mnist
    model.save(tmp_path / "my.keras")
    from_file = nu_keras.read_layer(tmp_path / "my.keras", "dense", x_test[:50])
    from_floats = nu_keras.read_layer(model, "dense", x_test[:50] / 255.0)
    np.testing.assert_allclose(from_file, nu_keras.read_layer(model, "dense", x_test[:50]), rtol=1e-6)
    np.testing.assert_allclose(from_floats, from_file, rtol=1e-5, atol=1e-6)


def test_zero_ablation_is_the_model_with_the_units_weights_zeroed(model, mnist):
    _, _, x_test, _ = mnist
    predicted = nu_keras.ablate(model, "dense", x_test, fill="zero")
    assert predicted.shape == (12, TEST)
    dense, intact = model.get_layer("dense"), [w.copy() for w in model.get_layer("dense").get_weights()]
    try:
        for unit in (0, 5, 11):
            kernel, bias = (w.copy() for w in intact)
            kernel[:, unit], bias[unit] = 0, 0  # ReLU(0) = 0: the unit is silent on every image
            dense.set_weights([kernel, bias])
            silenced = model.predict(x_test[..., None] / 255.0, verbose=0).argmax(axis=1)
            np.testing.assert_array_equal(predicted[unit], silenced)
    finally:
        dense.set_weights(intact)
    np.testing.assert_array_equal(nu_keras.ablate(model, "dense", x_test, units=[11, 0]), predicted[[11, 0]])


def test_mean_ablation_replaces_the_unit_by_its_mean_over_the_images(model, mnist):
    _, _, x_test, _ = mnist
    units = nu_keras.read_layer(model, "dense", x_test)
    predicted = nu_keras.ablate(model, "dense", x_test, fill="mean")
    intact = nu_keras.predict_classes(model, x_test)
    np.testing.assert_array_equal(output_classes(units, model.get_layer("out")), intact)
    changed = 0
    for unit in range(12):
        h = units.astype(np.float64)
        h[:, unit] = h[:, unit].mean()
        expected = output_classes(h, model.get_layer("out"))
        # float32 against float64: an image at a near-tie between two classes may go either way
        assert np.mean(predicted[unit] == expected) >= 0.998
        changed += int(np.sum(predicted[unit] != intact))
    assert changed > 0  # some unit matters to some image: the comparison is not vacuous


def test_a_conv_channel_ablated_changes_what_the_model_predicts(model, mnist):
    _, _, x_test, _ = mnist
    zero = nu_keras.ablate(model, "conv", x_test[:200])
    mean = nu_keras.ablate(model, "conv", x_test[:200], fill="mean", units=[0, 1])
    intact = nu_keras.predict_classes(model, x_test[:200])
    assert zero.shape == (6, 200) and mean.shape == (2, 200) and zero.dtype == np.int64
    assert (zero != intact).any()
    assert set(np.unique(zero)) <= set(range(10))


# ------------------------------------------------------------------------------- analyse, publish, load


CLASS_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture(scope="module")
def records(model, mnist):
    """The record of each layer, as `analyse` makes it."""
    _, _, x_test, y_test = mnist
    return {
        layer: nu_keras.analyse(model, layer, x_test, y_test, class_names=CLASS_NAMES) for layer in ("conv", "dense")
    }


@pytest.mark.parametrize("layer, units", [("conv", 6), ("dense", 12)])
def test_analyse_measures_the_layer_read_layer_reads(records, model, mnist, layer, units):
    _, _, x_test, y_test = mnist
    record = records[layer]
    assert isinstance(record, nu_keras.Measurements)
    assert record.classes == tuple(CLASS_NAMES) and len(record.units) == units and record.n_test == TEST
    assert record.test_accuracy == pytest.approx(np.mean(nu_keras.predict_classes(model, x_test) == y_test))
    np.testing.assert_array_equal(record.per_class.count, np.bincount(y_test, minlength=10))
    read = nu_keras.read_layer(model, layer, x_test)
    np.testing.assert_allclose(record.images.units, read[record.images.index], rtol=1e-6)
    np.testing.assert_allclose(record.per_unit.mean, read.mean(axis=0), rtol=1e-4, atol=1e-6)
    for c in range(10):  # the class-by-unit means are the class's rows of what read_layer reads
        np.testing.assert_allclose(record.class_unit.mean[c], read[y_test == c].mean(axis=0), rtol=1e-4, atol=1e-6)
    # zero ablation's accuracy drop per unit and class is what ablate's rows give
    zeroed = nu_keras.ablate(model, layer, x_test)
    intact = nu_keras.predict_classes(model, x_test)
    for u in range(units):
        drop = [np.mean(intact[y_test == c] == c) - np.mean(zeroed[u][y_test == c] == c) for c in range(10)]
        np.testing.assert_allclose(np.asarray(record.ablation["zero"]["drop"])[u], drop, atol=1e-9)


def canonical(record) -> str:
    """The record's JSON as text, keys sorted (metrics.json sorts them; NaN compares as the text NaN)."""
    return json.dumps(record.to_json(), sort_keys=True)


def test_the_record_round_trips_through_json(records):
    for record in records.values():
        back = nu_keras.Measurements.from_json(json.loads(json.dumps(record.to_json())))
        assert canonical(back) == canonical(record)
        np.testing.assert_array_equal(back.class_unit.mean, record.class_unit.mean)
        with pytest.raises(
            ValueError, match="read-only"
        ):  # frozen, arrays included: a record cannot drift from its JSON
            back.class_unit.mean[0, 0] = 1.0


def test_publish_builds_the_site_and_load_run_reads_it_back(records, tmp_path):
    record = records["conv"]
    before = canonical(record)
    index = nu_keras.publish(record, tmp_path / "site", pages_dir=tmp_path / "pages")
    assert index == tmp_path / "site" / "index.html" and index.is_file()
    for page in ("findings.html", "method.html", "api.html", "metrics.json"):
        assert (tmp_path / "site" / page).is_file(), page
    assert "Use from Python" in (tmp_path / "site" / "api.html").read_text()
    drawn = sorted(p.name for p in (tmp_path / "pages" / "img").glob("*.png"))
    assert "dominance.png" in drawn and "unit-5-tuning.png" in drawn and "class-9-profile.png" in drawn
    back = nu_keras.load_run(tmp_path / "site")
    assert canonical(back) == canonical(record) == before  # publishing changed nothing in the record
    # published again, over its own folders: a file someone added is kept
    (tmp_path / "site" / "CNAME").write_text("example.org\n")
    nu_keras.publish(records["dense"], tmp_path / "site", pages_dir=tmp_path / "pages")
    assert (tmp_path / "site" / "CNAME").read_text() == "example.org\n"
    assert len(nu_keras.load_run(tmp_path / "site").units) == 12


def test_publish_never_fills_a_folder_it_did_not_make(records, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(nu_keras.NuKerasError, match="nu-keras did not write") as caught:
        nu_keras.publish(records["dense"], tmp_path / "mine")
    assert "\n" not in str(caught.value) and (tmp_path / "mine" / "notes.txt").read_text() == "mine"
    with pytest.raises(nu_keras.NuKerasError, match="overlap"):
        nu_keras.publish(records["dense"], tmp_path / "out", pages_dir=tmp_path / "out" / "pages")


def test_figure_returns_every_chart_of_the_site_as_a_figure(records):
    import matplotlib
    import matplotlib.figure
    import matplotlib.pyplot as plt

    record = records["dense"]
    open_before = plt.get_fignums()
    names = nu_keras.figure_names(record)
    assert names["overview"] == ["mean_activation", "dominance", "ablation", "selectivity_vs_ablation"]
    assert names["unit"][:3] == ["tuning", "top", "effect"] and names["class"] == ["examples", "profile"]
    calls = [(name, {}) for name in names["overview"]]
    calls += [("tuning", {"unit": 3}), ("top", {"unit": 0}), ("effect", {"unit": 11})]
    calls += [("examples", {"cls": 0}), ("profile", {"cls": 9})]
    for name, where in calls:
        drawn = nu_keras.figure(record, name, **where)
        assert isinstance(drawn, matplotlib.figure.Figure) and drawn.axes, name
        assert drawn.axes[0].has_data() or drawn.axes[0].images or drawn.axes[0].collections, name
    assert plt.get_fignums() == open_before  # none is left open in pyplot: a notebook shows each once
    with matplotlib.rc_context({"font.size": 14, "axes.spines.top": True}):  # a notebook's own settings
        tuning = nu_keras.figure(record, "tuning", unit=0)  # drawn in the report's style ...
        assert matplotlib.rcParams["font.size"] == 14 and matplotlib.rcParams["axes.spines.top"]  # ... not theirs
    assert tuning.axes[0].xaxis.get_ticklabels()[0].get_fontsize() == 9
    assert not tuning.axes[0].spines["top"].get_visible()
    for bad, fragment in [
        (lambda: nu_keras.figure(record, "tunning", unit=0), "choose one of: tuning"),
        (lambda: nu_keras.figure(record, "tuning", unit=12), "0..11"),
        (lambda: nu_keras.figure(record, "profile", cls=3, unit=1), "not both"),
        (lambda: nu_keras.figure(record, "mean"), "choose one of: mean_activation"),
        (lambda: nu_keras.figure({"not": "a record"}, "dominance"), "Measurements"),
        (lambda: nu_keras.figure(record, "sweep_dominant"), "sweep="),
    ]:
        with pytest.raises(nu_keras.NuKerasError, match=fragment):
            bad()


# ------------------------------------------------------------------------------------------- bad input


class Subclassed(keras.Model):
    """A model written as a class: its layers are not a graph with inputs, so no layer can be read out."""

    def __init__(self):
        super().__init__()
        self.hidden = layers.Dense(8, name="hidden")
        self.out = layers.Dense(10, activation="softmax")

    def call(self, x):
        return self.out(self.hidden(keras.ops.reshape(x, (-1, 784))))


def _bad_inputs(model, images, labels, folder):
    """(what is wrong, the call, a fragment its one-line message must hold)."""
    sequential = keras.Sequential([keras.Input((28, 28)), layers.Flatten(), layers.Dense(4), layers.Dense(1)])
    lambda_model = keras.Sequential([keras.Input((28, 28)), layers.Flatten(), layers.Lambda(lambda x: x * 2)])
    lambda_model.add(layers.Dense(10, activation="softmax"))
    lambda_model.save(folder / "lambda.keras")
    image = keras.Input((28, 28))
    a = layers.Dense(8, activation="relu", name="a")(layers.Flatten()(image))
    b = layers.Dense(8, activation="relu", name="b")(a)
    skip = keras.Model(image, layers.Dense(10, activation="softmax")(layers.Concatenate()([a, b])))
    nan_images = (images / 255.0).astype(np.float32)
    nan_images[3, 4, 5] = np.nan
    three = labels == 3
    return [
        ("no such layer", lambda: nu_keras.read_layer(model, "dense_9", images), "offered: conv"),
        ("the input layer", lambda: nu_keras.read_layer(model, "image", images), "it is the model's input"),
        ("wrong image shape", lambda: nu_keras.read_layer(model, "conv", images[:, :20]), "inputs of shape"),
        ("one image without N", lambda: nu_keras.read_layer(model, "conv", images[0, 0]), "shape (N, H, W"),
        ("no images", lambda: nu_keras.ablate(model, "conv", images[:0]), "non-empty"),
        ("strings", lambda: nu_keras.read_layer(model, "conv", np.full((2, 28, 28), "x")), "numeric"),
        ("NaN images", lambda: nu_keras.read_layer(model, "dense", nan_images), "NaN"),
        ("not a model", lambda: nu_keras.read_layer("not a file.keras", "conv", images), "not a file"),
        ("not a model object", lambda: nu_keras.read_layer(object(), "conv", images), "keras.Model"),
        ("not a classifier", lambda: nu_keras.read_layer(sequential, "dense", images), "classifiers"),
        ("no input graph", lambda: nu_keras.read_layer(Subclassed(), "hidden", images), "functional API"),
        ("a Lambda layer", lambda: nu_keras.read_layer(folder / "lambda.keras", "dense", images), "was refused"),
        ("a bypassed layer", lambda: nu_keras.read_layer(skip, "b", images), "skip connection"),
        ("batch size", lambda: nu_keras.read_layer(model, "conv", images, batch_size=0), "batch_size"),
        ("unknown fill", lambda: nu_keras.ablate(model, "conv", images, fill="noise"), "fill"),
        ("unit out of range", lambda: nu_keras.ablate(model, "conv", images, units=[6]), "0..5"),
        ("unknown pixels", lambda: nu_keras.read_layer(model, "conv", images, pixels="percent"), "pixels"),
        ("labels out of range", lambda: nu_keras.analyse(model, "dense", images, labels + 1), "0..9"),
        ("negative labels", lambda: nu_keras.analyse(model, "dense", images, labels - 1), "0..9"),
        ("labels of another length", lambda: nu_keras.analyse(model, "dense", images, labels[:-1]), "one per image"),
        ("fractional labels", lambda: nu_keras.analyse(model, "dense", images, labels + 0.5), "whole"),
        ("a class with no image", lambda: nu_keras.analyse(model, "dense", images[~three], labels[~three]), "'3'"),
        ("class names", lambda: nu_keras.analyse(model, "dense", images, labels, class_names=["a"]), "10 classes"),
        ("threshold", lambda: nu_keras.analyse(model, "dense", images, labels, threshold=1.5), "threshold"),
        ("seed", lambda: nu_keras.analyse(model, "dense", images, labels, seed=-1), "seed"),
        ("a missing run", lambda: nu_keras.load_run("no-such-folder"), "does not exist"),
    ]


def test_every_bad_input_is_one_line_of_one_exception_type(model, mnist, tmp_path):
    _, _, x_test, y_test = mnist
    for what, call, fragment in _bad_inputs(model, x_test[:40], y_test[:40], tmp_path):
        with pytest.raises(nu_keras.NuKerasError) as caught:
            call()
        message = str(caught.value)
        assert "\n" not in message and fragment in message, (what, message)


def test_import_nu_keras_loads_nothing_heavy_and_exports_every_name():
    code = (
        "import json, sys; import nu_keras; "
        "print(json.dumps([m for m in ('keras', 'numpy', 'matplotlib', 'tensorflow') if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []
    for name in nu_keras.__all__:
        assert getattr(nu_keras, name) is not None, name
    assert issubclass(nu_keras.NuKerasError, Exception) and callable(nu_keras.read_layer)
    with pytest.raises(AttributeError):
        nu_keras.not_a_name  # noqa: B018


@pytest.mark.e2e
def test_a_finished_runs_record_loads_and_draws_every_figure_its_site_shows(real_report):
    """The paper's network as `nu-keras report` left it: load_run reads its metrics.json, and figure draws
    every chart of its site (training curves, weights, the seed sweep's figures with sweep.json)."""
    import matplotlib.figure

    artifacts = real_report.root / "artifacts"
    record = nu_keras.load_run(artifacts)
    sweep = json.loads((artifacts / "sweep.json").read_text())
    names = nu_keras.figure_names(record, sweep=sweep)
    assert {"training", "weights_grid", "sweep_dominant", "sweep_null"} <= set(names["overview"])
    drawn = [nu_keras.figure(record, name, sweep=sweep) for name in names["overview"]]
    drawn += [nu_keras.figure(record, name, unit=0) for name in names["unit"] if name != "silent"]
    drawn += [nu_keras.figure(record, name, cls=7) for name in names["class"]]
    assert all(isinstance(f, matplotlib.figure.Figure) and f.axes for f in drawn)
    images = {p.name for p in (real_report.root / "site" / "img").glob("*.png")}
    assert {"dominance.png", "training.png", "sweep-dominant.png", "unit-0-weights.png"} <= images

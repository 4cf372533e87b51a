"""The Explore page's data and arithmetic: the exported script, the MNIST preprocessing, and the JavaScript
forward pass and preprocessing (run by Node, outside a browser) held to Keras, numpy and the Python reference."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
from browser_helpers import REPO, need
from explore_helpers import (
    FASHION,
    MNIST,
    PAPER_SUBJECT,
    decoded,
    explore_acts,
    numpy_forward,
    random_pixels,
    random_stack,
    render_explore,
    softmax,
    stack_data,
    stack_run,
    unit_marks,
)
from page_fixtures import paper_fields

from nu_keras import ablation, charts, explore
from nu_keras.errors import NuKerasError

EXPLORE_JS = REPO / "docs" / "overrides" / "assets" / "javascripts" / "explore.js"
HARNESS = REPO / "tests" / "explore_harness.js"
DIGITS = [str(d) for d in range(10)]


# -------------------------------------------------------------------------------------- preprocessing


def test_a_blank_drawing_is_a_blank_input():
    assert not explore.preprocess_drawing(np.zeros((280, 280))).any()


def test_a_filled_rectangle_fits_the_20_box_keeping_its_aspect_and_is_centred():
    """A 100x50 rectangle scales by 0.2 to 20x10; its centre of mass (10, 5) goes to the frame's centre (14, 14)."""
    ink = np.zeros((280, 280))
    ink[30:130, 40:90] = 1.0
    out = explore.preprocess_drawing(ink)
    expected = np.zeros((28, 28))
    expected[4:24, 9:19] = 1.0
    np.testing.assert_array_equal(out, expected)


def test_a_tiny_mark_in_a_corner_is_scaled_up_and_centred():
    ink = np.zeros((280, 280))
    ink[0:3, 0:3] = 0.5
    out = explore.preprocess_drawing(ink)
    expected = np.zeros((28, 28))
    expected[4:24, 4:24] = 1.0  # stretched to full ink
    np.testing.assert_allclose(out, expected, atol=1e-12)


def test_a_thin_diagonal_stroke_keeps_its_centre_of_mass_mid_frame():
    ink = np.zeros((280, 280))
    for i in range(40, 200):
        ink[i, i + 30] = 1.0
    out = explore.preprocess_drawing(ink)
    assert out.max() == pytest.approx(1.0) and out.min() >= 0.0
    centres = np.arange(28) + 0.5
    assert abs(out.sum(axis=1) @ centres / out.sum() - 14) <= 0.5
    assert abs(out.sum(axis=0) @ centres / out.sum() - 14) <= 0.5
    rows, cols = np.flatnonzero(out.any(axis=1)), np.flatnonzero(out.any(axis=0))
    assert len(rows) == 20 and len(cols) == 20  # the 160x160 extent fits the 20x20 box exactly


def test_box_resampling_averages_what_each_output_pixel_covers():
    weights = explore.area_weights(7, 3)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    np.testing.assert_allclose(explore.area_weights(6, 3) @ np.arange(6.0), [0.5, 2.5, 4.5])
    np.testing.assert_allclose(weights[0, :3], [3 / 7, 3 / 7, 1 / 7])


def test_a_raster_that_is_not_two_dimensional_is_a_clear_error():
    with pytest.raises(NuKerasError, match="2-D raster"):
        explore.preprocess_drawing(np.zeros((4, 4, 3)))


# --------------------------------------------------------------------------------------------- export


def synthetic_images(count: int, seed: int = 0) -> np.ndarray:
    """Sparse uint8 'strokes' in 28x28 frames, varied enough to spread a random network's outputs."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, 28, 28), np.uint8)
    mask = rng.random((count, 28, 28)) < 0.18
    images[mask] = rng.integers(30, 256, size=int(mask.sum()))
    return images


@pytest.fixture(scope="module")
def keras_run():
    """A 784-10-10 network with spread-out random weights, read out by the pipeline's own collect()."""
    from nu_keras import activations
    from nu_keras import model as mdl

    net = mdl.network(0, 10)
    rng = np.random.default_rng(1)
    net.get_layer("hidden").set_weights([rng.normal(0, 0.08, (784, 10)), rng.normal(0, 0.3, 10)])
    net.get_layer("output").set_weights([rng.normal(0, 0.8, (10, 10)), rng.normal(0, 0.3, 10)])
    images = synthetic_images(300)
    labels = np.tile(np.arange(10), 30).astype(np.uint8)
    acts = explore_acts(activations.collect(net, "hidden", images, labels, "unit"))
    weights = mdl.dense_weights(net)
    return {"acts": acts, "weights": weights, "images": images}


@pytest.fixture(scope="module")
def exported(keras_run, tmp_path_factory):
    run = keras_run
    stack = explore.stack_from_weights(run["weights"])
    data = explore.explore_data(stack, 0, run["acts"], run["images"], unit_marks(run["acts"]), 5, 1 / 255, DIGITS)
    path = tmp_path_factory.mktemp("explore") / explore.SCRIPT_NAME
    summary = explore.write_script(path, data)
    return {"data": data, "path": path, "summary": summary}


def test_the_script_carries_this_runs_exact_weights(exported, keras_run):
    data, weights = exported["data"], keras_run["weights"]
    layers = data["layers"]
    shipped = {f"{d['name']}_{part}": decoded(d[part], "<f4") for d in layers for part in ("kernel", "bias")}
    assert shipped.keys() == weights.keys()
    for key, values in shipped.items():
        assert values.tobytes() == np.asarray(weights[key], "<f4").ravel().tobytes(), key
    assert exported["summary"]["parameters"] == 7960
    means = decoded(data["unit_means"], "<f4")
    np.testing.assert_allclose(means, keras_run["acts"]["units"].mean(axis=0), rtol=1e-6)
    mean = [keras_run["acts"]["units"][keras_run["acts"]["labels"] == d].mean(axis=0) for d in range(10)]
    assert data["preferred_unit"] == [int(np.argmax(m)) for m in mean]


def test_the_page_marks_the_units_the_record_measured():
    """Preferred and dominant units and the unit means come from the record, never recomputed."""
    from page_fixtures import paper_record

    record, _ = paper_record()
    marks = explore.unit_marks(record)
    assert marks["preferred_unit"] == record.per_class.top_unit.tolist()
    assert marks["dominant_unit"] == list(record.per_class.dominant_unit)
    assert marks["dominance_threshold"] == record.method.dominance_threshold
    np.testing.assert_array_equal(marks["unit_means"], record.per_unit.mean)


def test_the_script_carries_a_sample_per_digit_and_every_misclassified_image(exported, keras_run):
    data, acts = exported["data"], keras_run["acts"]
    indices = np.array(data["indices"])
    assert np.all(np.diff(indices) > 0)
    pixels = decoded(data["images"], "u1").reshape(len(indices), 28, 28)
    np.testing.assert_array_equal(pixels, keras_run["images"][indices])
    assert data["labels"] == acts["labels"][indices].tolist()
    wrong = set(np.flatnonzero(acts["labels"] != acts["predictions"]).tolist())
    assert wrong <= set(indices.tolist()) and data["misclassified_left_out"] == 0
    for d in range(10):
        first = np.flatnonzero(acts["labels"] == d)[:5].tolist()
        assert exported["summary"]["first_of_class"][d][:5] == first


def test_the_script_is_one_global_assignment_of_json(exported):
    text = exported["path"].read_text()
    head = f"window.{explore.GLOBAL_NAME} = "
    body = text[text.index(head) + len(head) :].rstrip().removesuffix(";")
    assert json.loads(body) == exported["data"]
    assert exported["summary"]["bytes"] == len(text.encode())


@pytest.mark.parametrize("wrong_share", [0.07, 0.9])
def test_the_export_stays_under_2_mb_for_a_test_set_of_mnist_size(wrong_share, monkeypatch):
    """7 % errors (this network) ships every misclassified image; 90 % (a broken run) is cut in test order."""
    rng = np.random.default_rng(0)
    labels = np.tile(np.arange(10), 1000).astype(np.uint8)
    predictions = np.where(rng.random(10000) < wrong_share, (labels + 1) % 10, labels).astype(np.uint8)
    acts = {"labels": labels, "predictions": predictions, "units": rng.random((10000, 10)).astype(np.float32)}
    weights = {
        "hidden_kernel": rng.normal(size=(784, 10)).astype(np.float32),
        "hidden_bias": np.zeros(10, np.float32),
        "output_kernel": rng.normal(size=(10, 10)).astype(np.float32),
        "output_bias": np.zeros(10, np.float32),
    }
    images = rng.integers(0, 256, size=(10000, 28, 28), dtype=np.uint8)
    data = explore.paper_explore_data(weights, acts, images, unit_marks(acts), explore.SAMPLE_PER_CLASS)
    size = len(explore.script_text(data).encode())
    assert size < 2_000_000, size
    wrong = int(np.sum(labels != predictions))
    shipped_wrong = sum(labels[i] != predictions[i] for i in data["indices"])
    if wrong_share < 0.5:
        assert shipped_wrong == wrong and data["misclassified_left_out"] == 0
    else:
        assert len(data["indices"]) == explore.MAX_IMAGES
        assert shipped_wrong + data["misclassified_left_out"] == wrong


# ------------------------------------------------------------------------------ the JavaScript, under Node


def run_node(tmp_path, data_script, request: dict) -> dict:
    node = shutil.which("node")
    need(node, "Node.js is not installed (the browser suite's npm brings it)")
    request_path = tmp_path / "request.json"
    request_path.write_text(json.dumps(request))
    done = subprocess.run(
        [node, str(HARNESS), str(EXPLORE_JS), str(data_script), str(request_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_the_javascript_forward_pass_equals_keras_on_every_shipped_image(exported, keras_run, tmp_path):
    answer = run_node(tmp_path, exported["path"], {"forward": True})
    rows = np.array(exported["data"]["indices"])
    acts = keras_run["acts"]
    hidden = np.array([r["hidden"] for r in answer["intact"]])
    probabilities = np.array([r["probabilities"] for r in answer["intact"]])
    assert len(hidden) == len(rows) > 250  # the sample per digit and the many misclassified
    assert np.abs(hidden - acts["units"][rows]).max() < 1e-5
    assert np.abs(probabilities - acts["probabilities"][rows]).max() < 1e-5
    assert [r["predicted"] for r in answer["intact"]] == acts["predictions"][rows].tolist()


@pytest.mark.parametrize("mode", ["zero", "mean"])
def test_silencing_a_unit_in_javascript_equals_the_numpy_ablation(mode, exported, keras_run, tmp_path):
    answer = run_node(tmp_path, exported["path"], {"forward": True})
    rows = np.array(exported["data"]["indices"])
    acts, weights = keras_run["acts"], keras_run["weights"]
    w2, b2 = weights["output_kernel"].astype(np.float64), weights["output_bias"].astype(np.float64)
    means = decoded(exported["data"]["unit_means"], "<f4").astype(np.float64)
    hidden = acts["units"][rows].astype(np.float64)
    for unit in range(10):
        ablated = hidden.copy()
        ablated[:, unit] = means[unit] if mode == "mean" else 0.0
        shown = answer["silenced"][mode]
        probabilities = np.array([per_unit[unit]["probabilities"] for per_unit in shown])
        predicted = [per_unit[unit]["predicted"] for per_unit in shown]
        assert np.abs(probabilities - softmax(ablated @ w2 + b2)).max() < 1e-5, unit
        if mode == "zero":  # the analysis module's own ablation, which the Neuron pages report
            assert predicted == ablation.dense_ablated_predictions(hidden, w2, b2, unit).tolist(), unit
        else:
            assert predicted == (ablated @ w2 + b2).argmax(axis=1).tolist(), unit


def synthetic_rasters() -> dict[str, np.ndarray]:
    """A thin anti-aliased stroke, an off-centre soft blob, and a digit drawn small in a corner."""
    yy, xx = np.mgrid[0:280, 0:280].astype(np.float64)
    thin = np.clip(1.0 - np.abs((yy - 40) - 1.6 * (xx - 100)) / 2.0, 0, 1) * ((yy > 40) & (yy < 250))
    blob = np.exp(-(((yy - 210) / 25) ** 2 + ((xx - 60) / 40) ** 2))
    corner = np.zeros((280, 280))
    corner[8:11, 6:30] = 1.0  # the bar of a small "7"
    for i in range(26):
        corner[10 + i, 27 - i // 2 : 30 - i // 2] = 0.8  # its stem, leaning
    return {"thin stroke": thin, "off-centre blob": blob, "small digit in a corner": corner}


def test_the_javascript_preprocessing_equals_the_python_reference(tmp_path, exported):
    rasters = synthetic_rasters()
    request = {
        "rasters": [{"height": r.shape[0], "width": r.shape[1], "ink": r.ravel().tolist()} for r in rasters.values()]
    }
    answer = run_node(tmp_path, exported["path"], request)
    for (name, raster), js in zip(rasters.items(), answer["preprocessed"], strict=True):
        python = explore.preprocess_drawing(raster)
        assert python.any(), name
        assert np.abs(np.array(js).reshape(28, 28) - python).max() < 1e-9, name


# ------------------------------------------------------------------------------------------------ pages


def test_the_explore_page_and_its_links_from_digit_and_neuron_pages_are_rendered(tmp_path):
    from conftest import synthetic_record, synthetic_run

    from nu_keras import pages
    from nu_keras.config import RunConfig

    acts, weights = synthetic_run()
    record = paper_fields(synthetic_record(acts, weights, RunConfig()))
    images = synthetic_images(len(acts["labels"]))
    acts = explore_acts(acts)
    data = explore.paper_explore_data(weights, acts, images, unit_marks(acts), 8)
    summary = explore.write_script(tmp_path / explore.SCRIPT_NAME, data)
    names = charts.chart_names(record, None)
    count = pages.render_all(
        record, 5, RunConfig().project_root / "report_templates", tmp_path, explore=summary, charts=names
    )
    assert count == len(list(tmp_path.rglob("*.md"))) and (tmp_path / "explore.md").is_file()
    page = (tmp_path / "explore.md").read_text()
    assert f"{summary['images']} test images" in page and '<script src="explore-data.js"></script>' in page
    assert f"{summary['misclassified_shipped']} of the {summary['misclassified_total']}" in page
    for d in range(10):
        text = (tmp_path / f"digits/digit-{d}.md").read_text()
        assert summary["preferred_unit"][d] == d  # synthetic_run: unit d prefers digit d
        for index in np.flatnonzero(acts["labels"] == d)[:5]:
            assert f"[test image {index}](../explore.md#image={index}&unit={d})" in text
    for n in range(10):
        text = (tmp_path / f"neurons/neuron-{n}.md").read_text()
        assert f"[Open neuron {n} in Explore](../explore.md#unit={n})" in text


# ------------------------------------------------------------------------------- any stack of Dense layers


def test_a_stack_with_one_hidden_layer_ships_each_layer_exactly():
    stack = random_stack([784, 12, 10], ["relu", "softmax"])
    data = stack_data(stack, 0, random_pixels((60, 28, 28), "u1"))
    assert [layer["name"] for layer in data["layers"]] == ["dense_0", "dense_1"]
    for shipped, layer in zip(data["layers"], stack, strict=True):
        assert decoded(shipped["kernel"], "<f4").tobytes() == layer["kernel"].tobytes()
        assert decoded(shipped["bias"], "<f4").tobytes() == layer["bias"].tobytes()
        assert (shipped["inputs"], shipped["units"]) == layer["kernel"].shape
    assert (data["readout"], data["units"], data["classes"], data["image_shape"]) == (0, 12, 10, [28, 28, 1])
    summary = explore.summary(data, 0)
    assert summary["parameters"] == 784 * 12 + 12 + 12 * 10 + 10 and summary["drawable"] and summary["pixel_maps"]


def test_a_deep_stack_read_out_in_the_middle_lists_that_layers_units_and_their_means():
    stack = random_stack([64, 20, 16, 8, 4], ["relu", "tanh", "sigmoid", "linear"])
    images = random_pixels((80, 8, 8), "u1")
    acts = stack_run(stack, 1, images, 1 / 255, 4)
    data = explore.explore_data(stack, 1, acts, images, unit_marks(acts), 5, 1 / 255, ["a", "b", "c", "d"])
    assert data["units"] == 16 and data["classes"] == 4 and len(data["layers"]) == 4
    np.testing.assert_allclose(decoded(data["unit_means"], "<f4"), acts["units"].mean(axis=0), rtol=1e-6)
    means = [acts["units"][acts["labels"] == k].mean(axis=0) for k in range(4)]
    assert data["preferred_unit"] == [int(np.argmax(m)) for m in means] and len(data["dominant_unit"]) == 4
    summary = explore.summary(data, 0)
    assert summary["parameters"] == sum(layer["kernel"].size + layer["bias"].size for layer in stack)
    assert (summary["previous_layer"], summary["previous_units"]) == ("dense_0", 20)
    assert not summary["pixel_maps"] and not summary["drawable"]
    for k, first in enumerate(summary["first_of_class"]):
        assert first[:5] == np.flatnonzero(acts["labels"] == k)[:5].tolist()


def test_colour_images_ship_as_uint8_in_their_own_shape_without_drawing_or_pixel_maps():
    stack = random_stack([8 * 8 * 3, 10, 5], ["relu", "softmax"])
    images = random_pixels((50, 8, 8, 3), "u1")
    data = stack_data(stack, 0, images)
    assert data["image_shape"] == [8, 8, 3] and data["pixel_dtype"] == "u1"
    pixels = decoded(data["images"], "u1").reshape(-1, 8, 8, 3)
    np.testing.assert_array_equal(pixels, images[data["indices"]])
    summary = explore.summary(data, 0)
    assert (summary["height"], summary["width"], summary["channels"]) == (8, 8, 3)
    assert not summary["drawable"] and not summary["pixel_maps"]


def test_float_images_ship_as_float32_with_their_scale():
    stack = random_stack([6 * 5, 7, 3], ["sigmoid", "linear"])
    images = random_pixels((30, 6, 5), "f4")
    data = stack_data(stack, 0, images, pixel_scale=1.0)
    assert data["pixel_dtype"] == "<f4" and data["pixel_scale"] == 1.0 and data["image_shape"] == [6, 5, 1]
    np.testing.assert_array_equal(decoded(data["images"], "<f4").reshape(-1, 6, 5), images[data["indices"]])
    summary = explore.summary(data, 0)
    assert summary["pixel_maps"] and not summary["drawable"]  # grey pixels read by the units, but not 28x28


def test_model_input_at_scale_one_over_255_is_exactly_what_keras_is_fed():
    from nu_keras import model as mdl

    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    assert explore.model_input(pixels, 1 / 255).tobytes() == mdl.scale(pixels).reshape(1, -1).tobytes()
    floats = random_pixels((2, 3, 3), "f4")
    assert explore.model_input(floats, 1.0).tobytes() == floats.reshape(2, -1).tobytes()


def test_class_names_travel_as_json_text_that_cannot_close_the_script(tmp_path):
    names = ['</script><script>alert("x")</script>', "Ankle boot", "T-shirt/top", "é \\ '"]
    stack = random_stack([16, 5, 4], ["relu", "softmax"])
    data = stack_data(stack, 0, random_pixels((20, 4, 4), "u1"), names=names)
    path = tmp_path / explore.SCRIPT_NAME
    explore.write_script(path, data)
    text = path.read_text()
    assert "<" not in text and json.loads(text[text.index("{") : text.rindex("}") + 1])["class_names"] == names


def test_many_classes_of_large_images_ship_fewer_of_each_within_the_byte_budget():
    stack = random_stack([32 * 32 * 3, 4, 100], ["relu", "softmax"])
    images = np.zeros((1000, 32, 32, 3), np.uint8)
    acts = {"units": np.ones((1000, 4)), "labels": np.arange(1000) % 100, "predictions": np.zeros(1000, int)}
    data = explore.explore_data(stack, 0, acts, images, unit_marks(acts), 40, 1 / 255, [str(k) for k in range(100)])
    budget = explore.MAX_PIXEL_BYTES // (32 * 32 * 3)
    assert data["per_class"] == budget // 100 and len(data["indices"]) == budget
    shipped_wrong = int(np.sum(acts["labels"][data["indices"]] != 0))  # every prediction is class 0
    assert shipped_wrong + data["misclassified_left_out"] == data["misclassified_total"] == 990


def _break(data: dict, part: str) -> None:
    """Spoil one ingredient of a valid (stack, readout, acts, images, names) call."""
    stack, acts = data["stack"], data["acts"]
    if part == "kernel":
        stack[1]["kernel"] = stack[1]["kernel"][:-1]
    elif part == "bias":
        stack[0]["bias"] = stack[0]["bias"][:-1]
    elif part == "activation":
        stack[0]["activation"] = "gelu"
    elif part == "last activation":
        stack[-1]["activation"] = "relu"
    elif part == "readout":
        data["readout"] = len(stack) - 1
    elif part == "image size":
        data["images"] = data["images"][:, :3]
    elif part == "units":
        acts["units"] = acts["units"][:, :-1]
    elif part == "labels":
        acts["labels"] = acts["labels"] + 3
    elif part == "names":
        data["names"] = data["names"][:-1]
    elif part == "image rank":
        data["images"] = data["images"].reshape(len(data["images"]), -1)


@pytest.mark.parametrize(
    ("part", "message"),
    [
        ("kernel", "do not take 6 inputs"),
        ("bias", "do not take 16 inputs"),
        ("activation", "cannot compute activation 'gelu'"),
        ("last activation", "softmax or linear"),
        ("readout", "must be one of the first 2"),
        ("image size", "do not take 12 inputs"),
        ("units", r"not \(N, 5\) of layer 1"),
        ("labels", "labels must lie in 0..3"),
        ("names", "must give 3 class scores"),
        ("image rank", "uint8 or float images"),
    ],
)
def test_an_inconsistent_stack_or_run_is_a_one_line_error(part, message):
    stack = random_stack([16, 6, 5, 4], ["relu", "tanh", "softmax"])
    images = random_pixels((20, 4, 4), "u1")
    data = {"stack": stack, "readout": 1, "images": images, "names": list("abcd")}
    data["acts"] = stack_run(stack, 1, images, 1 / 255, 4)
    marks = unit_marks(data["acts"])
    _break(data, part)
    with pytest.raises(NuKerasError, match=message) as raised:
        explore.explore_data(
            data["stack"], data["readout"], data["acts"], data["images"], marks, 4, 1 / 255, data["names"]
        )
    assert "\n" not in str(raised.value)


# ---------------------------------------------------------------- a deeper stack, in JavaScript under Node


def keras_stack(stack: list[dict], shape: tuple[int, ...]):
    """The stack as keras.Sequential over the flattened image, with the stack's exact weights."""
    import keras
    from keras import layers

    model = keras.Sequential(
        [keras.Input(shape), layers.Flatten()]
        + [layers.Dense(layer["bias"].shape[0], activation=layer["activation"], name=layer["name"]) for layer in stack]
    )
    for layer in stack:
        model.get_layer(layer["name"]).set_weights([layer["kernel"], layer["bias"]])
    return model


STACKS = {  # three Dense layers read out at the middle one
    "colour uint8": ((8, 8, 3), "u1", 1 / 255, [192, 16, 12, 5], ["relu", "tanh", "softmax"]),
    "grey float": ((6, 5), "f4", 1.0, [30, 9, 7, 4], ["sigmoid", "relu", "linear"]),
}


@pytest.mark.parametrize("case", STACKS)
def test_the_javascript_forward_pass_through_three_dense_layers_equals_keras_and_numpy(case, tmp_path):
    shape, dtype, scale, widths, activations = STACKS[case]
    stack = random_stack(widths, activations, seed=3)
    images = random_pixels((60, *shape), dtype, seed=4)
    data = stack_data(stack, 1, images, pixel_scale=scale, per_class=6)
    path = tmp_path / explore.SCRIPT_NAME
    explore.write_script(path, data)
    answer = run_node(tmp_path, path, {"forward": True})
    rows = np.array(data["indices"])
    x = explore.model_input(images[rows], scale)
    hidden, probabilities = numpy_forward(stack, x, 1)
    js_hidden = np.array([r["hidden"] for r in answer["intact"]])
    js_probabilities = np.array([r["probabilities"] for r in answer["intact"]])
    assert len(rows) > 20 and np.abs(js_hidden - hidden).max() < 1e-9
    assert np.abs(js_probabilities - probabilities).max() < 1e-9
    model = keras_stack(stack, shape)
    keras_p = model.predict(x.reshape(len(rows), *shape), verbose=0)
    if activations[-1] == "linear":
        keras_p = softmax(keras_p.astype(np.float64))  # the page shows softmax of a linear output layer
    assert np.abs(js_probabilities - keras_p).max() < 1e-5
    assert [r["predicted"] for r in answer["intact"]] == probabilities.argmax(axis=1).tolist()
    means = decoded(data["unit_means"], "<f4").astype(np.float64)
    for mode in ("zero", "mean"):
        for unit in range(widths[2]):
            _, expected = numpy_forward(stack, x, 1, unit, means[unit] if mode == "mean" else 0.0)
            shown = np.array([per_unit[unit]["probabilities"] for per_unit in answer["silenced"][mode]])
            assert np.abs(shown - expected).max() < 1e-5, (mode, unit)
            assert [per_unit[unit]["predicted"] for per_unit in answer["silenced"][mode]] == expected.argmax(1).tolist()


def test_the_page_script_never_parses_text_as_html():
    """Class and layer names are untrusted: explore.js writes text through textContent only."""
    script = EXPLORE_JS.read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink


# ------------------------------------------------------------------------------- the page, for any data set


def test_the_paper_networks_page_offers_the_drawing_pad_and_pixel_maps_in_digit_words():
    from conftest import synthetic_run

    acts, weights = synthetic_run()
    acts = explore_acts(acts)
    data = explore.paper_explore_data(weights, acts, synthetic_images(len(acts["labels"])), unit_marks(acts), 8)
    page = render_explore(explore.summary(data, 123_000), DIGITS, MNIST, PAPER_SUBJECT)
    assert "Draw a digit, or pick one of the test images" in page and "the\n10 hidden units, the 10 output" in page
    assert "(seed 7, test accuracy 93.12\u00a0%)" in page and "7,960 weights and biases are copied" in page
    assert '<option value="3">digit 3</option>' in page and "Predicted digit: <strong" in page
    assert 'id="nk-canvas"' in page and 'id="nk-weights" class="nk-grid" width="28" height="28"' in page
    assert "## How a drawing becomes an input" in page and "the first\n8 of each digit" in page
    assert '<h2 id="nk-units-title">Hidden units</h2>' in page and "Each neuron page links here" in page


def test_a_colour_data_set_read_out_deeper_has_no_drawing_pad_nor_weight_map_and_says_why():
    names = ["T-shirt/top", "<b>Trouser</b>", "Ankle boot", "[x](javascript:alert(1))", "Bag"]
    stack = random_stack([8 * 8 * 3, 16, 12, 5], ["relu", "relu", "softmax"])
    stack[0]["name"] = "<script>alert(1)</script>"
    data = stack_data(stack, 1, random_pixels((40, 8, 8, 3), "u1"), names=names)
    subject = {"unit": "unit", "units": "units", "layer": "dense_1", "trained_here": False}
    page = render_explore(explore.summary(data, 50_000), names, FASHION, subject)
    assert 'id="nk-canvas"' not in page and "How a drawing becomes" not in page and "Draw a" not in page
    assert "There is no drawing pad: the network reads 8 × 8 images with 3 channels" in page
    assert 'id="nk-weights"' not in page and "No weight map: the unit reads the 16 outputs of layer <code>" in page
    assert 'id="nk-input" class="nk-grid nk-view" width="8" height="8"' in page and "Next image of this class" in page
    assert "the\n12 units of layer <code>dense&#95;1</code>" in page and "seed" not in page
    assert "in 3 Dense layers" in page and "Predicted class: <strong" in page
    assert "<script>alert" not in page and "<b>Trouser" not in page and "](javascript:" not in page
    assert "&#60;b&#62;Trouser&#60;/b&#62;</option>" in page  # the name as text, whatever it holds


def test_a_colour_data_set_read_out_at_the_first_layer_says_why_there_is_no_weight_map():
    stack = random_stack([4 * 4 * 3, 6, 3], ["tanh", "softmax"])
    data = stack_data(stack, 0, random_pixels((30, 4, 4, 3), "u1"), names=["cat", "dog", "bird"])
    subject = {"unit": "unit", "units": "units", "layer": "dense_0", "trained_here": False}
    page = render_explore(explore.summary(data, 9_000), ["cat", "dog", "bird"], FASHION, subject)
    assert 'id="nk-weights"' not in page and "No weight map: the unit reads 3 colour channels per pixel" in page
    assert '<option value="2">bird</option>' in page


def test_grey_images_of_another_size_keep_the_weight_maps_at_their_own_size_but_no_drawing_pad():
    stack = random_stack([16 * 12, 8, 4], ["relu", "linear"])
    data = stack_data(stack, 0, random_pixels((30, 16, 12), "f4"), pixel_scale=1.0, names=list("abcd"))
    subject = {"unit": "unit", "units": "units", "layer": "dense_0", "trained_here": False}
    page = render_explore(explore.summary(data, 9_000), list("abcd"), FASHION, subject)
    assert 'id="nk-weights" class="nk-grid" width="12" height="16"' in page and 'id="nk-canvas"' not in page
    assert "There is no drawing pad: the network reads 16 × 12 images with 1 channel," in page


def test_mnist_sized_images_of_another_data_set_get_no_drawing_pad_and_the_page_says_why():
    """The pad prepares a drawing as MNIST's digits were made; Fashion-MNIST's images were not made so."""
    stack = random_stack([784, 8, 4], ["relu", "softmax"])
    data = stack_data(stack, 0, random_pixels((30, 28, 28), "u1"), pixel_scale=1 / 255, names=list("abcd"))
    subject = {"unit": "unit", "units": "units", "layer": "dense_0", "trained_here": False}
    page = render_explore(explore.summary(data, 9_000), list("abcd"), FASHION, subject)
    assert 'id="nk-canvas"' not in page and "## How a drawing becomes an input" not in page
    assert "the way MNIST was made" in page and "not how Fashion-MNIST's images were made" in page
    assert 'id="nk-weights" class="nk-grid" width="28" height="28"' in page  # the unit still reads pixels

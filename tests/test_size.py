"""The site's size is bounded by design: the nav lists at most NAV_LISTED_CLASSES classes and NAV_LISTED_UNITS
units (the rest are reached through the overview tables), and the Explore data holds its budget for any
number of classes and any image size, or the page is left out with the reason."""

from __future__ import annotations

import json
import re

import numpy as np
import page_fixtures
import pytest
from explore_helpers import unit_marks
from helpers import cli
from page_fixtures import user_record

from nu_keras import charts, explore, pages, site
from nu_keras.config import RunConfig
from nu_keras.errors import NuKerasError

MANY = 200  # classes: far past the nav's limit


@pytest.fixture(scope="module")
def many_classes():
    record = user_record([f"kind {c}" for c in range(MANY)], 8, conv=False, signed=False, output_weights=True)
    return record, charts.chart_names(record, None)


def test_past_the_limit_the_nav_lists_only_the_classes_overview_which_links_every_class(many_classes, tmp_path):
    metrics, names = many_classes
    pages.render_all(metrics, 3, RunConfig().project_root / "report_templates", tmp_path, charts=names)
    (classes,), (units,) = (s.values() for s in json.loads((tmp_path / pages.NAV_FILE).read_text())["nav"])
    assert classes == [{"Overview": "classes/index.md"}] and len(units) == 1 + 8
    overview = (tmp_path / "classes/index.md").read_text()
    linked = set(re.findall(r"\]\(\.\./(classes/class-\d+\.md)\)", overview))
    assert linked == {f"classes/class-{d}.md" for d in range(MANY)}
    home = (tmp_path / "index.md").read_text()
    assert "](classes/index.md)" in home and len(re.findall(r"\]\(classes/class-\d+\.md\)", home)) < 20


def test_a_many_class_site_builds_strictly_and_no_page_carries_a_nav_that_grows_with_the_classes(
    many_classes, tmp_path
):
    metrics, names = many_classes
    cfg = RunConfig(pages_dir=tmp_path / "pages", site_dir=tmp_path / "site")
    page_fixtures.write_blank_charts(names, cfg.pages_dir)
    pages.render_all(metrics, 3, cfg.project_root / "report_templates", cfg.pages_dir, charts=names)
    site.build(cfg)
    for page in ("index.html", "classes/class-7.html", "method.html"):  # (a unit page ranks every class: U x C)
        html = (cfg.site_dir / page).read_text()
        linked_classes = set(re.findall(r'href="([^"]*class-\d+\.html)"', html))
        assert len(linked_classes) <= pages.NAV_LISTED_CLASSES, (page, len(linked_classes))
    assert "classes/index.html" in (cfg.site_dir / "index.html").read_text()


def stack_and_acts(inputs: int, classes: int, per_class: int, rng: np.random.Generator) -> tuple[list, dict]:
    stack = [
        {"name": "hidden", "kernel": rng.normal(size=(inputs, 4)), "bias": np.zeros(4), "activation": "relu"},
        {"name": "out", "kernel": rng.normal(size=(4, classes)), "bias": np.zeros(classes), "activation": "softmax"},
    ]
    labels = np.repeat(np.arange(classes), per_class)
    acts = {"units": rng.uniform(size=(len(labels), 4)), "labels": labels, "predictions": (labels + 1) % classes}
    return stack, acts


@pytest.mark.parametrize("classes, shape", [(MANY, (4, 4)), (1000, (4, 4)), (12, (28, 28, 3))])
def test_the_explore_images_stay_within_their_budget_for_any_number_of_classes(classes, shape):
    rng = np.random.default_rng(0)
    stack, acts = stack_and_acts(int(np.prod(shape)), classes, 3, rng)
    images = rng.uniform(size=(len(acts["labels"]), *shape)).astype(np.float32)  # float: 4 bytes a pixel
    data = explore.explore_data(stack, 0, acts, images, unit_marks(acts), 40, 1.0, [f"k{c}" for c in range(classes)])
    assert len(data["indices"]) * images[0].nbytes <= explore.MAX_PIXEL_BYTES
    assert set(data["labels"]) == set(range(classes))  # still at least one image of every class


def test_when_one_image_of_every_class_would_break_the_budget_explore_is_left_out_with_the_reason():
    rng = np.random.default_rng(0)
    classes, shape = 100, (64, 64, 3)  # 49 KB a float image: 4.9 MB for one of each class
    stack, acts = stack_and_acts(int(np.prod(shape)), classes, 2, rng)
    images = rng.uniform(size=(len(acts["labels"]), *shape)).astype(np.float32)
    reason = explore.left_out_because(images, classes, explore.parameters(stack))
    assert reason and "100 classes" in reason and "4.9 MB" in reason and "1.4 MB" in reason
    with pytest.raises(NuKerasError, match="budget for images"):
        explore.explore_data(stack, 0, acts, images, unit_marks(acts), 40, 1.0, [f"k{c}" for c in range(classes)])


def test_a_network_too_large_to_download_leaves_explore_out_with_the_reason():
    images = np.zeros((4, 28, 28), dtype=np.uint8)
    reason = explore.left_out_because(images, 2, explore.MAX_PARAMETERS + 1)
    assert reason and "1,000,001 weights and biases" in reason
    assert explore.left_out_because(images, 2, 7960) is None


def test_a_run_whose_images_break_the_budget_publishes_no_explore_page_and_home_says_why(tmp_path):
    import keras

    classes, shape = 30, (64, 64, 3)  # 49 KB a float image: 1.5 MB for one of each class
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(classes), 2).astype(np.uint8)
    images = rng.uniform(size=(len(labels), *shape)).astype(np.float32)
    np.savez(tmp_path / "big.npz", x_train=images, y_train=labels, x_test=images, y_test=labels)
    keras.utils.set_random_seed(0)
    image = keras.Input(shape)
    hidden = keras.layers.Dense(4, activation="relu", name="hidden")(keras.layers.Flatten()(image))
    keras.Model(image, keras.layers.Dense(classes, activation="softmax")(hidden)).save(tmp_path / "big.keras")
    flags = ["--model", str(tmp_path / "big.keras"), "--layer", "hidden", "--data", str(tmp_path / "big.npz")]
    flags += ["--out", str(tmp_path / "out"), "--pages-dir", str(tmp_path / "pages")]
    for stage in ("train", "collect", "analyze", "render"):
        code, _, err = cli([stage, *flags])
        assert code == 0, err
    assert not (tmp_path / "pages" / explore.SCRIPT_NAME).exists()
    assert not (tmp_path / "pages" / "explore.md").exists()
    home = (tmp_path / "pages" / "index.md").read_text()
    assert "No Explore page: one test image of each of its 30 classes would take 1.5 MB" in home

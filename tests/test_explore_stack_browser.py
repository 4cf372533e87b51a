"""The Explore page for networks other than the paper's, in headless Chromium from disk: a colour data set
read out at a hidden layer of 256 units, and 28x28 grey images with class names. The pages are rendered
from explore.md.j2 with a hand-built context (no training), so this suite runs in seconds.
"""

from __future__ import annotations

import shutil

import markdown
import numpy as np
import pytest
from browser_helpers import REPO, new_context
from explore_helpers import (
    FASHION,
    MNIST,
    numpy_forward,
    random_pixels,
    random_stack,
    render_explore,
    stack_run,
    unit_marks,
)

from nu_keras import explore

pytestmark = pytest.mark.browser

ASSETS = REPO / "docs" / "overrides" / "assets"
NAMES = ["T-shirt/top", "<b>Trouser</b>", "Ankle boot", "Bag", "Coat"]
SHOWN_JS = """() => ({
    names: Array.from(document.querySelectorAll('.nk-output-row .nk-name'), e => e.textContent),
    markup: document.querySelectorAll('#nk-outputs b, #nk-wrong b, #nk-class b').length,
    probabilities: Array.from(document.querySelectorAll('.nk-output-row .nk-value'), e => Number(e.dataset.value)),
    hidden: Array.from(document.querySelectorAll('.nk-unit-row .nk-value'), e => Number(e.dataset.value)),
    predicted: document.getElementById('nk-predicted').textContent,
    source: document.getElementById('nk-source').textContent,
    sum: document.getElementById('nk-unit-sum').textContent,
    wrong: Array.from(document.querySelectorAll('#nk-wrong option'), e => e.textContent),
    unit: Number((document.querySelector('input[name=nk-inspect]:checked') || {value: -1}).value),
    silenced: Array.from(document.querySelectorAll('.nk-unit-row input[type=checkbox]'), e => e.checked),
    scrolls: (e => e.scrollHeight > e.clientHeight + 10)(document.getElementById('nk-units')),
    inspected_in_view: (() => {
        const list = document.getElementById('nk-units').getBoundingClientRect();
        const row = document.querySelector('input[name=nk-inspect]:checked').closest('.nk-row').getBoundingClientRect();
        return row.top >= list.top - 1 && row.bottom <= list.bottom + 1;
    })(),
})"""


def build_page(folder, stack, readout, images, pixel_scale, subject, dataset=FASHION) -> tuple[dict, dict]:
    """explore.html, explore-data.js and the page's assets in `folder`; the data and the run behind them."""
    acts = stack_run(stack, readout, images, pixel_scale, len(NAMES))
    data = explore.explore_data(stack, readout, acts, images, unit_marks(acts), 6, pixel_scale, NAMES)
    summary = explore.write_script(folder / explore.SCRIPT_NAME, data)
    body = markdown.markdown(render_explore(summary, NAMES, dataset, subject).split("---", 2)[2])
    # the page's own style and script, as the theme (docs/overrides/main.html) names them on a site's Explore page
    style, script = (
        '<link rel="stylesheet" href="assets/stylesheets/explore.css">',
        '<script src="assets/javascripts/explore.js"></script>',
    )
    head = f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Explore</title>{style}</head>'
    (folder / "explore.html").write_text(f"{head}<body>{body}{script}</body></html>")
    for kind, name in (("javascripts", "explore.js"), ("stylesheets", "explore.css")):
        (folder / "assets" / kind).mkdir(parents=True, exist_ok=True)
        shutil.copy(ASSETS / kind / name, folder / "assets" / kind / name)
    return data, acts


def open_page(browser, folder, fragment: str = ""):
    """The page from disk; fails the test on any console error."""
    context = new_context(browser)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    page.goto((folder / "explore.html").as_uri() + fragment, wait_until="load")
    page.wait_for_selector("#nk-app:not([hidden])")
    return context, page, errors


def test_a_colour_network_read_out_at_256_hidden_units_runs_in_the_page(browser, tmp_path):
    stack = random_stack([8 * 8 * 3, 24, 256, 5], ["relu", "relu", "softmax"], seed=5)
    images = random_pixels((200, 8, 8, 3), "u1", seed=6)
    subject = {"unit": "unit", "units": "units", "layer": "dense_1", "trained_here": False}
    data, acts = build_page(tmp_path, stack, 1, images, 1 / 255, subject)
    index = data["indices"][3]
    context, page, errors = open_page(browser, tmp_path, f"#image={index}&unit=200&silenced=3")
    shown = page.evaluate(SHOWN_JS)
    assert shown["names"] == NAMES and shown["markup"] == 0  # untrusted names arrive as text
    assert len(shown["hidden"]) == 256 and shown["scrolls"] and shown["unit"] == 200 and shown["inspected_in_view"]
    assert [u for u, on in enumerate(shown["silenced"]) if on] == [3]
    x = explore.model_input(images[index : index + 1], 1 / 255)
    hidden, probabilities = numpy_forward(stack, x, 1, 3, 0.0)
    assert np.abs(np.array(shown["probabilities"]) - probabilities[0]).max() < 1e-5
    assert np.abs(np.array(shown["hidden"]) - hidden[0]).max() < 1e-5
    true = NAMES[int(acts["labels"][index])]
    assert shown["source"].startswith(f"Test image {index}, true label {true}")
    assert shown["predicted"] == NAMES[int(probabilities.argmax())] and "activation relu" in shown["sum"]
    assert any(" taken for " in text for text in shown["wrong"][1:])
    assert page.locator("#nk-canvas").count() == 0 and page.locator("#nk-weights").count() == 0
    page.click("#nk-bar-3")  # back on: nothing silenced, the numpy numbers of the intact network
    _, intact = numpy_forward(stack, x, 1)
    assert np.abs(np.array(page.evaluate(SHOWN_JS)["probabilities"]) - intact[0]).max() < 1e-5
    page.select_option("#nk-class", "2")
    page.click("#nk-next")
    assert "true label Ankle boot" in page.evaluate(SHOWN_JS)["source"]
    context.close()
    assert not errors, errors


def test_a_user_model_on_mnist_keeps_the_drawing_pad_and_the_pixel_maps(browser, tmp_path):
    stack = random_stack([784, 32, 5], ["relu", "softmax"], seed=7)
    images = random_pixels((120, 28, 28), "u1", seed=8)
    subject = {"unit": "unit", "units": "units", "layer": "dense_0", "trained_here": False}
    build_page(tmp_path, stack, 0, images, 1 / 255, subject, MNIST)
    context, page, errors = open_page(browser, tmp_path)
    box = page.locator("#nk-canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.8, steps=12)
    page.mouse.up()
    shown = page.evaluate(SHOWN_JS)
    assert "drawing" in shown["source"] and shown["predicted"] in NAMES and "Sum of w" in shown["sum"]
    assert page.locator("#nk-weights").is_visible() and page.locator("#nk-contribution").is_visible()
    context.close()
    assert not errors, errors

"""The Explore page of a real run in headless Chromium, used as a reader would: drawn with the mouse and a
finger, driven by the keyboard, opened from HTTP and from disk; its numbers checked against Keras and numpy.

Shares the session's real run and browser (tests/conftest.py) with tests/test_browser.py, which already
visits every page (Explore included) for HTTP status, images, links and axe-core on first load.
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from browser_helpers import REPO, axe_script, need, new_context, serve

pytestmark = pytest.mark.browser

SCREENSHOTS = REPO / "site-screenshots"
PHONE = {"width": 390, "height": 844}
AXE_JS = """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => `${v.id}: ${v.help} at ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ')}`)"""
SHOWN_JS = """() => ({
    predicted: document.getElementById('nk-predicted').dataset.value,
    probabilities: Array.from(document.querySelectorAll('.nk-output-row .nk-value'), e => Number(e.dataset.value)),
    probability_texts: Array.from(document.querySelectorAll('.nk-output-row .nk-value'), e => e.textContent),
    hidden: Array.from(document.querySelectorAll('.nk-unit-row .nk-value'), e => Number(e.dataset.value)),
    source: document.getElementById('nk-source').textContent,
    live: document.getElementById('nk-live').textContent,
    unit: Number((document.querySelector('input[name=nk-inspect]:checked') || {value: -1}).value),
    silenced: Array.from(document.querySelectorAll('.nk-unit-row input[type=checkbox]'), e => e.checked),
    mode: document.querySelector('input[name=nk-mode]:checked').value,
    hash: location.hash,
})"""
PARITY_JS = """() => {
    const E = window.NuKerasExplore, net = E.loadNetwork(window.NU_KERAS_EXPLORE);
    const images = E.loadImages(window.NU_KERAS_EXPLORE), out = {hidden: [], probabilities: [], predicted: [],
          zero: [], mean: []};
    for (let row = 0; row < images.count; row++) {
        const x = E.imageInput(images, row), r = E.forward(net, x);
        out.hidden.push(Array.from(r.hidden)); out.probabilities.push(Array.from(r.probabilities));
        out.predicted.push(r.predicted);
        for (const mode of ['zero', 'mean']) {
            out[mode].push(Array.from({length: net.units}, (_, unit) => {
                const silenced = Array.from({length: net.units}, (_, u) => u === unit);
                const s = E.forward(net, x, silenced, mode);
                return [Array.from(s.probabilities), s.predicted];
            }));
        }
    }
    return out;
}"""


def one(t: float) -> tuple[float, float]:
    """A hand-drawn "1": a short up-stroke into a slightly slanted stem (t in [0, 1], canvas units)."""
    if t < 0.15:
        return 0.42 + 0.6 * t, 0.26 - 0.6 * t
    s = (t - 0.15) / 0.85
    return 0.51 - 0.05 * s, 0.17 + 0.66 * s


def zero(t: float) -> tuple[float, float]:
    """A hand-drawn "0": an upright ellipse, started at the top, drawn anticlockwise, overshooting a little."""
    angle = 2 * math.pi * 1.05 * t
    return 0.5 - 0.2 * math.sin(angle) + 0.02 * t, 0.5 - 0.32 * math.cos(angle)


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def base_url(site):
    with serve(site) as url:
        yield url


@pytest.fixture(scope="module")
def run(report_root, site) -> dict:
    """The run behind the site: Keras's own activations and the weights, and the data the page ships."""
    folder = report_root / "artifacts"
    if not (folder / "activations.npz").is_file():
        pytest.skip(f"no artifacts beside NU_KERAS_TEST_SITE (looked in {folder})")
    text = (site / "explore-data.js").read_text()
    data = json.loads(text[text.index("{") : text.rindex("}") + 1])
    pixels = np.frombuffer(base64.b64decode(data["images"]), np.uint8).reshape(-1, 28, 28)
    return {
        "acts": dict(np.load(folder / "activations.npz")),
        "float32_weights": dict(np.load(folder / "weights.npz")),
        "weights": {k: v.astype(np.float64) for k, v in np.load(folder / "weights.npz").items()},
        "model": folder / "model.keras",
        "data": data,
        "pixels": pixels,
        "indices": np.array(data["indices"]),
        "means": np.frombuffer(base64.b64decode(data["unit_means"]), "<f4").astype(np.float64),
    }


class Reader:
    """One browser tab on the Explore page that records console errors and every request it makes."""

    def __init__(self, browser, base_url: str | None, **options):
        self.context = new_context(browser, base_url, **options)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.page.on("requestfailed", self._failed)
        self.page.on("request", lambda r: self.requests.append(r.url))

    def _failed(self, request) -> None:
        """A request the browser cancelled because the reader left the page (a favicon still loading when a
        link is followed: net::ERR_ABORTED) is no failure of the site; any other is."""
        if request.failure != "net::ERR_ABORTED":
            self.errors.append(f"failed: {request.url} ({request.failure})")

    def open(self, url: str) -> None:
        self.page.goto(url, wait_until="load")
        self.page.wait_for_selector("#nk-app:not([hidden])")

    def shown(self) -> dict:
        return self.page.evaluate(SHOWN_JS)

    def on_canvas(self, shape, points: int) -> list[tuple[float, float]]:
        """`points` positions along `shape(t)`, t in [0, 1], from canvas units to page pixels."""
        box = self.page.locator("#nk-canvas").bounding_box()
        along = [shape(t) for t in np.linspace(0, 1, points)]
        return [(box["x"] + box["width"] * x, box["y"] + box["height"] * y) for x, y in along]

    def draw(self, shape, points: int = 40) -> None:
        """One stroke with real mouse events along `shape(t)`, in canvas units."""
        at = self.on_canvas(shape, points)
        self.page.mouse.move(*at[0])
        self.page.mouse.down()
        for x, y in at[1:]:
            self.page.mouse.move(x, y, steps=2)
        self.page.mouse.up()

    def finger(self, shape, points: int = 40) -> None:
        """The same stroke as touch events (a finger on a phone), through Chromium's input pipeline."""
        cdp = self.context.new_cdp_session(self.page)
        at = self.on_canvas(shape, points)
        for i, (x, y) in enumerate(at):
            kind = "touchStart" if i == 0 else "touchMove"
            cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y}]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})

    def tab_to(self, element_id: str, limit: int = 80) -> None:
        """Press Tab until the element has the focus: proof it is reachable by keyboard alone."""
        for _ in range(limit):
            if self.page.evaluate("() => document.activeElement && document.activeElement.id") == element_id:
                return
            self.page.keyboard.press("Tab")
        pytest.fail(f"#{element_id} not reached with {limit} presses of Tab")

    def serious_violations(self) -> list[str]:
        axe = axe_script()
        need(axe, "axe-core (npm) is not installed: no axe.min.js")
        if not self.page.evaluate("() => typeof axe !== 'undefined'"):
            self.page.add_script_tag(path=str(axe))
        return self.page.evaluate(AXE_JS)

    def close(self, local_prefix: str) -> None:
        """Fail on a console error or on any request that went anywhere but the site itself."""
        self.context.close()
        assert not self.errors, self.errors
        elsewhere = [u for u in self.requests if not u.startswith(local_prefix) and urlsplit(u).scheme != "data"]
        assert not elsewhere, elsewhere
        assert self.requests


def open_reader(browser, site: Path, base_url: str, where: str, **options) -> tuple[Reader, str, str]:
    """A Reader on explore.html from HTTP or from disk; also the page URL and the prefix requests must keep."""
    if where == "http":
        reader = Reader(browser, base_url, **options)
        return reader, base_url + "explore.html", base_url
    reader = Reader(browser, None, **options)
    return reader, (site / "explore.html").as_uri(), site.as_uri()


def screenshot(page, name: str) -> None:
    """The whole page for review, scrolled to the top first so the sticky header stays on top."""
    SCREENSHOTS.mkdir(exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=SCREENSHOTS / name, full_page=True, animations="disabled")


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def numpy_forward(run: dict, x: np.ndarray, silenced=(), mode: str = "zero") -> tuple[np.ndarray, np.ndarray]:
    """An independent forward pass over the run's weights.npz: hidden activations and probabilities."""
    w = run["weights"]
    hidden = np.maximum(x.reshape(-1) @ w["hidden_kernel"] + w["hidden_bias"], 0.0)
    for unit in silenced:
        hidden[unit] = run["means"][unit] if mode == "mean" else 0.0
    return hidden, softmax(hidden @ w["output_kernel"] + w["output_bias"])


# ------------------------------------------------------------------------------------------------- parity


def test_the_page_computes_what_keras_computed_on_every_shipped_image(browser, base_url, site, run):
    added = (site / "explore-data.js").stat().st_size
    print(f"\nexplore-data.js: {added} bytes, {len(run['indices'])} images")
    assert added < 2_000_000
    layers = run["data"]["layers"]  # hidden and output, as weights.npz's stack_0_* and stack_1_*
    stack = {key: value for key, value in run["float32_weights"].items() if key.startswith("stack_")}
    for key, stored in stack.items():  # this run's exact weights, all 7,960 of them
        _, index, part = key.split("_")
        assert base64.b64decode(layers[int(index)][part]) == np.asarray(stored, "<f4").tobytes(), key
    assert sum(w.size for w in stack.values()) == 7960
    reader, url, local = open_reader(browser, site, base_url, "http")
    reader.open(url)
    js = reader.page.evaluate(PARITY_JS)
    reader.close(local)
    acts, rows = run["acts"], run["indices"]
    hidden_error = np.abs(np.array(js["hidden"]) - acts["units"][rows]).max()
    probability_error = np.abs(np.array(js["probabilities"]) - acts["probabilities"][rows]).max()
    print(f"\nparity over {len(rows)} images: hidden {hidden_error:.2e}, probabilities {probability_error:.2e}")
    assert hidden_error < 1e-5 and probability_error < 1e-5
    assert js["predicted"] == acts["predictions"][rows].tolist()
    x = (run["pixels"].reshape(len(rows), -1) / np.float32(255)).astype(np.float64)  # Keras's float32 inputs
    numpy_hidden, numpy_probabilities = zip(*(numpy_forward(run, image) for image in x), strict=True)
    exact = max(
        np.abs(np.array(js["hidden"]) - numpy_hidden).max(),
        np.abs(np.array(js["probabilities"]) - np.array(numpy_probabilities)).max(),
    )
    print(f"against numpy in float64: {exact:.1e} (the rest of the gap to Keras is Keras's float32 rounding)")
    assert exact < 1e-9
    from nu_keras.ablation import dense_ablated_predictions

    hidden = acts["units"][rows].astype(np.float64)
    w2, b2 = run["weights"]["output_kernel"], run["weights"]["output_bias"]
    for unit in range(hidden.shape[1]):
        for mode in ("zero", "mean"):
            ablated = hidden.copy()
            ablated[:, unit] = run["means"][unit] if mode == "mean" else 0.0
            shown = np.array([per_unit[unit][0] for per_unit in js[mode]])
            assert np.abs(shown - softmax(ablated @ w2 + b2)).max() < 1e-5, (unit, mode)
            expected = (
                dense_ablated_predictions(hidden, w2, b2, unit) if mode == "zero" else (ablated @ w2 + b2).argmax(1)
            )
            assert [per_unit[unit][1] for per_unit in js[mode]] == expected.tolist(), (unit, mode)


# ------------------------------------------------------------------------------------ drawing and picking


@pytest.mark.parametrize("where", ["http", "file"])
def test_a_drawn_one_and_zero_are_recognised(where, browser, base_url, site, run):
    reader, url, local = open_reader(browser, site, base_url, where)
    reader.open(url)
    before = reader.shown()
    small = lambda shape: lambda t: tuple(0.04 + 0.4 * v for v in shape(t))  # noqa: E731 (top-left corner)
    for shape, digit in [(one, "1"), (zero, "0"), (small(one), "1"), (small(zero), "0")]:
        reader.page.click("#nk-clear")
        reader.draw(shape)
        shown = reader.shown()
        assert shown["predicted"] == digit, (digit, shown["probabilities"])
        assert shown["hidden"] != before["hidden"] and shown["probabilities"] != before["probabilities"]
        assert f"Predicted digit {digit}" in shown["live"] and "drawing" in shown["source"]
        assert "image=" not in shown["hash"]  # a drawing is no test image
        before = shown
        if where == "http" and shape is zero:
            screenshot(reader.page, "explore-drawn.png")
    reader.close(local)


def test_a_picked_test_image_shows_the_probabilities_keras_gives(browser, base_url, site, run):
    """The first misclassified image in the list: its probabilities against model.keras and activations.npz."""
    from nu_keras import model as mdl

    reader, url, local = open_reader(browser, site, base_url, "http")
    reader.open(url)
    reader.page.select_option("#nk-wrong", index=1)
    shown = reader.shown()
    index = int(shown["source"].split()[2].rstrip(","))
    row = int(np.flatnonzero(run["indices"] == index)[0])
    keras_p = mdl.load_model(run["model"]).predict(run["pixels"][row : row + 1] / np.float32(255), verbose=0)[0]
    assert np.abs(np.array(shown["probabilities"]) - keras_p).max() < 1e-5
    assert np.abs(np.array(shown["probabilities"]) - run["acts"]["probabilities"][index]).max() < 1e-5
    for p, text in zip(shown["probabilities"], shown["probability_texts"], strict=True):
        assert text == f"{100 * p:.2f} %".replace("-", "\u2212")
    label = int(run["acts"]["labels"][index])
    assert int(shown["predicted"]) == run["acts"]["predictions"][index] != label
    assert f"true label {label}" in shown["source"] and "misclassified" in shown["source"]
    assert shown["hash"].startswith(f"#image={index}&")
    reader.close(local)


def test_silencing_a_unit_gives_the_numpy_numbers(browser, base_url, site, run):
    """Silence the predicted digit's preferred unit by its bar, then switch to mean mode, then reset."""
    reader, url, local = open_reader(browser, site, base_url, "http")
    reader.open(url + "#image=" + str(run["indices"][0]))
    x = run["pixels"][0] / np.float32(255)
    unit = run["data"]["preferred_unit"][int(run["acts"]["predictions"][run["indices"][0]])]
    reader.page.click(f"#nk-bar-{unit}")
    shown = reader.shown()
    assert shown["silenced"][unit] and reader.page.get_attribute(f"#nk-bar-{unit}", "aria-pressed") == "true"
    hidden, probabilities = numpy_forward(run, x, [unit])
    assert np.abs(np.array(shown["probabilities"]) - probabilities).max() < 1e-5
    assert np.abs(np.array(shown["hidden"]) - hidden).max() < 1e-5
    assert f"silenced={unit}" in shown["hash"]
    reader.page.check("#nk-mode-mean")
    shown = reader.shown()
    _, probabilities = numpy_forward(run, x, [unit], "mean")
    assert np.abs(np.array(shown["probabilities"]) - probabilities).max() < 1e-5 and "mode=mean" in shown["hash"]
    screenshot(reader.page, "explore-silenced.png")
    reader.page.click("#nk-reset")
    shown = reader.shown()
    assert not any(shown["silenced"])
    assert np.abs(np.array(shown["probabilities"]) - numpy_forward(run, x)[1]).max() < 1e-5
    reader.close(local)


def test_everything_works_from_the_keyboard_alone(browser, base_url, site, run):
    reader, url, local = open_reader(browser, site, base_url, "http")
    reader.open(url)
    keys = reader.page.keyboard
    reader.tab_to("nk-class")
    for _ in range(3):
        keys.press("ArrowDown")  # digit 3
    reader.tab_to("nk-next")
    keys.press("Enter")
    shown = reader.shown()
    assert "true label 3" in shown["source"], shown["source"]
    first = shown["source"]
    keys.press("Enter")
    assert reader.shown()["source"] != first and "true label 3" in reader.shown()["source"]
    reader.tab_to("nk-inspect-" + str(reader.shown()["unit"]))
    keys.press("ArrowDown")  # the next unit of the radio group
    chosen = reader.shown()["unit"]
    assert f"Unit {chosen}" in reader.page.inner_text("#nk-unit-title") and f"unit={chosen}" in reader.shown()["hash"]
    reader.tab_to(f"nk-bar-{chosen}")
    keys.press("Space")
    assert reader.shown()["silenced"][chosen]
    reader.tab_to(f"nk-silence-{chosen}")
    keys.press("Space")
    assert not reader.shown()["silenced"][chosen]
    reader.tab_to("nk-mode-zero")
    keys.press("ArrowDown")
    assert reader.shown()["mode"] == "mean"
    reader.tab_to("nk-random")
    keys.press("Enter")
    assert "Test image" in reader.shown()["source"]
    assert "Predicted digit" in reader.shown()["live"]
    reader.close(local)


# ------------------------------------------------------------------------------ links, fragment, layout, a11y


@pytest.mark.parametrize("where", ["http", "file"])
def test_the_url_fragment_restores_a_view_and_follows_it(where, browser, base_url, site, run):
    index = int(run["indices"][5])
    reader, url, local = open_reader(browser, site, base_url, where)
    reader.open(url + f"#image={index}&unit=3&silenced=2,5&mode=mean")
    shown = reader.shown()
    assert f"Test image {index}," in shown["source"] and shown["unit"] == 3 and shown["mode"] == "mean"
    assert [i for i, on in enumerate(shown["silenced"]) if on] == [2, 5]
    _, probabilities = numpy_forward(run, run["pixels"][5] / np.float32(255), [2, 5], "mean")
    assert np.abs(np.array(shown["probabilities"]) - probabilities).max() < 1e-5
    reader.page.check("#nk-inspect-4")
    assert reader.page.evaluate("location.hash") == f"#image={index}&unit=4&silenced=2,5&mode=mean"
    reader.page.evaluate("location.hash = '#unit=7'")  # a link followed within the page
    reader.page.wait_for_function("document.querySelector('#nk-inspect-7').checked")
    assert not any(reader.shown()["silenced"])
    reader.close(local)


def test_a_broken_or_unknown_fragment_shows_a_default_view_without_error(browser, base_url, site, run):
    reader, url, local = open_reader(browser, site, base_url, "http")
    reader.open(url + "#image=%E0%A4%A&unit=__proto__&silenced=x,99&mode=<b>")
    shown = reader.shown()
    assert "is not among the images" in shown["source"] and f"Test image {run['indices'][0]}," in shown["source"]
    assert not any(shown["silenced"]) and shown["mode"] == "zero"
    reader.page.evaluate("location.hash = '#image=__proto__'")
    reader.page.evaluate("location.hash = '#image=99999&unit=2'")
    reader.page.wait_for_function("document.querySelector('#nk-inspect-2').checked")
    assert "Test image 99999 is not among the images this page carries" in reader.shown()["source"]
    reader.close(local)


def test_neuron_and_digit_pages_open_their_view_in_explore(browser, base_url, site, run):
    reader = Reader(browser, base_url)
    reader.page.goto(base_url + "neurons/neuron-3.html", wait_until="networkidle")
    reader.page.click("text=Open neuron 3 in Explore")
    reader.page.wait_for_selector("#nk-app:not([hidden])")
    assert reader.shown()["unit"] == 3
    reader.page.goto(base_url + "digits/digit-4.html", wait_until="networkidle")
    first_four = int(np.flatnonzero(run["acts"]["labels"] == 4)[0])
    reader.page.click(f"a[href$='explore.html#image={first_four}&unit={run['data']['preferred_unit'][4]}']")
    reader.page.wait_for_selector("#nk-app:not([hidden])")
    assert f"Test image {first_four}, true label 4" in reader.shown()["source"]
    reader.close(base_url)


def test_no_serious_accessibility_violation_at_desktop_and_phone_width(browser, base_url, site, run):
    for viewport in ({"width": 1280, "height": 800}, PHONE):
        reader, url, local = open_reader(browser, site, base_url, "http", viewport=viewport)
        reader.open(url)
        reader.draw(one)
        reader.page.click("#nk-bar-0")
        assert reader.serious_violations() == [], viewport
        reader.close(local)


def test_a_finger_draws_on_a_phone_width_page_that_fits_the_screen(browser, base_url, site, run):
    reader, url, local = open_reader(browser, site, base_url, "file", viewport=PHONE, has_touch=True, is_mobile=True)
    reader.open(url)
    overflow = reader.page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than the phone's screen"
    width = reader.page.locator("#nk-canvas").bounding_box()["width"]
    assert width >= 250, width
    reader.page.locator("#nk-canvas").scroll_into_view_if_needed()
    reader.finger(zero)
    assert reader.shown()["predicted"] == "0", reader.shown()["probabilities"]
    screenshot(reader.page, "explore-phone.png")
    reader.close(local)

"""A convnet's site in a real browser: its channel pages show where a channel fires, and nothing is broken.

A small net shaped like Keras's "Simple MNIST convnet" (Conv2D → MaxPool → Conv2D → MaxPool → Flatten →
Dropout → Dense softmax, with fewer channels) is trained here for one epoch on 3 000 real MNIST images given
as a user's file, and `nu-keras report --layer all` builds its site in a temporary folder. Debian's Chromium
then opens the cross-layer overview, the first conv layer's summary and one of its channel pages over HTTP:
no console error and no failed request, no axe-core violation, every image loaded, and the channel page shows
its maps over the top images, the receptive-field crops, the class mean maps, the first layer's filter and
the feature visualisation. Then the same for every page of that layer and two pages of every other layer.

`check_site` and `assert_channel_figures` take a site folder and page paths.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import pytest
from browser_helpers import REPO, new_context, serve
from conftest import report_argv
from helpers import simple_mnist_convnet

from nu_keras.data import load_mnist

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CHANNELS = (8, 16)  # the example's 32 and 64, quartered: the same shape, trained in seconds
CHANNEL = 0
FIRST = "conv2d"  # the layer that reads the pixels: its channel pages show their filters
MAPS = ["max_pooling2d", "conv2d_1", "max_pooling2d_1"]  # the other layers of maps
UNITS = f"{FIRST}/units"  # the folder of the first layer's channel pages in the site of every layer
PAGES = ["index.html", f"{FIRST}/index.html", f"{UNITS}/unit-{CHANNEL}.html"]  # the overview, then the layer's
# What a conv channel page shows (issue 20), by the chart's file name; a pixel-reading layer adds its filter
CHANNEL_FIGURES = {
    "activation maps over the top images": "maps",
    "receptive-field crops": "crops",
    "class mean maps": "class-maps",
    "feature visualisation": "featvis",
}
FIRST_LAYER_FIGURES = CHANNEL_FIGURES | {"filter": "filter"}

AXE_JS = """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
    .map(v => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ')}`)"""
IMAGES_JS = """() => Array.from(document.querySelectorAll('article img'), img => {
    const box = img.getBoundingClientRect();
    return {src: img.getAttribute('src'), alt: img.getAttribute('alt') || '', loaded: img.complete,
            width: img.naturalWidth, shown: box.width > 0 && box.height > 0};
})"""
ALL_IMAGES_JS = """() => Array.from(document.images, img => ({src: img.getAttribute('src'),
    loaded: img.complete && img.naturalWidth > 0}))"""


# ------------------------------------------------------------------------------ checking pages of any site


@dataclass
class Seen:
    """What opening one page over HTTP recorded."""

    status: int | None = None
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    broken_images: list[str] = field(default_factory=list)
    figures: list[dict] = field(default_factory=list, repr=False)  # the images of the page's content

    def problems(self) -> list[str]:
        status = [] if self.status == 200 else [f"HTTP {self.status}"]
        broken = [f"image not loaded: {src}" for src in self.broken_images]
        return status + self.console_errors + self.failed_requests + self.violations + broken


def check_site(browser, site: Path, pages: list[str], axe_js: Path) -> dict[str, Seen]:
    """Open each of `pages` (paths relative to `site`) over HTTP on 127.0.0.1 and fail with one line per
    page that answers other than 200, logs a console error, fails a request, leaves an image unloaded or
    has any axe-core violation (every impact, default rules); return what each visit saw."""
    seen: dict[str, Seen] = {}
    with serve(site) as base_url:
        context = new_context(browser, base_url)
        page = context.new_page()
        current = [Seen()]
        page.on("console", lambda m: m.type == "error" and current[0].console_errors.append(m.text))
        page.on("pageerror", lambda e: current[0].console_errors.append(f"uncaught: {e}"))
        page.on("requestfailed", lambda r: current[0].failed_requests.append(f"{r.url}: {r.failure}"))
        page.on("response", lambda r: r.status >= 400 and current[0].failed_requests.append(f"{r.url}: {r.status}"))
        try:
            for name in pages:
                visit = current[0] = seen[name] = Seen()
                response = page.goto(base_url + name, wait_until="networkidle")
                visit.status = response.status if response else None
                visit.broken_images = [i["src"] for i in page.evaluate(ALL_IMAGES_JS) if not i["loaded"]]
                visit.figures = page.evaluate(IMAGES_JS)
                page.add_script_tag(path=str(axe_js))
                visit.violations = page.evaluate(AXE_JS)
        finally:
            context.close()
    lines = [f"{name}: {problem}" for name, visit in seen.items() for problem in visit.problems()]
    assert not lines, "\n".join(lines)
    return seen


def assert_channel_figures(visit: Seen, figures: dict[str, str]) -> None:
    """The page shows each of `figures` (what -> the chart's name, unit-N-NAME.png or .svg): loaded, laid
    out at a visible size, with alt text that names it."""
    missing = []
    for what, name in figures.items():
        pattern = re.compile(rf"(^|/)unit-\d+-{re.escape(name)}\.(png|svg)$")
        found = [image for image in visit.figures if pattern.search(image["src"] or "")]
        if not found:
            missing.append(f"{what}: no unit-N-{name} image")
        elif not all(i["loaded"] and i["width"] > 0 and i["shown"] and len(i["alt"].strip()) > 20 for i in found):
            missing.append(f"{what}: {found}")
    assert not missing, "\n".join(missing)


# ----------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def convnet_site(tmp_path_factory) -> Path:
    """The convnet trained one epoch on 3 000 real MNIST images (a few seconds), saved as a user's model, and
    `nu-keras report --layer all` on it with 500 test images; every output folder is in a temp folder."""
    root = tmp_path_factory.mktemp("convnet")
    mnist = load_mnist(None, None)
    arrays = {"x_train": mnist.x_train[:3000], "y_train": mnist.y_train[:3000]}
    arrays |= {"x_test": mnist.x_test[:500], "y_test": mnist.y_test[:500]}
    np.savez(root / "mnist.npz", **arrays)
    keras.utils.set_random_seed(0)
    model = simple_mnist_convnet(CHANNELS, name="convnet")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(arrays["x_train"][..., None] / 255.0, arrays["y_train"], epochs=1, batch_size=32, verbose=0)
    model.save(root / "convnet.keras")
    flags = ["--model", str(root / "convnet.keras"), "--layer", "all", "--data", str(root / "mnist.npz"), "-q"]
    done = subprocess.run(report_argv(root, *flags), capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "site"


# ------------------------------------------------------------------------------------------------- tests


def test_the_first_conv_layers_pages_are_clean_and_show_where_a_channel_fires(browser, convnet_site, axe_js):
    seen = check_site(browser, convnet_site, PAGES, axe_js)
    assert_channel_figures(seen[PAGES[2]], FIRST_LAYER_FIGURES)


def test_every_page_of_the_site_is_clean_and_every_channel_page_shows_its_figures(browser, convnet_site, axe_js):
    """Every page of the first layer (about 30, half a minute), not only the ones above: a dead or flat channel
    draws its charts differently, and the class, method and run pages describe a conv layer in words of their
    own; and of every other layer its summary and first unit page (each layer of maps shows its figures)."""
    first = sorted(p.relative_to(convnet_site).as_posix() for p in (convnet_site / FIRST).rglob("*.html"))
    channels = [name for name in first if re.fullmatch(rf"{UNITS}/unit-\d+\.html", name)]
    assert len(channels) == CHANNELS[0]
    others = [f"{layer}/{page}" for layer in [*MAPS, "dense"] for page in ("index.html", "units/unit-0.html")]
    seen = check_site(browser, convnet_site, ["index.html", *first, *others], axe_js)
    for name in channels:
        assert_channel_figures(seen[name], FIRST_LAYER_FIGURES)
    for layer in MAPS:
        assert_channel_figures(seen[f"{layer}/units/unit-0.html"], CHANNEL_FIGURES)


def test_the_checks_catch_a_missing_figure(browser, convnet_site, axe_js, tmp_path):
    """A copy of the site without one channel's crops: the page check names the unloaded image, and the
    figure check names the figure, so a page that lost a figure cannot pass."""
    site = tmp_path / "site"
    shutil.copytree(convnet_site, site)
    crops = next((site / FIRST / "img").glob(f"unit-{CHANNEL}-crops.*"))
    crops.unlink()
    with pytest.raises(AssertionError, match=rf"{re.escape(PAGES[2])}: .*{crops.name}"):
        check_site(browser, site, PAGES[2:], axe_js)
    maps = {"src": f"../img/unit-{CHANNEL}-maps.png", "alt": "", "loaded": True, "width": 1, "shown": True}
    seen = Seen(figures=[maps])
    with pytest.raises(AssertionError, match="receptive-field crops: no unit-N-crops image"):
        assert_channel_figures(seen, {"receptive-field crops": "crops"})
    with pytest.raises(AssertionError, match="activation maps over the top images"):
        assert_channel_figures(seen, {"activation maps over the top images": "maps"})  # no alt text

"""Names nu-keras did not choose are shown as text: terminal escape sequences, bidi controls and invisible
characters in class, layer and model names reach pages, nav, charts, the Explore data and the terminal
as visible escapes; class names that differ only by what cannot be seen are refused."""

from __future__ import annotations

import json
import logging
import re

import numpy as np
import pytest
from explore_helpers import unit_marks
from helpers import assert_one_line_error, cli
from page_fixtures import user_record, write_blank_charts

from nu_keras import charts, data, explore, names, pages, site
from nu_keras.config import PROJECT_ROOT, RunConfig

TERMINAL_ESCAPES = "\x1b]0;pwned\x07\x1b[2K\x1b]52;c;cHduZWQ=\x07"  # set the title, erase the line, write the clipboard
BIDI = "\u202e21 \u2066x\u2069"  # right-to-left override: '12 ' would read reversed, numbers included
INVISIBLE = "\u200b\ufeff\u200f"
HIDDEN_CHARACTERS = {c for c in TERMINAL_ESCAPES + BIDI + INVISIBLE if not c.isprintable()}
NAMES = [f"cat{TERMINAL_ESCAPES}", f"dog{BIDI}", f"bird{INVISIBLE}", "plain"]


def assert_nothing_hidden(text: str) -> None:
    found = sorted({f"U+{ord(c):04X}" for c in text if c in HIDDEN_CHARACTERS})
    assert not found, found


def test_shown_writes_control_bidi_and_invisible_characters_as_escapes_and_keeps_the_rest():
    assert names.shown("cat\x1b[2K") == "cat\\x1b[2K"
    assert names.shown("dog\u202e12") == "dog\\u202e12"
    assert names.shown("a\u200bb\U000e0001") == "a\\u200bb\\U000e0001"
    assert names.shown("Ankle boot 3 \u00a0é 猫 <b>") == "Ankle boot 3 \u00a0é 猫 <b>"  # printable and spaces stay
    assert_nothing_hidden(names.shown("".join(NAMES)))


def test_hidden_characters_in_class_layer_and_model_names_reach_no_page_or_nav_unescaped(tmp_path):
    subject = {"layer": f"dense{BIDI}", "model_name": f"net{TERMINAL_ESCAPES}"}
    dataset = {"title": f"data{INVISIBLE}.npz"}
    record = user_record(NAMES, 5, conv=False, signed=False, output_weights=True, subject=subject, dataset=dataset)
    names_of_charts = charts.chart_names(record, None)
    pages.render_all(record, 3, PROJECT_ROOT / "report_templates", tmp_path, charts=names_of_charts)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == pages.NAV_FILE for p in written) and len(written) > 10
    for page in written:
        assert_nothing_hidden(page.read_text(encoding="utf-8"))
    index = (tmp_path / "index.md").read_text(encoding="utf-8")
    assert "dog\\u202e21" in index  # visible as the escape a reader can report
    nav = json.loads((tmp_path / pages.NAV_FILE).read_text(encoding="utf-8"))
    titles = [title for entry in nav["nav"][0]["Classes"] for title in entry]
    assert "Dog\\u202e21 \\u2066x\\u2069" in titles
    assert "net\\x1b" in nav["site_name"]


def test_hidden_characters_in_names_reach_no_built_html_title_or_search_index_unescaped(tmp_path):
    subject = {"layer": f"dense{BIDI}", "model_name": f"net{TERMINAL_ESCAPES}"}
    record = user_record(NAMES, 5, conv=False, signed=False, output_weights=True, subject=subject)
    names_of_charts = charts.chart_names(record, None)
    cfg = RunConfig(pages_dir=tmp_path / "pages", site_dir=tmp_path / "site")
    write_blank_charts(names_of_charts, cfg.pages_dir)
    pages.render_all(record, 3, cfg.project_root / "report_templates", cfg.pages_dir, charts=names_of_charts)
    site.build(cfg)
    built = [*cfg.site_dir.rglob("*.html"), cfg.site_dir / "search" / "search_index.json"]
    for page in built:
        assert_nothing_hidden(page.read_text(encoding="utf-8"))
    title = re.search(r"<title>(.*?)</title>", (cfg.site_dir / "classes/class-1.html").read_text()).group(1)
    assert "Dog\\u202e21" in title and "net\\x1b" in title


def test_hidden_characters_in_names_reach_the_explore_data_as_visible_escapes():
    rng = np.random.default_rng(0)
    stack = [
        {"name": f"hidden{BIDI}", "kernel": rng.normal(size=(4, 3)), "bias": np.zeros(3), "activation": "relu"},
        {"name": "out", "kernel": rng.normal(size=(3, 4)), "bias": np.zeros(4), "activation": "softmax"},
    ]
    labels = np.arange(8) % 4
    acts = {"units": rng.uniform(size=(8, 3)), "labels": labels, "predictions": labels}
    images = rng.integers(0, 256, size=(8, 2, 2), dtype=np.uint8)
    script = explore.script_text(explore.explore_data(stack, 0, acts, images, unit_marks(acts), 2, 1 / 255, NAMES))
    payload = json.loads(script.split(" = ", 1)[1].rstrip(";\n"))  # what the browser's strings will hold
    assert_nothing_hidden(json.dumps(payload, ensure_ascii=False))
    assert payload["class_names"][1] == "dog\\u202e21 \\u2066x\\u2069"
    assert payload["layers"][0]["name"] == "hidden\\u202e21 \\u2066x\\u2069"


def test_chart_labels_show_hidden_characters_as_escapes():
    record = user_record(NAMES, 5, conv=False, signed=False, output_weights=True)
    assert_nothing_hidden("".join(charts.style.class_labels(record)))


@pytest.mark.parametrize(
    "pair",
    [
        ("cat", "cat\u200b"),  # a zero-width space
        ("cat", "\ufeffcat"),  # a byte-order mark
        ("é", "e\u0301"),  # composed and decomposed: the same letter
        ("ﬁsh", "fish"),  # a compatibility ligature
        ("dog", "dog\u202e"),  # a bidi control with nothing after it
    ],
)
def test_class_names_that_differ_only_by_what_cannot_be_seen_are_refused(tmp_path, pair):
    path = tmp_path / "look-alike.npz"
    np.savez(path, **tiny_arrays(), class_names=np.array([*pair, "bird"]))
    with pytest.raises(data.NuKerasError, match="which look the same"):
        data.load_user_data(path)


def test_a_class_name_with_no_visible_character_is_refused(tmp_path):
    path = tmp_path / "invisible.npz"
    np.savez(path, **tiny_arrays(), class_names=np.array(["cat", "\u200b\u200d", "bird"]))
    with pytest.raises(data.NuKerasError, match="no visible character"):
        data.load_user_data(path)


def tiny_arrays(classes: int = 3, per_class: int = 2) -> dict:
    """Images of 4×4 pixels, `per_class` of each class in both sets."""
    labels = np.repeat(np.arange(classes), per_class).astype(np.uint8)
    images = np.zeros((len(labels), 4, 4), dtype=np.uint8)
    return {"x_train": images, "y_train": labels, "x_test": images, "y_test": labels}


def test_a_class_name_in_an_error_reaches_the_terminal_without_an_escape_byte(tmp_path):
    arrays = tiny_arrays()
    arrays["x_test"], arrays["y_test"] = arrays["x_test"][:-1], arrays["y_test"][:-1]  # one image of the last class
    np.savez(tmp_path / "few.npz", **arrays, class_names=np.array(["a", "b", f"c{TERMINAL_ESCAPES}{BIDI}"]))
    result = cli(["train", "--data", str(tmp_path / "few.npz"), "--out", str(tmp_path / "out")])
    line = assert_one_line_error(result, "too few of c\\x1b]0;pwned\\x07\\x1b[2K")
    assert_nothing_hidden(result[2])
    assert "\x1b" not in line


def test_layer_names_in_the_layer_listing_reach_the_terminal_without_an_escape_byte(tmp_path):
    import keras

    image = keras.Input((4, 4))
    hidden = keras.layers.Dense(3, name=f"d{TERMINAL_ESCAPES}{BIDI}")(keras.layers.Flatten()(image))
    keras.Model(image, keras.layers.Dense(3, activation="softmax")(hidden)).save(tmp_path / "m.keras")
    np.savez(tmp_path / "d.npz", **tiny_arrays())
    flags = ["--model", str(tmp_path / "m.keras"), "--data", str(tmp_path / "d.npz"), "--out", str(tmp_path / "out")]
    for layer in ([], ["--layer", f"x{TERMINAL_ESCAPES}"]):
        result = cli(["train", *flags, *layer])
        assert_one_line_error(result, "d\\x1b]0;pwned\\x07\\x1b[2K\\x1b]52;", "\\u202e21")
        assert_nothing_hidden(result[2])


def test_log_lines_show_control_characters_as_escapes():
    from nu_keras.cli import ShownFormatter

    record = logging.LogRecord("nu_keras", logging.INFO, __file__, 1, "class %s", (f"cat{TERMINAL_ESCAPES}",), None)
    line = ShownFormatter("nu-keras: %(message)s").format(record)
    assert line == "nu-keras: class cat\\x1b]0;pwned\\x07\\x1b[2K\\x1b]52;c;cHduZWQ=\\x07"

"""How a figure is saved: one draw, cut to its ink, showing what `bbox_inches="tight"` shows."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from nu_keras.charts import classes, style


def _saved(fig, path) -> np.ndarray:
    style.save(fig, path)
    return np.asarray(Image.open(path).convert("RGBA"))


def _tight(fig, path) -> np.ndarray:
    fig.savefig(path, dpi=style.DPI, bbox_inches="tight")
    plt.close(fig)
    return np.asarray(Image.open(path).convert("RGBA"))


def _label_below_the_figure():
    """A short figure whose x label hangs below its lower edge (what tight boxes exist for)."""
    fig, ax = plt.subplots(figsize=(4, 1.2))
    ax.bar(range(3), [1, 2, 3])
    ax.set_xlabel("a label below the figure")
    return fig


def test_a_label_hanging_over_the_figure_is_kept_like_a_tight_box_keeps_it(tmp_path):
    saved = _saved(_label_below_the_figure(), tmp_path / "saved.png")
    tight = _tight(_label_below_the_figure(), tmp_path / "tight.png")
    assert saved.shape[0] > 1.2 * style.DPI  # taller than the figure: the label is in
    assert np.allclose(saved.shape[:2], tight.shape[:2], atol=6)  # the same box, up to the text boxes' air


def test_a_figure_is_cut_to_its_ink_with_a_pad_of_background(tmp_path):
    saved = _saved(_label_below_the_figure(), tmp_path / "saved.png")
    ink = (saved != 255).any(axis=2)
    rows, columns = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    assert (rows[0], columns[0]) == (style.PAD, style.PAD)
    assert (len(ink) - 1 - rows[-1], ink.shape[1] - 1 - columns[-1]) == (style.PAD, style.PAD)


def test_ink_reaching_the_drawn_margin_falls_back_to_the_tight_box(tmp_path):
    fig, ax = plt.subplots(figsize=(0.5, 0.5))
    ax.set_title("a title far wider than the figure and the margin drawn around it together")
    saved = _saved(fig, tmp_path / "saved.png")
    assert saved.shape[1] > (0.5 + 2 * style.MARGIN) * style.DPI  # the whole title, beyond the margin


def test_frame_ink_has_nothing_to_frame_on_a_blank_canvas():
    blank = np.full((40, 60, 4), 255, np.uint8)
    assert style.frame_ink(blank, blank[0, 0]) is None


def test_the_report_s_figure_sizes_take_the_single_draw(tmp_path):
    """Sizes whose pixels are a hair under a whole number in floating point (2.6 in + margins, at 180 dpi)."""
    for size in ((6.4, 2.6), (7.2, 3.4), (8.45, 2.8), (6.9, 5.4)):
        fig, _ = plt.subplots(figsize=size)
        assert style.draw_with_margin(fig) is not None, size
        plt.close(fig)


def test_an_opaque_figure_is_written_as_rgb_with_the_pixels_it_was_drawn_with(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (30, 40, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    style.write_png(tmp_path / "opaque.png", pixels)
    written = Image.open(tmp_path / "opaque.png")
    assert written.mode == "RGB" and (np.asarray(written) == pixels[..., :3]).all()
    pixels[0, 0, 3] = 128
    style.write_png(tmp_path / "translucent.png", pixels)
    assert (np.asarray(Image.open(tmp_path / "translucent.png")) == pixels).all()


def _bar_figure(draw) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(4, 2.5))
    draw(ax, np.arange(6) - 0.2, [3.0, -1.5, 0.0, 7.25, 0.5, -0.01], 0.4, "#0072B2", "zeroed")
    draw(ax, np.arange(6) + 0.2, [1.0, 2.5, 4.0, 0.25, -3.5, 2.0], 0.4, ["#E69F00", "#D55E00"] * 3, "mean")
    ax.legend(fontsize=7, frameon=False)
    return fig


def test_bar_rectangles_draw_the_pixels_of_matplotlib_s_bar(tmp_path):
    ours = _saved(
        _bar_figure(lambda ax, x, h, w, c, label: style.bar_rectangles(ax, x, h, w, c, label)), tmp_path / "a.png"
    )
    theirs = _saved(
        _bar_figure(lambda ax, x, h, w, c, label: ax.bar(x, h, w, color=c, label=label)), tmp_path / "b.png"
    )
    assert ours.shape == theirs.shape and (ours == theirs).all()


def _titled(values) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot(values)
    ax.set_title("a title as wide as the axes it names, or nearly")
    return fig


def test_pinned_titles_sit_where_matplotlib_places_them(tmp_path, monkeypatch):
    """Plain values, a power of ten over the y axis ("1e−6") and an offset (1e3 + ...): the same pixels."""
    for values in ([0.0, 2.5, 1.0], [0.0, 3e-6, 1e-6], [1000.001, 1000.002, 1000.0015]):
        pinned = _saved(_titled(values), tmp_path / "pinned.png")
        monkeypatch.setattr(style, "fix_titles", lambda fig: None)
        placed = _saved(_titled(values), tmp_path / "placed.png")
        monkeypatch.undo()
        assert pinned.shape == placed.shape and (pinned == placed).all(), values


def test_a_title_beside_an_offset_label_would_move_if_pinned_so_it_is_left_to_matplotlib(tmp_path):
    fig = _titled([1000.001, 1000.002, 1000.0015])
    assert style.offset_label(fig.axes[0].yaxis)  # "+1e3" over the y axis, under the title's left end
    fig.axes[0].set_title(fig.axes[0].get_title(), y=1.0)  # pinned by hand
    pinned = _saved(fig, tmp_path / "pinned.png")
    placed = _saved(_titled([1000.001, 1000.002, 1000.0015]), tmp_path / "placed.png")
    assert pinned.shape != placed.shape or (pinned != placed).any()


def _image_column(images, own_axes: bool) -> plt.Figure:
    """A column of images beside bar charts, each image in an axes of its own or all through one."""
    fig = plt.figure(figsize=(6.4, 1.3 * len(images) + 0.5))
    grid = fig.add_gridspec(len(images), 2, width_ratios=[1, 3], hspace=0.45, wspace=0.15)
    column = None if own_axes else fig.add_subplot(grid[:, 0])
    for row, image in enumerate(images):
        if own_axes:
            ax = fig.add_subplot(grid[row, 0])
            style.show_image(ax, image)
            ax.set_title(f"example {row + 1}", fontsize=8)
        else:
            classes.image_in_cell(column, grid[row, 0], image, f"example {row + 1}")
        style.bars(fig.add_subplot(grid[row, 1]), np.arange(10.0) % 4, highlight=row)
    return fig


@pytest.mark.parametrize(
    "shape, dtype", [((1, 28, 28), np.uint8), ((3, 20, 32), float), ((2, 40, 16), float), ((2, 32, 32, 3), float)]
)
def test_an_image_drawn_in_its_cell_shows_what_an_axes_of_its_own_shows(tmp_path, shape, dtype):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, shape).astype(dtype) if dtype == np.uint8 else rng.uniform(0, 1, shape)
    one = _saved(_image_column(images, own_axes=False), tmp_path / "one.png")
    each = _saved(_image_column(images, own_axes=True), tmp_path / "each.png")
    assert one.shape == each.shape and (one == each).all()


def test_a_title_cut_by_the_canvas_between_two_words_is_not_lost(tmp_path, monkeypatch):
    """The canvas's edge may fall in a space ("images | of digit 0"): no ink on the edge, yet words cut off."""
    monkeypatch.setattr(style, "MARGIN", 0.5)
    fig, ax = plt.subplots(figsize=(0.8, 1.2))
    style.show_image(ax, np.eye(28))
    ax.set_title("images of digit 0 on which neuron 1 is silent", fontsize=9)
    saved = _saved(fig, tmp_path / "saved.png")
    assert saved.shape[1] > 2.4 * style.DPI  # the whole title, about 2.6 in wide


CONTENT_COLUMN = 690  # CSS px of Material's content column at its widest: a wider PNG is shrunk to it


def displayed_font_px(png, points: float = 9.0) -> float:
    """CSS px of a `points` text in `png` as the page shows it: drawn at style.DPI, shrunk to the column."""
    width = Image.open(png).size[0]
    return points / 72 * style.DPI * min(CONTENT_COLUMN, width) / width


def test_the_rotation_null_figure_keeps_its_tick_labels_legible_at_the_columns_width(tmp_path):
    from nu_keras.charts import sweep

    rng = np.random.default_rng(0)
    models = [
        {
            "seed": s,
            "null": {
                "values": {key: rng.normal(size=200).tolist() for key in sweep.NULL_TITLES},
                "trained": {key: 1.0 for key in sweep.NULL_TITLES},
            },
        }
        for s in range(10)
    ]
    sweep.sweep_null(tmp_path / "null.png", models, (2.5, 97.5))
    assert displayed_font_px(tmp_path / "null.png") >= 11


def test_box_plots_drawn_from_the_record_s_five_numbers_are_the_boxplot_of_the_activations(tmp_path):
    """`units.unit_tuning` draws each class's box with `bxp` from (whislo, q1, med, q3, whishi), as the record
    keeps them (`class_unit.boxplot`): the very picture `ax.boxplot` draws from the activations, fliers off."""
    from matplotlib import cbook

    from nu_keras.charts import units

    rng = np.random.default_rng(0)
    columns = [np.maximum(rng.normal(c, 1.0 + c / 3, size=40 + 7 * c), 0) for c in range(6)]
    five = np.array([[s[k] for k in ("whislo", "q1", "med", "q3", "whishi")] for s in cbook.boxplot_stats(columns)])
    props = {"positions": np.arange(6), "widths": 0.6, "showfliers": False}
    props |= {"medianprops": {"color": units.ACCENT}, "boxprops": {"color": units.BASE}}
    drawn = {}
    for name, draw in (
        ("boxplot", lambda ax: ax.boxplot(columns, **props)),
        ("bxp", lambda ax: ax.bxp([units.box_stats(row) for row in five], **props)),
    ):
        fig, ax = plt.subplots(figsize=(4, 3))
        draw(ax)
        style.save(fig, tmp_path / f"{name}.png")
        drawn[name] = (tmp_path / f"{name}.png").read_bytes()
    assert drawn["boxplot"] == drawn["bxp"]

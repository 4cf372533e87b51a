"""What every figure shares: the palette, the saving, bars with intervals, image montages, and the words
a figure uses for a class ("digit 3" on MNIST, "Trouser" elsewhere) and for a unit ("neuron", "channel").

Colours: the Okabe-Ito palette (safe for the common colour-vision deficiencies); sequential data
uses `cividis`, signed data the diverging `RdBu_r` centred on zero.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import matplotlib
import matplotlib.colors
from matplotlib.collections import PolyCollection
from matplotlib.transforms import Bbox
from PIL import Image

if "ipykernel" not in sys.modules:  # a notebook keeps its own backend (inline): its other plots still show
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from nu_keras import artifacts  # noqa: E402
from nu_keras.names import display_words, shown  # noqa: E402
from nu_keras.record import Measurements  # noqa: E402

BASE = "#0072B2"  # Okabe-Ito blue: every bar
ACCENT = "#E69F00"  # Okabe-Ito orange: the unit or class a figure is about
NEGATIVE = "#D55E00"  # Okabe-Ito vermillion: drops and negative votes
GREY = "#999999"
SEQUENTIAL, DIVERGING = "cividis", "RdBu_r"
DPI = 180  # twice the CSS pixel density, so figures stay sharp on high-DPI screens
MARGIN = 1.5  # inches of canvas drawn around a figure: its labels hang over its edges (tight boxes reach -1 in)
PAD = round(0.1 * DPI)  # pixels of background around a figure's ink: matplotlib's default pad_inches (0.1)
CLEAR = round(0.25 * DPI)  # pixels at the canvas's edge that must stay blank: wider than any gap inside a text
LABELLED_TICKS = 30  # past this many bars or cells an axis names every k-th one only
STYLE = {  # matplotlib settings every figure is drawn with (nu_keras.api draws under them, then restores a notebook's)
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.hashsalt": "nu_keras",
    "figure.max_open_warning": 0,
}
plt.rcParams.update(STYLE)


def save(fig, path: Path | None):
    """Write the figure atomically, as PNG or SVG by the file's suffix (`chart_names` chose it), and free the
    figure (a long render must not accumulate them); with no path, return the figure as drawn for a notebook
    (`nu_keras.figure`), open and unsaved.

    A PNG shows what `bbox_inches="tight"` shows, with one draw instead of two: a tight box costs a layout-only
    draw and a walk over every artist before the real draw; here one draw on a canvas `MARGIN` larger than the
    figure (labels hang over its edges) is cut to its ink plus `PAD`. Ink within `CLEAR` of that canvas's edge
    may continue beyond it (a text cut between two words leaves a blank column at the edge, not ink): such a
    figure is saved with the tight box after all. Only a text placed wholly beyond the margin, more than an
    inch from the figure and touching nothing inside it, would be lost unseen; our figures place none.
    An SVG is vector output: it is saved with the tight box, and no date, so the same figure is the same file.
    """
    fix_titles(fig)
    if path is None:
        return fig
    path = Path(path)
    if path.suffix == ".svg":
        with artifacts.atomic_path(path, suffix=".svg") as tmp:
            fig.savefig(tmp, format="svg", bbox_inches="tight", metadata={"Date": None})
        plt.close(fig)
        return None
    pixels = draw_with_margin(fig)
    framed = None if pixels is None else frame_ink(pixels, background(fig))
    with artifacts.atomic_path(path, suffix=".png") as tmp:
        if framed is None:
            fig.savefig(tmp, dpi=DPI, bbox_inches="tight", metadata={"Software": None})
        else:
            write_png(tmp, framed)
    plt.close(fig)


def write_png(path: Path, pixels: np.ndarray) -> None:
    """(H, W, 4) uint8 -> PNG; an opaque figure (all of ours) as RGB: the same pixels, a quarter less to
    compress. With zlib's level 3 instead of 6 it encodes in 55 % of the time, and the files stay no larger."""
    height, width = pixels.shape[:2]
    if pixels[..., 3].min() == 255:
        image = Image.frombytes("RGB", (width, height), pixels, "raw", "RGBX")  # Pillow drops the alpha bytes
    else:
        image = Image.frombytes("RGBA", (width, height), pixels)
    image.save(path, format="png", compress_level=3, dpi=(DPI, DPI))


def fix_titles(fig) -> None:
    """Pin each title where matplotlib's automatic placement would leave it (y=1), sparing that placement's
    second walk over the y axis's ticks in every draw. It moves a title only to clear ticks along the top or
    an offset label over the y axis ("1e−6"): axes with either keep it."""
    for ax in fig.axes:
        top = ax.xaxis.get_ticks_position() in ("top", "unknown") or ax.xaxis.get_label_position() == "top"
        if ax.get_title() and not (top or ax.get_title("left") or ax.get_title("right") or offset_label(ax.yaxis)):
            ax.set_title(ax.get_title(), y=1.0, fontsize=ax.title.get_fontsize())


def offset_label(axis) -> str:
    """The label an axis prints beside its ticks for an offset or a power of ten ("1e−6"); mostly empty."""
    formatter = axis.get_major_formatter()
    formatter.set_locs(axis.get_majorticklocs())
    return formatter.get_offset()


def draw_with_margin(fig) -> np.ndarray | None:
    """(H, W, 4) uint8: the figure drawn once at `DPI`, with `MARGIN` inches of canvas around it for the labels
    that hang over its edges; None if the canvas is not the size asked for."""
    width, height = fig.get_size_inches()
    box = Bbox.from_extents(-MARGIN, -MARGIN, width + MARGIN, height + MARGIN)
    raw = io.BytesIO()
    fig.savefig(raw, format="rgba", dpi=DPI, bbox_inches=box)
    # The canvas's whole pixels as matplotlib counts them (FigureCanvasBase.get_width_height): 5.6 in at 180 dpi
    # is 1007.9999999999999 in floating point, and 1008 pixels.
    columns, rows = (int(inches * DPI + 1e-8) for inches in box.size)
    pixels = np.frombuffer(raw.getbuffer(), dtype=np.uint8)
    return pixels.reshape(rows, columns, 4) if pixels.size == rows * columns * 4 else None


def background(fig) -> np.ndarray:
    """(4,) uint8: the figure's face colour as the canvas stores it."""
    return np.round(np.array(matplotlib.colors.to_rgba(fig.get_facecolor())) * 255).astype(np.uint8)


def frame_ink(pixels: np.ndarray, fill: np.ndarray) -> np.ndarray | None:
    """(H, W, 4) canvas -> the box around every pixel unlike `fill`, with `PAD` pixels of `fill` on each side;
    None when there is no ink, or ink within `CLEAR` of the canvas's edge (where it may have been cut off)."""
    canvas, background = pixels.view(np.uint32)[..., 0], fill.view(np.uint32)[0]  # a pixel as one number
    ink = canvas != background
    rows, columns = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    height, width = ink.shape
    if not rows.size or min(rows[0], columns[0], height - 1 - rows[-1], width - 1 - columns[-1]) < CLEAR:
        return None
    box = canvas[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
    framed = np.full((box.shape[0] + 2 * PAD, box.shape[1] + 2 * PAD), background, dtype=np.uint32)
    framed[PAD:-PAD, PAD:-PAD] = box
    return framed.view(np.uint8).reshape(*framed.shape, 4)


def words(record: Measurements) -> tuple[str, str]:
    """The word for one class and for one unit ("digit", "neuron"), as the pages use them (names.display_words)."""
    return display_words(record.provenance.dataset, record.provenance.subject)


def class_word(record: Measurements, c: int) -> str:
    """How a figure names class c: "digit 3" on MNIST, the class name ("Trouser") elsewhere."""
    name = record.classes[c]
    return f"digit {name}" if words(record)[0] == "digit" else name


def class_labels(record: Measurements) -> list[str]:
    """Tick labels along a class axis: the class names (on MNIST the digits themselves), control and bidi
    characters written as escapes (`nu_keras.names.shown`)."""
    return [shown(name) for name in record.classes]


def class_axis(record: Measurements) -> str:
    return words(record)[0]


def unit_word(record: Measurements) -> str:
    """What a unit is called: a neuron of the paper's network, a channel of a conv layer, else a unit."""
    return words(record)[1]


def ticks(ax, axis: str, count: int, labels: list[str] | None = None) -> None:
    """Every position labelled when there are few, every k-th when there are many (a 256-unit axis)."""
    step = max(1, int(np.ceil(count / LABELLED_TICKS)))
    positions = np.arange(0, count, step)
    names = [str(p) for p in positions] if labels is None else [labels[p] for p in positions]
    rotate = max((len(n) for n in names), default=0) > 3
    if axis == "x":
        ax.set_xticks(positions)
        ax.set_xticklabels(names, rotation=45 if rotate else 0, ha="right" if rotate else "center")
    else:
        ax.set_yticks(positions)
        ax.set_yticklabels(names)


def bars(ax, values, highlight=None, color=BASE, xlabel="", ylabel="activation", labels=None):
    """A bar per value; the highlighted one in the accent colour."""
    colors = [ACCENT if i == highlight else color for i in range(len(values))]
    bar_rectangles(ax, np.arange(len(values)), values, colors=colors)
    ticks(ax, "x", len(values), labels)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def bar_rectangles(ax, x, heights, width: float = 0.8, colors=BASE, label: str | None = None) -> PolyCollection:
    """What `ax.bar` draws, as one artist: a rectangle from zero to each height, centred on x, with zero a
    sticky edge of the autoscaling. `ax.bar` makes a patch per bar, each with its own transforms and data-limit
    update, which cost more than drawing them."""
    x, heights = np.asarray(x, dtype=float), np.asarray(heights, dtype=float)
    left, right, zero = x - width / 2, x + width / 2, np.zeros_like(heights)
    corners = np.stack([(left, zero), (right, zero), (right, heights), (left, heights)]).transpose(2, 0, 1)  # (N, 4, 2)
    rectangles = PolyCollection(corners, facecolors=colors, edgecolors="none", label=label)
    rectangles.sticky_edges.y.append(0.0)
    ax.add_collection(rectangles)
    return rectangles


def errorbars(ax, mean, half, floor: bool = True):
    """Error bars; for a non-negative quantity the interval is cut at zero, as it cannot go below it."""
    mean, half = np.asarray(mean), np.asarray(half)
    lower = np.minimum(half, mean) if floor else half
    ax.errorbar(np.arange(len(mean)), mean, yerr=[lower, half], fmt="none", ecolor="black", capsize=3, lw=1)


def montage(tiles: np.ndarray, columns: int, gap: int = 2, fill: float = np.nan) -> np.ndarray:
    """(K, H, W) or (K, H, W, C) tiles -> one image of `columns` per row, separated by `gap` pixels of `fill`.

    One imshow of a montage draws far faster than one axes per tile.
    """
    k, h, w = tiles.shape[:3]
    rows = int(np.ceil(k / columns))
    sheet = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap, *tiles.shape[3:]), fill, dtype=float)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        sheet[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = tile
    return sheet


def pixel_top(images: np.ndarray) -> float:
    """The value of a full-intensity pixel: 255 for uint8 images, 1 for float images in [0, 1]."""
    return 255.0 if np.asarray(images).dtype == np.uint8 else 1.0


def show_image(ax, image: np.ndarray, top: float | None = None, place=None) -> None:
    """A data-set image as stored: grey (H, W) or (H, W, 1) dark on light, colour (H, W, 3) as it is;
    on 0 to `top` (see `pixel_top`). `place`, a transform of the unit square, puts it elsewhere than
    filling the axes (see `classes.image_in_cell`)."""
    image = np.asarray(image)
    top = pixel_top(image) if top is None else top
    # aspect "auto": the axes keep their box (the unit square may be anywhere in it)
    where = {} if place is None else {"extent": (0, 1, 0, 1), "transform": place, "aspect": "auto"}
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        ax.imshow(image, cmap="gray_r", vmin=0, vmax=top, **where)
    else:
        ax.imshow(np.clip(np.nan_to_num(image[..., :3], nan=top) / top, 0, 1), **where)
    axes_off(ax)


def axes_off(ax) -> None:
    """No frame, ticks or labels around an image. Hiding the x and y axes as well draws the same, but spares
    the title's placement a walk over the hidden ticks (it looks for an offset label such as "1e6" beside them)."""
    ax.set_axis_off()
    ax.xaxis.set_visible(False)
    ax.yaxis.set_visible(False)

"""Names we did not choose (class names, layer and model names) as a reader sees them.

A name can hold characters that are not text: terminal escape sequences (ESC [2K erases a line, OSC 0 sets
a window title, OSC 52 writes the clipboard), bidi controls (U+202E reverses the rest of a paragraph,
numbers included) and invisible ones (U+200B). `shown` writes every such character as its escape, so a
page, a chart or a terminal line prints it as text; every place that shows a name goes through it.
`seen_as` is what a reader can tell apart: two class names that differ only by invisible characters or
by compatibility forms look the same, so `nu_keras.data` refuses them.
"""

from __future__ import annotations

import unicodedata

# What `str.isprintable` calls unprintable is control, format (bidi, zero-width), surrogate, private-use and
# unassigned characters and every separator but the plain space; the other spaces (no-break, thin) print
# as spaces and stay.
_SPACES = "Zs"


def _escape(character: str) -> str:
    """One character as Python writes it in a string literal: '\\x1b', '\\u202e', '\\U000e0001'."""
    code = ord(character)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _shown_character(character: str) -> str:
    if character.isprintable() or unicodedata.category(character) == _SPACES:
        return character
    return _escape(character)


def shown(text) -> str:
    """Any untrusted text with its control, bidi and invisible characters written as escapes.

    >>> shown("cat\\u202e 12")
    'cat\\\\u202e 12'
    >>> shown("\\x1b]0;title\\x07")
    '\\\\x1b]0;title\\\\x07'
    """
    text = str(text)
    if text.isprintable():  # nearly every string: checked in C
        return text
    return "".join(_shown_character(c) for c in text)


def seen_as(name: str) -> str:
    """What a reader sees of a name: invisible and control characters dropped, compatibility forms and
    composed characters unified (NFKC), runs of spaces made one. 'cat\\u200b' and 'cat' are both 'cat'."""
    visible = "".join(c for c in str(name) if c.isprintable() or unicodedata.category(c) == _SPACES)
    return " ".join(unicodedata.normalize("NFKC", visible).split())


def display_words(dataset: dict, subject: dict) -> tuple[str, str]:
    """The words pages and figures use for one class and one unit, decided here only: "digit" for MNIST's
    classes, else "class"; "neuron" for the paper's network, "channel" for a convolution, else "unit"."""
    class_word = "digit" if dataset["name"] == "mnist" else "class"
    if subject["kind"] == "paper":
        return class_word, "neuron"
    return class_word, "channel" if subject["layer_kind"] == "conv" else "unit"

"""How numbers and untrusted text are written on the pages, defined once: the templates' filters and the
result statements (`statements.py`) both use these."""

from __future__ import annotations

import math

from markupsafe import Markup

from nu_keras.names import shown

THIN_SPACE = "\u202f"  # narrow no-break space: 10 000, never split across lines


def pct(value: float, digits: int = 1) -> Markup:
    """0.9337 -> '93.4 %' (a no-break space: the sign never starts a line)."""
    return Markup(f"{value * 100:.{digits}f}\u00a0%")


def _signed(text: str) -> str:
    """A true minus sign, and none before a number that rounds to zero ('-0.0' -> '0.0')."""
    return text.lstrip("-") if float(text) == 0 else text.replace("-", "\u2212")


def pp(value: float) -> Markup:
    """An accuracy difference in percentage points: 0.0123 -> '1.2 pp', -0.04 -> '−4.0 pp'."""
    return Markup(f"{_signed(f'{value * 100:.1f}')} pp")


def pp_interval(noise: dict) -> Markup:
    """A drop's 95 % interval in percentage points, with the decimals that give its width two significant
    digits (one to three): {"low": 0.0012, "high": 0.0031} -> '0.12 to 0.31 pp', {"low": 0.012, ...} -> '1.2 to
    3.1 pp'; a narrow interval never prints as '0.0 to 0.0'."""
    low, high = noise["low"], noise["high"]
    width = (high - low) * 100
    digits = min(3, max(1, 1 - math.floor(math.log10(width)))) if width > 0 else 1
    return Markup(f"{_signed(f'{low * 100:.{digits}f}')} to {_signed(f'{high * 100:.{digits}f}')} pp")


def plus_minus(mean: float, half: float) -> Markup:
    """'0.3123 ± 0.0041': the mean and its interval's half-width with the decimals that give the half-width two
    significant digits (two to four), so a narrow interval never prints as '± 0.00'."""
    digits = min(4, max(2, 1 - math.floor(math.log10(half)))) if half > 0 else 2
    return Markup(f"{_signed(f'{mean:.{digits}f}')} ± {half:.{digits}f}")


def fixed(value: float | None, digits: int = 2) -> Markup:
    """0.123456 -> '0.12'; None -> 'n/a'; a minus sign, not a hyphen, before negative numbers."""
    return Markup("n/a" if value is None else _signed(f"{value:.{digits}f}"))


def count(value: int) -> Markup:
    """A whole number with a thin space between thousands: 10000 -> '10 000'."""
    return Markup(f"{int(value):,}".replace(",", THIN_SPACE))


def pvalue(value: float) -> Markup:
    """A p-value as a reader expects it: 'p = 0.030', 'p < 0.001'."""
    return Markup("p < 0.001" if value < 0.001 else f"p = {value:.3f}")


def listing(items) -> Markup:
    """[1, 2, 3] -> '1, 2 and 3'; [] -> 'none'. Items are escaped."""
    items = [str(escape_markup(i)) for i in items]
    if not items:
        return Markup("none")
    return Markup(items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1])


def plural(number: int, singular: str, several: str | None = None) -> Markup:
    """(1, 'unit') -> '1 unit'; (3, 'unit') -> '3 units'; (0, 'unit') -> 'no units'."""
    word = singular if number == 1 else (several or singular + "s")
    return Markup(f"{'no' if number == 0 else count(number)} {escape_markup(word)}")


# Characters that start Markdown or HTML markup, written as numeric character references: they read the
# same on the page and can never open a link, an image, a tag, an attribute list or emphasis.
_MARKUP_CHARACTERS = {c: f"&#{ord(c)};" for c in "\\`*_{}[]()#+!|<>&\"'~"}
_MARKUP_CHARACTERS |= {"\n": " ", "\r": " ", "\t": " "}
_ESCAPES = str.maketrans(_MARKUP_CHARACTERS)


def escape_markup(value) -> Markup:
    """Any value as inert text for a Markdown page: '[x](javascript:y)' -> '&#91;x&#93;&#40;javascript:y&#41;';
    control, bidi and invisible characters written as escapes ('\u202e'), so they cannot reorder the page."""
    return Markup(shown(str(value).translate(_ESCAPES)))


def untrusted(value) -> Markup:
    """A string we did not compute (a path, a data source, a layer name) as inline code, escaped."""
    return Markup(f"<code>{escape_markup(value)}</code>")

"""Progress of the long loops (collect's batches, render's charts) on a terminal: a bar with its ETA (tqdm).

Shown only when stderr is a terminal and the run logs at INFO (the command line's default; `-q` logs
warnings only, so nothing then). Off a terminal a bar's carriage returns would fill a log with redrawn
lines: there each stage says once what it did, in its own log line ("rendered 217 charts in 20.5 s").
The command line passes its lines through a filter (`cli.native_logs_filtered`), which forwards whole lines
only; it hands the terminal behind it to `drawn_on` for the run.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

log = logging.getLogger(__name__)
_terminals: list[TextIO] = []  # where bars go while `drawn_on` holds; else stderr


@contextmanager
def drawn_on(descriptor: int) -> Iterator[None]:
    """Bars are drawn on the file descriptor `descriptor` (the command's own stderr) while the block runs,
    when it is a terminal."""
    if not os.isatty(descriptor):
        yield
        return
    with os.fdopen(os.dup(descriptor), "w") as terminal:
        _terminals.append(terminal)
        try:
            yield
        finally:
            _terminals.remove(terminal)


def _stream() -> TextIO:
    return _terminals[-1] if _terminals else sys.stderr


def shown() -> bool:
    """Whether a bar is drawn now: its stream is a terminal and INFO messages are shown (no -q)."""
    return log.isEnabledFor(logging.INFO) and _stream().isatty()


@contextmanager
def bar(what: str, total: int, unit: str) -> Iterator[Callable[[int], None]]:
    """A progress bar of `total` steps while the block runs; yields the function that counts steps done
    (`advance(n=1)`). The bar is erased when the block ends: the stage's log line says what was done."""
    if not shown():
        yield lambda n=1: None
        return
    from tqdm import tqdm

    with tqdm(
        total=total, desc=f"nu-keras: {what}", unit=unit, file=_stream(), leave=False, dynamic_ncols=True
    ) as drawn:
        yield drawn.update

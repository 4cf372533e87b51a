"""Progress of the long loops (collect's batches, render's charts) on a terminal: a bar with its ETA (tqdm).

Shown only when stderr is a terminal and the run logs at INFO (the command line's default; `-q` logs
warnings only, so nothing then). Off a terminal a bar's carriage returns would fill a log with redrawn
lines: there each stage says once what it did, in its own log line ("rendered 217 charts in 20.5 s").
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


def shown() -> bool:
    """Whether a bar is drawn now: stderr is a terminal and INFO messages are shown (no -q)."""
    return log.isEnabledFor(logging.INFO) and sys.stderr.isatty()


@contextmanager
def bar(what: str, total: int, unit: str) -> Iterator[Callable[[int], None]]:
    """A progress bar of `total` steps while the block runs; yields the function that counts steps done
    (`advance(n=1)`). The bar is erased when the block ends: the stage's log line says what was done."""
    if not shown():
        yield lambda n=1: None
        return
    from tqdm import tqdm

    with tqdm(
        total=total, desc=f"nu-keras: {what}", unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True
    ) as drawn:
        yield drawn.update

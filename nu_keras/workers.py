"""The chart workers, started before Keras is imported so they are ready when the charts are drawn.

A report spends its first seconds importing Keras and training on one core; chart workers forked at that
moment import matplotlib and the figure code on the other core meanwhile. Forked before Keras (and JAX)
is loaded, they inherit none of its threads, so fork is safe on either backend: a fork of a process that
runs JAX can deadlock, and spawned workers would each spend a second importing.
"""

from __future__ import annotations

import gc
import importlib
import multiprocessing
import multiprocessing.pool
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

_started: multiprocessing.pool.Pool | None = None  # the pool `early_pool` holds open in this process


def start_worker() -> None:
    """Workers leave Ctrl-C to the parent (which stops the pool) and die quietly when it terminates them.

    They import the figure code now, then hide what they hold (about 115,000 objects: modules, data) from
    the garbage collector, which otherwise walks it in every full collection while figures are drawn."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    importlib.import_module("nu_keras.charts")
    gc.freeze()


@contextmanager
def early_pool() -> Iterator[None]:
    """One chart worker per core, forked now, for `charts.render_all` to use until the block ends."""
    global _started
    cores = os.cpu_count() or 1
    if cores <= 1 or _started is not None:
        yield
        return
    pool = multiprocessing.get_context("fork").Pool(cores, initializer=start_worker)
    _started = pool
    try:
        yield
    finally:
        _started = None
        pool.terminate()
        pool.join()


def started_pool() -> multiprocessing.pool.Pool | None:
    return _started

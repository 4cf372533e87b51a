"""The chart workers, started before Keras is imported so they are ready when the charts are drawn.

A report spends its first seconds importing Keras and training on one core; chart workers forked at that
moment import matplotlib and the figure code on the other core meanwhile. Forked before Keras (and JAX)
is loaded, they inherit none of its threads, so fork is safe on either backend: a fork of a process that
runs JAX can deadlock, and spawned workers would each spend a second importing.

The pool is handed down explicitly (`charts.render_all(..., pool=)`); the workers import the figure code by
name, so the charts never import this module.
"""

from __future__ import annotations

import gc
import importlib
import multiprocessing
import multiprocessing.pool
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from nu_keras import folders


def start_worker() -> None:
    """Workers ignore SIGINT and SIGTERM and leave them to the parent, which ends them (`ChartPool`).

    Ctrl-C, `timeout`, a CI cancellation or a terminal's hang-up signal the whole process group. A worker
    killed by that signal could die holding the pool's task-queue lock (an idle worker holds it while it
    waits for a task), and the parent's `terminate` would then wait for that lock forever.

    They import the figure code now, then hide what they hold (about 115,000 objects: modules, data) from
    the garbage collector, which otherwise walks it in every full collection while figures are drawn."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    importlib.import_module("nu_keras.charts")
    gc.freeze()


class ChartPool(multiprocessing.pool.Pool):
    """A pool of chart workers (`start_worker`) whose `terminate` ends them with SIGKILL, which they
    cannot ignore. The pool sends it only once it holds the task-queue lock itself, so no worker dies
    holding it; a worker whose parent died exits by itself (its task pipe reports the end)."""

    def __init__(self, processes: int, method: str):
        super().__init__(processes, initializer=start_worker, context=multiprocessing.get_context(method))

    @staticmethod
    def Process(ctx, *args, **kwds):  # noqa: N802  (the name `Pool` calls to create each worker)
        process = ctx.Process(*args, **kwds)
        process.terminate = process.kill  # SIGTERM is ignored by the worker
        return process


@contextmanager
def early_pool() -> Iterator[multiprocessing.pool.Pool | None]:
    """One chart worker per core, started now (forked before Keras is imported, where it can be), for the render
    stage to be handed until the block ends; None on a single core, where charts are drawn in this process."""
    cores = os.cpu_count() or 1
    if cores <= 1:
        yield None
        return
    with _ended(ChartPool(cores, start_method())) as pool:
        yield pool


@contextmanager
def chart_pool(tasks: int) -> Iterator[multiprocessing.pool.Pool | None]:
    """Chart workers for `tasks` figures when no early pool was started (`nu-keras render`, a notebook):
    one per core, none (None) for a single figure or core; forked, or spawned where JAX runs (`start_method`)."""
    count = min(tasks, os.cpu_count() or 1)
    if count <= 1:
        yield None
        return
    with _ended(ChartPool(count, start_method())) as pool:
        yield pool


def start_method() -> str:
    """ "fork", unless this process runs JAX: fork is cheap, but JAX's threads make a fork of a process running
    on it unsafe (it warns of deadlock), and a user's model on JAX is loaded before the workers start. Keras
    imports jax whenever it is installed, whatever the backend: ask which backend runs, and whether it was
    loaded."""
    running_jax = os.environ.get("KERAS_BACKEND") == "jax" and "jax" in sys.modules
    return "spawn" if running_jax else "fork"


@contextmanager
def _ended(pool: multiprocessing.pool.Pool) -> Iterator[multiprocessing.pool.Pool]:
    try:
        yield pool
    finally:
        with folders.signals_held():  # a second Ctrl-C does not stop the pool half-way
            pool.terminate()
            pool.join()

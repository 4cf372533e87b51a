"""The seed sweep on a Dask distributed cluster: one task per (width, block of seeds).

Each task runs `sweep.train_block` on a worker, exactly what the in-process sweep runs for that block,
so the gathered results equal the in-process ones; matching and summaries happen here, after
gathering. Keras is never imported by this module: a worker imports it inside the task, after
setting the backend the run asks for.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

from nu_keras import cache
from nu_keras.config import BACKEND_ENVIRONMENT, RunConfig, set_backend_environment
from nu_keras.data import Dataset
from nu_keras.errors import NuKerasError

log = logging.getLogger(__name__)

CONNECT_SECONDS = 20.0  # to reach a scheduler: the TCP connection, then Dask's handshake over it


def run_blocks(data: Dataset, cfg: RunConfig, tasks: list[tuple[int, list[int]]]) -> list[dict]:
    """`sweep.train_block` for every (width, seeds) task on the cluster `cfg.scheduler`, in task order."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise NuKerasError(
            '--scheduler needs Dask distributed: pip install -e ".[dask]" (or pip install "dask[distributed]")'
        ) from None
    logging.getLogger("distributed").setLevel(logging.WARNING)  # its INFO lines would drown the stage log
    logging.getLogger("distributed.nanny").setLevel(logging.ERROR)  # "killing" workers slow to exit at the end
    started = time.perf_counter()
    workers = local_workers(cfg.scheduler)
    try:
        if workers:
            os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")  # read by the worker processes
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            )
            client = Client(cluster, timeout=CONNECT_SECONDS)
        else:
            check_scheduler_answers(cfg.scheduler)
            cluster, client = None, Client(cfg.scheduler, timeout=CONNECT_SECONDS)
    except TimeoutError:
        raise NuKerasError(
            f"cannot reach the Dask scheduler {cfg.scheduler!r}: no Dask handshake within {CONNECT_SECONDS:g} s "
            "(is a Dask scheduler listening at that port?)"
        ) from None
    except (OSError, ValueError, TypeError) as exc:
        raise NuKerasError(f"cannot reach the Dask scheduler {cfg.scheduler!r}: {exc}") from exc
    try:
        workers_ready = len(client.scheduler_info()["workers"])
        ready = time.perf_counter() - started
        log.info("Dask: %d workers at %s, ready in %.1f s", workers_ready, client.scheduler.address, ready)
        sending = time.perf_counter()
        shared = client.scatter(data, broadcast=True)  # sent once per worker, not once per task
        log.info("Dask: dataset sent to every worker in %.1f s", time.perf_counter() - sending)
        environment = {name: os.environ.get(name) for name in BACKEND_ENVIRONMENT}  # as this process runs
        futures = [
            client.submit(block_task, shared, cfg, width, seeds, environment, pure=False) for width, seeds in tasks
        ]
        for future in as_completed(futures):
            result = future.result()
            log.info(
                "width %d seeds %d-%d: %.1f s on a worker (fit %.1f s)",
                result["width"],
                result["seeds"][0],
                result["seeds"][-1],
                result["task_seconds"],
                result["fit_seconds"],
            )
        results = client.gather(futures)
    except NuKerasError:
        raise
    except Exception as exc:  # a lost worker, a task that failed on it: one line, not a remote traceback
        raise NuKerasError(f"the sweep failed on the Dask cluster ({type(exc).__name__}: {exc})") from exc
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    check_same_code_and_versions(results)
    return results


def check_scheduler_answers(address: str) -> None:
    """Connect to `address` and exchange Dask's handshake, all within CONNECT_SECONDS, else TimeoutError.

    Dask's own timeout covers the TCP connection only: a port that accepts connections and never answers
    (another service, a hung scheduler) would hold `Client(address)` forever in the handshake that follows.
    Tried first on its own, under a deadline that cancels it, so only a scheduler that answered gets a Client.
    """
    from distributed.comm import connect

    async def handshake() -> None:
        comm = await asyncio.wait_for(connect(address, timeout=CONNECT_SECONDS), CONNECT_SECONDS)
        await comm.close()

    asyncio.run(handshake())


def local_workers(scheduler: str) -> int | None:
    """N for "local:N" (a LocalCluster started for this run; RunConfig checked N), None for an address."""
    return int(scheduler.removeprefix("local:")) if scheduler.startswith("local:") else None


def block_task(data: Dataset, cfg: RunConfig, width: int, seeds: list[int], environment: dict) -> dict:
    """What a worker runs: the backend and thread settings of the submitting process (they change the
    weights' last bits) before Keras is imported, then train and measure the block."""
    for name, value in environment.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    set_backend_environment(cfg.backend)
    from nu_keras.sweep import train_block  # imports Keras, now on the requested backend

    # the code a block's numbers depend on (train_block and every nu_keras module it reaches)
    return train_block(data, cfg, width, seeds) | {"code": cache.code_hash(("sweep.train_block",))}


def check_same_code_and_versions(results: list[dict]) -> None:
    """Equal results need equal code and packages: a worker with other ones is an error, not a footnote."""
    from nu_keras import model as mdl

    ours = {k: v for k, v in mdl.versions().items() if k != "python"}
    for result in results:
        if result.pop("code") != cache.code_hash(("sweep.train_block",)):
            raise NuKerasError("a Dask worker runs other nu_keras code than this process; install the same version")
        theirs = {k: v for k, v in result["versions"].items() if k != "python"}
        if theirs != ours:
            raise NuKerasError(f"a Dask worker has other packages ({theirs}) than this process ({ours})")

"""sweep.json as the run loop and the render stage read it: whether it answers a request, and whether it
describes the networks of this report. Kept apart from sweep.py, which imports Keras and SciPy: a warm
report checks the sweep's outputs, and rendering shows them, without either.
"""

from __future__ import annotations

import logging

from nu_keras import artifacts
from nu_keras.config import RunConfig

log = logging.getLogger(__name__)


def covers_request(cfg: RunConfig) -> bool:
    """A wider sweep on disk answers a narrower request (`make sweep`, then `make report`)."""
    path = artifacts.paths(cfg).sweep
    if not path.exists():
        return False
    existing = artifacts.read_json(path)
    seeds = [cfg.seed + i for i in range(cfg.sweep_seeds)]
    return existing.get("seeds", [])[: len(seeds)] == seeds and all(
        str(w) in existing.get("widths", {}) for w in cfg.sweep_widths
    )


def matches_report(trained: dict, sweep: dict) -> bool:
    """The Robustness page says its networks share the report's recipe and data: publish it only if so.

    A sweep.json left by another recipe or data set (a `sweep --epochs 3` beside a 10-epoch model) is
    left off the site, with a line saying why, rather than shown beside numbers it does not match.
    """
    recipe = {k: v for k, v in trained["config"].items() if k not in ("seed", "hidden_units")}
    differs = sorted(k for k, v in recipe.items() if sweep["recipe"].get(k) != v)
    if trained["data_sha256"] != sweep["provenance"].get("data_sha256"):
        differs.append("data")
    if trained["config"]["seed"] not in sweep["seeds"]:
        differs.append("seed")
    if differs:
        log.warning(
            "sweep.json left off the site: its %s differ from the model's; run `nu-keras sweep`", ", ".join(differs)
        )
    return not differs


def published_sweep(cfg: RunConfig) -> dict | None:
    """sweep.json, if it describes the networks of this report (never for a user's model: not retrained)."""
    paths = artifacts.paths(cfg)
    if not cfg.trains_here or not paths.sweep.exists():
        return None
    sweep = artifacts.read_json(paths.sweep, artifacts.SWEEP_KEYS)
    return sweep if matches_report(artifacts.read_json(paths.train, artifacts.TRAIN_KEYS), sweep) else None

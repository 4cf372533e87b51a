"""Atomic writes and checked reads of the files stages hand to each other.

Every artifact is written to a temporary file beside its target and renamed into place, so a run
killed mid-write leaves the previous artifact whole.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nu_keras.config import RunConfig
from nu_keras.errors import DISK_FULL, NuKerasError

_UMASK = os.umask(0)
os.umask(_UMASK)

# What each artifact must hold (the keys a reader checks before it trusts the file).
ACTIVATION_KEYS = ("units", "labels", "predictions", "probabilities", "ablated_zero", "ablated_mean")
TRAIN_KEYS = (
    "history",
    "fit_seconds",
    "test_accuracy",
    "data_source",
    "data_sha256",
    "versions",
    "config",
    "subject",
    "dataset",
)
SWEEP_KEYS = (
    "seeds",
    "widths",
    "recipe",
    "thresholds",
    "verdict",
    "specificity_verdict",
    "privileged_verdict",
    "provenance",
)


@dataclass(frozen=True)
class ArtifactPaths:
    """The files the stages hand each other, all in one `--out` folder (names defined here only)."""

    out: Path

    @property
    def model(self) -> Path:
        return self.out / "model.keras"

    @property
    def train(self) -> Path:
        return self.out / "train.json"

    @property
    def branches(self) -> Path:
        return self.out / "branches.npz"

    @property
    def epochs(self) -> Path:
        return self.out / "epochs.npz"

    @property
    def activations(self) -> Path:
        return self.out / "activations.npz"

    @property
    def weights(self) -> Path:
        return self.out / "weights.npz"

    @property
    def metrics(self) -> Path:
        return self.out / "metrics.json"

    @property
    def sweep(self) -> Path:
        return self.out / "sweep.json"

    @property
    def timings(self) -> Path:
        return self.out / "timings.json"

    @property
    def stages(self) -> Path:
        return self.out / "stages.json"


def paths(cfg: RunConfig) -> ArtifactPaths:
    return ArtifactPaths(Path(cfg.out))


@contextmanager
def atomic_path(target: Path, suffix: str = ""):
    """Yield a temporary path beside `target`; rename it onto `target` only if the block succeeds."""
    target = Path(target)
    _make_dir(target.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or target.suffix, dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes files private; artifacts are ordinary files
        os.replace(tmp, target)
    except OSError as exc:
        name_written_path(exc, target)
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def name_written_path(exc: OSError, path: Path) -> None:
    """Give a full-disk error raised by a write to an open file (which names no path) the path written."""
    if exc.errno in DISK_FULL and not exc.filename:
        exc.filename = str(path)


def write_text(target: Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(target: Path, data: dict) -> None:
    write_text(target, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_npz(target: Path, **arrays: np.ndarray) -> None:
    with atomic_path(target, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)


def ensure_writable(folder: Path) -> None:
    """Raise a clear error now if `folder` cannot be created or written to."""
    _make_dir(Path(folder))
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise NuKerasError(f"cannot write to {folder}: {exc.strerror}") from exc


def read_json(path: Path, required: tuple[str, ...] = ()) -> dict:
    data = _read(path, lambda p: json.loads(Path(p).read_text(encoding="utf-8")))
    if not isinstance(data, dict):  # valid JSON such as `null` is still not an artifact
        raise NuKerasError(f"{path} holds a JSON {type(data).__name__}, not an object; re-run its stage")
    missing = [key for key in required if key not in data]
    if missing:
        raise NuKerasError(f"{path} lacks {', '.join(missing)}; re-run the stage that writes it")
    return data


def read_npz(path: Path, required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    def load(p):
        with np.load(p, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}

    arrays = _read(path, load)
    missing = [key for key in required if key not in arrays]
    if missing:
        raise NuKerasError(f"{path} lacks arrays {', '.join(missing)}; re-run the stage that writes it")
    return arrays


def _read(path: Path, loader):
    path = Path(path)
    if not path.exists():
        raise NuKerasError(f"{path} does not exist; run the stage that writes it first")
    try:
        return loader(path)
    except Exception as exc:  # any parse failure means the same thing to the user
        raise NuKerasError(f"{path} is unreadable ({type(exc).__name__}: {exc}); re-run its stage") from exc


def _make_dir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NuKerasError(f"cannot create folder {folder}: {exc.strerror}") from exc

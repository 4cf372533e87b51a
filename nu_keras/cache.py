"""Stage caching: a stage is skipped when the fingerprint of its inputs matches the one recorded
when it last ran and its outputs are still there.

A fingerprint is a small dict — the config fields the stage reads, the hashes of the files it reads,
the hash of its own code and the package version — so the log can say *which* part changed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from nu_keras import __version__, artifacts
from nu_keras.errors import NuKerasError

PACKAGE = Path(__file__).resolve().parent


def file_hash(path: Path) -> str | None:
    """sha256 of a file's bytes, or None when it does not exist."""
    path = Path(path)
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tree_hash(folder: Path) -> str | None:
    """One hash over every file below `folder` (names and bytes), or None when it does not exist."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(file_hash(path).encode())
    return digest.hexdigest()


def templates_hash(folder: Path) -> str | None:
    """One hash over the Jinja2 templates (`*.j2`) at the top of `folder`: only the files the renderer
    can load, so `--templates` aimed at a big or mixed folder reads nothing else."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.glob("*.j2") if p.is_file()):
        try:
            digest.update(path.name.encode() + file_hash(path).encode())
        except OSError as exc:
            raise NuKerasError(f"cannot read template {path}: {exc.strerror}") from exc
    return digest.hexdigest()


def code_hash(modules: tuple[str, ...]) -> str:
    """Hash of the stage's own source files: editing charts.py re-renders, but does not retrain."""
    return hashlib.sha256("".join(file_hash(PACKAGE / m) for m in modules).encode()).hexdigest()


def fingerprint(config: dict, inputs: dict[str, str | None], modules: tuple[str, ...]) -> dict:
    return {"version": __version__, "code": code_hash(modules), "config": config, "inputs": inputs}


def why_run(new: dict, old: dict | None, outputs_ready: bool, force: bool) -> str | None:
    """The reason a stage must run, or None when its recorded result can be reused."""
    if force:
        return "--force"
    if old is None:
        return "no earlier run recorded"
    if not outputs_ready:
        return "its outputs are missing, were changed, or do not cover this request"
    for part in ("version", "code"):
        if new[part] != old.get(part):
            return f"the {'package version' if part == 'version' else 'stage code'} changed"
    for part in ("config", "inputs"):
        changed = sorted(
            k for k in set(new[part]) | set(old.get(part, {})) if new[part].get(k) != old.get(part, {}).get(k)
        )
        if changed:
            return f"{part} changed: {', '.join(changed)}"
    return None


def read_record(path: Path) -> dict:
    return artifacts.read_json(path) if Path(path).exists() else {}


def write_record(path: Path, stage: str, print_: dict) -> None:
    artifacts.write_json(path, {**read_record(path), stage: print_})

"""Output folders nu-keras owns, and only those: the marker, the refusals, one run at a time, safe replacing.

A folder nu-keras fills (artifacts, pages, site) carries a marker file, `.nu-keras.json`, holding the
folder's kind and the manifest of every file nu-keras wrote there with its sha256. That one file answers
three questions:

- may we write here? A non-empty folder without a marker is someone else's: refused before any work.
- what may we replace? Only files in the manifest. Anything else -- a CNAME, a `.git` worktree of a
  gh-pages branch, someone's notes -- is carried over into the new folder, never deleted.
- is a stage's output still what it wrote? Every manifest file present with its hash, else the stage re-runs.

One run at a time holds each folder through an advisory lock on `.NAME.nu-keras-lock` beside it (a lock inside
the folder would not survive the folder being swapped).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from nu_keras.errors import NuKerasError

MARKER = ".nu-keras.json"
STAGING_TAG = ".nu-keras-staging"  # inside a staging folder: removable once its run is gone


# ---------------------------------------------------------------------------------------------------
# The marker and its manifest
# ---------------------------------------------------------------------------------------------------


def read_marker(folder: Path) -> dict | None:
    """The folder's marker, or None when it has none (or an unreadable one: then it is not ours)."""
    try:
        marker = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("owner") != "nu-keras" or not isinstance(marker.get("files"), dict):
        return None
    if not all(_inside(relative) for relative in marker["files"]):
        return None  # a manifest naming "../x" or "/x" would have us replace files outside the folder
    return marker


def _inside(relative: str) -> bool:
    parts = Path(relative).parts
    return bool(parts) and not Path(relative).is_absolute() and ".." not in parts and "\0" not in relative


def write_marker(folder: Path, kind: str, files: dict[str, str]) -> None:
    """Write the marker atomically: a folder is never seen with half a manifest."""
    text = json.dumps({"owner": "nu-keras", "kind": kind, "files": files}, indent=1, sort_keys=True) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f"{MARKER}.", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, Path(folder) / MARKER)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file below `folder` but the marker (a folder we just built)."""
    folder = Path(folder)
    return {
        path.relative_to(folder).as_posix(): file_sha256(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name not in (MARKER, STAGING_TAG)
    }


def verified_digest(folder: Path) -> str | None:
    """A hash of the folder's manifest when every file in it is present and unchanged, else None.

    Stage records keep this digest, so a stage is reused only if its folder still holds what it wrote
    (a deleted page, or another run's site in the same folder, makes it run again).
    """
    marker = read_marker(folder)
    if marker is None or not marker["files"]:
        return None
    for relative, expected in marker["files"].items():
        path = Path(folder) / relative
        if not path.is_file() or file_sha256(path) != expected:
            return None
    return hashlib.sha256(json.dumps(marker["files"], sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------------
# Which folders we may write: checked before any work
# ---------------------------------------------------------------------------------------------------


def check_output_folders(named: dict[str, Path], protected: dict[str, Path], kinds: dict[str, str]) -> None:
    """Refuse, in one line, output folders that are or contain protected places, overlap, or are not ours.

    `named`: flag -> folder nu-keras will fill; `protected`: description -> folder never written
    (project root, working folder, home, /); `kinds`: flag -> the marker kind the folder must carry.
    """
    resolved = {flag: _absolute(path) for flag, path in named.items()}
    for flag, path in resolved.items():
        for what, place in protected.items():
            place = _absolute(place)
            if path == place or place.is_relative_to(path):
                relation = "is" if path == place else "contains"
                raise NuKerasError(f"{flag} {named[flag]} {relation} {what}; pass a folder of its own for the output")
    flags = list(resolved)
    for i, a in enumerate(flags):
        for b in flags[i + 1 :]:
            if resolved[a].is_relative_to(resolved[b]) or resolved[b].is_relative_to(resolved[a]):
                raise NuKerasError(f"{a} {named[a]} and {b} {named[b]} overlap; give each output its own folder")
    for flag, kind in kinds.items():
        check_owned(named[flag], kind, flag)


def check_owned(folder: Path, kind: str, flag: str) -> None:
    """A folder we may fill: absent, empty, or carrying our marker of the same kind."""
    folder = Path(folder)
    if not folder.exists() and not folder.is_symlink():
        return
    if not folder.is_dir():
        raise NuKerasError(f"{flag} {folder} exists and is not a folder; pass a folder path")
    marker = read_marker(folder)
    if marker is None:
        if _is_empty(folder):
            return
        raise NuKerasError(
            f"{flag} {folder} holds files nu-keras did not write (it has no {MARKER}); "
            "pass an empty or new folder, nu-keras never deletes what it did not write"
        )
    if marker.get("kind") != kind:
        raise NuKerasError(f"{flag} {folder} is a nu-keras {marker.get('kind')} folder, not a {kind} folder")


def claim(folder: Path, kind: str) -> None:
    """Create `folder` if needed and mark it ours (artifacts are written file by file, not swapped)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if read_marker(folder) is None:
        write_marker(folder, kind, {})


def _absolute(path: Path) -> Path:
    return Path(os.path.realpath(os.path.expanduser(str(path))))


def _is_empty(folder: Path) -> bool:
    with os.scandir(folder) as entries:
        return next(entries, None) is None


# ---------------------------------------------------------------------------------------------------
# One run at a time
# ---------------------------------------------------------------------------------------------------


def lock_path(folder: Path) -> Path:
    folder = Path(os.path.abspath(folder))
    return folder.with_name(f".{folder.name}.nu-keras-lock")


@contextmanager
def locked(folders: list[Path]) -> Iterator[None]:
    """Hold an exclusive advisory lock on each folder for the whole block, or fail naming the holder.

    Locks are taken in one global order (sorted paths), so two runs can never wait on each other.
    """
    paths = sorted({lock_path(f) for f in folders}, key=str)
    with ExitStack() as stack:
        for path in paths:
            stack.enter_context(_lock_one(path))
        yield


@contextmanager
def _lock_one(path: Path) -> Iterator[None]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NuKerasError(f"cannot create folder {path.parent}: {exc.strerror}") from exc
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise NuKerasError(f"cannot write to {path.parent}: {exc.strerror}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(fd)
            folder = path.with_name(path.name[1 : -len(".nu-keras-lock")])
            raise NuKerasError(
                f"{folder} is in use by another nu-keras run ({holder}); wait for it to finish"
            ) from None
        note = f"pid {os.getpid()}: {' '.join(sys.argv)}".encode("utf-8", "replace")
        os.pwrite(fd, note, 0)  # written before the truncate, so a reader never sees an empty file
        os.ftruncate(fd, len(note))
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _lock_holder(fd: int) -> str:
    """Who holds the lock, as its holder wrote it. A holder that has just taken the lock may not have
    written yet (a new lock file is empty for a moment), so an empty file is read again briefly."""
    for _ in range(50):
        holder = os.pread(fd, 400, 0).decode("utf-8", "replace").strip()
        if holder:
            return holder
        time.sleep(0.02)
    return "another process"


# ---------------------------------------------------------------------------------------------------
# Building a folder's new contents beside it and putting them in place
# ---------------------------------------------------------------------------------------------------


def staging_dir(target: Path) -> Path:
    """A fresh empty folder beside `target` to build its replacement in, tagged so a later run can
    remove it if this one dies."""
    target = Path(os.path.abspath(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
    os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes folders private; the site is for every reader
    (staging / STAGING_TAG).write_text(str(os.getpid()))
    return staging


def replace_folder(staging: Path, target: Path, kind: str) -> None:
    """Put the folder built in `staging` in place of `target`, keeping every file nu-keras did not write.

    Two renames when the folder can be renamed (never seen half-written); filled in place when it is a
    symlink or a mount point, or the rename is refused.
    """
    target = Path(os.path.abspath(target))
    (staging / STAGING_TAG).unlink(missing_ok=True)
    write_marker(staging, kind, manifest(staging))
    _refuse_collisions(target, staging)
    if target.is_symlink() or os.path.ismount(target):
        return _fill_in_place(staging, target, kind)
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    with signals_held():  # Ctrl-C or SIGTERM waits the few milliseconds until both renames are done
        try:
            if target.exists():
                os.rename(target, old)
        except OSError as exc:
            if exc.errno in (errno.EXDEV, errno.EBUSY, errno.EPERM, errno.EACCES, errno.EINVAL):
                return _fill_in_place(staging, target, kind)
            raise
        os.rename(staging, target)
        if old.exists():
            _retire_old(old, target)


@contextmanager
def signals_held() -> Iterator[None]:
    """Deliver SIGINT and SIGTERM only after the block: a folder is never left half-swapped by them, and
    a library import is never interrupted half-way (Keras turns that into a misleading ImportError).

    Held at Python's level, not with a signal mask: a mask holds one thread, and the libraries' own
    threads would still take the signal and hand it to the main thread at once.
    """
    caught: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum)) for sig in held}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if caught:
            _deliver(caught[0], previous[caught[0]])


def _deliver(signum: int, handler) -> None:
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL:
        signal.raise_signal(signum)


def clean_leftovers(target: Path) -> None:
    """Finish what a killed run left beside `target` (call while holding its lock).

    `.NAME.old-PID`: the previous folder of an interrupted swap -- put back if the target is missing,
    else its foreign files are carried into the target and the rest removed. `.NAME.staging-*` with our
    tag: a half-built folder of a dead run, removed.
    """
    target = Path(os.path.abspath(target))
    if not target.parent.is_dir():
        return
    for entry in sorted(target.parent.glob(f".{target.name}.old-*")):
        if not target.exists() and not target.is_symlink():
            os.rename(entry, target)
        else:
            _retire_old(entry, target)
    for entry in target.parent.glob(f".{target.name}.staging-*"):
        if (entry / STAGING_TAG).exists():
            shutil.rmtree(entry, ignore_errors=True)


def _retire_old(old: Path, target: Path) -> None:
    """Carry what nu-keras did not write from the previous folder into the new one, then remove the rest."""
    marker = read_marker(old)
    ours = set(marker["files"]) | {MARKER} if marker else set()
    _carry_foreign(old, target, ours, "")
    shutil.rmtree(old)


def _carry_foreign(src: Path, dst: Path, ours: set[str], prefix: str) -> None:
    for entry in sorted(src.iterdir()):
        relative = prefix + entry.name
        if relative in ours:
            continue
        holds_ours = any(p.startswith(relative + "/") for p in ours)
        if entry.is_dir() and not entry.is_symlink() and holds_ours:
            (dst / entry.name).mkdir(exist_ok=True)
            _carry_foreign(entry, dst / entry.name, ours, relative + "/")
        elif (dst / entry.name).exists() or (dst / entry.name).is_symlink():
            raise NuKerasError(f"{dst / entry.name} was not written by nu-keras and a new file has its name; kept")
        else:
            os.rename(entry, dst / entry.name)


def _foreign_paths(folder: Path) -> list[str]:
    """Relative paths of files (and foreign sub-folders) in an owned folder that nu-keras did not write."""
    marker = read_marker(folder)
    if marker is None:
        return []
    ours = set(marker["files"]) | {MARKER}
    found = []
    for root, dirs, files in os.walk(folder):
        base = Path(root).relative_to(folder).as_posix()
        base = "" if base == "." else base + "/"
        for name in files:
            if base + name not in ours:
                found.append(base + name)
        holding_ours = []
        for name in dirs:
            if any(p.startswith(base + name + "/") for p in ours):
                holding_ours.append(name)  # look inside: it mixes our files with others
            else:
                found.append(base + name)  # a whole folder of someone else's, e.g. .git
        dirs[:] = holding_ours
    return found


def _refuse_collisions(target: Path, staging: Path) -> None:
    if not target.exists():
        return
    clashes = [p for p in _foreign_paths(target) if (staging / p).exists()]
    if clashes:
        raise NuKerasError(
            f"{target / clashes[0]} was not written by nu-keras but the new output has a file of that name; "
            "move it away and run again"
        )


def _fill_in_place(staging: Path, target: Path, kind: str) -> None:
    """Replace our files inside `target` one by one (a symlink or a mount point cannot be renamed).

    The marker first lists old and new files together, so a run killed half-way leaves nothing that a
    later run would take for someone else's file; the final marker lists the new files only.
    """
    real = Path(os.path.realpath(target))
    real.mkdir(parents=True, exist_ok=True)
    old = (read_marker(real) or {"files": {}})["files"]
    new = read_marker(staging)["files"]
    write_marker(real, kind, {**old, **{k: "" for k in new if k not in old}})
    for relative in old:
        (real / relative).unlink(missing_ok=True)
    for relative in new:
        destination = real / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staging / relative), str(destination))
    _remove_empty_dirs(real, {str(Path(r).parent) for r in old})
    write_marker(real, kind, new)
    shutil.rmtree(staging, ignore_errors=True)


def _remove_empty_dirs(root: Path, candidates: set[str]) -> None:
    for relative in sorted(candidates, key=len, reverse=True):
        if relative in ("", "."):
            continue
        try:
            (root / relative).rmdir()
        except OSError:
            pass  # not empty: it holds new or foreign files


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

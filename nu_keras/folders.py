"""Output folders nu-keras owns, and only those: the marker, the refusals, one run at a time, safe replacing.

A folder nu-keras fills (artifacts, pages, site) carries a marker file, `.nu-keras.json`, holding the
folder's kind and the manifest of every file nu-keras wrote there with its sha256. That one file answers
three questions:

- may we write here? A non-empty folder without a marker is someone else's: refused before any work.
- what may we replace? Only files in the manifest that are still what nu-keras wrote: regular files, reached
  without a symlink, whose sha256 matches. Anything else -- a CNAME, a `.git` worktree of a gh-pages branch,
  someone's notes, a page edited by hand, an entry of a forged marker -- is kept, never deleted.
- is a stage's output still what it wrote? Every manifest file present with its hash, else the stage re-runs.

Nothing on disk is trusted further than that: the lock file is opened without following links, leftovers of
a killed run are touched only when they are real folders nu-keras tagged, and a folder filled in place keeps
its old files until every new one is in place.

One run at a time holds each folder through an advisory lock on `.NAME.nu-keras-lock` beside the folder's
real path (a lock inside the folder would not survive the folder being swapped; the real path gives a folder
reached through a symlink the same lock).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from nu_keras.cache import file_hash
from nu_keras.errors import NuKerasError

log = logging.getLogger(__name__)

MARKER = ".nu-keras.json"
STAGING_TAG = ".nu-keras-staging"  # inside a staging folder: removable once its run is gone
INCOMING = ".nu-keras-incoming-"  # inside a folder filled in place: the new files, before they go in
PREVIOUS = ".nu-keras-previous-"  # inside a folder filled in place: the old files, until the new ones are in


# ---------------------------------------------------------------------------------------------------
# The marker and its manifest
# ---------------------------------------------------------------------------------------------------


def read_marker(folder: Path) -> dict | None:
    """The folder's marker, or None when it has none (or an unreadable one: then it is not ours).

    `files` maps each file nu-keras wrote to its sha256; `previous`, present only while a folder is being
    filled in place, maps the files of the run before (a run killed half-way leaves both kinds).
    """
    try:
        marker = json.loads(_read_regular_file(Path(folder) / MARKER))
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("owner") != "nu-keras":
        return None
    listed = [marker.get("files"), marker.get("previous", {})]
    if not all(isinstance(files, dict) and all(isinstance(h, str) for h in files.values()) for files in listed):
        return None
    if not all(_inside(relative) for files in listed for relative in files):
        return None  # a manifest naming "../x" or "/x" would have us replace files outside the folder
    return marker


def _read_regular_file(path: Path) -> str:
    """The text of `path` when it is a regular file itself: a marker that is a link or a FIFO is not ours."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        return handle.read().decode("utf-8")


def _inside(relative: str) -> bool:
    parts = Path(relative).parts
    return bool(parts) and not Path(relative).is_absolute() and ".." not in parts and "\0" not in relative


def write_marker(folder: Path, kind: str, files: dict[str, str], previous: dict[str, str] | None = None) -> None:
    """Write the marker atomically: a folder is never seen with half a manifest."""
    _write_marker_as(Path(folder) / MARKER, kind, files, previous)


def _write_marker_as(path: Path, kind: str, files: dict[str, str], previous: dict[str, str] | None = None) -> None:
    marker = {"owner": "nu-keras", "kind": kind, "files": files} | ({"previous": previous} if previous else {})
    text = json.dumps(marker, indent=1, sort_keys=True) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f"{MARKER}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)  # a full disk leaves no half-written marker behind
        raise


def manifest(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file below `folder` but the marker (a folder we just built)."""
    folder = Path(folder)
    return {
        path.relative_to(folder).as_posix(): file_hash(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name not in (MARKER, STAGING_TAG)
    }


def _is_plain_file(folder: Path, relative: str) -> bool:
    """True when `relative` is a regular file reached through real sub-folders of `folder`, no symlink on
    the way: a marker entry `link/x` must not reach through `link` to a file outside the folder."""
    path = Path(folder)
    try:
        for part in Path(relative).parts[:-1]:
            path = path / part
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                return False
        return stat.S_ISREG(os.lstat(Path(folder) / relative).st_mode)
    except OSError:
        return False


def owned_files(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of the files in `folder` nu-keras may remove or replace.

    Those its marker lists that are still what nu-keras wrote: regular files, no symlink on the way, with
    the listed hash. A forged entry (`.git`, `link/victim.txt`) or a page edited since is not among them.
    """
    marker = read_marker(folder)
    if marker is None:
        return {}
    listed = {**marker.get("previous", {}), **marker["files"]}
    owned = {}
    for relative in listed:
        if not _is_plain_file(folder, relative):
            continue
        digest = file_hash(Path(folder) / relative)
        if digest in (marker["files"].get(relative), marker.get("previous", {}).get(relative)):
            owned[relative] = digest
    return owned


def _kept_entries(folder: Path, owned: dict[str, str]) -> list[str]:
    """Marker entries present in `folder` that are not ours to replace (changed, or reached through a link)."""
    listed = (read_marker(folder) or {}).get("files", {})
    return sorted(r for r in listed if r not in owned and os.path.lexists(Path(folder) / r))


def verified_digest(folder: Path) -> str | None:
    """A hash of the folder's manifest when every file in it is present and unchanged, else None.

    Stage records keep this digest, so a stage is reused only if its folder still holds what it wrote
    (a deleted page, or another run's site in the same folder, makes it run again).
    """
    marker = read_marker(folder)
    if marker is None or not marker["files"] or "previous" in marker:
        return None  # "previous": a fill in place that did not finish
    for relative, expected in marker["files"].items():
        if not _is_plain_file(folder, relative) or file_hash(Path(folder) / relative) != expected:
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

LOCK_SUFFIX = ".nu-keras-lock"


def lock_path(folder: Path) -> Path:
    """`.NAME.nu-keras-lock` beside the folder's real path: `--out out` and `--out link-to-out` (or
    `--out ./x/../out`) are one folder, so they take one lock and two runs never mix their files."""
    real = _absolute(folder)
    return real.with_name(f".{real.name}{LOCK_SUFFIX}")


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
    fd = _open_lock_file(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(fd)
            folder = path.with_name(path.name[1 : -len(LOCK_SUFFIX)])
            raise NuKerasError(
                f"{folder} is in use by another nu-keras run ({holder}); wait for it to finish"
            ) from None
        if os.pread(fd, 4, 0) not in (b"", b"pid "):
            raise NuKerasError(f"{path} is not a nu-keras lock file (it holds other text); move it away and run again")
        note = f"pid {os.getpid()}: {' '.join(sys.argv)}".encode("utf-8", "replace")
        os.pwrite(fd, note, 0)  # written before the truncate, so a reader never sees an empty file
        os.ftruncate(fd, len(note))
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _open_lock_file(path: Path) -> int:
    """The lock file, opened without following a link and only if it is a regular file of its own.

    A link planted at the lock's name (anyone can in /tmp) would have us write into the file it names; a
    hard link the same. Either is refused, and the file it names is left as it was.
    """
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NuKerasError(
                f"{path} is a symbolic link, not a nu-keras lock file; remove it (nu-keras never writes through a link)"
            ) from None
        if exc.errno in (errno.EISDIR, errno.ENXIO):  # a folder or a socket at the lock's name
            raise NuKerasError(f"{path} is not a regular file, so not a nu-keras lock file; move it away") from None
        raise NuKerasError(f"cannot write to {path.parent}: {exc.strerror}") from exc
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode) or status.st_nlink != 1:
        os.close(fd)
        what = "is not a regular file" if not stat.S_ISREG(status.st_mode) else "has other hard links"
        raise NuKerasError(f"{path} {what}, so it is not a nu-keras lock file; move it away and run again")
    return fd


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
    if target.is_symlink() or os.path.ismount(target):
        return _fill_in_place(staging, target, kind)
    _refuse_collisions(target, staging)
    # A fresh name, never one a link may already sit at (a planted `.site.old-PID` would be taken for ours)
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent)) if target.exists() else None
    with signals_held():  # Ctrl-C or SIGTERM waits the few milliseconds until both renames are done
        try:
            if old is not None:
                os.rename(target, old)  # a folder may replace an empty folder
        except OSError as exc:
            old.rmdir()
            if exc.errno in (errno.EXDEV, errno.EBUSY, errno.EPERM, errno.EACCES, errno.EINVAL):
                return _fill_in_place(staging, target, kind)
            raise
        os.rename(staging, target)
        if old is not None:
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


def clean_leftovers(target: Path, kind: str | None = None) -> None:
    """Finish what a killed run left beside `target` (call while holding its lock, after its ownership check).

    `.NAME.old-*`: the previous folder of an interrupted swap -- put back if the target is missing, else its
    foreign files are carried into the target and the rest removed. `.NAME.staging-*`: a half-built folder
    of a dead run, removed. Inside a folder filled in place, the tagged folders of a fill that was killed.
    Each only when it is a real folder (not a link) that nu-keras tagged: an old folder carries our marker of
    `kind` (or is empty), a staging folder our tag. Anything else of that name is left alone.
    """
    target = Path(os.path.abspath(target))
    if not target.parent.is_dir():
        return
    for entry in sorted(target.parent.glob(f".{target.name}.old-*")):
        if not _is_our_old_folder(entry, kind):
            log.warning("left %s alone: it is not a folder nu-keras tagged", entry)
        elif not os.path.lexists(target):
            os.rename(entry, target)
        else:
            _retire_old(entry, target)
    for entry in target.parent.glob(f".{target.name}.staging-*"):
        if _is_tagged_folder(entry):
            shutil.rmtree(entry)
    if (target.is_symlink() or os.path.ismount(target)) and read_marker(target) is not None:
        real = Path(os.path.realpath(target))
        for entry in [*real.glob(f"{INCOMING}*"), *real.glob(f"{PREVIOUS}*")]:
            if _is_tagged_folder(entry):
                shutil.rmtree(entry)


def _is_real_folder(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _is_tagged_folder(path: Path) -> bool:
    """A real folder (not a link) holding our staging tag as a regular file."""
    return _is_real_folder(path) and _is_plain_file(path, STAGING_TAG)


def _is_our_old_folder(path: Path, kind: str | None) -> bool:
    """The previous folder of a swap: a real folder carrying our marker of `kind`, or empty (it was empty)."""
    if not _is_real_folder(path):
        return False
    marker = read_marker(path)
    if marker is None:
        return _is_empty(path)
    return kind is None or marker.get("kind") == kind


def _retire_old(old: Path, target: Path) -> None:
    """Carry what nu-keras did not write from the previous folder into the new one, then remove the rest."""
    _carry_foreign(old, target, set(owned_files(old)) | {MARKER}, "")
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


def _foreign_paths(folder: Path, ours: set[str]) -> list[str]:
    """Relative paths of files (and foreign sub-folders) in an owned folder that are not `ours`."""
    ours = ours | {MARKER}
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


def _refuse_collisions(folder: Path, staging: Path) -> None:
    """Refuse before any change when a new file would land on one nu-keras may not replace; name the
    marker entries that are kept because they are no longer what nu-keras wrote."""
    if not folder.exists():
        return
    owned = owned_files(folder)
    kept = _kept_entries(folder, owned)
    clashes = [p for p in _foreign_paths(folder, set(owned)) if os.path.lexists(staging / p)]
    if clashes and clashes[0] in kept:
        raise NuKerasError(
            f"{folder / clashes[0]} changed since nu-keras wrote it (or is reached through a link) and the new "
            "output has a file of that name; move it away and run again"
        )
    if clashes:
        raise NuKerasError(
            f"{folder / clashes[0]} was not written by nu-keras but the new output has a file of that name; "
            "move it away and run again"
        )
    if kept:
        log.warning("kept %s in %s: no longer what nu-keras wrote there", ", ".join(kept[:5]), folder)


def _fill_in_place(staging: Path, target: Path, kind: str) -> None:
    """Replace our files inside `target` (a symlink or a mount point cannot be renamed), losing none.

    First every new file is brought into a tagged folder inside the real target, which may fill the disk:
    a failure there leaves the old folder exactly as it was. Then, with signals held, renames only: the old
    files move aside into another tagged folder and the new ones take their places; a failure there moves
    everything back. Between the renames the marker lists the new files and, as `previous`, the old ones,
    so a run killed half-way leaves nothing that a later run would take for someone else's file.
    """
    real = Path(os.path.realpath(target))
    real.mkdir(parents=True, exist_ok=True)
    _refuse_collisions(real, staging)
    old = owned_files(real)
    new = read_marker(staging)["files"]
    incoming, previous = real / f"{INCOMING}{os.getpid()}", real / f"{PREVIOUS}{os.getpid()}"
    made: list[Path] = []
    try:
        _bring_in(staging, incoming)
        made = _make_parents(real, new)
        _make_tagged_folder(previous, old)
        _write_marker_as(incoming / f"{MARKER}.between", kind, new, old)
    except OSError as exc:
        _discard(incoming, previous, made)
        raise _kept_whole(exc, real, kind) from exc
    except BaseException:
        _discard(incoming, previous, made)
        raise
    with signals_held():
        moves = _Moves()
        try:
            moves.move(real / MARKER, previous / MARKER, missing_ok=True)
            moves.move(incoming / f"{MARKER}.between", real / MARKER)
            for relative in old:
                moves.move(real / relative, previous / relative)
            for relative in new:
                moves.move(incoming / relative, real / relative)
            os.replace(incoming / MARKER, real / MARKER)
        except OSError as exc:
            _put_back(moves, incoming, previous, made)
            raise _kept_whole(exc, real, kind) from exc
        except BaseException:
            _put_back(moves, incoming, previous, made)
            raise
    _discard(incoming, previous, [])
    _remove_empty_dirs(real, {str(parent) for r in old for parent in Path(r).parents})


class _Moves:
    """Renames done so far, to undo in reverse order: a fill that fails half-way puts every file back."""

    def __init__(self) -> None:
        self.done: list[tuple[Path, Path]] = []

    def move(self, source: Path, destination: Path, missing_ok: bool = False) -> None:
        if missing_ok and not os.path.lexists(source):
            return
        if os.path.lexists(destination):  # never replace a file silently, whatever was checked before
            raise FileExistsError(errno.EEXIST, "a file is already there", str(destination))
        os.rename(source, destination)
        self.done.append((source, destination))

    def undo(self) -> None:
        for source, destination in reversed(self.done):
            os.rename(destination, source)
        self.done.clear()


def _put_back(moves: _Moves, incoming: Path, previous: Path, made: list[Path]) -> None:
    moves.undo()  # if this fails, the old files stay in `previous`, which is not discarded
    _discard(incoming, previous, made)


def _bring_in(staging: Path, incoming: Path) -> None:
    """Move the built folder into the real target under a tagged name: a rename on the same disk, a copy
    across disks (the copy is what may fill the disk). Tagged first, so a kill leaves it removable."""
    (staging / STAGING_TAG).write_text(str(os.getpid()))
    try:
        os.rename(staging, incoming)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        _copy_folder(staging, incoming)


def _copy_folder(source: Path, destination: Path) -> None:
    """`shutil.copytree`, except that the first failure is raised as it is: a full disk then says ENOSPC
    and names the file, instead of being gathered into one `shutil.Error` list."""
    destination.mkdir()
    for path in sorted(source.rglob("*"), key=lambda p: (p.name != STAGING_TAG, p.as_posix())):  # the tag first
        copy = destination / path.relative_to(source)
        if path.is_dir() and not path.is_symlink():
            copy.mkdir(exist_ok=True)
        else:
            shutil.copy2(path, copy, follow_symlinks=False)


def _make_parents(real: Path, files: dict[str, str]) -> list[Path]:
    """Create the sub-folders the new files go into; returns those created, parents first."""
    made = []
    for relative in sorted(files):
        for parent in reversed(Path(relative).parents[:-1]):
            folder = real / parent
            if not os.path.lexists(folder):
                folder.mkdir()
                made.append(folder)
            elif not _is_real_folder(folder):
                raise FileExistsError(errno.EEXIST, "not a folder", str(folder))
    return made


def _make_tagged_folder(folder: Path, files: dict[str, str]) -> None:
    """The folder the old files move aside into, with their sub-folders made now (a mkdir may need space)."""
    folder.mkdir()
    (folder / STAGING_TAG).write_text(str(os.getpid()))
    for relative in files:
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)


def _discard(incoming: Path, previous: Path, made: list[Path]) -> None:
    for folder in (incoming, previous):
        if _is_real_folder(folder):
            shutil.rmtree(folder, ignore_errors=True)
    for folder in reversed(made):
        try:
            folder.rmdir()
        except OSError:
            pass  # not empty: something else was put there meanwhile


def _kept_whole(exc: OSError, real: Path, kind: str) -> OSError:
    """The same error, saying what was kept: the caller's "nothing already built was replaced" is true."""
    what = f"{exc.strerror or exc} while filling {real} in place; the previous {kind} there was kept whole"
    return type(exc)(exc.errno, what, exc.filename) if exc.errno else OSError(what)


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

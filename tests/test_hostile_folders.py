"""Folders that someone else prepared: a planted lock link, a forged marker, a planted leftover, a folder
reached through a symlink, a disk that fills while a folder is filled in place. Nothing on disk is trusted:
the files they point at stay byte-identical, and every refusal is one line."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import assert_one_line_error, build_into, cli, fingerprint

from nu_keras import cache, folders


def victim(path: Path, text: str = "precious\n") -> Path:
    path.write_text(text)
    return path


def user_docs(path: Path) -> Path:
    """A folder of the user's own: no marker, a file and a sub-folder."""
    (path / "guide").mkdir(parents=True)
    (path / "index.md").write_text("# my docs")
    (path / "guide" / "setup.md").write_text("step one")
    return path


def folder_flags(root: Path, out: Path | None = None) -> list[str]:
    out = out or root / "artifacts"
    return ["--out", str(out), "--pages-dir", str(root / "pages"), "--site-dir", str(root / "site")]


def built_pages(root: Path) -> Path:
    """The smallest pages folder `nu-keras build` publishes: one page and our marker."""
    pages = root / "pages"
    pages.mkdir()
    (pages / "index.md").write_text("# Home\n")
    folders.write_marker(pages, "pages", folders.manifest(pages))
    return pages


# --- 1. the lock file ----------------------------------------------------------------------------------


def test_a_symlinked_lock_file_is_refused_and_its_target_untouched(tmp_path):
    precious = victim(tmp_path / "v.txt")
    folders.lock_path(tmp_path / "site").symlink_to(precious)
    assert_one_line_error(cli(["build", *folder_flags(tmp_path)]), "symbolic link")
    assert precious.read_text() == "precious\n"


def test_a_lock_file_hard_linked_to_another_file_is_refused_and_that_file_untouched(tmp_path):
    precious = victim(tmp_path / "v.txt")
    os.link(precious, folders.lock_path(tmp_path / "site"))
    assert_one_line_error(cli(["build", *folder_flags(tmp_path)]), "hard links")
    assert precious.read_text() == "precious\n"


def test_a_file_at_the_lock_path_that_nu_keras_did_not_write_is_left_as_it_was(tmp_path):
    precious = victim(folders.lock_path(tmp_path / "site"), "someone's notes\n")
    assert_one_line_error(cli(["build", *folder_flags(tmp_path)]), "not a nu-keras lock file")
    assert precious.read_text() == "someone's notes\n"


# --- 2. a forged marker --------------------------------------------------------------------------------


def symlinked_site(tmp_path: Path) -> Path:
    (tmp_path / "real-site").mkdir()
    (tmp_path / "site").symlink_to(tmp_path / "real-site")
    return tmp_path / "site"


def test_a_marker_entry_through_a_symlinked_folder_never_deletes_the_file_outside(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    precious = victim(outside / "victim.txt")
    site = symlinked_site(tmp_path)  # filled in place: old files are removed one by one
    build_into(site, {"index.html": "v1"})
    (site / "link").symlink_to(outside)
    forged = folders.read_marker(site)["files"] | {"link/victim.txt": cache.file_hash(precious)}
    folders.write_marker(site, "site", forged)
    build_into(site, {"index.html": "v2"})
    assert precious.read_text() == "precious\n" and (site / "link").is_symlink()
    assert (site / "index.html").read_text() == "v2"


@pytest.mark.parametrize("in_place", [False, True], ids=["renamed", "filled-in-place"])
def test_a_marker_listing_a_git_worktree_never_deletes_it(tmp_path, in_place):
    site = symlinked_site(tmp_path) if in_place else tmp_path / "site"
    build_into(site, {"index.html": "v1"})
    (site / ".git").mkdir()
    (site / ".git" / "HEAD").write_text("ref: refs/heads/gh-pages\n")
    before = fingerprint(site / ".git")
    folders.write_marker(site, "site", folders.read_marker(site)["files"] | {".git": "0" * 64})
    build_into(site, {"index.html": "v2"})
    assert fingerprint(site / ".git") == before and (site / "index.html").read_text() == "v2"


def test_a_page_edited_since_it_was_written_is_kept_and_named(tmp_path, caplog):
    site = tmp_path / "site"
    build_into(site, {"index.html": "v1", "notes.html": "generated"})
    (site / "notes.html").write_text("my own edits")
    build_into(site, {"index.html": "v2"})
    assert (site / "notes.html").read_text() == "my own edits"
    assert "notes.html" in caplog.text and "no longer what nu-keras wrote" in caplog.text


def test_a_new_page_where_an_edited_one_is_refused_naming_it_and_nothing_changes(tmp_path):
    site = tmp_path / "site"
    build_into(site, {"index.html": "v1", "about.html": "generated"})
    (site / "about.html").write_text("my own edits")
    before = fingerprint(site)
    with pytest.raises(folders.NuKerasError, match=r"about.html changed since nu-keras wrote it"):
        build_into(site, {"index.html": "v2", "about.html": "new"})
    assert fingerprint(site) == before


# --- 3. planted leftovers ------------------------------------------------------------------------------


def test_a_planted_old_folder_link_is_not_put_in_place_of_a_missing_site(tmp_path):
    docs = user_docs(tmp_path / "userdocs")
    before = fingerprint(docs)
    (tmp_path / ".site.old-1").symlink_to(docs)
    built_pages(tmp_path)
    code, _, err = cli(["build", *folder_flags(tmp_path)])
    assert code == 0, err
    assert fingerprint(docs) == before and sorted(p.name for p in docs.iterdir()) == ["guide", "index.md"]
    assert not (tmp_path / "site").is_symlink() and (tmp_path / "site" / "index.html").exists()
    assert (tmp_path / ".site.old-1").is_symlink()  # not ours: left where it was


def test_a_planted_old_folder_link_beside_a_site_moves_nothing_out_of_its_target(tmp_path):
    docs = user_docs(tmp_path / "userdocs")
    before = fingerprint(docs)
    built_pages(tmp_path)
    assert cli(["build", *folder_flags(tmp_path)])[0] == 0
    site_before = fingerprint(tmp_path / "site")
    (tmp_path / ".site.old-1").symlink_to(docs)
    code, _, err = cli(["build", "--force", *folder_flags(tmp_path)])
    assert code == 0, err
    assert fingerprint(docs) == before
    assert fingerprint(tmp_path / "site") == site_before  # no user file moved in, and the next run works too
    assert cli(["build", "--force", *folder_flags(tmp_path)])[0] == 0


def test_an_old_folder_link_at_the_name_a_swap_would_use_is_never_taken_for_the_old_site(tmp_path):
    docs = user_docs(tmp_path / "userdocs")
    before = fingerprint(docs)
    (tmp_path / f".site.old-{os.getpid()}").symlink_to(docs)
    build_into(tmp_path / "site", {"index.html": "v1"})
    build_into(tmp_path / "site", {"index.html": "v2"})
    assert fingerprint(docs) == before and (tmp_path / "site" / "index.html").read_text() == "v2"


def test_an_old_folder_of_another_kind_is_not_put_in_place(tmp_path):
    old = tmp_path / ".site.old-7"
    old.mkdir()
    (old / "index.md").write_text("pages, not a site")
    folders.write_marker(old, "pages", folders.manifest(old))
    before = fingerprint(old)
    built_pages(tmp_path)
    assert cli(["build", *folder_flags(tmp_path)])[0] == 0
    assert fingerprint(old) == before and not (tmp_path / "site" / "index.md").exists()


# --- 4. a folder filled in place keeps the old site until the new one is whole --------------------------


def refuse_renames_out_of_staging(monkeypatch) -> None:
    """Make the staging folder look like another disk: renames out of it fail with EXDEV, so files are copied."""
    real_rename = os.rename

    def rename(src, dst, *args, **kwargs):
        if ".staging-" in str(src):
            raise OSError(errno.EXDEV, "Invalid cross-device link", str(src))
        return real_rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", rename)


def fill_the_disk_after(monkeypatch, files: int) -> None:
    """Copies succeed for the first `files` files, then fail as on a full disk."""
    real_copy = shutil.copyfile  # what every copy in shutil comes down to
    copied = []

    def copyfile(src, dst, *args, **kwargs):
        if len(copied) >= files:
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        copied.append(src)
        return real_copy(src, dst, *args, **kwargs)

    monkeypatch.setattr(shutil, "copyfile", copyfile)


def test_a_full_disk_while_filling_a_symlinked_site_keeps_every_old_file(tmp_path, monkeypatch):
    site = symlinked_site(tmp_path)
    build_into(site, {"index.html": "v1", "img/a.png": "a1", "old.html": "o"})
    (site / "CNAME").write_text("example.org")
    before, digest = fingerprint(tmp_path / "real-site"), folders.verified_digest(site)
    refuse_renames_out_of_staging(monkeypatch)
    fill_the_disk_after(monkeypatch, files=2)
    with pytest.raises(OSError) as err:
        build_into(site, {"index.html": "v2", "img/a.png": "a2", "img/b.png": "b", "new.html": "n"})
    assert fingerprint(tmp_path / "real-site") == before and folders.verified_digest(site) == digest
    assert err.value.errno == errno.ENOSPC and "the previous site there was kept whole" in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["real-site", "site"]  # no staging left


def test_a_failed_rename_while_filling_in_place_puts_every_old_file_back(tmp_path, monkeypatch):
    site = symlinked_site(tmp_path)
    build_into(site, {"index.html": "v1", "img/a.png": "a1", "old.html": "o"})
    before, digest = fingerprint(tmp_path / "real-site"), folders.verified_digest(site)
    real_rename = os.rename

    def rename(src, dst, *args, **kwargs):
        if Path(dst).name == "new.html":
            raise OSError(errno.EIO, "Input/output error", str(dst))
        return real_rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="kept whole"):
        build_into(site, {"index.html": "v2", "img/a.png": "a2", "new.html": "n"})
    assert fingerprint(tmp_path / "real-site") == before and folders.verified_digest(site) == digest


def test_a_signal_while_filling_in_place_waits_until_every_new_file_is_in(tmp_path, monkeypatch):
    site = symlinked_site(tmp_path)
    build_into(site, {"index.html": "v1", "old.html": "o"})
    real_rename = os.rename
    # Ctrl-C as Python handles it by default: a test worker may have started with SIGINT ignored
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)

    def rename(src, dst, *args, **kwargs):
        if Path(dst).name == "index.html" and Path(dst).parent == tmp_path / "real-site":
            signal.raise_signal(signal.SIGINT)  # Ctrl-C as the new files go in
        return real_rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(shutil, "move", lambda src, dst: rename(src, dst))
    try:
        with pytest.raises(KeyboardInterrupt):
            build_into(site, {"index.html": "v2", "new.html": "n"})
    finally:
        signal.signal(signal.SIGINT, previous)
    assert (site / "index.html").read_text() == "v2" and (site / "new.html").read_text() == "n"
    assert not (site / "old.html").exists() and folders.verified_digest(site) is not None


# --- 5. one folder by two names ------------------------------------------------------------------------


def test_a_folder_reached_through_a_symlink_takes_the_same_lock(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "outlink").symlink_to(tmp_path / "out")
    assert folders.lock_path(tmp_path / "outlink") == folders.lock_path(tmp_path / "out")
    with folders.locked([tmp_path / "out"]):
        result = cli(["build", *folder_flags(tmp_path, out=tmp_path / "outlink")])
    assert_one_line_error(result, "in use by another nu-keras run")


KILLED_MID_FILL = """
import os, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from helpers import build_into
site, renames, real_rename = Path(sys.argv[1]), [], os.rename

def rename(src, dst, *args, **kwargs):
    if Path(dst).parent == site.resolve():
        renames.append(dst)
        if len(renames) == 4:  # old files aside, the first new file in, the second not yet
            os._exit(9)
    return real_rename(src, dst, *args, **kwargs)

os.rename = rename
build_into(site, {"index.html": "v2", "new.html": "n"})
"""


def test_a_run_killed_while_filling_in_place_leaves_a_folder_the_next_run_finishes(tmp_path):
    site = symlinked_site(tmp_path)
    build_into(site, {"index.html": "v1", "old.html": "o", "z.html": "z"})
    (site / "CNAME").write_text("example.org")
    tests = Path(__file__).parent
    killed = subprocess.run([sys.executable, "-c", KILLED_MID_FILL, str(site), str(tests)], check=False)
    assert killed.returncode == 9
    assert folders.verified_digest(site) is None  # half filled: the stage runs again
    folders.clean_leftovers(site, "site")
    build_into(site, {"index.html": "v3"})
    names = sorted(p.name for p in (tmp_path / "real-site").iterdir())
    assert names == [".nu-keras.json", "CNAME", "index.html"] and folders.verified_digest(site) is not None

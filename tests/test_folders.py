"""Output folders: nu-keras writes only where it owns the folder, keeps what it did not write, and one run
at a time holds a folder. Every refusal is one line and exit 2, before any work, and canaries survive."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest
from helpers import assert_one_line_error, build_into, cli, fingerprint

from nu_keras import folders
from nu_keras.config import PROJECT_ROOT


def canary_folder(path: Path) -> Path:
    """A folder of someone else's: a file and a hidden folder that must never be touched."""
    (path / ".git").mkdir(parents=True)
    (path / ".git" / "HEAD").write_text("ref: refs/heads/gh-pages\n")
    (path / "notes.txt").write_text("my notes")
    return path


def flags(root: Path, **overrides: Path | str) -> list[str]:
    chosen = {"out": root / "artifacts", "pages-dir": root / "pages", "site-dir": root / "site"} | overrides
    return [part for flag, path in chosen.items() for part in (f"--{flag}", str(path))]


# --- refused before any work -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command, flag",
    [("build", "site-dir"), ("render", "pages-dir"), ("analyze", "out"), ("report", "site-dir")],
)
def test_a_folder_holding_someone_elses_files_is_refused_and_kept(tmp_path, command, flag):
    target = canary_folder(tmp_path / "theirs")
    before = fingerprint(target)
    assert_one_line_error(cli([command, *flags(tmp_path, **{flag: target})]), "nu-keras did not write")
    assert fingerprint(target) == before
    assert not (tmp_path / "artifacts" / "model.keras").exists()


@pytest.mark.parametrize(
    "place, fragment",
    [
        ("cwd", "is the working folder"),
        ("cwd-parent", "contains the working folder"),
        ("home", "is the home folder"),
        ("root", "/"),
        ("project", "is the project root"),
    ],
)
def test_protected_places_are_refused_as_output_folders(tmp_path, monkeypatch, place, fragment):
    work = canary_folder(tmp_path / "work")
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(canary_folder(tmp_path / "home")))
    target = {
        "cwd": ".",
        "cwd-parent": "..",
        "home": str(tmp_path / "home"),
        "root": "/",
        "project": str(PROJECT_ROOT),
    }[place]
    before = fingerprint(tmp_path)
    for flag in ("site-dir", "pages-dir", "out"):
        assert_one_line_error(cli(["build", *flags(tmp_path / "x", **{flag: target})]), fragment)
    assert fingerprint(tmp_path) == before


def test_an_empty_path_is_refused_not_taken_for_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(canary_folder(tmp_path / "work"))
    before = fingerprint(tmp_path)
    for flag in ("--site-dir", "--pages-dir", "--out", "--data", "--templates"):
        code, _, err = cli(["build", flag, ""])
        assert code == 2 and "empty path" in err and "Traceback" not in err
    assert fingerprint(tmp_path) == before


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"site-dir": "{root}/artifacts"}, "overlap"),  # would delete the model
        ({"out": "{root}/site"}, "overlap"),  # `report --out site`
        ({"pages-dir": "{root}/site/pages"}, "overlap"),
        ({"pages-dir": str(PROJECT_ROOT / "docs")}, "theme overrides"),  # MkDocs' default docs_dir
        ({"site-dir": str(PROJECT_ROOT / "report_templates")}, "--templates"),
    ],
)
def test_overlapping_output_folders_are_refused(tmp_path, overrides, fragment):
    chosen = {flag: path.format(root=tmp_path) for flag, path in overrides.items()}
    overrides_before = fingerprint(PROJECT_ROOT / "docs")
    assert_one_line_error(cli(["report", *flags(tmp_path, **chosen)]), fragment)
    assert fingerprint(PROJECT_ROOT / "docs") == overrides_before
    assert not (tmp_path / "artifacts").exists()


def test_a_nu_keras_folder_of_another_kind_is_refused(tmp_path):
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "index.md").write_text("# pages")
    folders.write_marker(pages, "pages", folders.manifest(pages))
    assert_one_line_error(
        cli(["build", *flags(tmp_path, **{"site-dir": tmp_path / "pages", "pages-dir": tmp_path / "p2"})])
    )


# --- one run at a time -------------------------------------------------------------------------------


def test_a_second_run_on_a_held_folder_fails_naming_the_holder(tmp_path):
    site = tmp_path / "site"
    with folders.locked([site]):
        line = assert_one_line_error(cli(["build", *flags(tmp_path)]), "in use by another nu-keras run", "pid ")
    assert str(os.getpid()) in line
    code, _, err = cli(["build", *flags(tmp_path)])  # released: now it fails for its own reason
    assert "in use" not in err and "holds no pages" in err


def test_locks_are_taken_in_one_order_so_two_runs_never_wait_on_each_other(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    with folders.locked([b, a]):
        with pytest.raises(Exception, match="in use"):
            with folders.locked([a]):
                pass


def test_a_holder_that_has_not_yet_written_its_name_is_still_named(tmp_path):
    """A run that has just taken the lock writes who it is a moment later: the loser waits for it."""
    import fcntl
    import threading

    lock = folders.lock_path(tmp_path / "site")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    late = threading.Timer(0.2, lambda: os.pwrite(fd, b"pid 4242: nu-keras report", 0))
    late.start()
    try:
        with pytest.raises(Exception, match=r"in use by another nu-keras run \(pid 4242"):
            with folders.locked([tmp_path / "site"]):
                pass
    finally:
        late.join()
        os.close(fd)


# --- replacing a folder keeps what nu-keras did not write --------------------------------------------


def test_foreign_files_in_an_owned_site_survive_every_rebuild(tmp_path):
    site = tmp_path / "site"
    build_into(site, {"index.html": "v1", "img/a.png": "a", "old.html": "gone next time"})
    (site / "CNAME").write_text("example.org")
    (site / ".git").mkdir()
    (site / ".git" / "HEAD").write_text("gh-pages")
    (site / "img" / "mine.png").write_text("someone's image among ours")
    build_into(site, {"index.html": "v2", "img/a.png": "a2"})
    assert (site / "index.html").read_text() == "v2" and not (site / "old.html").exists()
    assert (site / "CNAME").read_text() == "example.org"
    assert (site / ".git" / "HEAD").read_text() == "gh-pages"
    assert (site / "img" / "mine.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]  # no staging, no .old left


def test_a_foreign_file_where_a_new_file_goes_is_refused_and_nothing_changes(tmp_path):
    site = tmp_path / "site"
    build_into(site, {"index.html": "v1"})
    (site / "about.html").write_text("mine")
    before = fingerprint(site)
    with pytest.raises(Exception, match="not written by nu-keras"):
        build_into(site, {"index.html": "v2", "about.html": "ours now?"})
    assert fingerprint(site) == before


def test_a_symlinked_site_is_filled_in_place_and_stays_a_symlink(tmp_path):
    real = tmp_path / "real-site"
    real.mkdir()
    link = tmp_path / "site"
    link.symlink_to(real)
    build_into(link, {"index.html": "v1", "old.html": "x"})
    (real / "CNAME").write_text("example.org")
    build_into(link, {"index.html": "v2", "img/a.png": "a"})
    assert link.is_symlink() and (real / "index.html").read_text() == "v2"
    assert (real / "CNAME").exists() and not (real / "old.html").exists() and (real / "img" / "a.png").exists()
    assert folders.verified_digest(link) is not None


def test_a_folder_that_cannot_be_renamed_is_filled_in_place(tmp_path, monkeypatch):
    site = tmp_path / "site"
    build_into(site, {"index.html": "v1"})
    real_rename = os.rename

    def refuse_site(src, dst):
        if Path(src) == site:
            raise OSError(errno.EBUSY, "Device or resource busy", str(src))
        return real_rename(src, dst)

    monkeypatch.setattr(folders.os, "rename", refuse_site)
    build_into(site, {"index.html": "v2"})
    assert (site / "index.html").read_text() == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


@pytest.fixture
def mount_point(tmp_path):
    """A real mount point (tmpfs, as root); skipped where mounting is not allowed."""
    point = tmp_path / "mnt"
    point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(point)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield point
    subprocess.run(["umount", str(point)], check=False)


def test_a_mount_point_as_site_folder_is_filled_in_place(mount_point):
    build_into(mount_point, {"index.html": "v1"})
    build_into(mount_point, {"index.html": "v2"})
    assert (mount_point / "index.html").read_text() == "v2" and os.path.ismount(mount_point)


def test_a_full_disk_while_replacing_leaves_the_previous_folder_whole(mount_point):
    site = mount_point / "site"
    build_into(site, {"index.html": "v1"})
    before = fingerprint(site)
    with pytest.raises(OSError) as err:
        build_into(site, {"index.html": "v2", "big.bin": "x" * (8 * 2**20)})
    assert err.value.errno == errno.ENOSPC
    assert fingerprint(site) == before


def test_a_full_disk_while_filling_a_symlinked_site_in_place_keeps_the_previous_site(tmp_path, mount_point):
    site = tmp_path / "site"  # a link to a small disk: built beside the link, copied into the disk
    site.symlink_to(mount_point)
    build_into(site, {"index.html": "v1", "img/a.png": "a", "old.html": "o"})
    before, digest = fingerprint(mount_point), folders.verified_digest(site)
    with pytest.raises(OSError) as err:
        build_into(site, {"index.html": "v2", "img/a.png": "a2", "big.bin": "x" * (8 * 2**20)})
    assert fingerprint(mount_point) == before and folders.verified_digest(site) == digest
    assert err.value.errno == errno.ENOSPC and "the previous site there was kept whole" in str(err.value)
    assert sorted(p.name for p in mount_point.iterdir()) == sorted([".nu-keras.json", "img", "index.html", "old.html"])


def test_leftovers_of_a_killed_swap_are_finished_by_the_next_run(tmp_path):
    site = tmp_path / "site"
    build_into(site, {"index.html": "v1"})
    (site / "CNAME").write_text("example.org")
    # killed after the new folder went in but before the old one was retired: its CNAME is in .old
    os.rename(site, tmp_path / ".site.old-4242")
    build_into(site, {"index.html": "v2"})
    (tmp_path / ".site.staging-dead").mkdir()
    (tmp_path / ".site.staging-dead" / folders.STAGING_TAG).write_text("4243")
    (tmp_path / ".site.staging-notours").mkdir()  # no tag: not ours to remove
    folders.clean_leftovers(site)
    assert (site / "CNAME").read_text() == "example.org" and (site / "index.html").read_text() == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".site.staging-notours", "site"]


def test_a_folder_is_verified_only_while_it_holds_what_was_written(tmp_path):
    site = tmp_path / "site"
    build_into(site, {"index.html": "v1", "method.html": "m"})
    digest = folders.verified_digest(site)
    assert digest is not None
    (site / "CNAME").write_text("a foreign file changes nothing")
    assert folders.verified_digest(site) == digest
    (site / "method.html").unlink()
    assert folders.verified_digest(site) is None
    build_into(site, {"index.html": "v1", "method.html": "m"})
    (site / "index.html").write_text("another run's page")
    assert folders.verified_digest(site) is None


def test_a_marker_naming_paths_outside_its_folder_is_not_ours(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (tmp_path / "precious.txt").write_text("keep")
    (site / "index.html").write_text("x")
    folders.write_marker(site, "site", {"../precious.txt": "0" * 64, "index.html": "0" * 64})
    assert folders.read_marker(site) is None
    assert_one_line_error(cli(["build", *flags(tmp_path, **{"site-dir": site})]), "nu-keras did not write")
    assert (tmp_path / "precious.txt").read_text() == "keep"

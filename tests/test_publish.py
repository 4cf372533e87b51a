"""`nu-keras publish`: the built site as a new commit on a branch of a (local bare) git repository, or
copied into a folder; never deleting a file nu-keras did not write, and bad input in one line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from helpers import assert_one_line_error, build_into, cli, fingerprint

from nu_keras import deploy, folders
from nu_keras.errors import NuKerasError

SITE = {"index.html": "<h1>home</h1>", "units/unit-0.html": "<p>unit 0</p>", "img/a.svg": "<svg/>"}
IDENTITY = ["-c", "user.name=test", "-c", "user.email=test@localhost"]


def git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(["git", *IDENTITY, *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout


@pytest.fixture
def site(tmp_path) -> Path:
    build_into(tmp_path / "site", SITE)
    return tmp_path / "site"


@pytest.fixture
def bare(tmp_path) -> Path:
    git("init", "--bare", "-q", str(tmp_path / "remote.git"))
    return tmp_path / "remote.git"


def branch_files(repo: Path, branch: str = "gh-pages") -> dict[str, str]:
    """{path: text} of every file at the branch's tip."""
    names = git("--git-dir", str(repo), "ls-tree", "-r", "--name-only", branch).split()
    return {name: git("--git-dir", str(repo), "show", f"{branch}:{name}") for name in names}


def commits(repo: Path, branch: str = "gh-pages") -> list[str]:
    return git("--git-dir", str(repo), "rev-list", branch).split()


def add_on_branch(repo: Path, tmp: Path, name: str, text: str) -> None:
    """Someone else's commit on the branch: `name` with `text`, through a clone."""
    clone = tmp / "clone"
    git("clone", "-q", "--branch", "gh-pages", str(repo), str(clone))
    (clone / name).write_text(text)
    git("add", name, cwd=clone)
    git("commit", "-q", "-m", f"add {name}", cwd=clone)
    git("push", "-q", "origin", "gh-pages", cwd=clone)


def test_the_site_becomes_one_commit_on_the_branch_with_nojekyll(site, bare):
    commit = deploy.publish_to_branch(site, str(bare))
    files = branch_files(bare)
    assert {k: v for k, v in files.items() if k in SITE} == SITE
    assert files[".nojekyll"] == "" and set(files) == {*SITE, ".nojekyll", folders.MARKER}
    assert commits(bare) == [commit]


def test_a_republish_adds_a_commit_replaces_its_own_files_and_keeps_the_others(site, bare, tmp_path):
    first = deploy.publish_to_branch(site, str(bare))
    add_on_branch(bare, tmp_path, "CNAME", "example.org\n")
    changed = {"index.html": "<h1>home, again</h1>", "img/b.svg": "<svg/>"}  # unit-0 and a.svg are gone
    build_into(site, changed)
    second = deploy.publish_to_branch(site, str(bare))
    files = branch_files(bare)
    assert {k: v for k, v in files.items() if k in changed} == changed
    assert files["CNAME"] == "example.org\n"  # not ours: kept
    assert "units/unit-0.html" not in files and "img/a.svg" not in files  # ours, no longer in the site
    history = commits(bare)
    assert history[0] == second and first in history and len(history) == 3
    assert git("--git-dir", str(bare), "rev-parse", f"{second}^").strip() == history[1]


def test_publishing_the_same_site_again_changes_nothing(site, bare):
    commit = deploy.publish_to_branch(site, str(bare))
    assert deploy.publish_to_branch(site, str(bare)) == commit and commits(bare) == [commit]


def test_a_site_file_landing_on_someone_elses_file_is_refused_and_the_branch_kept(site, bare, tmp_path):
    deploy.publish_to_branch(site, str(bare))
    add_on_branch(bare, tmp_path, "about.html", "mine")
    before = commits(bare)
    build_into(site, SITE | {"about.html": "nu-keras's"})
    with pytest.raises(NuKerasError, match="the branch holds about.html, which nu-keras did not write"):
        deploy.publish_to_branch(site, str(bare))
    assert commits(bare) == before and branch_files(bare)["about.html"] == "mine"


def test_a_branch_with_other_files_keeps_them_beside_the_site(site, bare, tmp_path):
    work = tmp_path / "work"
    git("init", "-q", "-b", "gh-pages", str(work))
    (work / "README.md").write_text("hello")
    git("add", "README.md", cwd=work)
    git("commit", "-q", "-m", "readme", cwd=work)
    git("push", "-q", str(bare), "gh-pages", cwd=work)
    deploy.publish_to_branch(site, str(bare))
    assert branch_files(bare)["README.md"] == "hello" and len(commits(bare)) == 2


def test_the_cli_publishes_to_a_branch_and_to_a_folder(site, bare, tmp_path):
    code, out, err = cli(["publish", "--site-dir", str(site), "--repo", str(bare), "--branch", "pages"])
    assert code == 0, err
    assert out.startswith("published: branch pages of")
    assert branch_files(bare, "pages")["index.html"] == SITE["index.html"]
    code, out, err = cli(["publish", "--site-dir", str(site), "--folder", str(tmp_path / "www")])
    assert code == 0, err
    assert fingerprint(tmp_path / "www").keys() == {*SITE, ".nojekyll", folders.MARKER}


def test_a_folder_target_keeps_files_nu_keras_did_not_write(site, tmp_path):
    www = tmp_path / "www"
    protected = {"the working folder": tmp_path / "elsewhere"}
    deploy.publish_to_folder(site, www, protected)
    (www / "CNAME").write_text("example.org")
    build_into(site, {"index.html": "new"})
    deploy.publish_to_folder(site, www, protected)
    assert (www / "CNAME").read_text() == "example.org" and (www / "index.html").read_text() == "new"
    assert not (www / "units" / "unit-0.html").exists()  # ours, no longer in the site


def test_a_folder_holding_someone_elses_files_is_refused_and_kept(site, tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "notes.txt").write_text("mine")
    before = fingerprint(www)
    result = cli(["publish", "--site-dir", str(site), "--folder", str(www)])
    assert_one_line_error(result, "holds files nu-keras did not write")
    assert fingerprint(www) == before


@pytest.mark.parametrize(
    "case, fragment",
    [
        ("no site", "holds no complete site built by nu-keras"),
        ("not a repo", "is it a git repository?"),
        ("bad branch", "is not a branch name git accepts"),
        ("folder in the site", "overlap"),
        ("working folder", "pass a folder of its own"),  # here the checkout, also refused as the project root
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(site, bare, tmp_path, case, fragment):
    argv = {
        "no site": ["--site-dir", str(tmp_path / "nothing"), "--repo", str(bare)],
        "not a repo": ["--site-dir", str(site), "--repo", str(tmp_path / "plain")],
        "bad branch": ["--site-dir", str(site), "--repo", str(bare), "--branch", "bad..name"],
        "folder in the site": ["--site-dir", str(site), "--folder", str(site / "copy")],
        "working folder": ["--site-dir", str(site), "--folder", str(Path.cwd())],
    }[case]
    (tmp_path / "plain").mkdir()
    before = fingerprint(tmp_path)
    assert_one_line_error(cli(["publish", *argv]), fragment)
    assert fingerprint(tmp_path) == before


def test_a_site_changed_since_it_was_built_is_not_published(site, bare):
    (site / "index.html").write_text("edited by hand")
    with pytest.raises(NuKerasError, match="no complete site"):
        deploy.publish_to_branch(site, str(bare))

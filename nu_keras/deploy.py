"""`nu-keras publish`: put a built site where a static host serves it, a git branch or a folder.

Only the files the build stage wrote (the site folder's manifest, see folders.py) are published, with an empty
`.nojekyll` beside them so that GitHub Pages serves the site as it is (Jekyll would drop `_`-prefixed folders).

- **A git branch** (`--repo REPO --branch gh-pages`): the site becomes one new commit on the branch, built
  with git's plumbing in a temporary bare repository (`hash-object`, `update-index`, `write-tree`,
  `commit-tree`) and pushed to REPO, a path or URL that `git push` accepts. The branch's previous commit is
  its parent, so every publish is a commit of its own and nothing is force-pushed. The branch keeps a
  `.nu-keras.json` naming each file nu-keras put there with its git blob id: on the next publish those files,
  where unchanged, are replaced; every other file on the branch (a CNAME, a README, a page edited since) is
  kept, and a new file that would land on one of them is refused.
- **A folder** (`--folder DIR`, e.g. a web server's document root): filled like any nu-keras output folder
  (folders.py): absent, empty or marked as a published site, never holding files nu-keras did not write
  that it would replace.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from nu_keras import folders
from nu_keras.errors import NuKerasError

log = logging.getLogger(__name__)

KIND = "published site"  # the marker kind of a folder (and branch) nu-keras publishes into
NOJEKYLL = ".nojekyll"  # GitHub Pages: serve the files as they are, without Jekyll
EMPTY_BLOB = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"  # git's id of an empty file
DEFAULT_BRANCH = "gh-pages"
# Variables that would point our git commands at another repository, index or work tree than ours
GIT_PLACES = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR", "GIT_NAMESPACE")


# ------------------------------------------------------------------------------------------ the site


def built_files(site: Path) -> dict[str, Path]:
    """{relative path: file} of every file the build stage wrote into `site`, each still as it was built;
    one line when `site` holds no complete built site."""
    site = Path(site)
    marker = folders.read_marker(site)
    if marker is None or marker.get("kind") != "site" or folders.verified_digest(site) is None:
        raise NuKerasError(
            f"--site-dir {site} holds no complete site built by nu-keras; run `nu-keras report` (or `build`) first"
        )
    if "index.html" not in marker["files"]:
        raise NuKerasError(f"--site-dir {site} has no index.html; run `nu-keras build` again")
    return {relative: site / relative for relative in sorted(marker["files"])}


# ------------------------------------------------------------------------------------------ a folder


def publish_to_folder(site: Path, target: Path, protected: dict[str, Path]) -> int:
    """Copy the built site into `target` (with `.nojekyll`), replacing only what an earlier publish wrote
    there; returns how many files were published. `protected`: places never to publish into (the working
    folder, home, the checkout), each refused in one line."""
    files = built_files(site)
    named = {"--folder": Path(target), "--site-dir": Path(site)}
    folders.check_output_folders(named, protected, {"--folder": KIND})
    with folders.locked([Path(target)]):
        folders.check_owned(Path(target), KIND, "--folder")  # again, now that no other run can change it
        staging = folders.staging_dir(Path(target))
        try:
            for relative, source in files.items():
                (staging / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, staging / relative)
            (staging / NOJEKYLL).write_bytes(b"")
            folders.replace_folder(staging, Path(target), KIND)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    log.info("published %d files into %s", len(files) + 1, target)
    return len(files) + 1


# ------------------------------------------------------------------------------------------ a git branch


def publish_to_branch(site: Path, repository: str, branch: str = DEFAULT_BRANCH, message: str | None = None) -> str:
    """Commit the built site (with `.nojekyll`) onto `branch` of `repository` and push it; returns the new
    commit's id, or the branch's present one when it already holds exactly this site."""
    files = built_files(site)
    with tempfile.TemporaryDirectory(prefix="nu-keras-publish-") as scratch:
        git = Git(Path(scratch))
        check_branch_name(git, branch)
        parent = git.fetch_branch(repository, branch)
        ours = git.start_index(parent)
        git.add_files(files, ours)
        tree = git.run("write-tree").strip()
        if parent is not None and tree == git.run("rev-parse", f"{parent}^{{tree}}").strip():
            log.info("branch %s of %s already holds this site: nothing to publish", branch, repository)
            return parent
        commit = git.commit(tree, parent, message or f"nu-keras publish: {len(files)} files of {Path(site).name}/")
        git.run("push", "--quiet", repository, f"{commit}:refs/heads/{branch}", what=f"pushing to {repository}")
    log.info("published %d files to branch %s of %s (commit %s)", len(files) + 1, branch, repository, commit[:12])
    return commit


def check_branch_name(git: Git, branch: str) -> None:
    if branch.startswith("-") or git.attempt("check-ref-format", "--branch", branch).returncode != 0:
        raise NuKerasError(f"--branch {branch!r} is not a branch name git accepts")


class Git:
    """git commands on a scratch bare repository with its own index: nothing of the user's checkout,
    environment or working folder is read or changed; only `push` reaches the target repository."""

    def __init__(self, scratch: Path):
        self.git_dir = scratch / "repo.git"
        self.env = {k: v for k, v in os.environ.items() if k not in GIT_PLACES}
        self.env |= {"GIT_INDEX_FILE": str(scratch / "index"), "GIT_TERMINAL_PROMPT": "0"}
        self.attempt("init", "--bare", "--quiet", str(self.git_dir), bare=True)

    def attempt(self, *args: str, stdin: bytes | None = None, bare: bool = False) -> subprocess.CompletedProcess:
        command = ["git", *([] if bare else ["--git-dir", str(self.git_dir)]), *args]
        try:
            return subprocess.run(command, input=stdin, env=self.env, capture_output=True, check=False)
        except FileNotFoundError:
            raise NuKerasError("git is not installed; `nu-keras publish --repo` needs it") from None

    def run(self, *args: str, stdin: bytes | None = None, what: str | None = None) -> str:
        """stdout of a git command that must succeed; its failure is one line with git's own first words."""
        done = self.attempt(*args, stdin=stdin)
        if done.returncode != 0:
            said = " ".join(done.stderr.decode("utf-8", "replace").split())[:240] or f"exit code {done.returncode}"
            raise NuKerasError(f"git failed {what or 'on `git ' + args[0] + '`'}: {said}")
        return done.stdout.decode("utf-8", "replace")

    def fetch_branch(self, repository: str, branch: str) -> str | None:
        """The branch's present commit, fetched from `repository`; None when it has no such branch yet."""
        if repository.startswith("-"):
            raise NuKerasError(f"--repo {repository!r} is not a repository path or URL")
        where = f"reading --repo {repository} (is it a git repository?)"
        listed = self.run("ls-remote", "--heads", "--", repository, f"refs/heads/{branch}", what=where)
        if not listed.strip():
            return None
        self.run("fetch", "--quiet", "--no-tags", "--", repository, f"refs/heads/{branch}", what=where)
        return self.run("rev-parse", "FETCH_HEAD").strip()

    def start_index(self, parent: str | None) -> dict[str, str]:
        """The index as the branch's tree without the files an earlier publish wrote and that are unchanged;
        returns {path: blob id} of the files left, which are someone else's."""
        if parent is None:
            return {}
        self.run("read-tree", parent)
        previous = self._previous_files(parent)
        present = self.index_files()
        ours = [p for p, blob in previous.items() if present.get(p) == blob] + [folders.MARKER]
        removals = "".join(f"0 {'0' * 40}\t{path}\0" for path in ours)  # mode 0: out of the index (no work tree)
        self.run("update-index", "-z", "--index-info", stdin=removals.encode())
        return self.index_files()

    def _previous_files(self, parent: str) -> dict[str, str]:
        done = self.attempt("cat-file", "blob", f"{parent}:{folders.MARKER}")
        try:
            marker = json.loads(done.stdout) if done.returncode == 0 else {}
        except ValueError:
            marker = {}
        files = marker.get("files") if isinstance(marker, dict) and marker.get("owner") == "nu-keras" else None
        return files if isinstance(files, dict) else {}

    def index_files(self) -> dict[str, str]:
        """{path: blob id} of every file in the index."""
        listed = self.run("ls-files", "-s", "-z").split("\0")
        return {entry.split("\t", 1)[1]: entry.split()[1] for entry in listed if entry}

    def add_files(self, files: dict[str, Path], others: dict[str, str]) -> None:
        """Store each file (and `.nojekyll`, and the branch's marker) and put it in the index; refuse a file
        that would replace one on the branch that nu-keras did not write."""
        names = list(files)
        if any("\n" in name for name in names):
            raise NuKerasError("the site holds a file name with a line break, which git cannot be handed")
        blobs = self.run("hash-object", "-w", "--stdin-paths", stdin="".join(f"{files[n]}\n" for n in names).encode())
        written = dict(zip(names, blobs.split(), strict=True)) | {NOJEKYLL: EMPTY_BLOB}
        self.run("hash-object", "-w", "--stdin", stdin=b"")
        for name, blob in written.items():
            if name in others and others[name] != blob:
                raise NuKerasError(
                    f"the branch holds {name}, which nu-keras did not write (or which changed since), and the site "
                    "has a file of that name; move it away on the branch and publish again"
                )
        marker = json.dumps({"owner": "nu-keras", "kind": KIND, "files": written}, indent=1, sort_keys=True) + "\n"
        written[folders.MARKER] = self.run("hash-object", "-w", "--stdin", stdin=marker.encode()).strip()
        entries = "".join(f"100644 {blob}\t{name}\0" for name, blob in written.items())
        self.run("update-index", "--add", "-z", "--index-info", stdin=entries.encode(), what="adding the site")

    def commit(self, tree: str, parent: str | None, message: str) -> str:
        """A commit of `tree` after `parent`; by the user's git identity, or "nu-keras" when none is set."""
        identity = []
        if self.attempt("config", "user.email").returncode != 0:
            identity = ["-c", "user.name=nu-keras", "-c", "user.email=nu-keras@localhost"]
        parents = ["-p", parent] if parent else []
        return self.run(*identity, "commit-tree", tree, *parents, "-m", message, what="making the commit").strip()

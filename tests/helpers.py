"""Helpers the test files share: the CLI in-process, its one-line errors, folder fingerprints."""

from __future__ import annotations

import hashlib
import io
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

from nu_keras import folders
from nu_keras.cli import main


def cli(argv: list[str]) -> tuple[int, str, str]:
    """`nu-keras ARGV` in this process: (exit code, stdout, stderr). A traceback propagates and fails."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(result: tuple[int, str, str], *fragments: str) -> str:
    code, _, err = result
    errors = [line for line in err.splitlines() if line.startswith("nu-keras: error: ")]
    assert code == 2 and len(errors) == 1, err
    assert "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in errors[0], err
    return errors[0]


def fingerprint(folder: Path) -> dict[str, str]:
    """sha256 of every file below `folder`, hidden ones included, by relative path."""
    folder = Path(folder)
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def build_into(target: Path, files: dict[str, str], kind: str = "site") -> None:
    """Replace `target` with a folder of `files` (relative path -> text) the way a stage does: built in a
    staging folder, which is removed whatever happens."""
    staging = folders.staging_dir(target)
    try:
        for relative, text in files.items():
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            (staging / relative).write_text(text)
        folders.replace_folder(staging, target, kind)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def processes_in_group(group: int) -> list[int]:
    """The ids of the live processes of process group `group` (Linux: read from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended while we looked
            continue
        fields = text.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
        if fields[0] != "Z" and int(fields[2]) == group:
            found.append(int(stat.parent.name))
    return found


@contextmanager
def silent_server() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that accepts every connection and never sends a byte; yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for connection in [*accepted, listener]:
            connection.close()


def call_within(seconds: float, function: Callable[[], object]) -> object:
    """`function()` on a daemon thread: its result or exception, or AssertionError if it has not returned
    within `seconds` (the thread is left behind: a hang must fail the test, not stop the suite)."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = function()
        except BaseException as exc:  # handed to the caller
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def rescaled(weights: dict, unit: int, c: float) -> dict:
    """Unit `unit` scaled by c > 0 and its outgoing weights by 1/c: relu(c z) = c relu(z), so the logits stay."""
    out = {k: v.copy() for k, v in weights.items()}
    out["hidden_kernel"][:, unit] *= c
    out["hidden_bias"][unit] *= c
    out["output_kernel"][unit] /= c
    return out


def simple_mnist_convnet(channels: tuple[int, int] = (32, 64), name: str = "mnist_convnet"):
    """Keras's "Simple MNIST convnet" (keras-io examples/vision/mnist_convnet.py), layer for layer and with
    Keras's default layer names, `channels` wide: conv -> pool -> conv -> pool -> flatten -> dropout -> dense."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(channels[0], 3, activation="relu", name="conv2d"),
            layers.MaxPooling2D(2, name="max_pooling2d"),
            layers.Conv2D(channels[1], 3, activation="relu", name="conv2d_1"),
            layers.MaxPooling2D(2, name="max_pooling2d_1"),
            layers.Flatten(name="flatten"),
            layers.Dropout(0.5, name="dropout"),
            layers.Dense(10, activation="softmax", name="dense"),
        ],
        name=name,
    )

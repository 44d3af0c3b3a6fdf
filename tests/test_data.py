"""Data loading: resolution order, checksums and the offline error, on tiny IDX files written here."""

from __future__ import annotations

import gzip
import hashlib
import re
import struct

import numpy as np
import pytest
import torch

from replib import data


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch):
    """A 5-train / 3-test MNIST in a fake mirror, with the checksum table pointed at it."""
    rng = np.random.default_rng(0)
    files = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (5, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, 5),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (3, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, 3),
    }
    mirror = tmp_path / "mirror"
    (mirror / "mnist").mkdir(parents=True)
    md5 = {}
    for name, array in files.items():
        raw = idx_bytes(array)
        (mirror / "mnist" / f"{name}.gz").write_bytes(gzip.compress(raw))
        md5[name] = hashlib.md5(raw).hexdigest()
    monkeypatch.setattr(data, "MNIST_MD5", md5)
    monkeypatch.setenv(data.MIRROR_ENV, str(mirror))
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "cache"))
    return mirror, files


@pytest.fixture
def offline(monkeypatch):
    """Make every download fail at once, as on a machine without internet."""

    def refuse(*args, **kwargs):
        raise OSError("network is unreachable (simulated)")

    monkeypatch.setattr("torchvision.datasets.utils.download_url", refuse)
    monkeypatch.setattr("torchvision.datasets.MNIST", refuse)


def test_mnist_loads_from_mirror_as_tensors(tiny_mnist):
    _, files = tiny_mnist
    train, test = data.load_mnist("train"), data.load_mnist("test")
    assert train.images.shape == (5, 28, 28) and test.images.shape == (3, 28, 28)
    assert str(train.images.dtype) == "torch.uint8" and str(train.labels.dtype) == "torch.int64"
    np.testing.assert_array_equal(train.images.numpy(), files["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(test.labels.numpy(), files["t10k-labels-idx1-ubyte"])


def test_cache_is_used_when_mirror_lacks_the_file(tiny_mnist, tmp_path, monkeypatch, offline):
    mirror, _ = tiny_mnist
    cache = tmp_path / "cache"
    (cache / "mnist").mkdir(parents=True)
    for f in (mirror / "mnist").iterdir():
        (cache / "mnist" / f.name).write_bytes(f.read_bytes())
    monkeypatch.setenv(data.MIRROR_ENV, str(tmp_path / "empty-mirror"))
    assert len(data.load_mnist("test")) == 3


def test_mirror_takes_precedence_over_cache(tmp_path, monkeypatch):
    for root in ("mirror", "cache"):
        (tmp_path / root / "co2").mkdir(parents=True)
        (tmp_path / root / "co2" / "f.txt").write_text(root)
    monkeypatch.setenv(data.MIRROR_ENV, str(tmp_path / "mirror"))
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "cache"))
    assert data.find_file("co2/f.txt").read_text() == "mirror"


def test_offline_with_nothing_found_names_every_place_and_the_env_var(tmp_path, monkeypatch, offline):
    monkeypatch.setenv(data.MIRROR_ENV, str(tmp_path / "no-mirror"))
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "no-cache"))
    with pytest.raises(data.DataNotFoundError, match=r"^Could not find dataset file 'mnist/[^']+\.gz'\. Looked in:") as info:
        data.load_mnist("train")
    message = str(info.value)
    assert str(tmp_path / "no-mirror" / "mnist") in message
    assert str(tmp_path / "no-cache" / "mnist") in message
    assert "download failed" in message and "network is unreachable" in message
    assert data.MIRROR_ENV in message


def test_unset_mirror_is_reported(tmp_path, monkeypatch, offline):
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "no-cache"))
    with pytest.raises(data.DataNotFoundError, match=f"{data.MIRROR_ENV} is not set"):
        data.load_co2_gal2016()


def test_md5_mismatch_names_the_file_and_both_digests(tiny_mnist, monkeypatch):
    mirror, files = tiny_mnist
    actual = hashlib.md5(idx_bytes(files["t10k-labels-idx1-ubyte"])).hexdigest()
    monkeypatch.setitem(data.MNIST_MD5, "t10k-labels-idx1-ubyte", "0" * 32)
    path = mirror / "mnist" / "t10k-labels-idx1-ubyte.gz"
    message = f"from {path} has MD5 {actual} after decompression, expected {'0' * 32}"
    with pytest.raises(data.DataIntegrityError, match=re.escape(message)):
        data.load_mnist("test")


def test_bad_idx_magic_is_rejected():
    with pytest.raises(data.DataIntegrityError, match=re.escape(r"not an unsigned-byte IDX file (magic bytes b'\x00\x00\r\x01')")):
        data.parse_idx(b"\x00\x00\x0d\x01\x00\x00\x00\x01\x00")


def test_truncated_idx_is_rejected():
    raw = idx_bytes(np.zeros((2, 3), dtype=np.uint8))[:-1]
    with pytest.raises(data.DataIntegrityError, match=re.escape("IDX header says shape (2, 3) but the file holds 5 values")):
        data.parse_idx(raw)


def test_bad_split_is_rejected():
    with pytest.raises(ValueError, match=re.escape("MNIST split must be 'train' or 'test', got 'valid'")):
        data.load_mnist("valid")


def test_real_mnist_has_canonical_sizes(needs_mnist):
    train, test = data.load_mnist("train"), data.load_mnist("test")
    assert (len(train), len(test)) == (60_000, 10_000)
    assert int(train.labels.max()) == 9 and train.images.shape[1:] == (28, 28)


def test_ptb_from_mirror_has_the_published_sizes(needs_mirror):
    corpus = data.load_ptb()
    assert (len(corpus.train), len(corpus.valid), len(corpus.test)) == (929_589, 73_760, 82_430)
    assert len(corpus.vocab) == 10_000 and "<unk>" in corpus.vocab and "<eos>" in corpus.vocab


def test_co2_from_mirror_has_the_published_sizes(needs_mirror):
    co2 = data.load_co2_gal2016()
    assert co2["x_train"].shape == (272,) and co2["x_test"].shape == (1000,)
    raw = data.load_co2_raw()
    assert len(raw) == 741 and {"Date", "CO2"} <= set(raw.columns)


def test_cifar10_from_mirror_is_labelled_as_the_jpeg_copy(needs_mirror):
    test = data.load_cifar10("test")
    assert test.images.shape == (10_000, 3, 32, 32) and str(test.images.dtype) == "torch.uint8"
    assert test.source.startswith(data.CIFAR10_JPEG_NOTE)
    assert test.labels.bincount().tolist() == [1000] * 10


def test_cifar10_splits_hold_out_validation_and_sample_the_test_set(needs_mirror):
    s = data.cifar10_splits(train_size=1000, val_size=500, test_size=300)
    assert s.train[0].shape == (1000, 3, 32, 32) and s.val[0].shape == (500, 3, 32, 32) and len(s.test[1]) == 300
    train_rows = {bytes(img.numpy()) for img in s.train[0]}
    assert not any(bytes(img.numpy()) in train_rows for img in s.val[0]), "validation images leaked into training"
    # the JPEG copy's test split is sorted by class: a subset must still hold every class
    assert set(s.test[1].tolist()) == set(range(10)) and set(s.val[1].tolist()) == set(range(10))
    again = data.cifar10_splits(train_size=1000, val_size=500, test_size=300)
    assert torch.equal(again.val[1], s.val[1]) and torch.equal(again.test[0], s.test[0])
    smaller = data.cifar10_splits(train_size=10, val_size=500)
    assert torch.equal(smaller.val[0], s.val[0]), "the validation split must not depend on train_size"
    with pytest.raises(ValueError, match=re.escape("train_size=49600 exceeds the 49500 training images left after val_size=500")):
        data.cifar10_splits(train_size=49_600, val_size=500)

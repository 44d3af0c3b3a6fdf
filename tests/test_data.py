"""Data loading: resolution order, hashes, downloads and the offline error, on tiny files written here."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import pickle
import re
import tarfile
import threading

import numpy as np
import pytest
import torch
from conftest import idx_bytes

from replib import data


@pytest.fixture
def tiny_mnist(fake_data):
    """A 5-train / 3-test MNIST in a fake mirror, registered with its own hashes."""
    return fake_data.mirror, fake_data.mnist()


@pytest.fixture
def no_network(monkeypatch):
    """Make every download fail at once, as on a machine without internet (offline mode off)."""

    def refuse(*args, **kwargs):
        raise OSError("network is unreachable (simulated)")

    monkeypatch.delenv(data.OFFLINE_ENV, raising=False)
    monkeypatch.setattr(data, "DOWNLOAD_RETRIES", 0)
    monkeypatch.setattr("pooch.HTTPDownloader.__call__", refuse)


@pytest.fixture
def http_server(tmp_path, monkeypatch):
    """Serve tmp_path/www over HTTP on 127.0.0.1; yields (folder, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv(data.OFFLINE_ENV, raising=False)
    monkeypatch.setattr(data, "DOWNLOAD_RETRIES", 0)
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_mnist_loads_from_mirror_as_tensors(tiny_mnist):
    _, files = tiny_mnist
    train, test = data.load_mnist("train"), data.load_mnist("test")
    assert train.images.shape == (5, 28, 28) and test.images.shape == (3, 28, 28)
    assert str(train.images.dtype) == "torch.uint8" and str(train.labels.dtype) == "torch.int64"
    np.testing.assert_array_equal(train.images.numpy(), files["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(test.labels.numpy(), files["t10k-labels-idx1-ubyte"])


def test_more_mnist_examples_than_a_split_holds_is_an_error_not_a_silent_cut(tiny_mnist):
    (x, _), (xt, _) = data.mnist_tensors(4, None)
    assert len(x) == 4 and len(xt) == 3
    with pytest.raises(ValueError, match=r"train_subset=6 exceeds the 5 images of MNIST's train split \(None: all\)"):
        data.mnist_tensors(6, None)


def test_cache_is_used_when_mirror_lacks_the_file(tiny_mnist, tmp_path, monkeypatch, no_network):
    mirror, _ = tiny_mnist
    cache = tmp_path / "cache"
    (cache / "mnist").mkdir(parents=True)
    for f in (mirror / "mnist").iterdir():
        (cache / "mnist" / f.name).write_bytes(f.read_bytes())
    monkeypatch.setenv(data.MIRROR_ENV, str(tmp_path / "empty-mirror"))
    assert len(data.load_mnist("test")) == 3


def test_mirror_takes_precedence_over_cache(fake_data):
    fake_data.put("co2/f.txt", b"cache", where="cache", register=False)
    fake_data.put("co2/f.txt", b"mirror")
    assert data.find_file("co2/f.txt").read_text() == "mirror"


def test_a_file_without_a_registered_hash_is_refused(fake_data):
    fake_data.put("co2/unknown.txt", b"x", register=False)
    with pytest.raises(ValueError, match=re.escape("'co2/unknown.txt' has no hash in replib.data.REGISTRY")):
        data.find_file("co2/unknown.txt")


def test_a_cached_download_is_accepted_by_its_source_hash(fake_data, monkeypatch):
    fake_data.put("co2/f.txt", b"mirror bytes")  # the registry holds the mirror's hash
    (fake_data.mirror / "co2" / "f.txt").unlink()
    served = fake_data.put("co2/f.txt", b"bytes the source serves", where="cache", register=False)
    known = "md5:" + hashlib.md5(b"bytes the source serves").hexdigest()
    monkeypatch.setitem(data.SOURCES, "co2/f.txt", data.Source(("http://127.0.0.1:9/f.txt",), known))
    assert data.find_file("co2/f.txt") == served


def test_download_lands_in_the_cache_under_the_source_name(fake_data, http_server, monkeypatch):
    root, url = http_server
    (root / "ptb.x.txt").write_bytes(b"plain text\n")
    fake_data.put("ptb/ptb.x.txt.gz", b"the mirror's gzip")
    (fake_data.mirror / "ptb" / "ptb.x.txt.gz").unlink()
    monkeypatch.setitem(data.SOURCES, "ptb/ptb.x.txt.gz", data.Source(
        (url + "ptb.x.txt",), hashlib.sha256(b"plain text\n").hexdigest(), "ptb/ptb.x.txt"))
    path = data.find_file("ptb/ptb.x.txt.gz")
    assert path == fake_data.cache / "ptb" / "ptb.x.txt" and path.read_bytes() == b"plain text\n"
    (root / "ptb.x.txt").unlink()  # the second time the cache answers
    assert data.find_file("ptb/ptb.x.txt.gz") == path
    assert [p.name for p in (fake_data.cache / "ptb").iterdir()] == ["ptb.x.txt"], "no temporary file left behind"


def test_download_with_the_wrong_hash_is_not_kept(fake_data, http_server, monkeypatch):
    root, url = http_server
    (root / "f.txt").write_bytes(b"tampered")
    fake_data.put("co2/f.txt", b"genuine")
    (fake_data.mirror / "co2" / "f.txt").unlink()
    monkeypatch.setitem(data.SOURCES, "co2/f.txt", data.Source((url + "f.txt",)))
    with pytest.raises(data.DataNotFoundError, match=re.escape(f"download failed: {url}f.txt: SHA256 hash of downloaded file")):
        data.find_file("co2/f.txt")
    assert not (fake_data.cache / "co2" / "f.txt").exists()


def cifar10_tarball(batches: dict[str, tuple[np.ndarray, list[int]]]) -> bytes:
    """A cifar-10-python.tar.gz holding the given pickled batches (rows of 3072 uint8, labels)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, (rows, labels) in batches.items():
            blob = pickle.dumps({"data": rows, "labels": labels})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return out.getvalue()


def test_original_cifar10_is_read_from_its_tarball_where_there_is_no_jpeg_copy(fake_data):
    rng = np.random.default_rng(0)
    batches = {f"data_batch_{i}": (rng.integers(0, 256, (2, 3072), dtype=np.uint8), [i, i]) for i in range(1, 6)}
    batches["test_batch"] = (rng.integers(0, 256, (3, 3072), dtype=np.uint8), [7, 8, 9])
    path = fake_data.put("cifar10/cifar-10-python.tar.gz", cifar10_tarball(batches))
    train, test = data.load_cifar10("train"), data.load_cifar10("test")
    assert train.labels.tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5] and test.labels.tolist() == [7, 8, 9]
    np.testing.assert_array_equal(test.images.numpy(), batches["test_batch"][0].reshape(3, 3, 32, 32))
    assert train.source == f"CIFAR-10 (original): {path}"


def test_missing_cifar10_names_the_jpeg_copy_and_the_original(fake_data):
    with pytest.raises(data.DataNotFoundError) as info:
        data.load_cifar10("test")
    message = str(info.value)
    assert "'cifar10/cifar-10-python.tar.gz'" in message and "offline mode is on" in message
    assert str(fake_data.mirror / "cifar10" / "cifar10_test_jpeg.npz") in message


def test_offline_with_nothing_found_names_every_place_and_the_env_var(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv(data.MIRROR_ENV, str(tmp_path / "no-mirror"))
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "no-cache"))
    with pytest.raises(data.DataNotFoundError, match=r"^Could not find dataset file 'mnist/[^']+\.gz'\. Looked in:") as info:
        data.load_mnist("train")
    message = str(info.value)
    assert str(tmp_path / "no-mirror" / "mnist") in message
    assert str(tmp_path / "no-cache" / "mnist") in message
    assert "download failed" in message and "network is unreachable" in message
    assert data.MIRROR_ENV in message


def test_unset_mirror_is_reported(tmp_path, monkeypatch, no_network):
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


def test_each_file_is_hashed_once_per_process(tiny_mnist, monkeypatch):
    calls = []
    pooch = data._pooch()
    real = pooch.file_hash
    monkeypatch.setattr(pooch, "file_hash", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    data.load_mnist("test")
    data.load_mnist("test")
    assert len(calls) == 2 and len(set(calls)) == 2, calls


def test_offline_mode_env_values():
    for value, expected in (("", False), ("0", False), ("false", False), ("1", True), ("yes", True)):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(data.OFFLINE_ENV, value)
            assert data.offline() is expected, value


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


def test_registry_agrees_with_the_mirror_sha256sums(needs_mirror):
    listed = dict(reversed(line.split()) for line in (data.mirror_dir() / "SHA256SUMS").read_text().splitlines())
    assert {path: h for path, h in data.REGISTRY.items() if path in listed} == listed
    assert set(data.SOURCES) <= set(data.REGISTRY)


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

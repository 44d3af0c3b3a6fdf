"""Shared fixtures. Tests never write into the repository's results/ or figures/."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from replib import data


@pytest.fixture(autouse=True)
def isolated_outputs(tmp_path, monkeypatch):
    """Send results and figures of every test to a temporary folder."""
    monkeypatch.setenv("REPLIB_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("REPLIB_FIGURES_DIR", str(tmp_path / "figures"))
    monkeypatch.delenv("REPLIB_NO_TRAIN", raising=False)
    return tmp_path


def available(relpath: str) -> bool:
    places = [p for p in (data.mirror_dir(), data.cache_dir()) if p is not None]
    return any((p / relpath).is_file() for p in places)


def require(relpath: str) -> None:
    """Skip where ``relpath`` is not to be had offline; in CI (CI=true, mirror set by .ci/run) fail instead."""
    if not available(relpath):
        if os.environ.get("CI"):
            pytest.fail(f"{relpath} not found in ${data.MIRROR_ENV} or ${data.CACHE_ENV} in CI")
        pytest.skip(f"{relpath} not available offline: set ${data.MIRROR_ENV}")


@pytest.fixture
def needs_mnist():
    require("mnist/t10k-labels-idx1-ubyte.gz")


@pytest.fixture
def needs_mirror():
    """The whole offline mirror (PTB, CO2, CIFAR-10 too)."""
    for relpath in ("ptb/ptb.test.txt.gz", "co2/co2_gal2016.npz", "cifar10/cifar10_test_jpeg.npz"):
        require(relpath)


# --------------------------------------------------------------------------- fake data


def idx_bytes(array: np.ndarray) -> bytes:
    """An uncompressed unsigned-byte IDX file (LeCun's MNIST format) holding ``array``."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def jpeg_npz_bytes(labels, seed: int = 0) -> bytes:
    """A CIFAR-10 JPEG npz laid out like the mirror's, with random 32x32 images, one per label."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    blobs = []
    for _ in labels:
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buffer, "JPEG", quality=75)
        blobs.append(buffer.getvalue())
    out = io.BytesIO()
    np.savez(out, jpeg=np.frombuffer(b"".join(blobs), dtype=np.uint8),
             offsets=np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64),
             labels=np.asarray(labels, dtype=np.uint8), names=np.asarray([f"{i:04d}.jpg" for i in range(len(labels))]))
    return out.getvalue()


class FakeData:
    """A mirror and a cache under tmp_path whose files are registered with their own hashes."""

    def __init__(self, root: Path, monkeypatch):
        self.mirror, self.cache, self.monkeypatch = root / "mirror", root / "cache", monkeypatch
        self.mirror.mkdir()
        monkeypatch.setenv(data.MIRROR_ENV, str(self.mirror))
        monkeypatch.setenv(data.CACHE_ENV, str(self.cache))
        monkeypatch.setenv(data.OFFLINE_ENV, "1")  # no test reaches the network unless it says so

    def put(self, relpath: str, content: bytes, where: str = "mirror", register: bool = True) -> Path:
        """Write ``content`` at ``relpath`` in the mirror (or cache) and make it the registered version."""
        path = (self.mirror if where == "mirror" else self.cache) / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        if register:
            self.monkeypatch.setitem(data.REGISTRY, relpath, hashlib.sha256(content).hexdigest())
        return path

    def mnist(self, seed: int = 0, where: str = "mirror") -> dict[str, np.ndarray]:
        """A 5-train / 3-test MNIST, with the decompressed-MD5 table pointed at it."""
        rng = np.random.default_rng(seed)
        arrays = {
            "train-images-idx3-ubyte": rng.integers(0, 256, (5, 28, 28)),
            "train-labels-idx1-ubyte": rng.integers(0, 10, 5),
            "t10k-images-idx3-ubyte": rng.integers(0, 256, (3, 28, 28)),
            "t10k-labels-idx1-ubyte": rng.integers(0, 10, 3),
        }
        for name, array in arrays.items():
            raw = idx_bytes(array)
            self.put(f"mnist/{name}.gz", gzip.compress(raw, mtime=0), where)
            self.monkeypatch.setitem(data.MNIST_MD5, name, hashlib.md5(raw).hexdigest())
        return arrays


@pytest.fixture
def fake_data(tmp_path, monkeypatch) -> FakeData:
    """Loaders pointed at an empty mirror and cache in tmp_path, offline; files are added with ``put``."""
    return FakeData(tmp_path, monkeypatch)

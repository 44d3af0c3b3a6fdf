"""Shared fixtures. Tests never write into the repository's results/ or figures/."""

from __future__ import annotations

import os

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

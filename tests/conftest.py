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


def mnist_available() -> bool:
    mirror = data.mirror_dir()
    places = [p for p in (mirror, data.cache_dir()) if p is not None]
    return any((p / "mnist" / "t10k-labels-idx1-ubyte.gz").is_file() for p in places)


@pytest.fixture
def needs_mnist():
    """Skip where MNIST is not to be had offline; in CI (CI=true, mirror set by .ci/run) fail instead."""
    if not mnist_available():
        if os.environ.get("CI"):
            pytest.fail(f"MNIST not found in ${data.MIRROR_ENV} or ${data.CACHE_ENV} in CI")
        pytest.skip(f"MNIST not available offline: set ${data.MIRROR_ENV}")

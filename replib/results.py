"""The result store: ``results/<paper>/<profile>.json``, written atomically and only by running.

A result file carries everything needed to judge it: ``paper``, ``profile``, the
resolved ``config``, ``seeds``, ``provenance`` (git commit, package versions,
hardware, wall time, start time), ``runs`` (one per arm and seed, with metrics and
per-epoch curves), ``claims`` (computed from the runs) and ``paper_values`` (the
paper's numbers with where each was read).

While an experiment runs, every finished (arm, seed) is appended to
``<profile>.partial.json``; an interrupted run resumes from it.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

RESULTS_ENV = "REPLIB_RESULTS_DIR"
REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("torch", "torchvision", "numba", "numpy", "scipy", "pydantic", "pandas", "matplotlib", "seaborn", "papermill", "jupyter-book")


def results_dir() -> Path:
    """``$REPLIB_RESULTS_DIR`` if set, else the repository's ``results/`` folder."""
    return Path(os.environ.get(RESULTS_ENV) or REPO_ROOT / "results")


def result_path(paper: str, profile: str, root: Path | None = None) -> Path:
    return (root or results_dir()) / paper / f"{profile}.json"


def partial_path(path: Path) -> Path:
    return path.with_name(path.stem + ".partial.json")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary file beside ``path`` and rename it over ``path``.

    A crash mid-write leaves the previous file intact, never a truncated one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, allow_nan=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict | None:
    """The JSON in ``path``; None if there is no such file; a ``ValueError`` naming the file if it is not JSON."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); restore it from git or delete it to rerun") from None


def normalise(config: dict) -> dict:
    """The config as it reads back from JSON (tuples become lists), so configs compare exactly."""
    return json.loads(json.dumps(config, allow_nan=False))


def runs_digest(runs: list[dict]) -> str:
    """SHA-256 of the runs as stored: recorded when a result is written, so any later edit shows."""
    import hashlib

    text = json.dumps(normalise(runs), sort_keys=True, allow_nan=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def git_state() -> dict:
    """Commit of the code that produced a result, and whether tracked code had uncommitted edits."""

    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() if out.returncode == 0 else ""

    commit = git("rev-parse", "HEAD") or "unknown (not a git checkout)"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results")
    return {"commit": commit, "dirty": bool(dirty)}


def hardware(device: str) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cpu_count": os.cpu_count(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch_threads": torch.get_num_threads(), "device": device}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def provenance(device: str, started: _dt.datetime, wall_seconds: float, code: dict | None = None) -> dict:
    """Where a result came from. ``code`` is :func:`git_state` taken when the run started."""
    return {
        **(code or git_state()),
        "versions": versions(),
        "hardware": hardware(device),
        "started": started.isoformat(timespec="seconds"),
        "wall_seconds": round(wall_seconds, 1),
    }


def now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)

"""The result store: ``results/<paper>/<profile>.json``, written atomically and only by running.

A result file carries everything needed to judge it: ``paper``, ``profile``, the
resolved ``config``, ``seeds``, ``provenance`` (git commit, package versions,
hardware, wall time, start time and the times it was resumed), ``runs`` (one per arm
and seed, with metrics and per-epoch curves), ``claims`` (computed from the runs) and
``paper_values`` (the paper's numbers with where each was read).

Only a profile's own configuration and seeds are stored as ``<profile>.json`` (the
file the book shows). A run with anything changed is stored apart, as
``<profile>-<key>.json``, ``key`` being the first 8 hex digits of the SHA-256 of its
config and seeds (:func:`config_key`), so it can never replace the profile's result.

While an experiment runs, every finished (arm, seed) is appended to the partial file
beside its result (``<profile>.partial.json``); an interrupted run resumes from it. The
run holds a lock on its result path (``<name>.lock``) from start to end, so a second
run of the same result fails after :data:`LOCK_TIMEOUT_S` seconds, naming the first,
instead of overwriting its work. A file that cannot be read as a result raises
:class:`ResultFileError`; a rerun moves it aside to ``<name>.corrupt-<UTC time>``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import IO, Any, Iterator

import torch
from filelock import FileLock, Timeout

from ._validate import UserError

RESULTS_ENV = "REPLIB_RESULTS_DIR"
REPO_ROOT = Path(__file__).resolve().parents[1]
FILE_MODE = 0o644  # result files are read by whoever builds the book, not only by the user who ran them
LOCK_TIMEOUT_S = 10.0  # how long a run waits for another run of the same result before it gives up
PARTIAL_KEYS = ("paper", "profile", "config", "seeds", "provenance", "runs")  # in every result and partial file
RESULT_KEYS = (*PARTIAL_KEYS, "claims", "paper_values")
RERUN_HINT = "`python -m replib reproduce ... --rerun` (`-p rerun True` in a notebook, `rerun=True` from Python)"
PACKAGES = ("torch", "torchvision", "numba", "numpy", "scipy", "pydantic", "pooch", "pandas", "matplotlib", "seaborn", "papermill", "jupyter-book")


def env_flag(name: str) -> bool:
    """Whether the environment variable ``name`` is on: set and not one of ``0``, ``false``, ``no`` (any case)."""
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def results_dir() -> Path:
    """``$REPLIB_RESULTS_DIR`` if set, else the repository's ``results/`` folder."""
    return Path(os.environ.get(RESULTS_ENV) or REPO_ROOT / "results")


class ResultFileError(UserError, ValueError):
    """A result or partial file that cannot be read as one: truncated, conflicted, not JSON or missing keys."""


class ResultLockedError(UserError, RuntimeError):
    """Another run holds the lock on the result this run would write."""


class StoredResult(dict):
    """A result exactly as stored (the dict), and how this call came by it.

    ``path``: its file. ``written``: whether this call wrote that file (False when it was
    read back). ``trained``: the (arm, seed) units this call trained; the others were
    read from a result or partial file.
    """

    def __init__(self, data: dict, path: Path, *, written: bool = False, trained: list | None = None):
        super().__init__(data)
        self.path = Path(path)
        self.written = written
        self.trained = list(trained or [])


def experiment(config: dict) -> dict:
    """The experiment ``config`` describes: the config without its ``device`` (where a run trains is not part of it)."""
    return {k: v for k, v in config.items() if k != "device"}


def config_key(config: dict, seeds: list[int]) -> str:
    """8 hex digits of the SHA-256 of the :func:`experiment` of ``config`` and ``seeds`` as normalised JSON: names a
    non-default result file."""
    text = json.dumps(normalise({"config": experiment(config), "seeds": seeds}), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def result_path(paper: str, profile: str, root: Path | None = None, key: str | None = None) -> Path:
    """``<root>/<paper>/<profile>.json``, or ``<profile>-<key>.json`` for a config other than the profile's."""
    return (root or results_dir()) / paper / (f"{profile}.json" if key is None else f"{profile}-{key}.json")


def partial_path(path: Path) -> Path:
    return path.with_name(path.stem + ".partial.json")


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _owner_path(path: Path) -> Path:
    """Who holds the lock on ``path``: written by the holder, read by a run that waits for it."""
    return path.with_name(path.name + ".lock-owner")


@contextmanager
def atomic_file(path: Path, mode: str = "w") -> Iterator[IO]:
    """A file to write ``path`` through: a unique temporary file beside it, renamed over ``path`` when the
    body succeeds (mode 0644) and deleted when it fails.

    A crash mid-write leaves the previous file intact, never a truncated one, and two
    processes writing the same path never share a temporary file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            os.fchmod(f.fileno(), FILE_MODE)  # mkstemp creates 0600; the book's builder may be another user
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` through :func:`atomic_file`."""
    with atomic_file(path) as f:
        json.dump(data, f, indent=1, allow_nan=False)
        f.write("\n")


_CONFLICT = re.compile(r"^(<{7}|={7}|>{7})( |$)", re.MULTILINE)


def read_json(path: Path) -> dict | None:
    """The JSON in ``path``; None if there is no such file.

    A file that is not JSON raises :class:`ResultFileError` naming it, saying what is wrong
    (empty, truncated, merge-conflict markers, invalid) and how to mend it.
    """
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as error:
        raise ResultFileError(_unreadable(path, f"is not UTF-8 text ({error})")) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        if not text.strip():
            what = "is empty"
        elif conflict := _CONFLICT.search(text):
            line = text.count("\n", 0, conflict.start()) + 1
            what = (f"holds unresolved merge-conflict markers ({conflict.group(1)} at line {line}); "
                    f"keep one side of the conflict whole, since a mix of two results is neither")
        elif error.pos >= len(text.rstrip()) or error.msg.startswith("Unterminated string"):
            # the parser ran out of text: the file stops before the JSON is complete
            what = (f"is truncated: the JSON stops before it is complete, inside an unclosed object, array or "
                    f"string ({error.msg}: line {error.lineno}, column {error.colno})")
        else:
            what = f"is not valid JSON ({error.msg}: line {error.lineno}, column {error.colno})"
        raise ResultFileError(_unreadable(path, what)) from None


def read_result(path: Path, keys: tuple[str, ...] = RESULT_KEYS) -> dict | None:
    """The result in ``path`` (a partial one with ``keys=PARTIAL_KEYS``), None if there is none;
    :class:`ResultFileError` if it is not one."""
    data = read_json(path)
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ResultFileError(_unreadable(path, f"holds a JSON {type(data).__name__}, not a result object"))
    if missing := [k for k in keys if k not in data]:
        raise ResultFileError(_unreadable(path, f"is not a result: it lacks {missing}"))
    return data


def _unreadable(path: Path, what: str) -> str:
    return (f"{path} {what}. Restore it from version control, or rerun with {RERUN_HINT}, "
            f"which moves it aside to {path.name}.corrupt-<UTC time> and trains again")


def move_aside(path: Path) -> Path:
    """Rename ``path`` to ``<name>.corrupt-<UTC time>`` beside it (kept, never deleted) and return the new path."""
    stamp = now().strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    os.replace(path, aside)
    return aside


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the lock on result ``path`` (``<name>.lock``) while the body runs.

    Waits up to :data:`LOCK_TIMEOUT_S` seconds for another holder, then raises
    :class:`ResultLockedError` naming the lock and the run that holds it. The operating
    system releases the lock when its holder's process ends, however it ends.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    lock, owner = FileLock(lock_path(path), timeout=LOCK_TIMEOUT_S), _owner_path(path)
    tic = time.monotonic()
    try:
        lock.acquire()
    except Timeout:
        try:
            other = json.loads(owner.read_text())
            who = f"pid {other['pid']} on {other['host']}, started {other['since']}: {other['command']}"
        except (OSError, ValueError, KeyError, TypeError):
            who = "it recorded no details"
        raise ResultLockedError(
            f"{path} is being made by another run ({who}), which holds the lock {lock_path(path)}; "
            f"gave up after {time.monotonic() - tic:.0f} s. That run keeps its finished units in "
            f"{partial_path(path).name}; wait for it to end and run again (its result is then read, not retrained), "
            f"or stop it first. The lock is released when that process ends."
        ) from None
    try:
        write_json_atomic(owner, {"pid": os.getpid(), "host": socket.gethostname(),
                                  "since": now().isoformat(timespec="seconds"), "command": " ".join(sys.argv)})
        yield
    finally:
        owner.unlink(missing_ok=True)
        lock.release()


def normalise(config: dict) -> dict:
    """The config as it reads back from JSON (tuples become lists), so configs compare exactly."""
    return json.loads(json.dumps(config, allow_nan=False))


def non_finite(value, where: str = "") -> list[str]:
    """Where ``value`` (nested dicts and lists) holds a float that JSON cannot store (NaN, inf), as ``a.b[3]`` paths."""
    if isinstance(value, float):
        return [] if math.isfinite(value) else [where or "the value"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in non_finite(v, f"{where}.{k}" if where else str(k))]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in non_finite(v, f"{where}[{i}]")]
    return []


def runs_digest(runs: list[dict]) -> str:
    """SHA-256 of the runs as stored: recorded when a result is written, so any later edit shows."""
    text = json.dumps(normalise(runs), sort_keys=True, allow_nan=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def runs_intact(result: dict) -> bool:
    """Whether ``result``'s runs are those it was written with (their digest matches the recorded one)."""
    return runs_digest(result["runs"]) == result["provenance"].get("runs_sha256")


def git_state() -> dict:
    """Commit of the code that produced a result, and whether tracked code had uncommitted edits."""

    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() if out.returncode == 0 else ""

    commit = git("rev-parse", "HEAD") or "unknown (not a git checkout)"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results")
    return {"commit": commit, "dirty": bool(dirty)}


def _cpuinfo(key: str) -> str | None:
    """The first ``key`` line's value in /proc/cpuinfo (None where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})  # bf16 in hardware: AVX-512 bf16 or AMX
# the CPU's flags that decide how fast torch's kernels run, recorded with every result
VECTOR_FLAGS = frozenset({"avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16",
                          "amx_tile", "amx_bf16", "amx_int8"})


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (``avx2``, ``avx512_bf16``, ``amx_bf16``, ...); empty where unknown."""
    return frozenset((_cpuinfo("flags") or "").split())


# Environment variables that hold torch's, oneDNN's and MKL's kernels below what the CPU offers (for example AVX2
# kernels on an AVX-512 CPU, to stand in for an AVX2-only machine); recorded with the hardware whenever set.
ISA_LIMITS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")


def hardware(device: str) -> dict:
    """The machine: CPU model, its vector flags and whether it has native bf16, cores, torch's vector kernels and
    threads (and any limit set on them, ``isa_limits``), GPU."""
    cpu = _cpuinfo("model name") or platform.processor() or platform.machine()
    info = {"cpu": cpu, "cpu_count": os.cpu_count(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpu_flags": sorted(cpu_flags() & VECTOR_FLAGS),
            "bf16_native": bool(cpu_flags() & NATIVE_BF16_FLAGS), "torch_threads": torch.get_num_threads(),
            "denormals_flushed": denormals_flushed(), "device": device}
    if limits := {name: os.environ[name] for name in ISA_LIMITS if os.environ.get(name)}:
        info["isa_limits"] = limits  # kernels held below what the CPU has: it stands in for an older CPU
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def denormals_flushed() -> bool:
    """Whether CPU arithmetic in this process flushes denormal floats to zero (:func:`replib.train.flush_denormals`)."""
    return (torch.tensor([1e-39]) * 1.0).item() == 0.0


def load_average() -> float | None:
    """The 1-minute load average (None where the system has none): how busy the machine was."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def provenance(device: str, started: _dt.datetime, wall_seconds: float, code: dict | None = None,
               resumed: list[str] | None = None, load_at_start: float | None = None) -> dict:
    """Where a result came from. ``code`` is :func:`git_state` taken when the run started.

    ``started`` is when the first of its runs began, ``resumed`` the UTC times at which an
    interrupted run was taken up again, ``wall_seconds`` the training time of its runs summed.
    ``load_average_1min`` holds the machine's load when this (last) stretch of the run
    began and now: a quiet run on ``t`` threads stays near ``t``.
    """
    return {
        **(code or git_state()),
        "versions": versions(),
        "hardware": hardware(device),
        "started": started.isoformat(timespec="seconds"),
        "resumed": list(resumed or []),
        "wall_seconds": round(wall_seconds, 1),
        "load_average_1min": {"start": load_at_start, "end": load_average()},
    }


def now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)

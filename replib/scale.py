"""Run an experiment's units on Ray: the cores of one machine, the GPUs of a node or the nodes of a cluster.

The runner (:func:`replib.experiments.run` with ``executor="ray"``) hands each round of pending (arm, seed) units
to :func:`run_units`, which makes every unit one Ray task and yields each finished unit as it arrives, so the
driver alone merges it into the partial result file (under the run's lock) before the next arrives: stopping the
driver or losing a worker loses only the units not yet finished, and the same command resumes. A unit is trained
on the worker exactly as the in-process runner trains it (the same seeding rule, the same thread count), so the
metrics do not depend on the executor.

Resources per task: ``num_cpus`` = the run's torch threads (1 unless ``threads`` is given), ``num_gpus`` = 1 on a
CUDA device, else 0. Data: each worker loads from its own mirror or cache, as the driver does
(``$REPLIB_DATA_MIRROR``, ``$REPLIB_DATA_DIR``, ``$REPLIB_OFFLINE``, which are passed on to the workers of a
Ray this process starts, and to a cluster's through the job's runtime environment); or, with ``ship_data``,
the driver sends the files of the experiment's ``DATASETS`` that it holds through Ray's object store, once, and
each worker writes them to a folder of its own and reads only those (:func:`shipment`). Ray is an optional
dependency: ``pip install -e '.[ray]'``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from types import ModuleType

from ._validate import UserError

EXECUTORS = ("local", "ray")
MAX_RETRIES = 2  # a task whose worker dies is run again this many times before the run fails
PASSED_ENV = ("REPLIB_DATA_MIRROR", "REPLIB_DATA_DIR", "REPLIB_OFFLINE", "REPLIB_RESULTS_DIR", "PYTHONPATH")


class RayMissingError(UserError, ImportError):
    """The ray executor was asked for where Ray is not installed."""


class UnitFailedError(RuntimeError):
    """A unit failed on a Ray worker for good (its own error, or its worker died more than ``MAX_RETRIES`` times).
    The units finished before it are kept in the partial result file."""


def check_executor(executor: object, address: object = None, ship_data: object = False) -> str:
    if ship_data not in (True, False):
        raise ValueError(f"ship_data={ship_data!r}: must be True or False")
    if ship_data and executor != "ray":
        raise ValueError(f"ship_data=True sends data to Ray's workers; executor={executor!r} runs in this process")
    if executor not in EXECUTORS:
        raise ValueError(f"executor={executor!r}: must be one of {list(EXECUTORS)}")
    if address is not None and executor != "ray":
        raise ValueError(f"address={address!r} is for the ray executor; executor={executor!r} runs in this process")
    if address is not None and not isinstance(address, str):
        raise ValueError(f"address={address!r}: must be a string ('auto', 'ray://<host>:<port>' or '<host>:<port>')")
    return executor


def ray_module():
    """The ``ray`` module, or :class:`RayMissingError` saying how to install it (Ray is an optional dependency)."""
    try:
        import ray
    except ImportError:
        raise RayMissingError("executor='ray' needs Ray, an optional dependency: pip install -e '.[ray]' "
                          "(or drop --executor to run in this process)") from None
    return ray


def connect(address: str | None = None):
    """Join the Ray cluster at ``address`` (``auto``, ``ray://…``; None: ``$RAY_ADDRESS`` if set), or start a local
    one with this machine's cores; a Ray already initialised in this process is used as it is. Returns the ``ray``
    module."""
    ray = ray_module()
    address = address or os.environ.get("RAY_ADDRESS") or None
    if not ray.is_initialized():
        env = {name: os.environ[name] for name in PASSED_ENV if os.environ.get(name)}
        ray.init(address=address, num_cpus=None if address else os.cpu_count(), include_dashboard=False,
                 log_to_driver=False, runtime_env={"env_vars": env} if env else None)
    return ray


def shipment(module: ModuleType) -> dict[str, bytes]:
    """The files of ``module.DATASETS`` (folders of the data mirror) that this machine holds, verified, by their
    path in the mirror; what ``ship_data`` sends to the workers. Raises if it holds none of a dataset's files."""
    from . import data

    files = {}
    for dataset in module.DATASETS:
        held = {relpath: data.local_copy(relpath) for relpath in data.REGISTRY if relpath.split("/")[0] == dataset}
        if not any(held.values()):
            raise data.DataNotFoundError(
                f"ship_data: this machine holds no file of {dataset!r} to send ({sorted(held)}); set "
                f"${data.MIRROR_ENV} or fill ${data.CACHE_ENV} here, or let each worker load its own (no --ship-data)")
        files.update({relpath: path.read_bytes() for relpath, path in held.items() if path is not None})
    return files


_UNPACKED: dict[tuple[str, ...], str] = {}  # per worker process: the folder each shipment was written to


def use_shipment(files: dict[str, bytes]) -> str:
    """On a worker: write ``files`` (once per process) to a folder of its own and point the loaders at it alone
    (no mirror, no download), so every file read is one the driver sent, checked against its hash as always."""
    import tempfile
    from pathlib import Path

    from . import data

    key = tuple(sorted(files))
    if key not in _UNPACKED:
        folder = Path(tempfile.mkdtemp(prefix="replib-shipped-"))
        for relpath, blob in files.items():
            (folder / relpath).parent.mkdir(parents=True, exist_ok=True)
            (folder / relpath).write_bytes(blob)
        _UNPACKED[key] = str(folder)
    os.environ.pop(data.MIRROR_ENV, None)
    os.environ[data.CACHE_ENV] = _UNPACKED[key]
    os.environ[data.OFFLINE_ENV] = "1"
    return _UNPACKED[key]


def train_unit(module_name: str, config: dict, arm: str, seed: int, threads: int,
               files: dict[str, bytes] | None = None) -> tuple[dict, float]:
    """One unit, on a worker, as the in-process runner trains it: torch threads, denormals flushed, seeded by the
    one rule, then ``run_one`` of the experiment module ``module_name`` (imported on the worker); ``files``: the
    driver's shipment of data (:func:`use_shipment`). Returns its output and its wall seconds."""
    import importlib

    import torch

    from . import seeding
    from .train import flush_denormals

    from . import data

    saved = {name: os.environ.get(name) for name in (data.MIRROR_ENV, data.CACHE_ENV, data.OFFLINE_ENV)}
    try:
        if files is not None:
            use_shipment(files)
        torch.set_num_threads(threads)
        flush_denormals()
        seeding.seed_everything(seed)
        tic = time.perf_counter()
        out = importlib.import_module(module_name).run_one(config, arm, seed, progress=False)
        return out, round(time.perf_counter() - tic, 1)
    finally:  # a worker serves later tasks too: a shipment's settings end with its unit
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def resources(config: dict, threads: int | None) -> dict:
    """What one unit's task asks of Ray: its torch threads as CPUs, and one GPU on a CUDA device."""
    return {"num_cpus": threads or 1, "num_gpus": 1 if str(config.get("device", "cpu")).startswith("cuda") else 0}


def run_units(module: ModuleType, config: dict, units: list[tuple[str, int]], *, threads: int | None = None,
              address: str | None = None, ship_data: bool = False,
              progress: bool = True) -> Iterator[tuple[str, int, dict, float]]:
    """Train ``units`` of the experiment ``module`` (importable by its name on every worker) as Ray tasks and yield ``(arm, seed, output, wall seconds)`` for each as it
    finishes, in the order they finish. A task whose worker dies is retried (:data:`MAX_RETRIES`); a unit that
    fails for good raises :class:`UnitFailedError` naming it (units already yielded stay yielded). ``ship_data``:
    send the experiment's data from this machine (:func:`shipment`) instead of each worker loading its own."""
    from .progress import bar

    ray = connect(address)
    task = ray.remote(train_unit).options(max_retries=MAX_RETRIES, retry_exceptions=False,
                                          **resources(config, threads))
    paper = module.PAPER
    files = ray.put(shipment(module)) if ship_data else None  # in the object store once, for every task
    pending = {task.remote(module.__name__, config, arm, seed, threads or 1, files): (arm, seed)
               for arm, seed in units}
    with bar(None, total=len(pending), desc=f"{paper} on Ray", unit="run", disable=not progress) as shown:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            arm, seed = pending.pop(ready[0])
            try:
                out, wall = ray.get(ready[0])
            except (ray.exceptions.RayTaskError, ray.exceptions.WorkerCrashedError,
                    ray.exceptions.RayActorError) as error:
                for ref in pending:
                    ray.cancel(ref, force=True)
                cause = getattr(error, "cause", None) or error  # the unit's own exception, where it raised one
                why = f"{type(cause).__name__}: {str(cause).strip().splitlines()[-1] if str(cause).strip() else ''}"
                raise UnitFailedError(f"{paper}: unit (arm {arm!r}, seed {seed}) failed on a Ray worker ({why}); "
                                      f"the units finished before it are kept, and the same command resumes") from error
            shown.update(1)
            yield arm, seed, out, wall

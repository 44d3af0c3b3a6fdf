"""Shared by the benchmark scripts: interleaved timing and the result file."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Callable

from replib import results as store


def interleaved_median(candidates: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Median seconds per call of each candidate, measured round-robin so drift hits all alike."""
    for fn in candidates.values():  # warm-up: allocator, thread pool, lazy init
        fn()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            tic = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - tic)
    return {name: statistics.median(ts) for name, ts in times.items()}


def write(name: str, body: dict, *, config: dict, seed: int, started) -> Path:
    """Write ``results/benchmarks/<name>.json``: the measurements, the settings and seed they ran with, provenance.

    ``started`` is :func:`replib.results.now` taken before the measurements; ``body`` must
    hold ``wall_seconds``.
    """
    import torch

    path = store.results_dir() / "benchmarks" / f"{name}.json"
    record = {"benchmark": name, "config": config, "seeds": [seed], **body,
              "provenance": store.provenance("cpu", started, body["wall_seconds"])}
    record["provenance"]["hardware"]["torch_threads"] = torch.get_num_threads()
    store.write_json_atomic(path, record)
    print(f"wrote {path}")
    return path

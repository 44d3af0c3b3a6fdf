"""Timing training steps, in one place: the chapters that measure speed and the benchmarks use it.

Candidates are timed round-robin, one step each in turn, so that drift of the machine
(frequency, other load, allocator state) hits every candidate alike; on CUDA each step
is synchronised before the clock stops. Timings taken while anything else ran on the
machine are not comparable across runs: the published ones were taken on a quiet machine.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from typing import Callable, Iterator


def interleaved_step_seconds(candidates: dict[str, Callable[[], object]], steps: int, warmup: int = 1,
                             device: str = "cpu") -> dict[str, list[float]]:
    """Seconds of each of ``steps`` timed calls per candidate, after ``warmup`` untimed rounds."""
    import torch

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    times: dict[str, list[float]] = {name: [] for name in candidates}
    for i in range(warmup + steps):
        for name, step in candidates.items():
            sync()
            tic = time.perf_counter()
            step()
            sync()
            if i >= warmup:
                times[name].append(time.perf_counter() - tic)
    return times


def interleaved_median(candidates: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds per call of each candidate, one warm-up round, ``repeats`` timed rounds."""
    return {name: statistics.median(ts) for name, ts in interleaved_step_seconds(candidates, repeats).items()}


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Inside: torch's CPU thread count set to ``threads`` (None: left as it is); after: restored."""
    import torch

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def stopwatch(device: str = "cpu") -> Iterator[dict[str, float]]:
    """Wall seconds of the block, queued CUDA work included: ``with stopwatch() as t: ...`` then ``t["seconds"]``."""
    import torch

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    out: dict[str, float] = {}
    sync()
    tic = time.perf_counter()
    try:
        yield out
    finally:
        sync()
        out["seconds"] = time.perf_counter() - tic

"""Shared by the benchmark scripts: the result file (timing itself is `replib.timing`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from replib import results as store


def parser(doc: str, *, repeats: int, threads: int | list[int] = 2) -> argparse.ArgumentParser:
    """The options every benchmark has: ``--threads`` (one count, or several to time each), ``--repeats``, ``--seed``."""
    out = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if isinstance(threads, list):
        out.add_argument("--threads", type=int, nargs="+", default=threads, help="torch threads, each timed in turn")
    else:
        out.add_argument("--threads", type=int, default=threads, help="torch threads")
    out.add_argument("--repeats", type=int, default=repeats, help="timed repeats (the median is kept)")
    out.add_argument("--seed", type=int, default=0, help="torch seed of the inputs and weights")
    return out


def begin(args: argparse.Namespace):
    """Start a benchmark: seed torch, set its threads (when one count is given) and the CPU numerics every
    run uses (:func:`replib.train.flush_denormals`), and return the start time and load average that
    :func:`write` records."""
    import torch

    from replib.train import flush_denormals

    flush_denormals()
    torch.manual_seed(args.seed)
    if isinstance(args.threads, int):
        torch.set_num_threads(args.threads)
    return store.now(), store.load_average()


def write(name: str, body: dict, *, config: dict, seed: int, started, load_at_start: float | None) -> Path:
    """Write ``results/benchmarks/<name>.json``: the measurements, the settings and seed they ran with, provenance.

    ``started`` and ``load_at_start`` are :func:`replib.results.now` and
    :func:`replib.results.load_average` taken before the measurements; ``body`` must hold
    ``wall_seconds``.
    """
    import torch

    path = store.results_dir() / "benchmarks" / f"{name}.json"
    record = {"benchmark": name, "config": config, "seeds": [seed], **body,
              "provenance": store.provenance("cpu", started, body["wall_seconds"], load_at_start=load_at_start)}
    record["provenance"]["hardware"]["torch_threads"] = torch.get_num_threads()
    store.write_json_atomic(path, record)
    print(f"wrote {path}")
    return path

"""Shared by the benchmark scripts: the result file (timing itself is `replib.timing`)."""

from __future__ import annotations

from pathlib import Path

from replib import results as store


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

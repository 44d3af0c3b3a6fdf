"""Shared by the benchmark scripts: the result file (timing itself is `replib.timing`)."""

from __future__ import annotations

from pathlib import Path

from replib import results as store


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

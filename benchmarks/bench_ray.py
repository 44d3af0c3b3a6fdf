"""Benchmark: one chapter's run in process against the same run on a local Ray of two one-thread workers.

    python benchmarks/bench_ray.py [--paper hinton2012] [--epochs 2] [--threads 2]

Each run goes through ``replib.experiments.run`` into a scratch results folder (nothing committed is touched): the
``smoke`` profile, then the ``cpu`` profile cut to ``--epochs`` epochs (every arm and seed, fewer epochs). In
process, the units train one after another on ``--threads`` torch threads; on Ray, two tasks at a time on one
thread each (``--executor ray --threads 1``). Ray's start-up (``ray.init`` and a first task's round trip) is timed
apart and not charged to the runs. Writes results/benchmarks/ray.json with the wall seconds of each and the ratio
in-process / Ray of the reduced ``cpu`` run (above 1: Ray is faster).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _common import begin, write
from _common import parser as common_parser

from replib import experiments, scale


def timed_run(paper: str, profile: str, folder: Path, **how) -> float:
    tic = time.perf_counter()
    experiments.run(paper, profile, rerun=True, progress=False, results_dir=folder, **how)
    return round(time.perf_counter() - tic, 2)


def main() -> None:
    parser = common_parser(__doc__, repeats=1)
    parser.add_argument("--paper", default="hinton2012", choices=experiments.PAPERS)
    parser.add_argument("--epochs", type=int, default=2, help="epochs of the reduced cpu run")
    args = parser.parse_args()
    started, load = begin(args)
    tic = time.perf_counter()

    ray = scale.ray_module()  # started here, not by connect(), to time the start-up alone
    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.get(ray.remote(lambda: None).remote())
    startup = round(time.perf_counter() - start, 2)
    warm = time.perf_counter()
    ray.get(ray.remote(lambda: None).remote())
    round_trip = round(time.perf_counter() - warm, 4)

    seconds = {}
    with tempfile.TemporaryDirectory() as scratch:
        for profile, overrides in (("smoke", {}), ("cpu", {"epochs": args.epochs})):
            label = profile if not overrides else f"cpu, {args.epochs} epochs"
            seconds[f"{label}: in process, {args.threads} threads"] = timed_run(
                args.paper, profile, Path(scratch) / "local", threads=args.threads, **overrides)
            seconds[f"{label}: Ray, 2 tasks x 1 thread"] = timed_run(
                args.paper, profile, Path(scratch) / "ray", threads=1, executor="ray", **overrides)
            print(f"{label}: {seconds[f'{label}: in process, {args.threads} threads']} s in process, "
                  f"{seconds[f'{label}: Ray, 2 tasks x 1 thread']} s on Ray")
    ray.shutdown()
    reduced = f"cpu, {args.epochs} epochs"
    ratio = seconds[f"{reduced}: in process, {args.threads} threads"] / seconds[f"{reduced}: Ray, 2 tasks x 1 thread"]
    seconds["Ray start-up (init and a first task)"] = startup
    print(f"Ray start-up {startup} s, warm round trip {round_trip * 1000:.1f} ms; in process / Ray: {ratio:.2f}")
    write("ray", config=vars(args), seed=args.seed, started=started, load_at_start=load, body={
        "what": f"{args.paper}: the smoke run and the cpu run cut to {args.epochs} epochs, trained in process on "
                f"{args.threads} threads against a local Ray of 2 one-thread tasks; Ray's start-up timed apart",
        "seconds": seconds,
        "ray_round_trip_seconds": round_trip,
        "speedup_ray_over_in_process": round(ratio, 3),
        "versions": {"ray": ray.__version__},
        "wall_seconds": time.perf_counter() - tic,
    })


if __name__ == "__main__":
    main()

"""Benchmark: what this CPU's AVX-512 kernels are worth to the training loop, against AVX2 kernels on the same CPU.

    python benchmarks/bench_isa.py [--threads 2] [--repeats 3]

The epochs of ``bench_train_loop.py`` (through ``replib.train.fit``): the MLP classifier
(results/benchmarks/avx2_kernels.json) and the PTB chapter's LSTM
(results/benchmarks/avx2_kernels_sequence.json). Each epoch runs in a fresh process, once with
every kernel the CPU has and once with torch's, oneDNN's and MKL's held to AVX2 (the variables
in ``AVX2_LIMITS``, read when a library loads, hence the processes), alternating, one warm-up
epoch and one timed epoch per process; the median over ``--repeats`` pairs is kept.

On a CPU with AVX-512 this measures the instruction set alone, at the same clock and with the
same caches: a CPU that has only AVX2 is usually older and slower in other ways too, so the
ratio is the part of its slowdown that the instructions explain, not the slowdown itself.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from _common import begin, write
from _common import parser as common_parser
from bench_train_loop import mlp_epochs, sequence_epochs

AVX2_LIMITS = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
MODELS = {"mlp": ("avx2_kernels", "examples", mlp_epochs), "sequence": ("avx2_kernels_sequence", "tokens", sequence_epochs)}


def child(model: str, amount: int, threads: int, seed: int) -> None:
    """In a fresh process: one warm-up and one timed epoch of ``model``; print the timed seconds, torch's vector
    kernels and what the epoch does as JSON."""
    import torch

    from replib.train import flush_denormals

    flush_denormals()
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    ours, _, what = MODELS[model][2](amount)
    ours()
    tic = time.perf_counter()
    ours()
    print(json.dumps({"seconds": time.perf_counter() - tic, "what": what,
                      "capability": torch.backends.cpu.get_cpu_capability()}))


def timed(model: str, amount: int, args, limits: dict[str, str]) -> dict:
    """One epoch of ``model`` in a child process with ``limits`` added to its environment."""
    env = {**{k: v for k, v in os.environ.items() if k not in AVX2_LIMITS}, **limits}
    out = subprocess.run([sys.executable, __file__, "--child", model, "--amount", str(amount),
                          "--threads", str(args.threads), "--seed", str(args.seed)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(model: str, amount: int, args) -> None:
    name, unit, _ = MODELS[model]
    started, load = begin(args)
    tic = time.perf_counter()
    runs: dict[str, list[dict]] = {"all kernels": [], "AVX2 kernels": []}
    for _ in range(args.repeats):  # alternating, so that a drift in the machine's speed hits both alike
        runs["all kernels"].append(timed(model, amount, args, {}))
        runs["AVX2 kernels"].append(timed(model, amount, args, AVX2_LIMITS))
    seconds = {key: statistics.median(r["seconds"] for r in rs) for key, rs in runs.items()}
    ratio = seconds["AVX2 kernels"] / seconds["all kernels"]
    for key, t in seconds.items():
        print(f"{name} {key:>13}: {amount / t:9.0f} training {unit}/s ({runs[key][0]['capability']})")
    print(f"{name}: time with AVX2 kernels / with all of this CPU's: {ratio:.3f}")
    write(name, config=vars(args), seed=args.seed, started=started, load_at_start=load, body={
        "what": f"{runs['all kernels'][0]['what']}, through fit; median of {args.repeats} alternating pairs of processes",
        f"{unit}_per_second": {key: round(amount / t, 1) for key, t in seconds.items()},
        "capability": {key: rs[0]["capability"] for key, rs in runs.items()}, "avx2_limits": AVX2_LIMITS,
        "slowdown_avx2_kernels": round(ratio, 4), "wall_seconds": time.perf_counter() - tic,
    })


def main() -> None:
    parser = common_parser(__doc__, repeats=3)
    parser.add_argument("--examples", type=int, default=20_000, help="training examples per epoch of the MLP")
    parser.add_argument("--tokens", type=int, default=14_000, help="training tokens per epoch of the LSTM")
    parser.add_argument("--child", choices=sorted(MODELS), help=argparse.SUPPRESS)
    parser.add_argument("--amount", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.amount, args.threads, args.seed)
    measure("mlp", args.examples, args)
    measure("sequence", args.tokens, args)


if __name__ == "__main__":
    main()

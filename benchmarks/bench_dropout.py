"""Benchmark: replib's dropout mask against torch.nn.Dropout, forward + backward, same run.

    python benchmarks/bench_dropout.py [--threads 2] [--repeats 30]

Writes results/benchmarks/dropout.json; the book's Benchmarks page shows it.
"""

from __future__ import annotations

import time

import torch
from _common import begin, write
from _common import parser as common_parser

from replib.methods import Dropout
from replib.timing import interleaved_median


def main() -> None:
    parser = common_parser(__doc__, repeats=30)
    parser.add_argument("--calls", type=int, default=200, help="forward+backward calls per timed repeat")
    args = parser.parse_args()
    started, load = begin(args)
    shape = (128, 800)  # a minibatch of hidden activations, as in the MNIST chapters
    x = torch.randn(shape, requires_grad=True)
    grad = torch.randn(shape)
    layers = {"torch.nn.Dropout": torch.nn.Dropout(0.5), "replib.methods.Dropout": Dropout(0.5)}

    def step(layer):
        def run():
            for _ in range(args.calls):
                layer(x).backward(grad)

        return run

    tic = time.perf_counter()
    median = interleaved_median({name: step(layer) for name, layer in layers.items()}, args.repeats)
    per_call_us = {name: 1e6 * t / args.calls for name, t in median.items()}
    speedup = median["torch.nn.Dropout"] / median["replib.methods.Dropout"]
    for name, us in per_call_us.items():
        print(f"{name:>24}: {us:8.1f} us per forward+backward")
    print(f"speed-up of replib over nn.Dropout: {speedup:.2f}x")
    write("dropout", config=vars(args), seed=args.seed, started=started, load_at_start=load, body={
        "what": f"forward+backward of dropout p=0.5 on a {shape[0]}x{shape[1]} float32 tensor, median of {args.repeats} "
                f"interleaved repeats of {args.calls} calls",
        "microseconds_per_call": {k: round(v, 2) for k, v in per_call_us.items()},
        "speedup_vs_nn_dropout": round(speedup, 3),
        "wall_seconds": time.perf_counter() - tic,
    })


if __name__ == "__main__":
    main()

"""Benchmark: M same-shaped dropout MLPs trained as one stack against one at a time.

    python benchmarks/bench_ensemble.py [--threads 2] [--members 3 6 9] [--repeats 3]

Each member is a 784-800-800-10 ReLU net with 50% hidden dropout and max-norm, SGD with
momentum, batch 100, on MNIST-sized random data; both sides train every member for one
epoch of ``--examples`` examples through ``replib.train.fit`` (the stack with
``replib.ensemble``), without evaluation. Interleaved repeats from identical initial
weights; the throughput in model-examples per second and the ratio stack / one at a time
are written to results/benchmarks/ensemble.json.
"""

from __future__ import annotations

import copy
import time

import torch
from _common import begin, write
from _common import parser as common_parser

from replib.ensemble import (
    StackedMLP,
    stacked_cross_entropy,
    stacked_max_norm,
    stacked_minibatches,
)
from replib.models import MLP
from replib.timing import interleaved_median
from replib.train import fit, max_norm, minibatches, sgd_schedule

SIZES, LR, MOMENTUM, BOUND = [784, 800, 800, 10], 0.1, 0.9, 15**0.5


def main() -> None:
    parser = common_parser(__doc__, repeats=3)
    parser.add_argument("--members", type=int, nargs="+", default=[3, 6, 9])
    parser.add_argument("--examples", type=int, default=6_000, help="training examples per member")
    args = parser.parse_args()
    started, load = begin(args)
    train = (torch.rand(args.examples, 784), torch.randint(0, 10, (args.examples,)))
    tic = time.perf_counter()
    by_members = {}
    for members in args.members:
        nets = [MLP(SIZES, "relu", 0.0, 0.5) for _ in range(members)]

        def alone():
            for seed, template in enumerate(nets):
                net = copy.deepcopy(template)
                fit(net, minibatches(train, 100, seed), epochs=1, optimizer=torch.optim.SGD(net.parameters(), lr=LR),
                    schedule=sgd_schedule(LR, MOMENTUM), after_step=max_norm([m.weight for m in net.hidden_layers], BOUND),
                    progress=False)

        def stacked():
            stack = StackedMLP.from_members(nets)
            fit(stack, stacked_minibatches(train, 100, range(members)), epochs=1,
                optimizer=torch.optim.SGD(stack.parameters(), lr=LR), schedule=sgd_schedule(LR, MOMENTUM),
                loss=stacked_cross_entropy, after_step=stacked_max_norm(stack.hidden_weights, BOUND), progress=False)

        median = interleaved_median({"one at a time": alone, "stacked": stacked}, args.repeats)
        rate = {name: members * args.examples / t for name, t in median.items()}
        by_members[str(members)] = {"model_examples_per_second": {k: round(v, 1) for k, v in rate.items()},
                                    "speedup_stacked_over_alone": round(rate["stacked"] / rate["one at a time"], 3)}
        print(f"{members} members: {rate['one at a time']:8.0f} model-examples/s one at a time, "
              f"{rate['stacked']:8.0f} stacked: {rate['stacked'] / rate['one at a time']:.2f}x")
    widest = by_members[str(max(args.members))]
    write("ensemble", config=vars(args), seed=args.seed, started=started, load_at_start=load, body={
        "what": f"one epoch of {args.examples} examples per member, 784-800-800-10 ReLU MLPs with dropout 0.5 and "
                f"max-norm, batch 100, trained one at a time vs stacked; median of {args.repeats} interleaved repeats",
        "by_members": by_members,
        "speedup_stacked_over_alone": widest["speedup_stacked_over_alone"],
        "model_examples_per_second": widest["model_examples_per_second"],
        "wall_seconds": time.perf_counter() - tic,
    })


if __name__ == "__main__":
    main()

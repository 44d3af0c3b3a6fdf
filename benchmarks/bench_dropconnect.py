"""Benchmark: one DropConnect training step, numba kernels against the torch reference, same run.

    python benchmarks/bench_dropconnect.py [--threads 2] [--repeats 5] [--hidden 400]

A training step is forward, cross-entropy and backward of a 784-n-n-10 ReLU MLP whose two
hidden layers use DropConnect with per-example masks (Wan et al. 2013), p = 0.5, on a
random minibatch of 128. The two backends compute the same thing (see
replib.methods.dropconnect); a plain MLP with 50% dropout on the hidden units is timed as a
reference for what a step costs without per-example weight masks. Writes
results/benchmarks/dropconnect.json.
"""

from __future__ import annotations

import time

import numba
import torch
import torch.nn.functional as F
from _common import begin, write
from _common import parser as common_parser

from replib.models import MLP, DropConnectMLP
from replib.timing import interleaved_median


def main() -> None:
    parser = common_parser(__doc__, repeats=5)
    parser.add_argument("--steps", type=int, default=3, help="training steps per timed repeat")
    parser.add_argument("--hidden", type=int, default=400, help="units in each of the two hidden layers")
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    started, load = begin(args)
    sizes = [784, args.hidden, args.hidden, 10]
    x, y = torch.rand(args.batch, 784), torch.randint(0, 10, (args.batch,))

    template = DropConnectMLP(sizes, p=0.5)
    models = {}
    for backend in ("numba", "torch"):
        model = DropConnectMLP(sizes, p=0.5, backend=backend)
        model.load_state_dict(template.state_dict())  # same weights for both backends
        models[f"dropconnect {backend}"] = model
    models["dropout"] = MLP(sizes, "relu", p_hidden=0.5)

    def step(model):
        model.train()

        def run():
            for _ in range(args.steps):
                F.cross_entropy(model(x), y).backward()
                model.zero_grad(set_to_none=True)

        return run

    tic = time.perf_counter()
    median = interleaved_median({name: step(model) for name, model in models.items()}, args.repeats)
    per_step_ms = {name: 1e3 * t / args.steps for name, t in median.items()}
    speedup = median["dropconnect torch"] / median["dropconnect numba"]
    numba_over_dropout = median["dropconnect numba"] / median["dropout"]
    for name, ms in per_step_ms.items():
        print(f"{name:>18}: {ms:9.1f} ms per training step")
    print(f"speed-up of the numba backend over the torch backend: {speedup:.1f}x")
    print(f"numba DropConnect step / dropout step: {numba_over_dropout:.1f}x")
    write("dropconnect", config=vars(args), seed=args.seed, started=started, load_at_start=load, body={
        "what": f"forward + cross-entropy + backward of a {'-'.join(map(str, sizes))} ReLU MLP, batch {args.batch}, "
                f"p=0.5: DropConnect with per-example masks on both hidden layers (numba and torch backends) and, "
                f"as a reference, dropout on the hidden units; median of {args.repeats} interleaved repeats of "
                f"{args.steps} steps",
        "milliseconds_per_step": {k: round(v, 2) for k, v in per_step_ms.items()},
        "speedup_numba_vs_torch_backend": round(speedup, 2),
        "numba_dropconnect_over_dropout": round(numba_over_dropout, 2),
        "numba": {"version": numba.__version__, "threading_layer": numba.threading_layer()},
        "wall_seconds": time.perf_counter() - tic,
    })


if __name__ == "__main__":
    main()

"""Benchmark: a depth-dropout ResNet training step against the dense one and the multiply-accumulate prediction.

    python benchmarks/bench_depth_dropout.py [--threads 1 2] [--repeats 10]

One SGD step (forward, backward, update) of ``DepthDropoutResNet(20)`` on a 128-image
CIFAR-sized batch, timed in the same run for: ``p = 0`` (every main path runs), ``p =
0.25`` and ``p = 0.5`` with the main path run only on the kept images (replib's
gather/scatter), and ``p = 0.5`` the naive way, running the main path on every image
and multiplying the skipped ones by zero. The saving of each against ``p = 0`` is set
beside the saving predicted by counting multiply-accumulates
(:func:`replib.experiments.guo2016.predicted_saving`).

Writes results/benchmarks/depth_dropout.json; the book's Benchmarks page shows it.
"""

from __future__ import annotations

import time
import types

import torch
import torch.nn.functional as F
from _common import begin, write
from _common import parser as common_parser

from replib.experiments.guo2016 import predicted_saving
from replib.models import DepthDropoutResNet
from replib.timing import interleaved_median


def mask_multiply(model: DepthDropoutResNet) -> DepthDropoutResNet:
    """Make every block compute its main path for all images and zero the skipped ones (no saving)."""

    def forward(block, x):
        keep = (torch.rand(x.shape[0], 1, 1, 1) >= block.p).to(x.dtype)
        return F.relu(block.shortcut(x) + keep * block.main(x))

    for block in model.blocks:
        block.forward = types.MethodType(forward, block)
    return model


def main() -> None:
    parser = common_parser(__doc__, repeats=10, threads=[1, 2])
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    started, load = begin(args)
    tic = time.perf_counter()
    x = torch.randn(args.batch, 3, 32, 32)
    y = torch.randint(0, 10, (args.batch,))
    nets = {
        "p=0": DepthDropoutResNet(args.depth, 0.0),
        "p=0.25": DepthDropoutResNet(args.depth, 0.25),
        "p=0.5": DepthDropoutResNet(args.depth, 0.5),
        "p=0.5, mask-multiply": mask_multiply(DepthDropoutResNet(args.depth, 0.5)),
    }

    def step(model):
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def run():
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return run

    by_threads = {}
    for threads in args.threads:
        torch.set_num_threads(threads)
        median = interleaved_median({name: step(net.train()) for name, net in nets.items()}, args.repeats)
        rows = {}
        for name, seconds in median.items():
            ratio = float(name.split(",")[0].split("=")[1])
            predicted = 0.0 if "mask" in name else predicted_saving({"net": "resnet", "depth": args.depth}, ratio) / 100
            measured = 1.0 - seconds / median["p=0"]
            rows[name] = {"ms_per_step": round(1e3 * seconds, 1), "measured_saving": round(measured, 3),
                          "predicted_saving": round(predicted, 3),
                          "measured_over_predicted": round(measured / predicted, 3) if predicted else None}
            print(f"{threads} thread(s) {name:>22}: {1e3 * seconds:7.1f} ms/step, saving {measured:6.1%} "
                  f"(predicted {predicted:.1%})")
        by_threads[str(threads)] = rows
    first = by_threads[str(args.threads[0])]
    write("depth_dropout", config=vars(args), seed=args.seed, started=started, load_at_start=load, body={
        "what": f"one SGD step of DepthDropoutResNet({args.depth}) on {args.batch} images of 3x32x32, median of "
                f"{args.repeats} interleaved repeats; saving = 1 - time / time at p=0",
        f"speedup_p0.5_vs_p0_at_{args.threads[0]}_thread": round(first["p=0"]["ms_per_step"] / first["p=0.5"]["ms_per_step"], 3),
        "by_threads": by_threads,
        "wall_seconds": time.perf_counter() - tic,
    })


if __name__ == "__main__":
    main()

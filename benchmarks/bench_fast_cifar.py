"""Benchmark: test accuracy on CIFAR-10 against minutes of training on this machine, for the fast recipe's net
and for the ResNet-20 of the depth-dropout chapter's paper profile, through the same loop.

    python benchmarks/bench_fast_cifar.py [--threads 2] [--budgets 12] [--resnet-budgets 12]

Both nets train on all 50,000 training images by ``replib.experiments._cifar.fast_train`` (Nesterov SGD under a
one-cycle rate set every step, label smoothing 0.2, flip and 2-pixel translation, flip averaging at test,
channels_last) at the precision ``choose_precision`` picks for this CPU, and are scored on all 10,000 test
images. A one-cycle run ends where its schedule ends, so each budget is its own run: a first epoch of each net
(the ``probe``, a run of its own) measures the seconds per epoch, and the run for a budget of ``m`` minutes
takes as many epochs as fit in ``m`` minutes of training at that speed. Minutes are training only (the steps,
augmentation included); the test evaluation after every epoch is timed apart. Writes
results/benchmarks/fast_cifar.json (``--name``: another fast_cifar-<suffix>.json, for budgets run apart); the
book's Benchmarks page shows every one.
"""

from __future__ import annotations

import math
import time

from _common import begin, write
from _common import parser as common_parser

from replib.experiments._cifar import FastTraining, choose_precision, eval_set, fast_train, splits
from replib.models import FastCifarNet, ResNet
from replib.seeding import seed_everything

NETS = {"fast": lambda a: FastCifarNet(a.widths, a.depth), "resnet20": lambda a: ResNet(20)}
GOALS = [[12.0, 85.0], [40.0, 90.0]]  # (minutes of training, test accuracy %) on 2 cores of an AVX2-only CPU


def train(name: str, args, epochs: int, chosen: str) -> dict:
    seed_everything(args.seed)
    config = {**FastTraining().model_dump(), "epochs": epochs, "device": "cpu", "lr": args.lr,
              "batch_size": args.batch_size}
    tic = time.perf_counter()
    curves = fast_train(NETS[name](args), config, args.seed, precision=chosen, progress=True,
                        desc=f"{name}, {epochs} epoch(s)")
    minutes = [sum(curves["train_seconds"][: e + 1]) / 60 for e in range(epochs)]
    accuracy = [round(100 - err, 2) for err in curves["monitor_error"]]
    print(f"{name}: {epochs} epochs, {minutes[-1]:.1f} min of training, test accuracy {accuracy[-1]:.2f} %")
    return {"epochs": epochs, "train_minutes": round(minutes[-1], 3), "test_accuracy": accuracy[-1],
            "curve": {"epoch": curves["epoch"], "train_minutes": [round(m, 3) for m in minutes],
                      "test_accuracy": accuracy, "lr_at_epoch_start": curves["lr"]},
            "eval_seconds": round(sum(s - t for s, t in zip(curves["seconds"], curves["train_seconds"])), 1),
            "wall_seconds": round(time.perf_counter() - tic, 1)}


def main() -> None:
    parser = common_parser(__doc__, repeats=3)
    parser.add_argument("--budgets", type=float, nargs="+", default=[12.0], help="minutes of training, fast net")
    parser.add_argument("--resnet-budgets", type=float, nargs="*", default=[12.0], help="minutes of training, ResNet-20")
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 64, 64], help="the fast net's block widths")
    parser.add_argument("--depth", type=int, default=2, help="the fast net's convolutions per block")
    parser.add_argument("--lr", type=float, default=FastTraining.model_fields["lr"].default, help="peak learning rate")
    parser.add_argument("--batch-size", type=int, default=FastTraining.model_fields["batch_size"].default)
    parser.add_argument("--name", default="fast_cifar", help="the result file, results/benchmarks/<name>.json: "
                        "fast_cifar or fast_cifar-<suffix> (the book shows every fast_cifar* file)")
    args = parser.parse_args()
    if args.name != "fast_cifar" and not args.name.startswith("fast_cifar-"):
        parser.error(f"--name must be fast_cifar or fast_cifar-<suffix>, got {args.name!r}")
    started, load = begin(args)
    splits(None, 0, None)  # decoded and normalised before any clock starts
    eval_set({"train_size": None, "val_size": 0, "test_size": None, "device": "cpu"}, "test")
    tic = time.perf_counter()
    nets = {}
    for name, budgets in (("fast", args.budgets), ("resnet20", args.resnet_budgets)):
        if not budgets:
            continue
        choice = choose_precision(NETS[name](args), {**FastTraining().model_dump(), "device": "cpu",
                                                     "batch_size": args.batch_size}, repeats=args.repeats)
        print(f"{name}: precision {choice['precision']} ({choice['why']})")
        probe = train(name, args, 1, choice["precision"])
        per_epoch = probe["train_minutes"]
        runs = {f"{m:g}": train(name, args, max(1, math.floor(m / per_epoch)), choice["precision"]) for m in budgets}
        nets[name] = {"precision": choice, "minutes_per_epoch": per_epoch, "probe": probe, "budgets": runs}
    write(args.name, config=vars(args), seed=args.seed, started=started, load_at_start=load, body={
        "what": "test accuracy (%) of CIFAR-10 nets trained by the fast recipe on all 50,000 images, one run per "
                "budget of training minutes, epochs = floor(budget / minutes of the probe's one epoch)",
        "goals": GOALS, "nets": nets, "wall_seconds": time.perf_counter() - tic})


if __name__ == "__main__":
    main()

"""Benchmark: replib.train.fit against a bare hand-written PyTorch loop doing the same work.

    python benchmarks/bench_train_loop.py [--threads 2] [--repeats 3]

Both train the same 784-800-800-10 ReLU MLP (50% hidden dropout, max-norm) with SGD and
momentum on MNIST-sized random data, batch 100, and evaluate on a 10,000-example test
set once per epoch. Interleaved repeats from identical initial weights; the ratio of
throughputs is written to results/benchmarks/train_loop.json.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
import torch.nn.functional as F

from _common import write
from replib.timing import interleaved_median
from replib import results as store
from replib.models import MLP
from replib.train import classification_monitor, fit, max_norm, minibatches, sgd_schedule


def bare_loop(model, train, test, epochs, batch_size, lr, momentum, max_norm):
    """The baseline: the fewest lines that do the same training and evaluation."""
    x, y = train
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    hidden = [m.weight for m in model.hidden_layers]
    order = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(y), generator=order).split(batch_size):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                for w in hidden:
                    w.renorm_(2, 0, max_norm)
        model.eval()
        with torch.inference_mode():
            int((model(test[0]).argmax(1) != test[1]).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--examples", type=int, default=20_000, help="training examples per epoch")
    parser.add_argument("--seed", type=int, default=0, help="torch seed of the inputs and weights")
    args = parser.parse_args()
    started = store.now()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train = (torch.rand(args.examples, 784), torch.randint(0, 10, (args.examples,)))
    test = (torch.rand(10_000, 784), torch.randint(0, 10, (10_000,)))
    template = MLP([784, 800, 800, 10], "relu", p_input=0.0, p_hidden=0.5)
    settings = dict(epochs=1, batch_size=100, lr=0.1, momentum=0.9, max_norm=15**0.5)

    def ours():
        model = copy.deepcopy(template)
        fit(model, minibatches(train, settings["batch_size"], seed=0), epochs=settings["epochs"],
            optimizer=torch.optim.SGD(model.parameters(), lr=settings["lr"]),
            schedule=sgd_schedule(settings["lr"], settings["momentum"]),
            after_step=max_norm([m.weight for m in model.hidden_layers], settings["max_norm"]),
            monitor=classification_monitor(test), progress=False)

    def bare():
        bare_loop(copy.deepcopy(template), train, test, **settings)

    tic = time.perf_counter()
    median = interleaved_median({"bare loop": bare, "replib.train.fit": ours}, args.repeats)
    per_second = {name: args.examples / t for name, t in median.items()}
    ratio = per_second["replib.train.fit"] / per_second["bare loop"]
    for name, rate in per_second.items():
        print(f"{name:>18}: {rate:9.0f} training examples/s (epoch incl. evaluation)")
    print(f"fit throughput / bare loop throughput: {ratio:.3f}")
    write("train_loop", config=vars(args), seed=args.seed, started=started, body={
        "what": f"one epoch of {args.examples} examples + evaluation on 10,000, 784-800-800-10 ReLU MLP, dropout 0.5, "
                f"max-norm, batch 100; median of {args.repeats} interleaved repeats",
        "examples_per_second": {k: round(v, 1) for k, v in per_second.items()},
        "throughput_ratio_fit_over_bare": round(ratio, 4),
        "wall_seconds": time.perf_counter() - tic,
    })


if __name__ == "__main__":
    main()

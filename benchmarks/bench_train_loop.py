"""Benchmark: replib.train.fit against a bare hand-written PyTorch loop doing the same work.

    python benchmarks/bench_train_loop.py [--threads 2] [--repeats 3]

Two models, each timed against its own bare loop, interleaved repeats from identical
initial weights:

- classifier: a 784-800-800-10 ReLU MLP (50% hidden dropout, max-norm) with SGD and
  momentum on MNIST-sized random data, batch 100, evaluated on a 10,000-example test set
  once per epoch (results/benchmarks/train_loop.json);
- sequence model: the PTB chapter's 2x200 variational LSTM on random tokens (vocabulary
  10,000, 20 streams, 35 steps per segment, state carried across segments, gradient norm
  clipped at 5), as the chapter trains it through fit (results/benchmarks/train_loop_sequence.json).
"""

from __future__ import annotations

import copy
import time

import torch
import torch.nn.functional as F
from _common import begin, write
from _common import parser as common_parser

from replib.experiments.gal2016_rnn import (
    TruncatedBPTT,
    batchify,
    segments,
    sequence_loss,
)
from replib.methods import VariationalLSTM
from replib.models import MLP
from replib.timing import interleaved_median
from replib.train import (
    classification_monitor,
    clip_grad_norm,
    fit,
    max_norm,
    minibatches,
    sgd_schedule,
)


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


def compare(name: str, bare, ours, amount: int, unit: str, args, started, load, *, what: str) -> None:
    """Time one epoch of ``bare`` and ``ours`` interleaved; print and write the throughputs and their ratio."""
    tic = time.perf_counter()
    median = interleaved_median({"bare loop": bare, "replib.train.fit": ours}, args.repeats)
    per_second = {key: amount / t for key, t in median.items()}
    ratio = per_second["replib.train.fit"] / per_second["bare loop"]
    for key, rate in per_second.items():
        print(f"{name} {key:>18}: {rate:9.0f} training {unit}/s")
    print(f"{name}: fit throughput / bare loop throughput: {ratio:.3f}")
    write(name, config=vars(args), seed=args.seed, started=started, load_at_start=load, body={
        "what": what, f"{unit}_per_second": {k: round(v, 1) for k, v in per_second.items()},
        "throughput_ratio_fit_over_bare": round(ratio, 4), "wall_seconds": time.perf_counter() - tic,
    })


def mlp_epochs(examples: int):
    """The classifier's epoch through ``fit`` and through :func:`bare_loop`, on random MNIST-sized data:
    ``(ours, bare, what)``, two callables that train a fresh copy of the same net, and what they do in words."""
    train = (torch.rand(examples, 784), torch.randint(0, 10, (examples,)))
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

    return ours, bare, (f"one epoch of {examples} examples + evaluation on 10,000, 784-800-800-10 ReLU MLP, "
                        "dropout 0.5, max-norm, batch 100")


def main() -> None:
    parser = common_parser(__doc__, repeats=3)
    parser.add_argument("--examples", type=int, default=20_000, help="training examples per epoch")
    parser.add_argument("--tokens", type=int, default=14_000, help="training tokens per epoch of the sequence model")
    args = parser.parse_args()
    started, load = begin(args)
    ours, bare, what = mlp_epochs(args.examples)
    compare("train_loop", bare, ours, args.examples, "examples", args, started, load,
            what=f"{what}; median of {args.repeats} interleaved repeats")
    sequence_benchmark(args)


def bare_sequence_loop(model, stream, bptt, lr, clip):
    """The baseline for the sequence model: the fewest lines that do one epoch of truncated BPTT."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    state = None
    model.train()
    for x, y in segments(stream, bptt):
        logits, state = model(x, state)
        state = tuple(s.detach() for s in state)
        loss = sequence_loss(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()


def sequence_epochs(tokens: int):
    """The PTB chapter's LSTM, one epoch of truncated BPTT through ``fit`` and through :func:`bare_sequence_loop`
    on random tokens: ``(ours, bare, what)`` as :func:`mlp_epochs`."""
    vocab, bptt, lr, clip = 10_000, 35, 1.0, 5.0
    stream = batchify(torch.randint(0, vocab, (tokens,)), 20)
    template = VariationalLSTM(vocab, 200, 2, mode="variational", p_input=0.3, p_output=0.3, p_recurrent=0.3,
                               p_embedding=0.1)

    def ours():
        model = copy.deepcopy(template)
        run = TruncatedBPTT(stream, bptt)
        fit(model, run.batches, epochs=1, optimizer=torch.optim.SGD(model.parameters(), lr=lr),
            schedule=sgd_schedule(lr), loss=run.loss, before_step=clip_grad_norm(model.parameters(), clip),
            progress=False)

    def bare():
        bare_sequence_loop(copy.deepcopy(template), stream, bptt, lr, clip)

    return ours, bare, (f"one epoch of {tokens} random tokens in 20 streams, 2x200 variational LSTM (p 0.3, "
                        "embedding 0.1), vocabulary 10,000, truncated BPTT over 35 steps, clipping at 5")


def sequence_benchmark(args) -> None:
    started, load = begin(args)
    ours, bare, what = sequence_epochs(args.tokens)
    compare("train_loop_sequence", bare, ours, args.tokens, "tokens", args, started, load,
            what=f"{what}; median of {args.repeats} interleaved repeats")


if __name__ == "__main__":
    main()

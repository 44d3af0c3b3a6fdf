"""Benchmark: replib.train.fit_regression against a bare full-batch Adam loop, on the MC-dropout chapter's CO2 net.

    python benchmarks/bench_regression.py [--threads 2] [--repeats 3] [--steps 2000]

The CO2 net as the chapter builds it (``Co2Config``'s defaults: 1-512-512-512-512-1 ReLU MLP,
dropout 0.1 before every weight layer but the first, L2 1e-6), trained full-batch on 272 random
points, the size of the chapter's series, for ``--steps`` steps: through ``fit_regression``
(PyTorch's fused Adam), and through the fewest lines that do the same with ``torch.optim.Adam``'s
defaults (on CPU, its multi-tensor implementation). The two start from the same weights and
draw the same dropout masks.

In the same interleaved rounds, the MLP epoch of ``bench_train_loop.py`` through ``fit``: a
step's time here, set against that epoch's throughput here and on another machine, estimates
the step's time there (results/benchmarks/regression_loop.json).
"""

from __future__ import annotations

import copy
import time

import torch
import torch.nn.functional as F
from _common import begin, write
from _common import parser as common_parser
from bench_train_loop import mlp_epochs

from replib.experiments.gal2016_mc import Co2Config
from replib.models import MLP
from replib.timing import interleaved_median
from replib.train import fit_regression

POINTS = 272  # the CO2 series' training points (shared/data/co2/co2_gal2016.npz)


def bare_regression_loop(model, x, y, steps, lr, weight_decay):
    """The baseline: full-batch Adam with torch's default implementation, squared error, one reading at the end."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    model.train()
    for _ in range(steps):
        loss = F.mse_loss(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        float((model(x) - y).pow(2).mean().sqrt())


def regression_steps(steps: int):
    """``steps`` full-batch steps of the CO2 net through ``fit_regression`` and through
    :func:`bare_regression_loop`: ``(ours, bare, what)``, two callables that train a fresh copy of the same net
    with the same dropout masks, and what they do in words."""
    co2 = Co2Config()
    x = torch.linspace(-2.0, 2.0, POINTS)[:, None]
    y = torch.randn(POINTS, 1)
    template = MLP([1, *co2.hidden, 1], "relu", 0.0, co2.p)

    def ours():
        torch.manual_seed(0)
        fit_regression(copy.deepcopy(template), x, y, iterations=steps, lr=co2.lr, weight_decay=co2.weight_decay,
                       check_every=steps, progress=False)

    def bare():
        torch.manual_seed(0)
        bare_regression_loop(copy.deepcopy(template), x, y, steps, co2.lr, co2.weight_decay)

    widths = "-".join(map(str, [1, *co2.hidden, 1]))
    return ours, bare, (f"{steps} full-batch Adam steps on {POINTS} points, {widths} ReLU MLP, dropout {co2.p:g}, "
                        f"L2 {co2.weight_decay:g}")


def main() -> None:
    parser = common_parser(__doc__, repeats=3)
    parser.add_argument("--steps", type=int, default=2000, help="full-batch steps of the CO2 net per timed call")
    parser.add_argument("--examples", type=int, default=20_000, help="training examples of the MLP epoch (the anchor)")
    args = parser.parse_args()
    started, load = begin(args)
    tic = time.perf_counter()
    ours, bare, what = regression_steps(args.steps)
    anchor, _, anchor_what = mlp_epochs(args.examples)  # the machine's speed, to carry the step's time elsewhere
    median = interleaved_median({"bare loop (default Adam)": bare, "replib.train.fit_regression": ours,
                                 "anchor": anchor}, args.repeats)
    step_ms = {key: round(1000 * median[key] / args.steps, 3) for key in median if key != "anchor"}
    ratio = step_ms["bare loop (default Adam)"] / step_ms["replib.train.fit_regression"]
    anchor_rate = args.examples / median["anchor"]
    for key, ms in step_ms.items():
        print(f"regression_loop {key:>27}: {ms:7.2f} ms a step")
    print(f"regression_loop: bare loop's time / fit_regression's: {ratio:.3f}; "
          f"anchor (MLP epoch through fit): {anchor_rate:.0f} examples/s")
    write("regression_loop", config=vars(args), seed=args.seed, started=started, load_at_start=load, body={
        "what": f"{what}; median of {args.repeats} interleaved repeats",
        "milliseconds_per_step": step_ms, "speedup_fit_regression_over_bare": round(ratio, 4),
        "examples_per_second": {"anchor: MLP epoch through fit": round(anchor_rate, 1)},
        "anchor": f"{anchor_what}, through fit",
        "wall_seconds": time.perf_counter() - tic,
    })


if __name__ == "__main__":
    main()

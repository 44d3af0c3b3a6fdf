"""Benchmark: drop path that skips the compute against the usual mask-multiply drop path, by drop rate.

    python benchmarks/bench_drop_path.py [--threads 2] [--rates 0 0.1 0.2 0.3 0.5] [--repeats 15]

One training step (forward and backward, no update) of a residual stack of eight branches, each wrapped in a drop
path, for two branch kinds: a transformer block's MLP branch (LayerNorm, 192 -> 768 -> 192 with GELU, on 64
sequences of 65 tokens, the size of a small ViT) and a ResNet basic block's main path (3x3 conv, batch norm,
ReLU, 3x3 conv, batch norm; 64 channels at 16x16, 128 images). At every rate both forms are timed in the same
run, interleaved: ``replib.methods.drop_add_residual`` (the branch runs on the kept samples only) and the mask
multiply of the common vision libraries (the branch runs on every sample, and the dropped ones are multiplied by
zero; at p = 0 it is the plain residual, as in those libraries). Writes results/benchmarks/drop_path.json:
milliseconds per step of each, their ratio, and the lowest rate at which skipping is faster (the break-even).
"""

from __future__ import annotations

import time

import torch
from _common import begin, write
from _common import parser as common_parser
from torch import nn

from replib.methods import drop_add_residual
from replib.timing import interleaved_median

DEPTH = 8


def mlp_branch() -> nn.Module:
    return nn.Sequential(nn.LayerNorm(192), nn.Linear(192, 768), nn.GELU(), nn.Linear(768, 192))


def conv_branch() -> nn.Module:
    return nn.Sequential(nn.Conv2d(64, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                         nn.Conv2d(64, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64))


KINDS = {"transformer MLP branch (64 x 65 tokens x 192)": (mlp_branch, (64, 65, 192)),
         "ResNet basic block (128 x 64 x 16 x 16)": (conv_branch, (128, 64, 16, 16))}


def mask_multiply(x: torch.Tensor, branch: nn.Module, p: float) -> torch.Tensor:
    """The common libraries' drop path: at p = 0 the plain residual, else the branch on every sample times a mask."""
    if p == 0.0:
        return x + branch(x)
    keep = (torch.rand(x.shape[0], *([1] * (x.dim() - 1))) >= p).to(x.dtype)
    return x + branch(x) * keep / (1 - p)


def step(branches: nn.ModuleList, x: torch.Tensor, p: float, skip: bool):
    def run() -> None:
        h = x
        for branch in branches:
            h = drop_add_residual(h, branch, p) if skip else mask_multiply(h, branch, p)
        h.square().mean().backward()
    return run


def main() -> None:
    parser = common_parser(__doc__, repeats=15)
    parser.add_argument("--rates", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3, 0.5])
    args = parser.parse_args()
    started, load = begin(args)
    tic = time.perf_counter()
    by_kind = {}
    for kind, (make, shape) in KINDS.items():
        branches = nn.ModuleList(make() for _ in range(DEPTH)).train()
        x = torch.randn(shape, requires_grad=True)
        rows = {}
        for p in args.rates:
            median = interleaved_median({"mask multiply": step(branches, x, p, skip=False),
                                         "skip": step(branches, x, p, skip=True)}, args.repeats)
            rows[f"{p:g}"] = {"milliseconds_per_step": {k: round(v * 1000, 2) for k, v in median.items()},
                              "speedup_skip_over_mask": round(median["mask multiply"] / median["skip"], 3)}
            print(f"{kind}, p = {p:g}: mask multiply {median['mask multiply'] * 1000:.1f} ms, "
                  f"skip {median['skip'] * 1000:.1f} ms ({rows[f'{p:g}']['speedup_skip_over_mask']:.2f}x)")
        faster = [float(p) for p, row in rows.items() if row["speedup_skip_over_mask"] > 1.0]
        by_kind[kind] = {"by_rate": rows, "break_even_rate": min(faster) if faster else None}
    headline_kind, headline_rate = next(iter(KINDS)), "0.3" if 0.3 in args.rates else f"{args.rates[-1]:g}"
    headline = by_kind[headline_kind]["by_rate"][headline_rate]
    write("drop_path", config=vars(args), seed=args.seed, started=started, load_at_start=load, body={
        "what": f"one training step (forward and backward) of {DEPTH} residual branches with drop path, the branch "
                f"run on kept samples only (skip) against the mask multiply; median of {args.repeats} interleaved "
                f"repeats per rate; headline: {headline_kind} at p = {headline_rate}",
        "by_kind": by_kind,
        "speedup_skip_over_mask_multiply": headline["speedup_skip_over_mask"],
        "milliseconds_per_step": headline["milliseconds_per_step"],
        "wall_seconds": time.perf_counter() - tic,
    })


if __name__ == "__main__":
    main()

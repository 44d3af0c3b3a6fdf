"""Graham, Reizenstein & Robinson (2015): batchwise dropout with submatrices, speed and accuracy.

"Efficient batchwise dropout training using submatrices", arXiv 1502.02478. Two parts.
``timing``: seconds per training step (forward, backward, update; every timed step recorded,
after warm-up, all in one process) of a 784-n-n-10 MLP with no dropout, per-sample dropout
and batchwise dropout at p_hidden = 0.5, for several n, batch sizes and thread counts,
beside the FLOP ratio the submatrices predict; the claims are decided at the training
batch size and the most threads. ``accuracy``: 784-800-800-10 on MNIST, per-sample vs
batchwise dropout (input 0.2, hidden 0.5), several seeds, on the authors' per-epoch
learning-rate decay.
"""

from __future__ import annotations

import functools
import math
import statistics
from typing import Annotated, Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from .. import claims as rule
from ..progress import bar as progress_bar
from .. import data
from .._validate import (DropProbability, IncreasingWidths, NonNegativeInt, PositiveFloat, PositiveInt, Probability,
                         Spec, SubSpec, Widths)
from ..methods import BatchwiseDropoutMLP, SubmatrixSGD
from ..methods.batchwise import kept_count
from ..models import MLP
from ..timing import interleaved_step_seconds, torch_threads
from ..train import classification_monitor, exponential_decay, fit, minibatches, sgd_schedule

PAPER = "graham2015"
TITLE = "Graham et al. 2015: batchwise dropout"
CITE = "graham2015"  # its key in book/references.bib
HEADLINE = "One dropout pattern per minibatch lets each layer multiply only the kept submatrix: faster training, same accuracy."  # the claim tested, in a line
DATASETS = ("mnist",)  # the data mirror's folders its units read
ARMS = ("per-sample", "batchwise")
TIMING_METHODS = ("no dropout", "per-sample", "batchwise")
PAPER_EPOCHS, PAPER_DECAY_RATE = 200, 0.01
ACCURACY_MARGIN = 0.2  # percentage points: "within about 0.1-0.2 points of per-sample dropout"
FLOP_WIDTH = 2000  # the width at which the speed-up is held to the FLOP prediction (else the widest timed)


class Timing(SubSpec):
    widths: Annotated[IncreasingWidths, Field(min_length=2)] = Field([500, 1000, 2000, 4000], description="hidden widths n of the timed 784-n-n-10 nets")
    steps: Annotated[int, Field(ge=2)] = Field(30, description="timed training steps per method and width: the replicates of the timing claims")
    warmup: NonNegativeInt = Field(5, description="untimed steps first")
    p_input: DropProbability = Field(0.0, description="input dropout while timing: 0 isolates hidden-layer dropout, as in the paper's claim")
    batch_sizes: Annotated[list[PositiveInt], Field(min_length=1)] = Field(
        [100, 1000], description="minibatch sizes timed; the training batch size among them (the claims' setting)")
    threads: Annotated[list[PositiveInt], Field(min_length=1)] = Field(
        [1, 2], description="torch CPU thread counts timed; the claims use the most")


class Config(Spec):
    dataset: Literal["mnist"] = Field("mnist", description="the data set")
    p_input: DropProbability = Field(0.2, description="input drop probability of the accuracy arms (the authors' released MNIST code)")
    p_hidden: DropProbability = Field(0.5, description="hidden drop probability, both parts")
    activation: Literal["relu", "tanh", "sigmoid"] = Field("relu", description="hidden activation")
    batch_size: PositiveInt = Field(100, description="examples per minibatch, both parts")
    lr: PositiveFloat = Field(0.05, description="initial learning rate")
    momentum: Probability = Field(0.9, description="classical momentum")
    lr_decay: PositiveFloat = Field(math.exp(-PAPER_DECAY_RATE), description="rate factor per epoch: the authors' exp(-0.01)")
    train_size: PositiveInt | None = Field(None, description="training images; None: all 60,000")
    test_size: PositiveInt | None = Field(None, description="test images; None: all 10,000")
    hidden: Widths = Field([800, 800], description="units per hidden layer of the accuracy arms")
    epochs: PositiveInt = Field(80, description="passes over the training set (accuracy arms)")
    timing: Timing = Field(Timing(), description="the timing part")

    @model_validator(mode="after")
    def _claims_setting_timed(self):
        if self.batch_size not in self.timing.batch_sizes:
            raise ValueError(f"timing.batch_sizes must include batch_size ({self.batch_size}), the setting the timing "
                             f"claims are decided at, got {self.timing.batch_sizes!r}")
        return self


PROFILES = {
    "smoke": {"hidden": [64, 64], "epochs": 2, "train_size": 5000, "test_size": 1000,
              "timing": {"widths": [64, 256], "steps": 5, "warmup": 2, "batch_sizes": [100, 200], "threads": [1, 2]},
              "seeds": 1},
    # 2 x 3 nets of 80 epochs and the timing part: sized for 2 cores of a CPU with AVX2 only, where this
    # MLP trains about 3 times slower than on the AVX-512 CPU of our run (measured on both): about 80 of
    # its 90 minutes.
    "cpu": {"epochs": 80, "seeds": 3},
    "paper": {"epochs": 200, "timing": {"steps": 100, "warmup": 10}, "seeds": 5},
}

PAPER_VALUES = [
    {"id": "hidden_work_saved", "value": 75, "unit": "% fewer hidden-to-hidden multiply-adds",
     "what": "two hidden layers at 50% dropout: the hidden-to-hidden matrix products need 75% less work",
     "where": "arXiv 1502.02478, introduction", "confirmed": True},
    {"id": "small_net_test_error", "value": 2.0, "unit": "% test error",
     "what": "two hidden layers of 80 units, no dropout: learns the training set in ~20 epochs, ~2% test error",
     "where": "arXiv 1502.02478, introduction", "confirmed": True},
    {"id": "dropout_test_error", "value": 1.1, "unit": "% test error",
     "what": "ten times the units with dropout: about 1.1% test error", "where": "arXiv 1502.02478, introduction",
     "confirmed": True},
    {"id": "time_saved_3x500", "value": 42, "unit": "% training time saved",
     "what": "3-layer net of 500 units, batchwise vs per-sample dropout (quoted from secondary sources)",
     "where": "not read in the paper: timing tables unconfirmed (shared/PAPERS.md)", "confirmed": False},
]


def units(config: dict, seeds: list[int], done: dict) -> list[tuple[str, int]]:
    """Timing once (the first seed); the accuracy arms for every seed."""
    return [("timing", seeds[0])] + [(arm, s) for s in seeds for arm in ARMS]


def build(arm: str, sizes: list[int], config: dict, p_input: float):
    """The model and optimizer of one arm: per-sample (dense, masked) or batchwise (submatrices)."""
    if arm == "batchwise":
        model = BatchwiseDropoutMLP(sizes, p_input, config["p_hidden"], config["activation"])
        return model.to(config["device"]), SubmatrixSGD(model.parameters(), model, lr=config["lr"], momentum=config["momentum"])
    ps = (0.0, 0.0) if arm == "no dropout" else (p_input, config["p_hidden"])
    model = MLP(sizes, config["activation"], *ps).to(config["device"])
    return model, torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=config["momentum"])


def flop_ratio(sizes: list[int], p_input: float, p_hidden: float) -> float:
    """Predicted dense / batchwise multiply-adds of a training step: forward and both backward products,
    except the first layer's input gradient (so it counts twice, the others three times)."""
    ps = [p_input] + [p_hidden] * (len(sizes) - 2) + [0.0]
    kept = [kept_count(n, p) for n, p in zip(sizes, ps)]
    work = lambda ns: sum((2 if i == 0 else 3) * a * b for i, (a, b) in enumerate(zip(ns[:-1], ns[1:])))  # noqa: E731
    return work(sizes) / work(kept)


def time_steps(config: dict, n: int, batch_size: int | None = None) -> dict[str, list[float]]:
    """Seconds of every timed training step of each method at hidden width ``n`` and ``batch_size`` (None: the
    training batch size), at torch's current thread count; the methods interleaved step by step."""
    timing, device, batch = config["timing"], config["device"], batch_size or config["batch_size"]
    x = torch.rand(batch, 784, device=device)
    y = torch.randint(0, 10, (batch,), device=device)

    def step(model, opt) -> None:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    setups = {m: build(m, [784, n, n, 10], config, timing["p_input"]) for m in TIMING_METHODS}
    return interleaved_step_seconds({m: functools.partial(step, *setup) for m, setup in setups.items()},
                                    timing["steps"], timing["warmup"], device)


def run_one(config: dict, arm: str, seed: int, progress: bool = True) -> dict:
    if arm == "timing":
        timing, rows = config["timing"], []
        grid = [(t, b, n) for t in timing["threads"] for b in timing["batch_sizes"] for n in timing["widths"]]
        for threads, batch, n in progress_bar(grid, desc="timing (threads, batch, width)", disable=not progress,
                                              leave=False):
            with torch_threads(threads):
                steps = time_steps(config, n, batch)
            median = {m: statistics.median(t) for m, t in steps.items()}
            rows.append({"threads": threads, "batch_size": batch, "n": n, "seconds_per_step": median,
                         "step_seconds": steps, "speedup_vs_per_sample": median["per-sample"] / median["batchwise"],
                         "flop_ratio": flop_ratio([784, n, n, 10], timing["p_input"], config["p_hidden"])})
        return {"metrics": {"threads": timing["threads"]}, "curves": {"timing": rows}}
    train, test = data.mnist_tensors(config["train_size"], config["test_size"], config["device"])
    model, opt = build(arm, [784, *config["hidden"], 10], config, config["p_input"])
    curves = fit(
        model, minibatches(train, config["batch_size"], seed), epochs=config["epochs"], optimizer=opt,
        schedule=sgd_schedule(exponential_decay(config["lr"], config["lr_decay"]), config["momentum"]),
        monitor=classification_monitor(test), progress=progress, desc=f"{arm} seed {seed}",
    )
    return {"metrics": {"test_error": curves["monitor_error"][-1], "test_errors": curves["monitor_errors"][-1],
                        "seconds_per_epoch": float(np.mean(curves["seconds"])),
                        "train_seconds": float(np.sum(curves["train_seconds"]))}, "curves": curves}


# --------------------------------------------------------------------------- analysis


def errors(runs: list[dict]) -> dict[str, dict[int, float]]:
    """Final test error (%) of the accuracy arms, arm -> seed -> value."""
    err = rule.by_seed(runs, "test_error")
    return {arm: err[arm] for arm in ARMS}


def claims_setting(config: dict) -> tuple[int, int]:
    """(threads, batch size) at which the timing claims are decided: the most threads timed, the training batch."""
    return max(config["timing"]["threads"]), config["batch_size"]


def timing_rows(runs: list[dict], config: dict) -> list[dict]:
    """The timing run's rows at the claims' setting (:func:`claims_setting`), one per width."""
    threads, batch = claims_setting(config)
    rows = next(r for r in runs if r["arm"] == "timing")["curves"]["timing"]
    return [row for row in rows if row["threads"] == threads and row["batch_size"] == batch]


def speedups(runs: list[dict], config: dict) -> dict[int, dict[int, float]]:
    """Width -> timed step -> per-sample / batchwise seconds of that step (the two are timed back to back), at the
    claims' setting."""
    return {row["n"]: dict(enumerate(np.divide(row["step_seconds"]["per-sample"], row["step_seconds"]["batchwise"])))
            for row in timing_rows(runs, config)}


def _replication(replicates: int, config: dict) -> str:
    threads, batch = claims_setting(config)
    return (f"{replicates} timed steps per width in one timing run, at batch {batch} and {threads} thread(s); across "
            "widths, steps pair by index only; steps are not independent seeds, so intervals speak for this machine "
            "and process")


def claims(config: dict, runs: list[dict]) -> list[dict]:
    err, speed = errors(runs), speedups(runs, config)
    widths = sorted(speed)
    at = FLOP_WIDTH if FLOP_WIDTH in speed else widths[-1]
    flops = flop_ratio([784, at, at, 10], config["timing"]["p_input"], config["p_hidden"])
    replicates, unit = min(len(s) for s in speed.values()), "timed step"
    threads, batch = claims_setting(config)
    accuracy, *timed = [
        rule.equivalence("accuracy_within_margin", f"Batchwise dropout's test error is within {ACCURACY_MARGIN} points "
                         "of per-sample dropout's.", err["batchwise"], err["per-sample"], margin=ACCURACY_MARGIN,
                         names=("batchwise", "per-sample"), unit=" points"),
        rule.all_of("speedup_grows_with_width", "The measured speed-up of batchwise over per-sample dropout "
                    f"grows with the hidden width n (batch {batch}, {threads} thread(s)).", [
            rule.direction(f"speedup_{a}_{b}", f"speed-up at n = {b} > at n = {a}", speed[b], speed[a], claimed="greater",
                           names=(f"n = {b}", f"n = {a}"), replicates=unit)
            for a, b in zip(widths, widths[1:])]),
        rule.band("speedup_reaches_flop_prediction", f"At n = {at} (batch {batch}, {threads} thread(s)), the measured "
                  f"speed-up is 0.8x to 1.25x of the FLOP-count prediction ({rule.fmt(flops)}x).", speed[at], flops,
                  name="measured / predicted speed-up", replicates=unit),
    ]
    for claim in timed:
        claim["evidence"]["replication"] = _replication(replicates, config)
    return [accuracy, *timed]


def facts(result: dict) -> dict[str, str]:
    """The numbers the chapter's prose quotes, formatted from the result."""
    err, timing = errors(result["runs"]), headline_timing(result)
    gap = {s: err["batchwise"][s] - err["per-sample"][s] for s in err["per-sample"]}
    at = FLOP_WIDTH if FLOP_WIDTH in timing.index else int(timing.index[-1])
    threads, batch = claims_setting(result["config"])
    minutes = {arm: [r["metrics"]["train_seconds"] / 60 for r in result["runs"] if r["arm"] == arm] for arm in ARMS}
    out = {f"error_{arm.replace('-', '_')}": rule.mean_sd(v.values(), 2, " %") for arm, v in err.items()}
    out.update({f"minutes_{arm.replace('-', '_')}": rule.mean_sd(v, 1, " min") for arm, v in minutes.items()})
    out.update(gap_per_seed=rule.per_seed(gap), margin=rule.fmt(ACCURACY_MARGIN, 1), flop_width=str(at),
               speedup_at=rule.fmt(timing.loc[at, "measured speed-up"]), flop_at=rule.fmt(timing.loc[at, "FLOP ratio"]),
               share_at=rule.fmt(timing.loc[at, "share of FLOP prediction"]), timing_replicates=next(
                   c for c in result["claims"] if c["id"] == "speedup_reaches_flop_prediction")["evidence"]["replication"],
               speedups=", ".join(f"{rule.fmt(s)} (n = {n})" for n, s in timing["measured speed-up"].items()),
               claims_threads=str(threads), claims_batch=str(batch), epochs=str(result["config"]["epochs"]))
    whole, largest = timing_table(result), max(result["config"]["timing"]["batch_sizes"])
    out.update(large_batch=str(largest), **paper_cost(result))
    for t in result["config"]["timing"]["threads"]:  # at n = `at`: the training batch and the largest timed
        for name, b in (("train", batch), ("large", largest)):
            out[f"speedup_{name}_batch_t{t}"] = rule.fmt(whole.loc[(t, b, at), "measured speed-up"])
            out[f"share_{name}_batch_t{t}"] = rule.fmt(whole.loc[(t, b, at), "share of FLOP prediction"])
    return out


def paper_cost(result: dict) -> dict[str, str]:
    """What the ``paper`` profile's accuracy arms would cost on this run's machine: their epochs at this run's mean
    seconds per epoch of each arm (the nets and data are the same; the timing unit is not included)."""
    seeds, epochs = PROFILES["paper"]["seeds"], PROFILES["paper"]["epochs"]
    seconds = sum(seeds * epochs * np.mean([r["metrics"]["seconds_per_epoch"] for r in result["runs"] if r["arm"] == arm])
                  for arm in ARMS)
    return {"paper_cpu_hours": rule.fmt(seconds / 3600, 0), "paper_epochs": str(epochs), "paper_seeds": str(seeds)}


# --------------------------------------------------------------------------- presentation


def timing_table(result: dict) -> pd.DataFrame:
    """Per timed thread count, batch size and width: median ms per step of each method, the measured speed-up
    and the FLOP prediction."""
    rows = next(r for r in result["runs"] if r["arm"] == "timing")["curves"]["timing"]
    table = pd.DataFrame([{"threads": r["threads"], "batch": r["batch_size"], "n": r["n"],
                           **{f"ms/step {m}": 1000 * r["seconds_per_step"][m] for m in TIMING_METHODS},
                           "measured speed-up": r["speedup_vs_per_sample"], "FLOP ratio": r["flop_ratio"]}
                          for r in rows]).set_index(["threads", "batch", "n"])
    table["share of FLOP prediction"] = table["measured speed-up"] / table["FLOP ratio"]
    return table


def headline_timing(result: dict) -> pd.DataFrame:
    """:func:`timing_table` at the claims' setting, one row per width."""
    return timing_table(result).loc[claims_setting(result["config"])]


def table(result: dict) -> pd.DataFrame:
    """Paper vs ours: test error (%) of each arm, mean ± sd over seeds."""
    minutes = {arm: [r["metrics"]["train_seconds"] / 60 for r in result["runs"] if r["arm"] == arm] for arm in ARMS}
    return pd.DataFrame([{"arm": arm, "paper: test error %": "about 1.1 (dropout, 2x800 units: ten times its 80-unit net; introduction)",
                          "ours: test error %": rule.mean_sd(per_seed.values()),
                          "ours: training minutes": rule.mean_sd(minutes[arm], 1)}
                         for arm, per_seed in errors(result["runs"]).items()]).set_index("arm")


def figure(result: dict):
    """Left (the paper's point): test error against training time of both arms. Right: the measured speed-up of a
    step against the FLOP prediction, by width."""
    import matplotlib.pyplot as plt

    from .. import plotting

    colors = plotting.palette(len(ARMS))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    for arm, color in zip(ARMS, colors):
        runs = [r for r in result["runs"] if r["arm"] == arm]
        error = np.array([r["curves"]["monitor_error"] for r in runs])
        minutes = np.cumsum([r["curves"]["train_seconds"] for r in runs], axis=1).mean(0) / 60  # mean over seeds
        mean = error.mean(0)
        sd = error.std(0, ddof=1) if len(runs) > 1 else np.zeros_like(mean)
        ax1.plot(minutes, mean, color=color, label=f"{arm} ({len(runs)} seed{'s' if len(runs) > 1 else ''})")
        ax1.fill_between(minutes, mean - sd, mean + sd, color=color, alpha=0.2, linewidth=0)
    finals = [v for e in errors(result["runs"]).values() for v in e.values()]
    ax1.set(ylim=(0, 3 * max(finals)), xlabel="training time (minutes, evaluation excluded)", ylabel="test error (%)")
    ax1.set_title(f"MNIST 784-{'-'.join(map(str, result['config']['hidden']))}-10: test error against training time, "
                  "mean ± sd over seeds", fontsize=10)
    ax1.legend(fontsize=8)
    ax2.axhline(1.0, color="grey", linewidth=0.8)
    whole = timing_table(result)
    settings = list(dict.fromkeys((t, b) for t, b, _ in whole.index))
    shades = plotting.palette(len(settings) + 1)
    flops = whole.groupby(level="n")["FLOP ratio"].first()
    ax2.plot(flops.index, flops, "o--", color=shades[-1], label="FLOP-count prediction")
    claimed = claims_setting(result["config"])
    for (t, b), shade in zip(settings, shades):
        rows = whole.loc[(t, b)]
        ax2.plot(rows.index, rows["measured speed-up"], "o-", color=shade, linewidth=2.2 if (t, b) == claimed else 1.2,
                 label=f"measured: batch {b}, {t} thread{'s' if t > 1 else ''}" + (" (claims)" if (t, b) == claimed else ""))
    ax2.set(xscale="log", xlabel="hidden units per layer n (784-n-n-10)", ylabel="step time: per-sample / batchwise")
    ax2.set_xticks(flops.index, [str(n) for n in flops.index])
    ax2.set_xticks([], minor=True)  # the log axis would otherwise label stray minor ticks
    ax2.set_title("speed-up of a training step at p_hidden = 0.5 (median step)", fontsize=10)
    ax2.legend(fontsize=7)
    fig.tight_layout()
    return fig


FIGURES = {"figure": figure}
TABLES = {"paper_vs_ours": table, "timing": timing_table}

"""Ba & Frey (2013): standout (adaptive dropout) against standard dropout on MNIST.

"Adaptive dropout for training deep neural networks", NIPS 26. Arms: ``dropout`` (p = 0.5 on both hidden
layers) and ``standout`` over a small (alpha, beta) grid, on 784-1000-1000-10 ReLU nets trained from scratch.

Two rounds (:func:`units`). **Selection**: on the first seed, every arm at every learning rate of
``lrs`` trains on the first 50,000 training images for the first ``select_epochs`` epochs of the full
run's schedule and is scored on the held-out last ``val_size``; dropout takes its best rate, standout its
best (setting, rate) pair. **Test**: dropout and that standout setting, each at its chosen rate, train on
all training images for ``epochs`` on every seed and are scored on the test set.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, model_validator
from scipy import stats

from .. import claims as rule
from .. import data
from .._validate import DropProbability, PositiveFloat, PositiveInt, Probability, Spec, SubSpec, Widths
from ..models import MLP, StandoutMLP
from ..train import classification_monitor, exponential_decay, fit, minibatches, sgd_schedule

PAPER = "ba2013"
TITLE = "Ba & Frey 2013: standout"
CITE = "ba2013"  # its key in book/references.bib
HEADLINE = "Standout, a dropout rate adapted to each unit and example, gives lower MNIST error than standard dropout."  # the claim tested, in a line
DATASETS = ("mnist",)  # the data mirror's folders its units read
KEEP_BINS = np.linspace(-4.0, 8.0, 25)  # pre-activation bins for the keep-probability plot
RISING = 0.5  # the check: Spearman correlation of keep probability and pre-activation above this in every net
SELECT = "select "  # prefix of a selection unit's arm
DIVERGED = 100.0  # the validation error (%) a selection run whose training loss left the finite numbers scores


class Standout(SubSpec):
    alpha: PositiveFloat = Field(description="keep probability σ(alpha·s + beta) of a unit with pre-activation s; > 0 so it rises with s")
    beta: float = Field(allow_inf_nan=False, description="offset of the keep probability (negative: keep fewer units)")


class Config(Spec):
    dataset: Literal["mnist"] = Field("mnist", description="the data set")
    hidden: Widths = Field([1000, 1000], description="units per hidden layer (the paper's architecture could not be confirmed)")
    activation: Literal["relu", "tanh", "sigmoid"] = Field("relu", description="hidden activation")
    p_hidden: DropProbability = Field(0.5, description="the dropout arm's drop probability of every hidden unit")
    standout: list[Standout] = Field([{"alpha": 1.0, "beta": 0.0}, {"alpha": 1.0, "beta": -1.0}, {"alpha": 0.5, "beta": 0.0}],
                                     min_length=1, description="the standout settings the selection chooses from, fixed before the run")
    lrs: list[PositiveFloat] = Field([0.2, 0.07, 0.025], min_length=1,
                                     description="initial learning rates the selection tries for every arm")
    val_size: PositiveInt = Field(10_000, description="the last training images, held out to choose rates and setting")
    select_epochs: PositiveInt = Field(8, description="epochs of a selection run: the first of the full run's schedule")
    batch_size: PositiveInt = Field(100, description="examples per minibatch")
    momentum: Probability = Field(0.9, description="momentum")
    lr_final_factor: PositiveFloat = Field(0.01, description="the rate decays exponentially to this share of its start over epochs")
    train_size: PositiveInt | None = Field(None, description="training images, validation included; None: all 60,000")
    test_size: PositiveInt | None = Field(None, description="test images; None: all 10,000")
    epochs: PositiveInt = Field(60, description="passes over the training set in the test round")

    @model_validator(mode="after")
    def _protocol(self):
        if len(set(self.lrs)) != len(self.lrs):
            raise ValueError(f"lrs must be distinct, got {self.lrs!r}")
        if self.select_epochs > self.epochs:
            raise ValueError(f"select_epochs ({self.select_epochs}) must be at most epochs ({self.epochs}): "
                             "a selection run is the start of the full run")
        if self.val_size >= (self.train_size or 60_000):
            raise ValueError(f"val_size ({self.val_size}) must leave training images: below train_size "
                             f"({self.train_size or 60_000})")
        return self


PROFILES = {
    "smoke": {"hidden": [64, 64], "standout": [{"alpha": 1.0, "beta": 0.0}], "lrs": [0.1, 0.03], "epochs": 2,
              "select_epochs": 1, "train_size": 3000, "val_size": 1000, "test_size": 1000, "seeds": 1},
    # cpu: 12 selection runs x 8 epochs on 50,000 images, then 2 arms x 3 seeds x 60 epochs on 60,000: 27 minutes
    # on an AVX-512 CPU. On 2 cores of a CPU with AVX2 only the MLP benchmark trains at most 2.9x slower than on
    # the fastest AVX-512 session measured (5.8k examples/s against 16.7k): at most about 78 minutes there.
    "cpu": {"seeds": 3},
    "paper": {"epochs": 200, "select_epochs": 20, "seeds": 5},
}

PAPER_VALUES = [{
    "id": "standout_mnist", "arm": "standout", "value": 0.80, "unit": "% test error",
    "what": "MNIST, standout (architecture, alpha, beta and use of pre-training not confirmed)",
    "where": "Ba & Frey 2013, abstract", "confirmed": True,
}]


def arm_name(alpha: float, beta: float) -> str:
    return f"standout a={alpha:g} b={beta:g}"


def with_lr(arm: str, lr: float) -> str:
    return f"{arm} lr={lr:g}"


def parse(unit_arm: str) -> tuple[bool, str, float]:
    """``"select standout a=1 b=0 lr=0.07"`` -> (True, "standout a=1 b=0", 0.07): selection?, method arm, rate."""
    selection = unit_arm.startswith(SELECT)
    arm, lr = unit_arm.removeprefix(SELECT).rsplit(" lr=", 1)
    return selection, arm, float(lr)


def method_arms(config: dict) -> list[str]:
    return ["dropout", *(arm_name(**s) for s in config["standout"])]


def selection_units(config: dict, seed: int) -> list[tuple[str, int]]:
    return [(SELECT + with_lr(arm, lr), seed) for arm in method_arms(config) for lr in config["lrs"]]


def selection_errors(runs: list[dict]) -> dict[str, dict[float, float]]:
    """Validation error (%) of the selection runs: method arm -> rate -> error."""
    out: dict[str, dict[float, float]] = {}
    for r in runs:
        selection, arm, lr = parse(r["arm"])
        if selection:
            out.setdefault(arm, {})[lr] = r["metrics"]["val_error"]
    return out


def chosen(config: dict, runs: list[dict]) -> dict[str, float]:
    """From the selection runs, ``{"dropout": its rate, <best standout setting>: its rate}``.

    Lowest validation error; ties go to the earlier setting of the grid and the larger rate.
    """
    val, order = selection_errors(runs), method_arms(config)

    def best(arms: list[str]) -> tuple[str, float]:
        return min(((a, lr) for a in arms for lr in val[a]), key=lambda p: (val[p[0]][p[1]], order.index(p[0]), -p[1]))

    return dict([best(["dropout"]), best([a for a in order[1:] if a in val])])


def units(config: dict, seeds: list[int], done: dict) -> list[tuple[str, int]]:
    """The selection on the first seed; once it is finished, the two chosen arms on every seed."""
    selection = selection_units(config, seeds[0])
    if not all(unit in done for unit in selection):
        return selection
    picks = chosen(config, [done[unit] for unit in selection])
    return selection + [(with_lr(arm, lr), seed) for seed in seeds for arm, lr in picks.items()]


def _split(config: dict, selection: bool):
    """(training, monitored) tensors: the first images and the held-out last ``val_size``, or all and the test set."""
    train, test = data.mnist_tensors(config["train_size"], config["test_size"], config["device"])
    if not selection:
        return train, test
    cut = len(train[1]) - config["val_size"]
    return tuple(t[:cut] for t in train), tuple(t[cut:] for t in train)


def run_one(config: dict, arm: str, seed: int, progress: bool = True) -> dict:
    selection, method, lr = parse(arm)
    train, monitored = _split(config, selection)
    sizes = [784, *config["hidden"], 10]
    grid = {arm_name(**s): s for s in config["standout"]}
    model = (MLP(sizes, config["activation"], 0.0, config["p_hidden"]) if method == "dropout"
             else StandoutMLP(sizes, **grid[method], activation=config["activation"])).to(config["device"])
    epochs = config["select_epochs"] if selection else config["epochs"]
    curves = fit(  # a selection run is the first select_epochs of the full run's schedule
        model, minibatches(train, config["batch_size"], seed), epochs=epochs,
        optimizer=torch.optim.SGD(model.parameters(), lr=lr, momentum=config["momentum"]),
        schedule=sgd_schedule(exponential_decay(lr, config["lr_final_factor"] ** (1 / config["epochs"])),
                              config["momentum"]),
        monitor=classification_monitor(monitored), progress=progress, desc=f"{arm} seed {seed}",
    )
    diverged = not all(math.isfinite(v) for v in curves["train_loss"])
    curves = {k: [v if not isinstance(v, float) or math.isfinite(v) else None for v in vs] for k, vs in curves.items()}
    error = DIVERGED if diverged else curves["monitor_error"][-1]
    metrics = {"val_error" if selection else "test_error": error, "diverged": diverged,
               "train_loss": curves["train_loss"][-1], "seconds_per_epoch": float(np.mean(curves["seconds"]))}
    if not selection and isinstance(model, StandoutMLP):
        model.eval()
        pre, keep = model.pre_activations_and_keep(monitored[0][:2000])[0]  # first hidden layer
        pre, keep = pre.flatten().cpu().numpy(), keep.flatten().cpu().numpy()
        bins = np.digitize(pre, KEEP_BINS)
        metrics.update(
            keep_by_preactivation=[round(float(keep[bins == i].mean()), 4) if (bins == i).any() else None
                                   for i in range(1, len(KEEP_BINS))],
            preactivation_histogram=np.histogram(pre, KEEP_BINS)[0].tolist(),
            spearman_keep_vs_preactivation=round(float(stats.spearmanr(pre, keep).statistic), 4),
            mean_keep_active_units=round(float(keep[pre > 0].mean()), 4), share_active_units=round(float((pre > 0).mean()), 4))
    return {"metrics": metrics, "curves": curves}


# --------------------------------------------------------------------------- analysis


def test_round(runs: list[dict]) -> list[dict]:
    """The runs of the test round: the two chosen arms on every seed."""
    return [r for r in runs if not parse(r["arm"])[0]]


def errors(runs: list[dict]) -> tuple[dict[str, dict[int, float]], str]:
    """Test error (%) of the test round, method arm -> seed -> value; and its standout arm."""
    err = rule.by_seed(test_round(runs), "test_error", lambda arm: parse(arm)[1])
    return err, next(a for a in err if a != "dropout")


def rates(runs: list[dict]) -> dict[str, float]:
    """The learning rate each arm of the test round trained at (the selection's choice)."""
    return {arm: lr for _, arm, lr in (parse(r["arm"]) for r in test_round(runs))}


def claims(config: dict, runs: list[dict]) -> list[dict]:
    err, best = errors(runs)
    lr = rates(runs)
    rho = {f"{best} seed {r['seed']}": r["metrics"]["spearman_keep_vs_preactivation"]
           for r in test_round(runs) if parse(r["arm"])[1] != "dropout"}
    return [
        rule.check("keep_rises_with_input", "In every trained standout net, a unit's keep probability rises with its "
                   f"pre-activation (Spearman correlation > {RISING} on test images, first hidden layer).",
                   all(v > RISING for v in rho.values()), {"Spearman correlation": ", ".join(f"{k}: {rule.fmt(v)}" for k, v in rho.items())},
                   why="π = σ(α s + β) increases with s for every α > 0, so the rank correlation is 1 whatever the training"),
        rule.direction("standout_beats_dropout", f"Standout ({best}, the setting chosen on validation, learning rate "
                       f"{lr[best]:g}) has a lower test error than dropout (p = {config['p_hidden']:g}, learning rate "
                       f"{lr['dropout']:g}), each at the rate chosen on validation.", err[best], err["dropout"],
                       names=(best, "dropout"), unit=" points"),
    ]


def facts(result: dict) -> dict[str, str]:
    """The numbers the chapter's prose quotes, formatted from the result."""
    runs, config = result["runs"], result["config"]
    err, best = errors(runs)
    lr, val = rates(runs), selection_errors(runs)
    final = {arm: [r for r in test_round(runs) if parse(r["arm"])[1] == arm] for arm in ("dropout", best)}
    keep = [r["metrics"]["mean_keep_active_units"] for r in final[best]]
    diverged = [r["arm"].removeprefix(SELECT) for r in runs if r["metrics"].get("diverged")]
    edges = [(arm, "smallest" if rate == min(config["lrs"]) else "largest") for arm, rate in lr.items()
             if len(config["lrs"]) > 1 and rate in (min(config["lrs"]), max(config["lrs"]))]
    return {
        "grid_edges": " ".join(f"{arm[0].upper()}{arm[1:]}'s chosen rate is the {side} of the grid, so a "
                               f"{side.replace('est', 'er')} one, not tried, might have done better still."
                               for arm, side in edges) or "No chosen rate lies at an edge of the grid.",
        "best_standout": best, "lrs": ", ".join(f"{v:g}" for v in config["lrs"]),
        "epochs": str(config["epochs"]), "select_epochs": str(config["select_epochs"]),
        "lr_dropout": f"{lr['dropout']:g}", "lr_standout": f"{lr[best]:g}",
        "val_dropout": rule.fmt(val["dropout"][lr["dropout"]], 2) + " %", "val_standout": rule.fmt(val[best][lr[best]], 2) + " %",
        "diverged": ", ".join(diverged) if diverged else "none",
        "error_dropout": rule.mean_sd(err["dropout"].values(), 2, " %"),
        "error_best_standout": rule.mean_sd(err[best].values(), 2, " %"),
        "train_loss_dropout": rule.mean_sd([r["metrics"]["train_loss"] for r in final["dropout"]], 3),
        "train_loss_standout": rule.mean_sd([r["metrics"]["train_loss"] for r in final[best]], 3),
        "keep_active": rule.mean_sd(keep, 3), "keep_dropout": rule.fmt(1 - config["p_hidden"], 1),
        **paper_cost(result),
    }


def paper_cost(result: dict) -> dict[str, str]:
    """What the ``paper`` profile would cost on this run's machine: its selection and final epochs at this run's mean
    seconds per epoch of each (the nets and data are the same)."""
    from . import get, resolve  # the runner's resolution of a profile, the one every run uses

    (paper, seeds), runs = resolve(get(PAPER), "paper"), result["runs"]
    select = np.mean([r["metrics"]["seconds_per_epoch"] for r in runs if r["arm"].startswith(SELECT)])
    final = np.mean([r["metrics"]["seconds_per_epoch"] for r in test_round(runs)])
    seconds = (len(selection_units(paper, 0)) * paper["select_epochs"] * select
               + 2 * len(seeds) * paper["epochs"] * final)  # dropout and the chosen standout
    return {"paper_cpu_hours": rule.fmt(seconds / 3600, 0)}


# --------------------------------------------------------------------------- presentation


def selection_table(result: dict) -> pd.DataFrame:
    """Validation error (%) of every arm at every rate, the first seed; the chosen pairs marked."""
    val, lr = selection_errors(result["runs"]), rates(result["runs"])
    rows = []
    for arm, by_lr in val.items():
        row = {"arm": arm}
        for rate, error in sorted(by_lr.items(), reverse=True):
            mark = " (chosen)" if lr.get(arm) == rate else ""
            row[f"learning rate {rate:g}"] = ("diverged" if error >= DIVERGED else f"{error:.2f}") + mark
        rows.append(row)
    return pd.DataFrame(rows).set_index("arm")


def table(result: dict) -> pd.DataFrame:
    """The test round: test error per arm, mean ± sd over seeds, with the chosen rate."""
    runs = result["runs"]
    err, _ = errors(runs)
    lr, p = rates(runs), result["config"]["p_hidden"]
    keep = [r["metrics"]["mean_keep_active_units"] for r in test_round(runs) if "mean_keep_active_units" in r["metrics"]]
    return pd.DataFrame([{
        "arm": arm,
        "learning rate (chosen)": f"{lr[arm]:g}",
        "paper: test error %": "" if arm == "dropout" else "0.80 (abstract; setting unconfirmed)",
        "ours: test error %": rule.mean_sd(per_seed.values()),
        "mean keep prob. of active units": f"{rule.fmt(1 - p, 1)} (fixed)" if arm == "dropout" else rule.fmt(np.mean(keep), 3),
    } for arm, per_seed in err.items()]).set_index("arm")


def figure(result: dict):
    """Left: the selection (validation error against rate). Middle: test error per arm. Right: keep vs pre-activation."""
    import matplotlib.pyplot as plt

    from .. import plotting

    runs, p = result["runs"], result["config"]["p_hidden"]
    err, best = errors(runs)
    val, lr = selection_errors(runs), rates(runs)
    arms = list(val)
    colors = dict(zip(arms, plotting.palette(len(arms))))
    fig, (ax0, ax1, ax2) = plt.subplots(1, 3, figsize=(15, 4.4))
    for arm, by_lr in val.items():
        xs = sorted(by_lr)
        ys = [min(by_lr[x], 10.0) for x in xs]  # a diverged run (100 %) is drawn at the top of the axis
        ax0.plot(xs, ys, "o-", color=colors[arm], label=arm, markersize=4)
        if arm in lr:
            ax0.scatter([lr[arm]], [by_lr[lr[arm]]], s=120, facecolors="none", edgecolors="black", zorder=3)
    ax0.set(xscale="log", xlabel="initial learning rate", ylabel="validation error (%)")
    ax0.set_xticks(sorted(result["config"]["lrs"]), [f"{v:g}" for v in sorted(result["config"]["lrs"])])
    ax0.set_xticks([], minor=True)
    ax0.set_title(f"selection: {result['config']['select_epochs']} epochs, seed {result['seeds'][0]}, circled: chosen",
                  fontsize=10)
    ax0.legend(fontsize=7)
    for i, (arm, per_seed) in enumerate(err.items()):
        seeds = list(per_seed.values())
        ax1.bar(i, np.mean(seeds), yerr=np.std(seeds, ddof=1) if len(seeds) > 1 else 0.0, color=colors[arm], alpha=0.8,
                capsize=4)
        ax1.scatter([i] * len(seeds), seeds, color="black", s=10, zorder=3)
    paper = next(v["value"] for v in PAPER_VALUES if v["id"] == "standout_mnist")
    ax1.axhline(paper, color="black", linestyle=":", linewidth=1, label=f"paper, standout: {paper:.2f} % (abstract)")
    ax1.set_xticks(range(len(err)), [f"{a}\nlr {lr[a]:g}".replace("standout ", "standout\n") for a in err], fontsize=8)
    ax1.set(ylabel="test error (%)", ylim=(0, max(np.mean(list(v.values())) for v in err.values()) * 1.3))
    ax1.legend(fontsize=7, loc="lower right")
    ax1.set_title(f"test: 784-{'-'.join(map(str, result['config']['hidden']))}-10, {result['config']['epochs']} epochs, "
                  "mean ± sd", fontsize=10)
    centres = (KEEP_BINS[:-1] + KEEP_BINS[1:]) / 2
    ax2.axhline(1 - p, color=colors["dropout"], linestyle="--", label=f"dropout (p = {p:g})")
    curve = np.array([r["metrics"]["keep_by_preactivation"] for r in test_round(runs) if parse(r["arm"])[1] == best],
                     dtype=float)
    seen = ~np.isnan(curve).all(0)  # bins no unit of any seed fell into stay empty
    ax2.plot(centres[seen], np.nanmean(curve[:, seen], 0), "o-", color=colors[best], markersize=3, label=best)
    hist = np.sum([r["metrics"]["preactivation_histogram"] for r in test_round(runs) if parse(r["arm"])[1] == best], 0)
    twin = ax2.twinx()
    twin.bar(centres, hist / hist.sum(), width=np.diff(KEEP_BINS), color="grey", alpha=0.15)
    twin.set(ylabel="share of units (grey)")
    twin.grid(False)
    ax2.set(xlabel="pre-activation of a first-layer unit (test images)", ylabel="keep probability", ylim=(0, 1.02))
    ax2.set_title("standout keeps units with a larger input more often", fontsize=10)
    ax2.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


FIGURES = {"figure": figure}
TABLES = {"paper_vs_ours": table, "selection": selection_table}

"""Ba & Frey (2013): standout (adaptive dropout) against standard dropout on MNIST.

"Adaptive dropout for training deep neural networks", NIPS 26. Arms: ``dropout`` (p = 0.5 on both hidden
layers) and ``standout`` over a small (alpha, beta) grid, on 784-1000-1000-10 ReLU nets trained from scratch.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from scipy import stats

from .. import claims as rule
from .. import data
from .._validate import DropProbability, PositiveFloat, PositiveInt, Probability, Spec, SubSpec, Widths
from ..models import MLP, StandoutMLP
from ..train import classification_monitor, exponential_decay, fit, minibatches, sgd_schedule

PAPER = "ba2013"
TITLE = "Ba & Frey 2013: standout"
KEEP_BINS = np.linspace(-4.0, 8.0, 25)  # pre-activation bins for the keep-probability plot
RISING = 0.5  # the check: Spearman correlation of keep probability and pre-activation above this in every net


class Standout(SubSpec):
    alpha: PositiveFloat = Field(description="keep probability σ(alpha·s + beta) of a unit with pre-activation s; > 0 so it rises with s")
    beta: float = Field(allow_inf_nan=False, description="offset of the keep probability (negative: keep fewer units)")


class Config(Spec):
    dataset: Literal["mnist"] = Field("mnist", description="the data set")
    hidden: Widths = Field([1000, 1000], description="units per hidden layer (the paper's architecture could not be confirmed)")
    activation: Literal["relu", "tanh", "sigmoid"] = Field("relu", description="hidden activation")
    p_hidden: DropProbability = Field(0.5, description="the dropout arm's drop probability of every hidden unit")
    standout: list[Standout] = Field([{"alpha": 1.0, "beta": 0.0}, {"alpha": 1.0, "beta": -1.0}, {"alpha": 0.5, "beta": 0.0}],
                                     min_length=1, description="the standout arms: a grid of (alpha, beta), fixed before the run")
    batch_size: PositiveInt = Field(100, description="examples per minibatch")
    lr: PositiveFloat = Field(0.05, description="initial learning rate, every arm")
    momentum: Probability = Field(0.9, description="momentum")
    lr_final_factor: PositiveFloat = Field(0.01, description="the rate decays exponentially to this share of lr over the run")
    train_size: PositiveInt | None = Field(None, description="training images; None: all 60,000")
    test_size: PositiveInt | None = Field(None, description="test images; None: all 10,000")
    epochs: PositiveInt = Field(12, description="passes over the training set")


PROFILES = {
    "smoke": {"hidden": [64, 64], "standout": [{"alpha": 1.0, "beta": 0.0}], "epochs": 2, "train_size": 5000,
              "test_size": 1000, "seeds": 1},
    "cpu": {"seeds": 3},
    "paper": {"epochs": 200, "seeds": 5},
}

PAPER_VALUES = [{
    "id": "standout_mnist", "arm": "standout", "value": 0.80, "unit": "% test error",
    "what": "MNIST, standout (architecture, alpha, beta and use of pre-training not confirmed)",
    "where": "Ba & Frey 2013, abstract", "confirmed": True,
}]


def arm_name(alpha: float, beta: float) -> str:
    return f"standout a={alpha:g} b={beta:g}"


def units(config: dict, seeds: list[int], done: dict) -> list[tuple[str, int]]:
    return [(arm, seed) for seed in seeds for arm in ["dropout", *(arm_name(**s) for s in config["standout"])]]


def run_one(config: dict, arm: str, seed: int, progress: bool = True) -> dict:
    train, test = data.mnist_tensors(config["train_size"], config["test_size"], config["device"])
    sizes = [784, *config["hidden"], 10]
    grid = {arm_name(**s): s for s in config["standout"]}
    model = (MLP(sizes, config["activation"], 0.0, config["p_hidden"]) if arm == "dropout"
             else StandoutMLP(sizes, **grid[arm], activation=config["activation"])).to(config["device"])
    curves = fit(
        model, minibatches(train, config["batch_size"], seed), epochs=config["epochs"],
        optimizer=torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=config["momentum"]),
        schedule=sgd_schedule(exponential_decay(config["lr"], config["lr_final_factor"] ** (1 / config["epochs"])),
                              config["momentum"]),
        monitor=classification_monitor(test), progress=progress, desc=f"{arm} seed {seed}",
    )
    metrics = {"test_error": curves["monitor_error"][-1], "test_errors": curves["monitor_errors"][-1],
               "seconds_per_epoch": float(np.mean(curves["seconds"]))}
    if isinstance(model, StandoutMLP):
        model.eval()
        pre, keep = model.pre_activations_and_keep(test[0][:2000])[0]  # first hidden layer
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


def errors(runs: list[dict]) -> tuple[dict[str, dict[int, float]], str]:
    """Final test error (%), arm -> seed -> value; and the standout arm with the lowest mean over seeds."""
    err = rule.by_seed(runs, "test_error")
    return err, min((a for a in err if a != "dropout"), key=lambda a: np.mean(list(err[a].values())))


def claims(config: dict, runs: list[dict]) -> list[dict]:
    err, best = errors(runs)
    rho = {f"{r['arm']} seed {r['seed']}": r["metrics"]["spearman_keep_vs_preactivation"] for r in runs if r["arm"] != "dropout"}
    return [
        rule.check("keep_rises_with_input", "In every trained standout net, a unit's keep probability rises with its "
                   f"pre-activation (Spearman correlation > {RISING} on test images, first hidden layer).",
                   all(v > RISING for v in rho.values()), {"Spearman correlation": ", ".join(f"{k}: {rule.fmt(v)}" for k, v in rho.items())},
                   why="π = σ(α s + β) increases with s for every α > 0, so the rank correlation is 1 whatever the training"),
        rule.direction("standout_beats_dropout", f"The best standout setting ({best}, the lowest mean over seeds of the "
                       f"grid) has a lower test error than dropout (p = {config['p_hidden']:g}).", err[best], err["dropout"],
                       names=(best, "dropout"), unit=" points"),
    ]


def facts(result: dict) -> dict[str, str]:
    """The numbers the chapter's prose quotes, formatted from the result."""
    err, best = errors(result["runs"])
    keep = [r["metrics"]["mean_keep_active_units"] for r in result["runs"] if r["arm"] != "dropout"]
    return {"error_dropout": rule.mean_sd(err["dropout"].values(), 2, " %"), "best_standout": best,
            "error_best_standout": rule.mean_sd(err[best].values(), 2, " %"),
            "keep_active_range": f"{rule.fmt(min(keep))} to {rule.fmt(max(keep))}", "epochs": str(result["config"]["epochs"])}


# --------------------------------------------------------------------------- presentation


def table(result: dict) -> pd.DataFrame:
    runs, p = result["runs"], result["config"]["p_hidden"]
    keep = lambda a: np.mean([r["metrics"]["mean_keep_active_units"] for r in runs if r["arm"] == a])  # noqa: E731
    return pd.DataFrame([{
        "arm": arm,
        "paper: test error %": "" if arm == "dropout" else "0.80 (abstract; setting unconfirmed)",
        "ours: test error %": rule.mean_sd(per_seed.values()),
        "mean keep prob. of active units": f"{rule.fmt(1 - p, 1)} (fixed)" if arm == "dropout" else rule.fmt(keep(arm), 3),
    } for arm, per_seed in errors(runs)[0].items()]).set_index("arm")


def figure(result: dict):
    """Left: final test error per arm (mean ± sd, seeds as dots). Right: keep probability vs pre-activation."""
    import matplotlib.pyplot as plt

    from .. import plotting

    err = errors(result["runs"])[0]
    mean = {a: np.mean(list(v.values())) for a, v in err.items()}
    colors = plotting.palette(len(err))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, (arm, per_seed) in enumerate(err.items()):
        seeds = list(per_seed.values())
        ax1.bar(i, mean[arm], yerr=np.std(seeds, ddof=1) if len(seeds) > 1 else 0.0, color=colors[i], alpha=0.8, capsize=4)
        ax1.scatter([i] * len(seeds), seeds, color="black", s=10, zorder=3)
    ax1.set_xticks(range(len(err)), [a.replace("standout ", "standout\n") for a in err], fontsize=8)
    ax1.set(ylabel="test error (%)", ylim=(min(mean.values()) * 0.8, max(mean.values()) * 1.1))
    ax1.set_title(f"MNIST 784-{'-'.join(map(str, result['config']['hidden']))}-10, bars: mean ± sd over seeds", fontsize=10)
    centres = (KEEP_BINS[:-1] + KEEP_BINS[1:]) / 2
    p = result["config"]["p_hidden"]
    ax2.axhline(1 - p, color=colors[0], linestyle="--", label=f"dropout (p = {p:g})")
    for i, arm in enumerate(list(err)[1:], 1):  # dropout is the first arm
        curve = np.array([r["metrics"]["keep_by_preactivation"] for r in result["runs"] if r["arm"] == arm], dtype=float)
        seen = ~np.isnan(curve).all(0)  # bins no unit of any seed fell into stay empty
        ax2.plot(centres[seen], np.nanmean(curve[:, seen], 0), "o-", color=colors[i], markersize=3, label=arm)
    hist = np.sum([r["metrics"]["preactivation_histogram"] for r in result["runs"] if r["arm"] != "dropout"], 0)
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
TABLES = {"paper_vs_ours": table}

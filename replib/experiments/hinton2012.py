"""Hinton et al. (2012), Figure 1: MNIST test errors of fully connected nets with dropout.

Hinton, Srivastava, Krizhevsky, Sutskever, Salakhutdinov, "Improving neural networks by
preventing co-adaptation of feature detectors", arXiv 1207.0580 (v1).

Arms: ``none`` (no dropout, no max-norm), ``hidden`` (p = 0.5 on every hidden layer,
max-norm) and ``input+hidden`` (p = 0.2 on the pixels as well). Every arm follows the
paper's schedule (App. A.1): the learning rate times 0.998 after each epoch and momentum
rising linearly from 0.5 to 0.99 over the first sixth of ``epochs`` (500 of the paper's
3000), with one learning rate for every arm. A run shorter than the paper's can compress
that schedule in time (``lr_decay="compressed"``: the rate falls over ``epochs`` as far as 0.998
takes it over 3000; the ``cpu`` profile does), so that its nets end annealed as the
paper's do. An arm whose ``share`` is below 1 trains for that share of ``epochs`` and
stops there, on the first epochs of the same schedule.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field

from .. import claims as rule
from .. import data
from .._validate import DropProbability, Fraction, PositiveFloat, PositiveInt, Probability, Share, Spec, SubSpec, Widths
from ..ensemble import (StackedMLP, split_curves, stacked_classification_monitor, stacked_cross_entropy,
                        stacked_max_norm, stacked_minibatches)
from ..models import MLP
from ..train import (at_epoch, classification_monitor, exponential_decay, fit, linear_ramp, max_norm, minibatches,
                     sgd_schedule)

PAPER = "hinton2012"
TITLE = "Hinton et al. 2012: dropout on MNIST"
CITE = "hinton2012"  # its key in book/references.bib
HEADLINE = "Dropout on the hidden units, and on the pixels too, lowers a fully connected MNIST net's test errors from 160 to about 130 and 110."  # the claim tested, in a line
DATASETS = ("mnist",)  # the data mirror's folders its units read
PAPER_EPOCHS, PAPER_LR_DECAY, PAPER_RAMP_EPOCHS = 3000, 0.998, 500  # App. A.1 (p.8)


class Arm(SubSpec):
    p_input: DropProbability = Field(description="drop probability of the pixels")
    p_hidden: DropProbability = Field(description="drop probability of every hidden unit")
    lr: PositiveFloat = Field(description="learning rate (the step is scaled by 1 - momentum, App. A.1)")
    max_sq_length: PositiveFloat | None = Field(description="bound on each hidden unit's squared incoming weight length; None: unconstrained")
    share: Share = Field(1.0, description="share of `epochs` this arm trains for (at least one epoch), on the "
                                             "first epochs of the same schedule")


# One learning rate for every arm. App. A.1's rate of 10 (times 1 - momentum) diverges with
# ReLU units from the first epoch, as does 3 (probe in the chapter's deviations); 1.0 is the
# largest of 10, 3, 1 that trains every arm, the unconstrained no-dropout net included.
ARMS = {
    "none": Arm(p_input=0.0, p_hidden=0.0, lr=1.0, max_sq_length=None),
    "hidden": Arm(p_input=0.0, p_hidden=0.5, lr=1.0, max_sq_length=15.0),
    "input+hidden": Arm(p_input=0.2, p_hidden=0.5, lr=1.0, max_sq_length=15.0),
}


class Config(Spec):
    dataset: Literal["mnist"] = Field("mnist", description="the data set")
    hidden: Widths = Field([800, 800], description="units per hidden layer: the 784-800-800-10 net of Figure 1")
    activation: Literal["relu", "tanh", "sigmoid"] = Field(
        "relu", description="not stated in the 2012 text; Srivastava et al. 2014 report ReLU best")
    init_std: PositiveFloat | None = Field(0.01, description="weights ~ N(0, init_std^2) (App. A.1); None: PyTorch's default")
    batch_size: PositiveInt = Field(100, description="examples per minibatch")
    momentum_start: Probability = Field(0.5, description="momentum at the start of the ramp")
    momentum: Probability = Field(0.99, description="momentum after the ramp")
    lr_decay: PositiveFloat | Literal["compressed"] = Field(
        PAPER_LR_DECAY, description="learning-rate factor after every epoch (App. A.1: 0.998); 'compressed': the "
                                    "paper's schedule compressed to `epochs`, the factor that takes them to where "
                                    "0.998 takes 3000")
    momentum_ramp: Fraction = Field(PAPER_RAMP_EPOCHS / PAPER_EPOCHS,
                                    description="share of `epochs` over which momentum ramps up (App. A.1: 500 of 3000)")
    train_size: PositiveInt | None = Field(None, description="training images; None: all 60,000")
    test_size: PositiveInt | None = Field(None, description="test images; None: all 10,000")
    arms: dict[str, Arm] = Field(ARMS, min_length=1, description="the arms and their settings")
    epochs: PositiveInt = Field(50, description="passes over the training set of an arm with share 1")


PROFILES = {
    "smoke": {"hidden": [128, 128], "init_std": None, "epochs": 3, "train_size": 5000, "test_size": 1000, "seeds": 1,
              "lr_decay": "compressed", "arms": {"none": {"share": 0.5}}},
    # The paper's schedule compressed in time: 50 epochs, the learning rate falling by
    # the paper's 3000-epoch factor over them (and momentum ramping over the first sixth, as the
    # paper's 500 of 3000), so that every net ends annealed as the paper's do. Every arm runs
    # the whole schedule. Sized for 2 cores of a CPU with AVX2 only, where this net trains about
    # 3 times slower than on the AVX-512 CPU of our run (measured on both): 9 nets of 50 epochs
    # take about 70 of its 90 minutes.
    "cpu": {"epochs": 50, "lr_decay": "compressed", "seeds": 3},
    "paper": {"epochs": PAPER_EPOCHS, "seeds": 5},
}

PAPER_VALUES = [
    {
        "id": "best_previous_backprop", "arm": "none", "value": 160, "unit": "test errors of 10,000",
        "what": "best published backprop result without pre-training, weight sharing or augmentation (not a run of the paper)",
        "where": "arXiv 1207.0580v1, p.3 text and Figure 1 (horizontal line)", "confirmed": True,
    },
    {
        "id": "hidden_dropout", "arm": "hidden", "value": 130, "unit": "test errors of 10,000",
        "what": "'about 130': 50% dropout on hidden units and per-unit weight-length constraints",
        "where": "arXiv 1207.0580v1, p.3 text", "confirmed": True,
    },
    {
        "id": "input_hidden_dropout", "arm": "input+hidden", "value": 110, "unit": "test errors of 10,000",
        "what": "'about 110': 20% of the pixels dropped as well",
        "where": "arXiv 1207.0580v1, p.3 text", "confirmed": True,
    },
    {
        "id": "srivastava_standard_2x800", "arm": "none", "value": 1.60, "unit": "% test error",
        "what": "standard 2x800 net (context)", "where": "Srivastava et al. 2014, JMLR 15, Table 2, as quoted in shared/PAPERS.md",
        "confirmed": False,
    },
    {
        "id": "srivastava_relu_maxnorm", "arm": "hidden", "value": 1.06, "unit": "% test error",
        "what": "dropout net 3x1024 ReLU with max-norm (context)",
        "where": "Srivastava et al. 2014, JMLR 15, Table 2, as quoted in shared/PAPERS.md", "confirmed": False,
    },
]

# A curve "has stopped improving" once it never again drops by more than this many test errors.
PLATEAU_ERRORS = 5
# "About 130" and "about 110" are read as reached when ours is at most 10% above them.
PAPER_LEVEL_SLACK = 0.10
JITTER_EPOCHS = 20  # the closing stretch over which the prose measures how much a curve still moves


def units(config: dict, seeds: list[int], done: dict) -> list[tuple[str, int]]:
    return [(arm, seed) for seed in seeds for arm in config["arms"]]


def build_net(config: dict, arm: str) -> MLP:
    """One net of ``arm``, initialised from torch's global generator (the runner seeds it)."""
    spec = config["arms"][arm]
    model = MLP([784, *config["hidden"], 10], config["activation"], spec["p_input"], spec["p_hidden"], config["init_std"])
    return model.to(config["device"])


def run_one(config: dict, arm: str, seed: int, progress: bool = True) -> dict:
    """Train one net of ``arm`` (already seeded with ``seed``); return final metrics and per-epoch curves."""
    train, test = data.mnist_tensors(config["train_size"], config["test_size"], config["device"])
    model, bound = build_net(config, arm), config["arms"][arm]["max_sq_length"]
    curves = _fit(config, arm, model, minibatches(train, config["batch_size"], seed),
                  after_step=max_norm([layer.weight for layer in model.hidden_layers], math.sqrt(bound)) if bound else None,
                  monitor=classification_monitor(test), progress=progress, desc=f"{arm} seed {seed}")
    return _outcome(curves)


def run_stack(config: dict, arm: str, seeds: list[int], nets: list[MLP], progress: bool = True) -> list[dict]:
    """Train ``nets`` (one per seed, built by :func:`build_net`) as one stacked ensemble; each member keeps its own
    initialisation, data order (its seed's), masks and optimiser state (:mod:`replib.ensemble`)."""
    train, test = data.mnist_tensors(config["train_size"], config["test_size"], config["device"])
    stack, bound = StackedMLP.from_members(nets, config["activation"]), config["arms"][arm]["max_sq_length"]
    curves = _fit(config, arm, stack, stacked_minibatches(train, config["batch_size"], seeds), loss=stacked_cross_entropy,
                  after_step=stacked_max_norm(stack.hidden_weights, math.sqrt(bound)) if bound else None,
                  monitor=stacked_classification_monitor(test), progress=progress, desc=f"{arm} seeds {seeds}")
    return [_outcome(member) for member in split_curves(curves, len(seeds))]


def _fit(config: dict, arm: str, model, batches, **hooks) -> dict:
    """:func:`replib.train.fit` with ``arm``'s length, optimiser and schedule; ``hooks``: the rest of fit's options."""
    return fit(model, batches, epochs=arm_epochs(config, arm),
               optimizer=torch.optim.SGD(model.parameters(), lr=config["arms"][arm]["lr"]),
               schedule=schedule(config, arm), **hooks)


def _outcome(curves: dict) -> dict:
    """A net's final metrics, from its curves."""
    metrics = {
        "test_errors": curves["monitor_errors"][-1],
        "test_error": curves["monitor_error"][-1],
        "best_test_errors": min(curves["monitor_errors"]),
        "train_loss": curves["train_loss"][-1],
        "seconds_per_epoch": float(np.mean(curves["seconds"])),
    }
    return {"metrics": metrics, "curves": curves}


def schedule(config: dict, arm: str):
    """SGD's settings at each epoch for ``arm`` (App. A.1): learning rate ``lr * decay**epoch`` (:func:`lr_decay`), the step
    scaled by ``1 - momentum``, momentum ramping over the first ``momentum_ramp`` of ``epochs``. It is the
    schedule of the whole run whatever the arm's share: an arm that stops early follows its first epochs."""
    lr = config["arms"][arm]["lr"]
    settings = sgd_schedule(exponential_decay(lr, lr_decay(config)),
                            linear_ramp(config["momentum_start"], config["momentum"], config["momentum_ramp"]),
                            dampened=True)
    run_epochs = config["epochs"]
    return lambda epoch, _arm_epochs: settings(epoch, run_epochs)


def lr_decay(config: dict) -> float:
    """The learning-rate factor after every epoch: ``config["lr_decay"]``, or where that is "compressed", the factor that
    takes ``epochs`` epochs to where App. A.1's 0.998 takes 3000 (the paper's schedule compressed in time)."""
    if config["lr_decay"] == "compressed":
        return PAPER_LR_DECAY ** (PAPER_EPOCHS / config["epochs"])
    return config["lr_decay"]


def arm_epochs(config: dict, arm: str) -> int:
    """Epochs ``arm`` trains for: its share of ``epochs``, at least one."""
    return at_epoch(config["arms"][arm]["share"], config["epochs"])


# --------------------------------------------------------------------------- analysis


def final_errors(runs: list[dict]) -> dict[str, dict[int, float]]:
    """Final test errors, arm -> seed -> count."""
    return rule.by_seed(runs, "test_errors")


def mean_curves(runs: list[dict], key: str = "monitor_errors") -> pd.DataFrame:
    """Per-epoch mean and sd over seeds of ``key``, one row per (arm, epoch)."""
    rows = [
        {"arm": r["arm"], "seed": r["seed"], "epoch": e, key: v}
        for r in runs for e, v in zip(r["curves"]["epoch"], r["curves"][key])
    ]
    return pd.DataFrame(rows).groupby(["arm", "epoch"], sort=False)[key].agg(["mean", "std"]).reset_index()


def plateau_epoch(curve: np.ndarray, tol: float = PLATEAU_ERRORS) -> int:
    """First 1-based epoch after which ``curve`` never improves on its value by more than ``tol``."""
    future_min = np.minimum.accumulate(curve[::-1])[::-1]
    return int(np.argmax(curve - future_min <= tol)) + 1


def gains_after_plateau(runs: list[dict]) -> tuple[dict[int, int], dict[str, dict[int, float]]]:
    """Per seed: the epoch the no-dropout net stops improving, and each dropout arm's gain in errors after it."""
    curves = {(r["arm"], r["seed"]): np.asarray(r["curves"]["monitor_errors"], dtype=float) for r in runs}
    stops = {seed: plateau_epoch(c) for (arm, seed), c in curves.items() if arm == "none"}
    gains = {arm: {seed: float(curves[(arm, seed)][stop - 1] - curves[(arm, seed)][-1]) for seed, stop in stops.items()}
             for arm in ("hidden", "input+hidden")}
    return stops, gains


def epoch_to_epoch(runs: list[dict], last: int = JITTER_EPOCHS) -> dict[str, dict[int, float]]:
    """Arm -> seed -> mean absolute change of the test errors from one epoch to the next over the ``last`` epochs:
    how much a net still moves at the end of its run."""
    return {arm: {r["seed"]: float(np.abs(np.diff(r["curves"]["monitor_errors"][-(last + 1):])).mean())
                  for r in runs if r["arm"] == arm} for arm in dict.fromkeys(r["arm"] for r in runs)}


def claims(config: dict, runs: list[dict]) -> list[dict]:
    """The chapter's claims, each decided by :mod:`replib.claims`' rule over seeds."""
    final = final_errors(runs)
    levels = {v["arm"]: v["value"] for v in PAPER_VALUES if v["id"] in ("hidden_dropout", "input_hidden_dropout")}
    stops, gains = gains_after_plateau(runs)
    return [
        rule.all_of("final_error_order", "Final test errors order none > hidden > input+hidden.", [
            rule.direction("none_above_hidden", "none > hidden", final["none"], final["hidden"], claimed="greater",
                           names=("none", "hidden"), digits=1, unit=" errors"),
            rule.direction("hidden_above_input", "hidden > input+hidden", final["hidden"], final["input+hidden"],
                           claimed="greater", names=("hidden", "input+hidden"), digits=1, unit=" errors"),
        ]),
        rule.all_of("paper_levels", (
            f"The dropout nets reach the paper's levels: at most {PAPER_LEVEL_SLACK:.0%} above 'about 130' (hidden) "
            "and 'about 110' (input+hidden) test errors."), [
            rule.level(f"level_{arm}", f"{arm} ≤ {level} + {PAPER_LEVEL_SLACK:.0%}", final[arm], level,
                       tolerance=PAPER_LEVEL_SLACK * level, name=arm, digits=1, unit=" errors")
            for arm, level in levels.items()
        ]),
        rule.all_of("dropout_keeps_improving", (
            "After the no-dropout net has stopped improving (its test errors never again fall by more than "
            f"{PLATEAU_ERRORS}), both dropout nets still improve by more than {PLATEAU_ERRORS} errors."), [
            rule.direction(f"{arm}_gains", f"{arm} gains > {PLATEAU_ERRORS} errors after the plateau", gains[arm],
                           PLATEAU_ERRORS, claimed="greater", names=(f"{arm} gain", str(PLATEAU_ERRORS)), digits=1)
            for arm in gains
        ]),
    ]


def facts(result: dict) -> dict[str, str]:
    """The numbers the chapter's prose quotes, formatted from the result."""
    final = final_errors(result["runs"])
    stops, gains = gains_after_plateau(result["runs"])
    cfg = result["config"]
    out = {f"final_{arm.replace('+', '_')}": rule.mean_sd(v.values(), 1, " errors") for arm, v in final.items()}
    out.update({f"gain_{arm.replace('+', '_')}": rule.mean_sd(v.values(), 1, " errors") for arm, v in gains.items()})
    out["none_minus_hidden"] = rule.per_seed({s: final["none"][s] - final["hidden"][s] for s in final["none"]}, 0)
    out["hidden_minus_input"] = rule.per_seed({s: final["hidden"][s] - final["input+hidden"][s] for s in final["hidden"]}, 0)
    out["plateau_epochs"] = ", ".join(str(stops[s]) for s in sorted(stops))
    out["epochs"] = str(cfg["epochs"])
    out["none_epochs"] = str(arm_epochs(cfg, "none"))
    out["ramp_epochs"] = str(at_epoch(cfg["momentum_ramp"], cfg["epochs"]))
    out["lr_decay"] = f"{lr_decay(cfg):.4f}"
    out["lr_end_factor"] = f"{lr_decay(cfg) ** cfg['epochs']:.4f}"
    out["paper_lr_end_factor"] = f"{PAPER_LR_DECAY ** PAPER_EPOCHS:.4f}"
    for arm, per_seed in rule.by_seed(result["runs"], "train_loss").items():
        mean = abs(float(np.mean(list(per_seed.values()))))  # two significant digits at least: 0.00043, not 0.000
        digits = 3 if mean >= 0.01 or mean == 0 else 1 - math.floor(math.log10(mean))
        out[f"train_loss_{arm.replace('+', '_')}"] = rule.mean_sd(per_seed.values(), digits)
    out["jitter_epochs"] = str(JITTER_EPOCHS)
    for arm, per_seed in epoch_to_epoch(result["runs"]).items():
        out[f"jitter_{arm.replace('+', '_')}"] = rule.mean_sd(per_seed.values(), 1, " errors")
    per_epoch = float(np.mean([r["metrics"]["seconds_per_epoch"] for r in result["runs"]]))
    net_epochs = PAPER_EPOCHS * len(cfg["arms"]) * PROFILES["paper"]["seeds"]
    out["paper_net_epochs"] = f"{net_epochs:,}"
    out["paper_cpu_days"] = rule.fmt(net_epochs * per_epoch / 86_400, 0)
    out["paper_epochs_ratio"] = f"{PAPER_EPOCHS / cfg['epochs']:.0f}"
    return out


# --------------------------------------------------------------------------- presentation

ARM_LABELS = {"none": "no dropout", "hidden": "50% hidden dropout + max-norm", "input+hidden": "+ 20% input dropout"}


def table(result: dict) -> pd.DataFrame:
    """Paper vs ours: final test errors (count and %) per arm; ours is mean ± sd over seeds."""
    final = final_errors(result["runs"])
    n_test = test_size(result["config"])
    paper = {v["arm"]: v for v in result["paper_values"] if v["unit"] == "test errors of 10,000"}
    rows = []
    for arm, per_seed in final.items():
        errors = list(per_seed.values())
        rows.append({
            "arm": ARM_LABELS[arm],
            "paper: test errors": f"{paper[arm]['value']}" + ("" if paper[arm]["confirmed"] else " (unconfirmed)"),
            "paper: source": paper[arm]["where"],
            "ours: test errors": rule.mean_sd(errors, 1),
            "ours: test error %": rule.mean_sd([100 * e / n_test for e in errors], 2, " %"),
        })
    return pd.DataFrame(rows).set_index("arm")


def test_size(config: dict) -> int:
    return config["test_size"] or 10_000


def figure(result: dict):
    """Figure 1, ours: test errors against epoch per arm (mean line, ±1 sd band), the paper's levels marked."""
    import matplotlib.pyplot as plt

    from .. import plotting

    n_test = test_size(result["config"])
    curves = mean_curves(result["runs"])
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    colors = dict(zip(ARM_LABELS, plotting.palette(len(ARM_LABELS))))
    for arm, g in curves.groupby("arm", sort=False):
        sd = g["std"].fillna(0.0)
        ax.plot(g["epoch"], g["mean"], color=colors[arm], label=f"ours: {ARM_LABELS[arm]}")
        ax.fill_between(g["epoch"], g["mean"] - sd, g["mean"] + sd, color=colors[arm], alpha=0.2, linewidth=0)
    if n_test == 10_000:  # the paper's counts are of the full test set
        for value in result["paper_values"]:
            if value["unit"] == "test errors of 10,000":
                style = "-" if value["id"] == "best_previous_backprop" else ":"
                ax.axhline(value["value"], color=colors[value["arm"]], linestyle=style, linewidth=1.2)
                ax.annotate(f"paper: {value['value']}", (0.01, value["value"]), xycoords=("axes fraction", "data"),
                            xytext=(0, 2), textcoords="offset points", va="bottom", fontsize=8, color=colors[value["arm"]])
        ax.set_ylim(60, 260)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"test errors (of {n_test:,})")
    ax.xaxis.get_major_locator().set_params(integer=True)
    secondary = ax.secondary_yaxis("right", functions=(lambda e: 100 * e / n_test, lambda p: p * n_test / 100))
    secondary.set_ylabel("test error (%)")
    cfg = result["config"]
    lengths = {arm_epochs(cfg, arm) for arm in cfg["arms"]}
    length = (f"{lengths.pop()} epochs" if len(lengths) == 1 else
              f"{arm_epochs(cfg, 'hidden')} epochs with dropout, {arm_epochs(cfg, 'none')} without")
    compressed = f" (the paper's {PAPER_EPOCHS}-epoch schedule, compressed)" if cfg["lr_decay"] == "compressed" else ""
    ax.set_title(
        f"MNIST 784-{'-'.join(map(str, cfg['hidden']))}-10 {cfg['activation']}, {length}{compressed},\n"
        f"mean ± sd over {len(result['seeds'])} seeds ({result['profile']} profile)",
        fontsize=10,
    )
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


FIGURES = {"figure1": figure}
TABLES = {"paper_vs_ours": table}

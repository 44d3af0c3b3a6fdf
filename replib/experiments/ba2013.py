"""Ba & Frey (2013): standout (adaptive dropout) against standard dropout on MNIST.

"Adaptive dropout for training deep neural networks", NIPS 26. Arms: ``dropout`` (p = 0.5
on both hidden layers) and ``standout`` over a small (alpha, beta) grid, all on
784-1000-1000-10 ReLU nets trained from scratch (no unsupervised pre-training).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .. import data
from ..models import MLP, StandoutMLP
from ..train import fit, seed_everything
from ._config import apply_overrides

PAPER = "ba2013"
TITLE = "Ba & Frey 2013: standout"
KEEP_BINS = np.linspace(-4.0, 8.0, 25)  # pre-activation bins for the keep-probability plot

_COMMON = {
    "dataset": "mnist",
    "hidden": [1000, 1000],  # the architecture; the paper's could not be confirmed
    "activation": "relu",
    "p_hidden": 0.5,  # the dropout arm
    "standout": [[1.0, 0.0], [1.0, -1.0], [0.5, 0.0]],  # (alpha, beta) grid
    "batch_size": 100,
    "lr": 0.05,
    "momentum": 0.9,
    "lr_final_factor": 0.01,  # exponential decay to 1% of lr over training
    "train_subset": None,
    "test_subset": None,
    "device": "cpu",
}
PROFILES = {
    "smoke": {**_COMMON, "hidden": [64, 64], "standout": [[1.0, 0.0]], "epochs": 2, "train_subset": 5000,
              "test_subset": 1000, "seeds": 1},
    "cpu": {**_COMMON, "epochs": 12, "seeds": 3},
    "paper": {**_COMMON, "epochs": 200, "seeds": 5},
}

PAPER_VALUES = [
    {
        "id": "standout_mnist", "arm": "standout", "value": 0.80, "unit": "% test error",
        "what": "MNIST, standout (architecture, alpha, beta and use of pre-training not confirmed)",
        "where": "Ba & Frey 2013, abstract", "confirmed": True,
    },
]


def arm_name(alpha: float, beta: float) -> str:
    return f"standout a={alpha:g} b={beta:g}"


def resolve(profile: str, **overrides) -> dict:
    config = apply_overrides(PAPER, PROFILES, profile, overrides)
    grid = config["standout"]
    if not isinstance(grid, list) or not all(isinstance(g, list) and len(g) == 2 for g in grid):
        raise ValueError(f"standout must be a list of [alpha, beta] pairs, got {grid!r}")
    return config


def arms(config: dict) -> list[str]:
    return ["dropout", *(arm_name(a, b) for a, b in config["standout"])]


def run_one(config: dict, arm: str, seed: int, progress: bool = True) -> dict:
    train, test = data.mnist_tensors(config["train_subset"], config["test_subset"], config["device"])
    seed_everything(seed)
    sizes = [784, *config["hidden"], 10]
    if arm == "dropout":
        model = MLP(sizes, config["activation"], 0.0, config["p_hidden"])
    else:
        alpha, beta = next((a, b) for a, b in config["standout"] if arm_name(a, b) == arm)
        model = StandoutMLP(sizes, alpha, beta, config["activation"])
    model = model.to(config["device"])
    curves = fit(
        model, train, test, epochs=config["epochs"], batch_size=config["batch_size"], lr=config["lr"],
        lr_decay=config["lr_final_factor"] ** (1 / config["epochs"]), momentum=config["momentum"],
        seed=seed, progress=progress, desc=f"{arm} seed {seed}",
    )
    metrics = {"test_error": curves["test_error"][-1], "test_errors": curves["test_errors"][-1],
               "seconds_per_epoch": float(np.mean(curves["seconds"]))}
    if isinstance(model, StandoutMLP):
        model.eval()
        pre, keep = model.pre_activations_and_keep(test[0][:2000])[0]  # first hidden layer
        pre, keep = pre.flatten().cpu().numpy(), keep.flatten().cpu().numpy()
        which = np.digitize(pre, KEEP_BINS)
        metrics["keep_by_preactivation"] = [
            None if not (which == i).any() else round(float(keep[which == i].mean()), 4) for i in range(1, len(KEEP_BINS))
        ]
        metrics["preactivation_histogram"] = np.histogram(pre, KEEP_BINS)[0].tolist()
        metrics["spearman_keep_vs_preactivation"] = round(float(_spearman(pre, keep)), 4)
        metrics["mean_keep_active_units"] = round(float(keep[pre > 0].mean()), 4)
        metrics["share_active_units"] = round(float((pre > 0).mean()), 4)
    return {"metrics": metrics, "curves": curves}


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = a.argsort().argsort(), b.argsort().argsort()
    return float(np.corrcoef(ra, rb)[0, 1])


# --------------------------------------------------------------------------- analysis


def errors(runs: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame([{"arm": r["arm"], "test_error": r["metrics"]["test_error"]} for r in runs])
    return df.groupby("arm", sort=False)["test_error"].agg(["mean", "std", "count"])


def claims(config: dict, runs: list[dict]) -> list[dict]:
    err = errors(runs)
    standout = err.drop(index="dropout")
    best = standout["mean"].idxmin()
    rho = {r["arm"] + f" seed {r['seed']}": r["metrics"]["spearman_keep_vs_preactivation"]
           for r in runs if r["arm"] != "dropout"}
    diff = float(standout.loc[best, "mean"] - err.loc["dropout", "mean"])
    return [
        {
            "id": "keep_rises_with_input",
            "statement": "In every trained standout net, a unit's keep probability rises with its pre-activation "
                         "(Spearman correlation > 0.5 on test images, first hidden layer).",
            "holds": bool(all(v > 0.5 for v in rho.values())),
            "evidence": {"spearman": rho},
        },
        {
            "id": "standout_beats_dropout",
            "statement": "The best standout setting has a lower mean test error than dropout (p = 0.5).",
            "holds": bool(diff < 0),
            "evidence": {"best_standout": best, "best_minus_dropout_points": round(diff, 3),
                         "mean_test_error_%": {a: round(float(m), 3) for a, m in err["mean"].items()}},
        },
    ]


# --------------------------------------------------------------------------- presentation


def table(result: dict) -> pd.DataFrame:
    err = errors(result["runs"])
    keep = pd.DataFrame([{"arm": r["arm"], "keep": r["metrics"].get("mean_keep_active_units")} for r in result["runs"]])
    keep = keep.groupby("arm", sort=False)["keep"].mean()
    rows = []
    for arm, row in err.iterrows():
        sd = 0.0 if np.isnan(row["std"]) else row["std"]
        rows.append({
            "arm": arm,
            "paper: test error %": "0.80 (abstract; setting unconfirmed)" if arm != "dropout" else "",
            "ours: test error % (mean ± sd)": f"{row['mean']:.2f} ± {sd:.2f}",
            "mean keep prob. of active units": "0.5 (fixed)" if arm == "dropout" else f"{keep[arm]:.3f}",
            "seeds": int(row["count"]),
        })
    return pd.DataFrame(rows).set_index("arm")


def figure(result: dict):
    """Left: final test error per arm (mean ± sd, seeds as dots). Right: keep probability vs pre-activation."""
    import matplotlib.pyplot as plt

    from .. import plotting

    plotting.use_house_style()
    err = errors(result["runs"])
    colors = plotting.palette(len(err))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, (arm, row) in enumerate(err.iterrows()):
        ax1.bar(i, row["mean"], yerr=0.0 if np.isnan(row["std"]) else row["std"], color=colors[i], alpha=0.8, capsize=4)
        seeds = [r["metrics"]["test_error"] for r in result["runs"] if r["arm"] == arm]
        ax1.scatter([i] * len(seeds), seeds, color="black", s=10, zorder=3)
    ax1.set_xticks(range(len(err)), [a.replace("standout ", "standout\n") for a in err.index], fontsize=8)
    ax1.set_ylabel("test error (%)")
    ax1.set_ylim(min(err["mean"]) * 0.8, max(err["mean"]) * 1.1)
    ax1.set_title(f"MNIST 784-{'-'.join(map(str, result['config']['hidden']))}-10, "
                  f"{len(result['seeds'])} seeds (bars: mean ± sd)", fontsize=10)
    centres = (KEEP_BINS[:-1] + KEEP_BINS[1:]) / 2
    for i, arm in enumerate(err.index):
        if arm == "dropout":
            ax2.axhline(1 - result["config"]["p_hidden"], color=colors[i], linestyle="--", label="dropout (p = 0.5)")
            continue
        per_seed = [r["metrics"]["keep_by_preactivation"] for r in result["runs"] if r["arm"] == arm]
        curve = np.array([[np.nan if v is None else v for v in s] for s in per_seed], dtype=float)
        ax2.plot(centres, np.nanmean(curve, 0), "o-", color=colors[i], markersize=3, label=arm)
    hist = np.sum([r["metrics"]["preactivation_histogram"] for r in result["runs"] if r["arm"] != "dropout"], 0)
    twin = ax2.twinx()
    twin.bar(centres, hist / hist.sum(), width=np.diff(KEEP_BINS), color="grey", alpha=0.15)
    twin.set_ylabel("share of units (grey)")
    twin.grid(False)
    ax2.set_xlabel("pre-activation of a first-layer unit (test images)")
    ax2.set_ylabel("keep probability")
    ax2.set_ylim(0, 1.02)
    ax2.set_title("standout keeps units with a larger input more often", fontsize=10)
    ax2.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig

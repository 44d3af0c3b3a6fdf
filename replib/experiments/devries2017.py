"""DeVries & Taylor (2017): Cutout on CIFAR-10, a patch-length sweep then the chosen length on the test set.

"Improved Regularization of Convolutional Neural Networks with Cutout", arXiv 1708.04552.
Every arm trains the same CIFAR ResNet with standard crop + flip augmentation; arm
``cutout_<L>`` adds one ``L`` x ``L`` hole per training image (``cutout_0``: none).

Protocol, in two rounds (:func:`units`):

1. **Sweep** (the paper's Figure 3): every length on the first ``sweep_seeds`` seeds,
   each net scored on a validation split held out of the training images.
2. **Test** (the paper's Table 1): the length with the best mean validation accuracy,
   and no cutout, on the remaining seeds as well; every net is also scored on the test
   set, and the claim compares the two on all seeds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import data, models
from ..train import seed_everything
from . import _cifar
from ._config import apply_overrides, check_int

PAPER = "devries2017"
TITLE = "DeVries & Taylor 2017: Cutout"

_COMMON = {
    "depth": 8,  # CIFAR ResNet of 6k + 2 layers (He et al. 2016, 4.2); the paper's Table 1 uses ResNet18
    "lengths": [0, 4, 8, 12, 16, 20],  # patch side in pixels; 0 is the no-cutout baseline
    "sweep_seeds": 2,  # seeds 0 .. sweep_seeds-1 run every length; the rest only 0 and the chosen length
    "train_size": 5000,  # training images (after holding out the validation split)
    "val_size": 5000,  # held out of the 50,000 training images for the sweep (the paper: 10%)
    "test_size": None,  # None: all 10,000 test images
    "batch_size": 128,  # the paper's protocol from here on (section 4, Table 1)
    "lr": 0.1,
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": 5e-4,
    "lr_fractions": [0.3, 0.6, 0.8],  # x lr_gamma at epochs 60, 120, 160 of 200
    "lr_gamma": 0.2,
    "crop_flip": True,  # standard augmentation (the paper's "+" rows)
    "eval_every": 5,  # validation error during training, every n epochs
    "device": "cpu",
}
PROFILES = {
    "smoke": {**_COMMON, "lengths": [0, 8], "sweep_seeds": 1, "train_size": 256, "val_size": 128, "test_size": 256,
              "epochs": 1, "seeds": 2},
    # cpu: 5,000 training images for 20 epochs, about 3 min per net at 1 thread here (ResNet-8
    # trains at ~600 images/s); 6 lengths x 2 sweep seeds + 2 arms on a third seed = 14 nets.
    "cpu": {**_COMMON, "epochs": 20, "seeds": 3},
    "paper": {**_COMMON, "depth": 20, "lengths": [0, 4, 8, 12, 16, 20, 24], "sweep_seeds": 5, "train_size": None,
              "epochs": 200, "seeds": 5},
}

_T1 = "arXiv 1708.04552v2, Table 1 (p.5): test error %, mean ± sd over 5 runs (shared/PAPERS.md)"
_F3 = "arXiv 1708.04552v2, Figure 3 (p.5): CIFAR-10 validation accuracy %, read from the plot (shared/PAPERS.md)"
PAPER_VALUES = [
    *[{"id": f"table1_{model}_{aug}_{arm}", "model": model, "augmentation": aug, "arm": arm, "value": value, "sd": sd,
       "unit": "test error %", "what": f"{model} on CIFAR-10{'+' if aug == 'crop_flip' else ''}, "
       f"{'with cutout' if arm == 'cutout' else 'baseline'}", "where": _T1, "confirmed": True}
      for model, aug, arm, value, sd in (
          ("ResNet18", "none", "baseline", 10.63, 0.26), ("ResNet18", "none", "cutout", 9.31, 0.18),
          ("ResNet18", "crop_flip", "baseline", 4.72, 0.21), ("ResNet18", "crop_flip", "cutout", 3.99, 0.13),
          ("WRN-28-10", "crop_flip", "baseline", 3.87, 0.08), ("WRN-28-10", "crop_flip", "cutout", 3.08, 0.16),
      )],
    *[{"id": f"figure3_length_{length}", "length": length, "value": value, "unit": "validation accuracy %",
       "what": f"WRN-28-10, CIFAR-10+, patch length {length}" if length else "WRN-28-10, CIFAR-10+, no cutout",
       "where": _F3, "confirmed": True}
      for length, value in ((0, 96.08), (4, 96.05), (8, 96.56), (12, 96.76), (16, 96.89), (20, 96.80), (24, 96.60))],
    {"id": "chosen_length", "value": 16, "unit": "pixels", "what": "patch length chosen for CIFAR-10",
     "where": "arXiv 1708.04552v2, section 4.1 and Figure 3", "confirmed": True},
]


def resolve(profile: str, **overrides) -> dict:
    config = apply_overrides(PAPER, PROFILES, profile, overrides)
    _cifar.check_sizes(config)
    lengths = config["lengths"]
    if (not isinstance(lengths, list) or 0 not in lengths or len(lengths) < 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in lengths)):
        raise ValueError(f"lengths must be a list of ints >= 0 including 0 (the baseline), got {lengths!r}")
    if config["val_size"] < 1:
        raise ValueError(f"val_size must be >= 1: the sweep chooses the length on it, got {config['val_size']!r}")
    check_int(config, "sweep_seeds")
    return config


def arm_of(length: int) -> str:
    return f"cutout_{length}"


def length_of(arm: str) -> int:
    return int(arm.rsplit("_", 1)[1])


def arms(config: dict) -> list[str]:
    return [arm_of(length) for length in config["lengths"]]


def chosen_length(config: dict, runs) -> int:
    """The length with the highest mean validation accuracy over the sweep seeds (ties: the shorter)."""
    acc = sweep_accuracy(config, runs)["mean"]
    return int(acc.index[np.argmax(acc.to_numpy())])


def units(config: dict, seeds: list[int], done: dict) -> list[tuple[str, int]]:
    sweep_seeds, more = seeds[: config["sweep_seeds"]], seeds[config["sweep_seeds"]:]
    sweep = [(arm, seed) for seed in sweep_seeds for arm in arms(config)]
    if not more or not all(unit in done for unit in sweep):
        return sweep  # the test round is decided once the sweep is finished
    best = chosen_length(config, [done[unit] for unit in sweep])
    return sweep + [(arm_of(length), seed) for seed in more for length in sorted({0, best})]


def run_one(config: dict, arm: str, seed: int, progress: bool = True) -> dict:
    seed_everything(seed)
    model = models.ResNet(config["depth"])
    curves = _cifar.train_classifier(model, config, seed, cutout_length=length_of(arm), monitor="val",
                                     progress=progress, desc=f"{arm} seed {seed}")
    curves["val_error"] = curves.pop("test_error")  # fit's "test" split is the validation split here
    for key in ("test_errors", "test_loss"):
        curves.pop(key)
    metrics = {
        "val_error": curves["val_error"][-1],
        "test_error": _cifar.error_on(model, config, "test"),
        "train_loss": curves["train_loss"][-1],
        "seconds_per_epoch": float(np.mean(curves["seconds"])),
    }
    return {"metrics": metrics, "curves": curves}


# --------------------------------------------------------------------------- analysis


def _frame(runs) -> pd.DataFrame:
    return pd.DataFrame([{"length": length_of(r["arm"]), "seed": r["seed"], **r["metrics"]} for r in runs])


def sweep_accuracy(config: dict, runs) -> pd.DataFrame:
    """Validation accuracy (%) per length over the sweep seeds: mean, sd and n, indexed by length."""
    df = _frame(runs)
    df = df[df.seed < config["sweep_seeds"]]
    acc = df.assign(val_accuracy=100.0 - df["val_error"]).groupby("length")["val_accuracy"]
    return acc.agg(["mean", "std", "count"]).rename(columns={"count": "n"}).sort_index()


def test_errors(config: dict, runs) -> pd.DataFrame:
    """Per-seed test error (%) of no cutout and the chosen length, over every seed both ran."""
    best = chosen_length(config, runs)
    df = _frame(runs).pivot(index="seed", columns="length", values="test_error")
    return df[sorted({0, best})].dropna()


def claims(config: dict, runs) -> list[dict]:
    acc = sweep_accuracy(config, runs)
    best = chosen_length(config, runs)
    errors = test_errors(config, runs)
    gain = errors[0] - errors[best]
    lengths = sorted(config["lengths"])
    return [
        {
            "id": "cutout_lowers_test_error",
            "statement": f"On top of crop + flip, cutout at the length chosen on validation lowers the mean test "
                         f"error over {len(errors)} seeds.",
            "holds": bool(best != 0 and gain.mean() > 0),
            "evidence": {"chosen_length": best,
                         "test_error_no_cutout": round(float(errors[0].mean()), 2),
                         "test_error_cutout": round(float(errors[best].mean()), 2),
                         "paired_gain_per_seed": [round(float(g), 2) for g in gain]},
        },
        {
            "id": "interior_optimum",
            "statement": f"Validation accuracy against patch length peaks strictly inside the swept range "
                         f"({lengths[0]}..{lengths[-1]} px).",
            "holds": bool(lengths[0] < best < lengths[-1]),
            "evidence": {"chosen_length": best,
                         "val_accuracy": {int(k): round(float(v), 2) for k, v in acc["mean"].items()}},
        },
    ]


# --------------------------------------------------------------------------- presentation


def figure(result: dict):
    """(a) Validation accuracy against patch length, per seed and mean; (b) change from no cutout, ours and the paper's."""
    import matplotlib.pyplot as plt

    from .. import plotting

    plotting.use_house_style()
    cfg = result["config"]
    ours, theirs = plotting.palette(2)
    acc = sweep_accuracy(cfg, result["runs"])
    df = _frame(result["runs"])
    df = df[df.seed < cfg["sweep_seeds"]]
    best = chosen_length(cfg, result["runs"])
    paper = {v["length"]: v["value"] for v in result["paper_values"] if v["id"].startswith("figure3")}
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2))
    ax.scatter(df["length"], 100.0 - df["val_error"], color=ours, alpha=0.45, s=18, label="one seed")
    ax.plot(acc.index, acc["mean"], marker="o", color=ours, label=f"mean of {cfg['sweep_seeds']} seeds")
    ax.axvline(best, color=ours, linestyle="--", linewidth=1, label=f"our chosen length ({best})")
    ax.axvline(16, color=theirs, linestyle=":", linewidth=1.2, label="paper's chosen length (16)")
    ax.set_xlabel("patch length (pixels)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(f"(a) ours: ResNet-{cfg['depth']}, {cfg['train_size']:,} training images, {cfg['epochs']} epochs",
                 fontsize=9)
    ax.legend(fontsize=8)
    bx.plot(acc.index, acc["mean"] - acc.loc[0, "mean"], marker="o", color=ours, label="ours")
    bx.plot(list(paper), [v - paper[0] for v in paper.values()], marker="s", color=theirs,
            label="paper, WRN-28-10 (Figure 3)")
    bx.axhline(0, color="0.5", linewidth=0.8)
    bx.set_xlabel("patch length (pixels)")
    bx.set_ylabel("validation accuracy minus no cutout (points)")
    bx.set_title("(b) change from no cutout", fontsize=9)
    bx.legend(fontsize=8)
    fig.suptitle(f"Cutout patch length, {data.CIFAR10_JPEG_NOTE}, crop + flip ({result['profile']} profile)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def table(result: dict) -> pd.DataFrame:
    """Table 1 beside ours: test error (%) without and with cutout, on top of crop + flip."""
    cfg = result["config"]
    errors = test_errors(cfg, result["runs"])
    best = chosen_length(cfg, result["runs"])
    rows = []
    for model in ("ResNet18", "WRN-28-10"):
        vals = {v["arm"]: f"{v['value']:.2f} ± {v['sd']:.2f}" for v in result["paper_values"]
                if v.get("model") == model and v.get("augmentation") == "crop_flip"}
        rows.append({"model": f"paper: {model}, CIFAR-10+ (Table 1, 5 runs)", "no cutout": vals["baseline"],
                     "cutout": f"{vals['cutout']} (length 16)"})

    def fmt(col):
        return f"{errors[col].mean():.2f} ± {errors[col].std():.2f}" if len(errors) > 1 else f"{errors[col].mean():.2f}"

    rows.append({"model": f"ours: ResNet-{cfg['depth']}, {data.CIFAR10_JPEG_NOTE}+ ({len(errors)} seeds)",
                 "no cutout": fmt(0), "cutout": f"{fmt(best)} (length {best})" if best else "(no length beat 0)"})
    return pd.DataFrame(rows).set_index("model")

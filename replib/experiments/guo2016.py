"""Guo & Gould (2016): depth dropout on a CIFAR ResNet-20, training time and test error against the skip ratio.

"Depth Dropout: Efficient Training of Residual Convolutional Neural Networks", DICTA 2016.
Arms ``p=<ratio>``: the same :class:`replib.methods.DepthDropoutResNet` trained for the same
number of epochs with each block's main path skipped per image with probability
``ratio`` (``p=0``: never, the baseline with the same 1x1 shortcuts). Every arm records
the wall time of its training steps per epoch, apart from evaluation.

The saving to expect follows from counting multiply-accumulates (:func:`mac_counts`):
skipping a main path for a fraction p of the images removes a fraction p of the main
paths' convolutions, forward and backward, so the predicted training time is
``1 - p * share`` of the baseline's, where ``share`` is the main paths' part of all the
net's multiply-accumulates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import data
from ..methods import DepthDropoutResNet
from ..train import seed_everything
from . import _cifar
from ._config import apply_overrides

PAPER = "guo2016"
TITLE = "Guo & Gould 2016: depth dropout"

_COMMON = {
    "depth": 20,  # ResNet-20 (He et al. 2016, 4.2), with a 1x1 convolution on every shortcut
    "ratios": [0.0, 0.25, 0.5],  # probability of skipping a block's main path, per image
    "train_size": 10_000,  # training images (None: all 50,000)
    "test_size": None,  # None: all 10,000 test images
    "batch_size": 128,  # He et al.'s CIFAR protocol from here on
    "lr": 0.1,
    "momentum": 0.9,
    "nesterov": False,
    "weight_decay": 1e-4,
    "lr_fractions": [0.5, 0.75],  # x lr_gamma at 32k and 48k of 64k iterations
    "lr_gamma": 0.1,
    "crop_flip": True,
    "eval_every": 2,  # test error during training, every n epochs (for error against wall time)
    "device": "cpu",
}
PROFILES = {
    "smoke": {**_COMMON, "depth": 8, "train_size": 256, "test_size": 256, "epochs": 2, "eval_every": 1, "seeds": 1},
    # cpu: ResNet-20 trains at ~215 images/s at p = 0 on 1 quiet thread here (~400 at p = 0.5),
    # so 10,000 images x 6 epochs x 3 ratios is about 13 min per seed, more beside other jobs.
    "cpu": {**_COMMON, "epochs": 6, "seeds": 3},
    "paper": {**_COMMON, "train_size": None, "epochs": 160, "eval_every": 1, "seeds": 5},
}

_ABSTRACT = "Guo & Gould 2016 (DICTA), abstract (shared/PAPERS.md: only the abstract is confirmed)"
PAPER_VALUES = [
    {"id": "speedup_small_ratio", "value": 17.5, "unit": "% faster training", "ratio": None,
     "what": "training-time saving at a depth-dropout ratio the abstract does not state", "where": _ABSTRACT,
     "confirmed": True},
    {"id": "error_small_ratio", "value": 0.4, "unit": "points of test error", "ratio": None,
     "what": "error change that goes with the 17.5% saving, CIFAR-10", "where": _ABSTRACT, "confirmed": True},
    {"id": "speedup_half", "value": 34.1, "unit": "% faster training", "ratio": 0.5,
     "what": "training-time saving at depth-dropout ratio 0.5", "where": _ABSTRACT, "confirmed": True},
    {"id": "error_half", "value": 1.3, "unit": "points of test error", "ratio": 0.5,
     "what": "test-error increase at ratio 0.5, CIFAR-10", "where": _ABSTRACT, "confirmed": True},
]

# Claim thresholds, fixed before the runs (the wording).
MIN_SHARE_OF_PREDICTED_SAVING = 0.8
MAX_ERROR_INCREASE_AT_HALF = 1.5  # points


def resolve(profile: str, **overrides) -> dict:
    config = apply_overrides(PAPER, PROFILES, profile, overrides)
    _cifar.check_sizes(config)
    ratios = config["ratios"]
    if (not isinstance(ratios, list) or 0.0 not in ratios or len(ratios) < 2
            or not all(isinstance(r, (int, float)) and not isinstance(r, bool) and 0 <= r < 1 for r in ratios)):
        raise ValueError(f"ratios must be a list of skip probabilities in [0, 1) including 0 (the baseline), "
                         f"got {ratios!r}")
    config["ratios"] = [float(r) for r in ratios]
    DepthDropoutResNet(config["depth"], 0.0)  # rejects a depth that is not 6k + 2
    return config


def arm_of(ratio: float) -> str:
    return f"p={ratio:g}"


def ratio_of(arm: str) -> float:
    return float(arm.split("=", 1)[1])


def arms(config: dict) -> list[str]:
    return [arm_of(r) for r in config["ratios"]]


def mac_counts(depth: int) -> dict[str, int]:
    """Multiply-accumulates per 32x32 image of ``DepthDropoutResNet(depth)``: main paths and everything else."""
    model = DepthDropoutResNet(depth, 0.0).eval()
    counts = {"main": 0, "other": 0}

    def hook(name):
        def count(module, inputs, output):
            if isinstance(module, nn.Conv2d):
                per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
                macs = output[0].numel() * per_output
            else:
                macs = module.in_features * module.out_features
            counts["main" if ".main." in f".{name}." else "other"] += macs
        return count

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(1, 3, 32, 32))
    for h in handles:
        h.remove()
    return counts


def predicted_time_fraction(depth: int, ratio: float) -> float:
    """Training time relative to ``ratio = 0`` if time were proportional to multiply-accumulates."""
    macs = mac_counts(depth)
    return 1.0 - ratio * macs["main"] / (macs["main"] + macs["other"])


def run_one(config: dict, arm: str, seed: int, progress: bool = True) -> dict:
    seed_everything(seed)
    model = DepthDropoutResNet(config["depth"], p=ratio_of(arm))
    main_images, images = [0], [0]

    def count(block, inputs, output):  # how many training images each main path saw: the skipping is real
        if block.training:
            main_images[0] += block.main_images
            images[0] += inputs[0].shape[0]

    hooks = [b.register_forward_hook(count) for b in model.blocks]
    curves = _cifar.train_classifier(model, config, seed, monitor="test", progress=progress, desc=f"{arm} seed {seed}")
    for h in hooks:
        h.remove()
    train_seconds = curves["train_seconds"]
    metrics = {
        "test_error": curves["test_error"][-1],
        "train_loss": curves["train_loss"][-1],
        # the median epoch: robust to the first epoch's warm-up and to a stray slow one
        "train_seconds_per_epoch": float(np.median(train_seconds)),
        "train_seconds_total": float(np.sum(train_seconds)),
        "main_path_fraction": main_images[0] / max(1, images[0]),
    }
    return {"metrics": metrics, "curves": curves}


# --------------------------------------------------------------------------- analysis


def summary(config: dict, runs) -> pd.DataFrame:
    """Per ratio, mean over seeds: test error, training seconds per epoch, measured and predicted saving (%)."""
    df = pd.DataFrame([{"ratio": ratio_of(r["arm"]), "seed": r["seed"], **r["metrics"]} for r in runs])
    per = df.groupby("ratio").agg(test_error=("test_error", "mean"), test_error_sd=("test_error", "std"),
                                  seconds=("train_seconds_per_epoch", "mean"),
                                  main_path_fraction=("main_path_fraction", "mean"), seeds=("seed", "count"))
    # saving per seed against the same seed's baseline, then averaged: pairs share the data order
    base = df[df.ratio == 0.0].set_index("seed")["train_seconds_per_epoch"]
    df["saving"] = 100.0 * (1.0 - df["train_seconds_per_epoch"] / df["seed"].map(base))
    per["measured_saving"] = df.groupby("ratio")["saving"].mean()
    per["predicted_saving"] = [100.0 * (1.0 - predicted_time_fraction(config["depth"], r)) for r in per.index]
    per["error_increase"] = per["test_error"] - per.loc[0.0, "test_error"]
    return per


def claims(config: dict, runs) -> list[dict]:
    s = summary(config, runs)
    skipped = s[s.index > 0]
    share = skipped["measured_saving"] / skipped["predicted_saving"]
    half = s.loc[0.5] if 0.5 in s.index else None
    out = [{
        "id": "skipping_saves_wall_time",
        "statement": f"Per-image skipping saves real training time: at every ratio > 0 the measured saving is at "
                     f"least {MIN_SHARE_OF_PREDICTED_SAVING:.0%} of the saving predicted by counting "
                     "multiply-accumulates.",
        "holds": bool((share >= MIN_SHARE_OF_PREDICTED_SAVING).all()),
        "evidence": {arm_of(r): {"measured_saving_%": round(float(s.loc[r, "measured_saving"]), 1),
                                 "predicted_saving_%": round(float(s.loc[r, "predicted_saving"]), 1)}
                     for r in skipped.index},
    }]
    if half is not None:
        out.append({
            "id": "error_cost_at_half",
            "statement": f"At ratio 0.5 the mean test error rises by at most {MAX_ERROR_INCREASE_AT_HALF} points "
                         "over the baseline at equal epochs (the paper: +1.3).",
            "holds": bool(half["error_increase"] <= MAX_ERROR_INCREASE_AT_HALF),
            "evidence": {"test_error_p0": round(float(s.loc[0.0, "test_error"]), 2),
                         "test_error_p0.5": round(float(half["test_error"]), 2),
                         "increase": round(float(half["error_increase"]), 2)},
        })
    return out


# --------------------------------------------------------------------------- presentation


def figure(result: dict):
    """(a) training seconds per epoch against the prediction, (b) test error per ratio, (c) test error against time."""
    import matplotlib.pyplot as plt

    from .. import plotting

    plotting.use_house_style()
    cfg = result["config"]
    s = summary(cfg, result["runs"])
    colors = dict(zip(s.index, plotting.palette(len(s))))
    fig, (ax, bx, cx) = plt.subplots(1, 3, figsize=(13, 4.0))
    base = s.loc[0.0, "seconds"]
    x = np.arange(len(s))
    ax.bar(x, s["seconds"], color=[colors[r] for r in s.index], label="measured (mean over seeds)")
    ax.scatter(x, base * (1 - s["predicted_saving"] / 100), marker="_", s=900, color="k", zorder=3,
               label="predicted from multiply-accumulates")
    ax.set_xticks(x, [arm_of(r) for r in s.index])
    ax.set_ylabel("training seconds per epoch")
    ax.set_title("(a) training time", fontsize=9)
    ax.legend(fontsize=8, loc="lower left")
    for r in s.index:
        errs = [run["metrics"]["test_error"] for run in result["runs"] if ratio_of(run["arm"]) == r]
        bx.scatter([arm_of(r)] * len(errs), errs, color=colors[r], alpha=0.6, s=18)
        bx.errorbar([arm_of(r)], [np.mean(errs)], yerr=[np.std(errs, ddof=1)] if len(errs) > 1 else None,
                    marker="o", color=colors[r], capsize=4, markersize=8)
    bx.set_ylabel("test error (%)")
    bx.set_title("(b) test error after equal epochs (dots: seeds)", fontsize=9)
    for run in result["runs"]:
        c = run["curves"]
        t = np.cumsum(c["train_seconds"]) / 60
        points = [(ti, e) for ti, e in zip(t, c["test_error"]) if e is not None]
        r = ratio_of(run["arm"])
        cx.plot(*zip(*points), marker="o", markersize=3, color=colors[r], alpha=0.7,
                label=arm_of(r) if run["seed"] == result["seeds"][0] else None)
    cx.set_xlabel("training wall time (minutes, 1 thread)")
    cx.set_ylabel("test error (%)")
    cx.set_title("(c) test error against training time", fontsize=9)
    cx.legend(fontsize=8)
    fig.suptitle(f"Depth dropout, ResNet-{cfg['depth']}, {data.CIFAR10_JPEG_NOTE}, "
                 f"{cfg['train_size'] or 50_000:,} training images, {cfg['epochs']} epochs "
                 f"({result['profile']} profile)", fontsize=10)
    fig.tight_layout()
    return fig


def table(result: dict) -> pd.DataFrame:
    """Training-time saving and error change per ratio, beside the paper's abstract."""
    s = summary(result["config"], result["runs"])
    paper = {v["id"]: v["value"] for v in result["paper_values"]}
    rows = [{"setting": "paper, ratio not stated (abstract)", "training time saved (%)": paper["speedup_small_ratio"],
             "predicted from MACs (%)": "", "test error (%)": "", "change (points)": f"+{paper['error_small_ratio']}"},
            {"setting": "paper, ratio 0.5 (abstract)", "training time saved (%)": paper["speedup_half"],
             "predicted from MACs (%)": "", "test error (%)": "", "change (points)": f"+{paper['error_half']}"}]
    for r in s.index:
        sd = s.loc[r, "test_error_sd"]
        rows.append({"setting": f"ours, {arm_of(r)} ({int(s.loc[r, 'seeds'])} seeds)",
                     "training time saved (%)": f"{s.loc[r, 'measured_saving']:.1f}",
                     "predicted from MACs (%)": f"{s.loc[r, 'predicted_saving']:.1f}",
                     "test error (%)": f"{s.loc[r, 'test_error']:.2f}" + ("" if np.isnan(sd) else f" ± {sd:.2f}"),
                     "change (points)": f"{s.loc[r, 'error_increase']:+.2f}"})
    return pd.DataFrame(rows).set_index("setting")

"""Guo & Gould (2016): depth dropout on CIFAR-10, training time and test error against the skip probability.

"Depth Dropout: Efficient Training of Residual Convolutional Neural Networks", DICTA 2016. Arms
``p=<p>``: the same residual net (:func:`model`: by default :class:`replib.models.DepthDropoutFastNet`, a
residual variant of the fast CIFAR-10 net; ``net="resnet"``: He et al.'s CIFAR ResNet,
:class:`replib.models.DepthDropoutResNet`), trained on all 50,000 training images for the same epochs by the
fast CIFAR-10 recipe (:func:`replib.experiments._cifar.fast_train`), each residual block's main path skipped
per image with probability ``p`` (``p=0``: the baseline, same 1x1 shortcuts); each records the wall time of
its training steps per epoch, apart from evaluation.
Counting multiply-accumulates (:func:`mac_counts`) predicts the time: skipping a main path for a
fraction p of the images removes that fraction of its convolutions, forward and backward, so
training takes ``1 - p * share`` of the baseline's time, ``share`` the main paths' part of the net's.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, model_validator
from torch import nn

from .. import claims as rule
from .. import data, plotting
from .._validate import DropProbabilities, PositiveInt, Spec
from ..methods import DepthDropoutBlock
from ..models import DepthDropoutFastNet, DepthDropoutResNet, check_fast_widths
from . import _cifar

PAPER = "guo2016"
TITLE = "Guo & Gould 2016: depth dropout"
CITE = "guo2016"  # its key in book/references.bib
HEADLINE = "Skipping residual blocks per image saves the predicted training time for a small cost in test error."  # the claim tested, in a line
DATASETS = ("cifar10",)  # the data mirror's folders its units read


class Config(_cifar.FastTraining.with_defaults(eval_every=2), Spec):
    net: Literal["fast", "resnet"] = Field(
        "fast", description="fast: the residual fast net (models.DepthDropoutFastNet); "
                            "resnet: He et al.'s CIFAR ResNet (models.DepthDropoutResNet)")
    widths: list[PositiveInt] = Field([32, 64, 64], description="net 'fast': channels of its stages, one to four")
    blocks: PositiveInt = Field(1, description="net 'fast': depth-dropout blocks per stage")
    depth: _cifar.ResNetDepth = Field(20, description="net 'resnet': its layers, 6k + 2 (He et al. 2016, 4.2), "
                                                      "with a 1x1 convolution on every shortcut")
    sweep_p: DropProbabilities = Field([0.0, 0.25, 0.5], min_length=2, description="probabilities of skipping a block's main path, per image; 0 is the baseline")
    epochs: PositiveInt = Field(6, description="passes over the training images, the same for every p; the one-cycle schedule spans them")
    channels_last: bool = Field(False, description="train in the channels_last layout; off: per-image skipping measured "
                                                   "slower than no skipping in it (bf16, ResNet-20), faster in the default layout")

    @model_validator(mode="after")
    def _baseline(self):
        if 0.0 not in self.sweep_p:
            raise ValueError(f"sweep_p must include 0 (the baseline), got {self.sweep_p!r}")
        check_fast_widths(self.widths)
        return self


PROFILES = {
    "smoke": {"widths": [8, 16, 16], "train_size": 256, "test_size": 256, "epochs": 2, "eval_every": 1, "seeds": 1,
              "precision": "fp32"},
    # cpu: sized to fit 90 min on 2 cores of an AVX2-only CPU (fp32; bf16 is emulated there). One SGD step of 128
    # images, 2 threads, default layout, on an AVX-512 CPU with native bf16, fp32 (bf16): this net 133 (73) ms at
    # p = 0 and 127 (66) ms at p = 0.5; ResNet-20 246 (147) and 189 (126) ms. AVX2 CPUs take 2.2-2.6x the fp32
    # time, so 6 epochs x 3 arms x 2 seeds of this net are 70-87 min there (18 min in bf16 on that AVX-512 CPU),
    # where the 8 epochs of ResNet-20 run before took 45 min on it and some 3 h on AVX2. Probed at p = 0 (seed 0, bf16): 16.1 %
    # test error after 6 epochs with one block a stage, 18.9 % after 5 with two (the most that fit).
    "cpu": {"seeds": 2},
    # paper: the paper's family of nets, a CIFAR ResNet-20 (He et al.), for He et al.'s 160 epochs on all images,
    # 5 runs, by the same recipe.
    "paper": {"net": "resnet", "epochs": 160, "eval_every": 1, "seeds": 5},
}

_ABSTRACT = "Guo & Gould 2016 (DICTA), abstract (shared/PAPERS.md: only the abstract is confirmed)"
# The abstract's words: "17.5% faster with only 0.4% decrease in error rate or 34.1% faster with 1.3% increase in error
# rate compared to a baseline model" (as published, DICTA 2016). The first change is recorded with the sign those
# words give it, a decrease.
PAPER_VALUES = [
    {"id": "speedup_small_ratio", "value": 17.5, "unit": "% faster training", "ratio": None,
     "what": "training-time saving at a depth-dropout ratio the abstract does not state", "where": _ABSTRACT,
     "confirmed": True},
    {"id": "error_small_ratio", "value": -0.4, "unit": "points of test error", "ratio": None,
     "what": "error change that goes with the 17.5% saving, CIFAR-10: \"only 0.4% decrease in error rate\"",
     "where": _ABSTRACT, "confirmed": True},
    {"id": "speedup_half", "value": 34.1, "unit": "% faster training", "ratio": 0.5,
     "what": "training-time saving at depth-dropout ratio 0.5", "where": _ABSTRACT, "confirmed": True},
    {"id": "error_half", "value": 1.3, "unit": "points of test error", "ratio": 0.5,
     "what": "test-error increase at ratio 0.5, CIFAR-10", "where": _ABSTRACT, "confirmed": True},
]
PAPER_ERROR_HALF = next(v["value"] for v in PAPER_VALUES if v["id"] == "error_half")

# Claim thresholds, fixed before the runs: the measured saving within 0.8x-1.25x of the predicted one
# (the book's band for timing claims), and at most 1.5 points of error at p = 0.5 (the paper's +1.3, plus 0.2).
SAVING_BAND = (0.8, 1.25)
MAX_ERROR_INCREASE_AT_HALF = 1.5  # points


def arm_of(p: float) -> str:
    return f"p={p:g}"


def p_of(arm: str) -> float:
    return float(arm.split("=", 1)[1])


def net_key(config: dict) -> tuple:
    """The settings that make ``config``'s net, and only those: ``("resnet", depth)`` or ``("fast", widths, blocks)``."""
    if config["net"] == "resnet":
        return "resnet", config["depth"]
    return "fast", tuple(config["widths"]), config["blocks"]


def model(config: dict, p: float) -> nn.Module:
    """The residual net ``config`` names, every block skipping its main path with probability ``p``."""
    return _model(net_key(config), p)


def _model(key: tuple, p: float) -> nn.Module:
    """The net a :func:`net_key` names, at skip probability ``p``."""
    if key[0] == "resnet":
        return DepthDropoutResNet(key[1], p=p)
    return DepthDropoutFastNet(key[1], key[2], p=p)


def net_name(config: dict) -> str:
    """The net in words, for titles and prose."""
    if config["net"] == "resnet":
        return f"ResNet-{config['depth']}"
    blocks = config["blocks"]
    return f"residual fast net ({'/'.join(map(str, config['widths']))} channels, {blocks} block{'s' * (blocks > 1)} a stage)"


def mac_counts(config: dict) -> dict[str, int]:
    """Multiply-accumulates per 32x32 image of ``config``'s net (:func:`model`): main paths and everything else."""
    return dict(_mac_counts(net_key(config)))


@lru_cache(maxsize=None)
def _mac_counts(key: tuple) -> tuple[tuple[str, int], ...]:
    """:func:`mac_counts` of the net ``key`` names, counted once per process (a forward pass with hooks)."""
    net = _model(key, 0.0).eval()
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

    handles = [m.register_forward_hook(hook(n)) for n, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        net(torch.zeros(1, 3, 32, 32))
    for h in handles:
        h.remove()
    return tuple(counts.items())


def predicted_saving(config: dict, p: float) -> float:
    """Training time saved at ``p`` (% of the time at ``p = 0``) if time were proportional to multiply-accumulates."""
    macs = mac_counts(config)
    return 100.0 * p * macs["main"] / (macs["main"] + macs["other"])


def units(config: dict, seeds: list[int], done: dict) -> list[tuple[str, int]]:
    return [(arm_of(p), seed) for seed in seeds for p in config["sweep_p"]]


def run_one(config: dict, arm: str, seed: int, progress: bool = True) -> dict:
    net = model(config, p_of(arm))
    main_images, images = [0], [0]

    def count(block, inputs, output):  # how many training images each main path saw: the skipping is real
        if block.training:
            main_images[0] += block.main_images
            images[0] += inputs[0].shape[0]

    hooks = [b.register_forward_hook(count) for b in net.modules() if isinstance(b, DepthDropoutBlock)]
    chosen = _cifar.precision_once(lambda: model(config, 0.0), net_key(config), config)  # the baseline's for every p: timings compare
    curves = _cifar.fast_train(net, config, seed, precision=chosen["precision"], monitor="test", progress=progress,
                               desc=f"{arm} seed {seed}")
    for h in hooks:
        h.remove()
    seconds = curves["train_seconds"]  # per epoch: the median is robust to the first epoch's warm-up and stray slow ones
    metrics = {"test_error": curves["monitor_error"][-1], "train_loss": curves["train_loss"][-1],
               "train_seconds_per_epoch": float(np.median(seconds)), "train_seconds_total": float(np.sum(seconds)),
               "main_path_fraction": main_images[0] / max(1, images[0])}
    return {"metrics": metrics, "curves": curves, "precision": chosen}


# --------------------------------------------------------------------------- analysis


def by_p(runs, metric: str) -> dict[float, dict[int, float]]:
    """``metric`` of every net: p -> seed -> value, p in order."""
    return rule.by_seed(sorted(runs, key=lambda r: p_of(r["arm"])), metric, p_of)


def paired(runs) -> tuple[dict[float, dict[int, float]], dict[float, dict[int, float]]]:
    """Per p > 0 and seed, against the same seed's baseline: training time saved per epoch (%), test error added (points)."""
    t, e = by_p(runs, "train_seconds_per_epoch"), by_p(runs, "test_error")
    saved = {p: {s: 100.0 * (1.0 - v / t[0.0][s]) for s, v in ts.items() if s in t[0.0]} for p, ts in t.items() if p > 0}
    added = {p: {s: v - e[0.0][s] for s, v in es.items() if s in e[0.0]} for p, es in e.items() if p > 0}
    return saved, added


def error_against_time(run: dict) -> list[tuple[float, float]]:
    """(training minutes so far, test error %) at each evaluation of ``run``."""
    c = run["curves"]
    return [(t, e) for t, e in zip(np.cumsum(c["train_seconds"]) / 60, c["monitor_error"]) if e is not None]


def baseline_error_at(runs, p: float) -> dict[int, float]:
    """Per seed: the baseline's test error (%) at the training time the same seed's ``p`` net took in all,
    interpolated linearly between the baseline's evaluations (panel (c) read at equal time)."""
    curves = {(p_of(r["arm"]), r["seed"]): error_against_time(r) for r in runs}
    out = {}
    for (q, seed), curve in curves.items():
        if q == p and (0.0, seed) in curves:
            t, e = zip(*curves[0.0, seed])
            out[seed] = float(np.interp(curve[-1][0], t, e))
    return out


def claims(config: dict, runs) -> list[dict]:
    low, high = SAVING_BAND
    saved, up = paired(runs)
    out = [rule.all_of("skipping_saves_wall_time", (
        f"Per-image skipping saves the training time that counting multiply-accumulates predicts: at every p > 0 the "
        f"measured saving per epoch is {low:g} to {high:g} times the predicted one."), [
        rule.band(f"saving_p{p:g}", f"p={p:g}", saved, predicted_saving(config, p), low=low, high=high,
                  name=f"measured / predicted saving at p={p:g}") for p, saved in saved.items()])]
    if 0.5 in up:
        out.append(rule.level(
            "error_cost_at_half", f"At p = 0.5 the test error rises by at most {MAX_ERROR_INCREASE_AT_HALF} points over "
            f"the baseline at equal epochs (the paper: +{PAPER_ERROR_HALF}).", up[0.5], PAPER_ERROR_HALF,
            tolerance=round(MAX_ERROR_INCREASE_AT_HALF - PAPER_ERROR_HALF, 10), name="increase at p=0.5", unit=" points"))
    return out


def facts(result: dict) -> dict[str, str]:
    """The numbers the chapter's prose quotes, formatted from the result (``p0_5``: p = 0.5)."""
    cfg, runs = result["config"], result["runs"]
    errors, loss, main = (by_p(runs, k) for k in ("test_error", "train_loss", "main_path_fraction"))
    saved, up = paired(runs)
    out = {"main_share": rule.fmt(predicted_saving(cfg, 1.0), 0, " %"), "epochs": str(cfg["epochs"]),
           "resnet_main_share": rule.fmt(predicted_saving({**cfg, "net": "resnet"}, 1.0), 0, " %"),
           "resnet_depth": str(cfg["depth"]), "net": net_name(cfg),
           "parameters": rule.fmt(sum(t.numel() for t in model(cfg, 0.0).parameters()) / 1e6, 2, " M"),
           "paper_error_half": f"+{rule.fmt(PAPER_ERROR_HALF, 1)} points", **_cifar.precision_facts(result)}
    for p in errors:
        key = f"p{p:g}".replace(".", "_")
        out[f"test_error_{key}"] = rule.mean_sd(errors[p].values(), 1, " %")
        out[f"train_loss_{key}"] = rule.mean_sd(loss[p].values(), 2)
        out[f"main_fraction_{key}"] = rule.fmt(100 * np.mean(list(main[p].values())), 1, " %")
        for name, at in (("first", 0), ("last", -1)):  # panel (c): error against training time, mean of seeds
            t, e = np.mean([error_against_time(r)[at] for r in runs if p_of(r["arm"]) == p], axis=0)
            out[f"{name}_{key}"] = f"{rule.fmt(e, 1, ' %')} after {rule.fmt(t, 1)} min"
        if p > 0:
            out[f"saving_{key}"] = rule.mean_sd(saved[p].values(), 1, " %")
            out[f"predicted_{key}"] = rule.fmt(predicted_saving(cfg, p), 1, " %")
            out[f"increase_{key}"] = rule.mean_sd(up[p].values(), 1, " points")
            ratio = {s: v / predicted_saving(cfg, p) for s, v in saved[p].items()}
            out[f"ratio_{key}"] = ", ".join(rule.fmt(ratio[s], 2) for s in sorted(ratio))
            out[f"baseline_at_end_{key}"] = rule.mean_sd(baseline_error_at(runs, p).values(), 1, " %")
    return out


# --------------------------------------------------------------------------- presentation


def figure(result: dict):
    """(a) training seconds per epoch against the prediction, (b) test error per p, (c) test error against time."""
    import matplotlib.pyplot as plt

    cfg = result["config"]
    times, errors = by_p(result["runs"], "train_seconds_per_epoch"), by_p(result["runs"], "test_error")
    ps = list(times)
    colors = dict(zip(ps, plotting.palette(len(ps))))
    fig, (ax, bx, cx) = plt.subplots(1, 3, figsize=(13, 4.0))
    x, base = np.arange(len(ps)), np.mean(list(times[0.0].values()))
    ax.bar(x, [np.mean(list(times[p].values())) for p in ps], color=[colors[p] for p in ps], label="measured (mean over seeds)")
    ax.scatter(x, [base * (1 - predicted_saving(cfg, p) / 100) for p in ps], marker="_", s=900, color="k", zorder=3,
               label="predicted from multiply-accumulates")
    ax.set_xticks(x, [arm_of(p) for p in ps])
    ax.set_ylabel("training seconds per epoch")
    ax.set_title("(a) training time", fontsize=9)
    ax.legend(fontsize=8, loc="lower left")
    for p in ps:
        errs = list(errors[p].values())
        bx.scatter([arm_of(p)] * len(errs), errs, color=colors[p], alpha=0.6, s=18)
        bx.errorbar([arm_of(p)], [np.mean(errs)], yerr=[np.std(errs, ddof=1)] if len(errs) > 1 else None,
                    marker="o", color=colors[p], capsize=4, markersize=8)
    bx.set_ylabel("test error (%)")
    bx.set_title("(b) test error after equal epochs (dots: seeds)", fontsize=9)
    for run in result["runs"]:
        p = p_of(run["arm"])
        cx.plot(*zip(*error_against_time(run)), marker="o", markersize=3, color=colors[p], alpha=0.7,
                label=arm_of(p) if run["seed"] == result["seeds"][0] else None)
    threads = result["provenance"]["hardware"]["torch_threads"]
    cx.set(xlabel=f"training wall time (minutes, {threads} thread{'s' if threads != 1 else ''})", ylabel="test error (%)")
    cx.set_title("(c) test error against training time", fontsize=9)
    cx.legend(fontsize=8)
    fig.suptitle(f"Depth dropout, {net_name(cfg)} by the fast recipe, {data.CIFAR10_JPEG_NOTE}, "
                 f"{cfg['train_size'] or 50_000 - cfg['val_size']:,} training images, {cfg['epochs']} epochs "
                 f"({result['profile']} profile)", fontsize=10)
    fig.tight_layout()
    return fig


def table(result: dict) -> pd.DataFrame:
    """Training-time saving and error change per p, beside the paper's abstract."""
    cfg, runs = result["config"], result["runs"]
    paper = {v["id"]: v["value"] for v in result["paper_values"]}
    rows = [{"setting": f"paper, {which} (abstract)", "training time saved (%)": rule.fmt(paper[f"speedup_{key}"], 1),
             "predicted from MACs (%)": "", "test error (%)": "", "change (points)": f"{paper[f'error_{key}']:+g}"}
            for which, key in (("ratio not stated", "small_ratio"), ("p = 0.5", "half"))]
    saved, up = paired(runs)
    for p, errs in by_p(runs, "test_error").items():
        rows.append({"setting": f"ours, {arm_of(p)}",
                     "training time saved (%)": rule.mean_sd(saved[p].values(), 1) if p else "",
                     "predicted from MACs (%)": rule.fmt(predicted_saving(cfg, p), 1),
                     "test error (%)": rule.mean_sd(errs.values()),
                     "change (points)": rule.mean_sd(up[p].values()) if p else ""})
    return pd.DataFrame(rows).set_index("setting")


FIGURES = {"figure": figure}
TABLES = {"paper_vs_ours": table}

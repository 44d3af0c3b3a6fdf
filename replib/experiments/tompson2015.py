"""Tompson et al. (2015), Figure 14(b) and section 3.2: SpatialDropout in a fully convolutional net.

Tompson, Goroshin, Jain, LeCun, Bregler, "Efficient Object Localization Using
Convolutional Networks", CVPR 2015. Section 3.2: in a fully convolutional net,
neighbouring activations of a feature map are strongly correlated, so standard
(element-wise) dropout before the first 1x1 convolution "did not prevent over-training",
while dropping whole feature maps (SpatialDropout) does, "especially on the FLIC dataset,
where the training set size is small". Figure 14(b) plots the FLIC wrist detection rate
with and without SpatialDropout.

Heat-map regression on the synthetic FLIC substitute of :mod:`replib.keypoints` with
:class:`HeatmapNet` (dropout before its first 1x1 convolution), scored by FLIC's detection
rate on held-out images, at two training-set sizes (the small set is the first images of
the large one; both see the same number of training images). Units ``<size>/<arm>``, arms
``none``, ``dropout`` (element-wise) and ``spatial`` at the same p. Every net also records the
diagnostic behind the paper's argument: the correlation of activations 1-4 pixels apart in
the maps entering the dropout layer.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from .. import claims as rule
from .. import data
from .. import keypoints as kp
from .._validate import DropProbability, NonNegativeInt, PositiveFloat, PositiveInt, Spec, Widths
from ..models import DROPOUT_KINDS, HeatmapNet
from ..train import adam_schedule, fit, minibatches

PAPER = "tompson2015"
TITLE = "Tompson et al. 2015: SpatialDropout"
CITE = "tompson2015"  # its key in book/references.bib
HEADLINE = "Dropping whole feature maps regularizes a fully convolutional net where element-wise dropout does not, most on small training sets."  # the claim tested, in a line
DATASETS = ("mnist", "cifar10")  # the data mirror's folders its units read (digits on CIFAR-10 backgrounds)
ARMS = DROPOUT_KINDS
SIZES = ("small", "large")  # the two training sets, in the order of ``train_sizes``
STRIDE = 4  # HeatmapNet pools twice: heat-maps are 1/4 of the image's side
OFFSETS = (1, 2, 3, 4)  # pixel distances at which neighbouring activations are correlated


class Config(Spec):
    train_sizes: Annotated[list[PositiveInt], Field(min_length=2, max_length=2)] = Field(
        [300, 1200], description="the small and the large training set, the small one the first images of the large "
                                 "one (FLIC has 3,987): small enough that the nets over-fit")
    test_size: PositiveInt = Field(1000, description="held-out images (FLIC: 1,016), from MNIST and CIFAR-10 test splits")
    image_size: Annotated[int, Field(ge=64, multiple_of=STRIDE)] = Field(
        64, description="pixels per side (the digits are up to 56 px); heat-maps are image_size / 4")
    sigma: PositiveFloat = Field(1.5, description="sd of the target Gaussians in heat-map pixels, as the paper")
    data_seed: NonNegativeInt = Field(0, description="the generated images (the same for every seed and arm)")
    channels: Annotated[list[PositiveInt], Field(min_length=4, max_length=4)] = Field(
        [16, 32, 32, 64], description="feature maps of HeatmapNet's four 5x5 convolutions")
    hidden: Widths = Field([64], max_length=1, description="feature maps of the one hidden 1x1 convolution")
    p: DropProbability = Field(0.5, description="drop probability of both dropout arms, before the first 1x1 convolution")
    epochs: PositiveInt = Field(
        120, description="epochs on the small set, long enough that its no-dropout net is well past its best held-out "
                         "loss; the large set trains for as many images (epochs x small / large, rounded)")
    batch_size: PositiveInt = Field(32, description="images per minibatch")
    lr: PositiveFloat = Field(1e-3, description="Adam's learning rate")
    monitor_size: PositiveInt = Field(
        250, description="the first n test images give the per-epoch held-out loss (all of them the final scores)")
    correlation_size: PositiveInt = Field(250, description="test images on which neighbouring-activation correlations are measured")

    @model_validator(mode="after")
    def _sizes_fit(self):
        small, large = self.train_sizes
        if small >= large:
            raise ValueError(f"train_sizes must be [small, large] with small < large, got {self.train_sizes!r}")
        for key in ("monitor_size", "correlation_size"):
            if getattr(self, key) > self.test_size:
                raise ValueError(f"{key} ({getattr(self, key)}) must not exceed test_size ({self.test_size})")
        return self


PROFILES = {
    "smoke": {"train_sizes": [48, 96], "test_size": 48, "channels": [4, 8, 8, 8], "hidden": [8], "epochs": 2,
              "monitor_size": 16, "correlation_size": 16, "seeds": 2},
    "cpu": {"seeds": 5},
    # A quarter of FLIC's training set and all of it, FLIC's test size, a wider net; the paper's
    # training length and drop rate are not in shared/PAPERS.md, these are ours.
    "paper": {"train_sizes": [1000, 3987], "test_size": 1016, "channels": [64, 128, 128, 256], "hidden": [256],
              "epochs": 100, "monitor_size": 1016, "correlation_size": 1000, "seeds": 5},
}

# Figure 14(b) "Impact of SpatialDropout", FLIC wrist: detection rate (%) against normalized
# distance, with and without SpatialDropout (read from the plot; shared/PAPERS.md).
_FIG14B = {
    "spatial": (4.9, 23.3, 51.2, 70.1, 80.1, 84.7, 86.8, 88.7, 90.1),
    "none": (4.1, 21.6, 48.5, 66.9, 76.3, 80.7, 83.1, 84.6, 85.8),
}
PAPER_VALUES = [
    {
        "id": f"fig14b_{arm}_{t}", "arm": arm, "threshold": t, "value": value, "unit": "% detection rate",
        "what": "FLIC wrist, " + ("with SpatialDropout" if arm == "spatial" else
                                  "without SpatialDropout (the figure does not say whether other dropout was used)"),
        "where": "Tompson et al. 2015 (CVPR), Figure 14(b) 'Impact of SpatialDropout', values read from the plot",
        "confirmed": True,
    }
    for arm, values in _FIG14B.items() for t, value in zip(kp.THRESHOLDS, values)
]
# "Close": element-wise dropout is within half of the paper's own SpatialDropout gain (mean
# over the nine thresholds of Figure 14(b), 3.1 points) of no dropout. Fixed before any cpu run.
PAPER_MEAN_GAIN = float(np.mean(np.subtract(_FIG14B["spatial"], _FIG14B["none"])))
CLOSE_POINTS = PAPER_MEAN_GAIN / 2
# "Strongly correlated": mean Pearson r of activations one pixel apart at least this large.
STRONG_CORRELATION = 0.5


def arm_of(size: int, kind: str) -> str:
    return f"{size}/{kind}"


def arms_of(config: dict) -> list[str]:
    """Every arm of ``config``: each training-set size with each dropout kind."""
    return [arm_of(n, kind) for n in config["train_sizes"] for kind in ARMS]


def epochs_for(config: dict, size: int) -> int:
    """Epochs on ``size`` training images: as many images as ``epochs`` on the small set, at least one epoch."""
    return max(1, round(config["epochs"] * config["train_sizes"][0] / size))


def units(config: dict, seeds: list[int], done: dict) -> list[tuple[str, int]]:
    return [(arm, seed) for seed in seeds for arm in arms_of(config)]


# --------------------------------------------------------------------------- diagnostics


@torch.no_grad()
def neighbour_correlation(acts: torch.Tensor, offsets=OFFSETS) -> list[float]:
    """Pearson correlation of activations ``d`` pixels apart in the same feature map, for each ``d`` in ``offsets``.

    ``acts``: ``(N, C, H, W)``. For each channel and direction (horizontal, vertical), the
    pairs at distance ``d`` over every image and position are correlated; the result is the
    mean over both directions and over the channels that vary (a dead ReLU map has no
    correlation). NaN if no channel varies.
    """
    if acts.dim() != 4:
        raise ValueError(f"neighbour_correlation needs (N, C, H, W) activations, got shape {tuple(acts.shape)}")
    a = acts.double().transpose(0, 1)  # (C, N, H, W)
    out = []
    for d in offsets:
        if d >= min(a.shape[-2:]):
            raise ValueError(f"offset {d} does not fit {tuple(a.shape[-2:])} feature maps")
        per_direction = []
        for first, second in ((a[..., :, :-d], a[..., :, d:]), (a[..., :-d, :], a[..., d:, :])):
            u = first.flatten(1) - first.flatten(1).mean(1, keepdim=True)
            v = second.flatten(1) - second.flatten(1).mean(1, keepdim=True)
            su, sv = u.pow(2).mean(1).sqrt(), v.pow(2).mean(1).sqrt()
            live = (su > 1e-8) & (sv > 1e-8)
            per_direction.append(torch.where(live, (u * v).mean(1) / (su * sv).clamp_min(1e-30), torch.nan))
        r = torch.stack(per_direction).nanmean(0)  # (C,): both directions, where defined
        out.append(float(r.nanmean()) if bool(r.isfinite().any()) else float("nan"))
    return out


@torch.no_grad()
def inputs_of(model: nn.Module, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What ``module`` receives when ``model`` (in eval mode) runs on ``x``."""
    seen = []
    handle = module.register_forward_hook(lambda mod, args, out: seen.append(args[0].detach()))
    try:
        was_training = model.training
        model.eval()
        model(x)
        model.train(was_training)
    finally:
        handle.remove()
    return seen[0]


def _r(values, digits: int = 4) -> list[float]:
    """Stored metrics, rounded."""
    return [round(float(v), digits) for v in np.asarray(values, dtype=float).reshape(-1)]


# --------------------------------------------------------------------------- runs


@torch.no_grad()
def predict_heatmaps(model: nn.Module, x: torch.Tensor, batch_size: int = 250) -> torch.Tensor:
    was_training = model.training
    model.eval()
    out = torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out


def heatmap_loss(model: nn.Module, batch) -> torch.Tensor:
    """Mean squared error of the predicted heat-maps to the Gaussian targets."""
    x, y = batch
    return F.mse_loss(model(x), y)


def training_set(config: dict, size: int) -> kp.KeypointData:
    """The first ``size`` images of the large training set (generated once per process)."""
    common = {"image_size": config["image_size"], "stride": STRIDE, "sigma": config["sigma"]}
    full = kp.cached(config["train_sizes"][-1], "train", 2 * config["data_seed"], **common)
    return dataclasses.replace(full, **{f.name: getattr(full, f.name)[:size] for f in dataclasses.fields(full)
                                        if isinstance(getattr(full, f.name), torch.Tensor)})


def test_set(config: dict) -> kp.KeypointData:
    return kp.cached(config["test_size"], "test", 2 * config["data_seed"] + 1, image_size=config["image_size"],
                     stride=STRIDE, sigma=config["sigma"])


def run_one(config: dict, arm: str, seed: int, progress: bool = True) -> dict:
    """Train one net: ``arm`` is ``<training images>/<dropout>``, e.g. ``300/spatial``."""
    if arm not in arms_of(config):
        raise ValueError(f"arm must be one of {arms_of(config)}, got {arm!r}")
    size, kind = int(arm.split("/")[0]), arm.split("/")[1]
    train, test, device = training_set(config, size), test_set(config), config["device"]
    mean, sd = float(train.images.mean()), float(train.images.std())
    x_train, x_test = (((d.images - mean) / sd).to(device) for d in (train, test))
    y_train, y_test = train.heatmaps.to(device), test.heatmaps.to(device)
    n = config["monitor_size"]
    model = HeatmapNet(config["channels"], config["hidden"][0], len(kp.KEYPOINTS), kind, config["p"]).to(device)
    curves = fit(
        model, minibatches((x_train, y_train), config["batch_size"], seed), epochs=epochs_for(config, size),
        optimizer=torch.optim.Adam(model.parameters(), lr=config["lr"]), schedule=adam_schedule(config["lr"]),
        loss=heatmap_loss, monitor=lambda m: {"loss": float(F.mse_loss(predict_heatmaps(m, x_test[:n]), y_test[:n]))},
        progress=progress, desc=f"{arm} seed {seed}",
    )
    maps = predict_heatmaps(model, x_test)
    pred = kp.heatmap_peaks(maps.cpu(), STRIDE)
    rate = kp.detection_rate(pred, test.keypoints, test.size)  # (T, K)
    train_rate = kp.detection_rate(kp.heatmap_peaks(predict_heatmaps(model, x_train).cpu(), STRIDE),
                                   train.keypoints, train.size)
    corr = neighbour_correlation(inputs_of(model, model.drop, x_test[: config["correlation_size"]]))
    metrics = {
        "detection_rate": _r(rate.mean(1), 2),  # % at each of kp.THRESHOLDS, all keypoints pooled
        "detection_rate_per_keypoint": {name: _r(rate[:, k], 2) for k, name in enumerate(kp.KEYPOINTS)},
        "mean_detection_rate": round(float(rate.mean()), 3),  # mean over the thresholds: the area under the curve
        "train_mean_detection_rate": round(float(train_rate.mean()), 3),
        "test_loss": float(F.mse_loss(maps, y_test)),
        "train_loss": curves["train_loss"][-1],
        "neighbour_correlation": _r(corr),  # at OFFSETS pixels, at the input of the dropout layer
        "seconds_per_epoch": float(np.mean(curves["seconds"])),
        "data": test.source,
    }
    if seed == 0 and size == config["train_sizes"][0]:  # held-out images with truth and prediction, for the picture
        metrics["examples"] = {
            "images": (test.images[:4, 0] * 255).round().to(torch.uint8).tolist(),
            "truth": [[_r(p, 2) for p in img] for img in test.keypoints[:4]],
            "pred": [[_r(p, 2) for p in img] for img in pred[:4]],
        }
    return {"metrics": metrics, "curves": curves}


# --------------------------------------------------------------------------- analysis


def _by(runs: list[dict], size: int) -> dict[str, list[dict]]:
    """The runs on ``size`` training images per dropout kind, in seed order."""
    return {k: sorted((r for r in runs if r["arm"] == arm_of(size, k)), key=lambda r: r["seed"]) for k in ARMS}


def per_seed(runs: list[dict], size: int, key: str) -> dict[str, dict[int, float]]:
    """Metric ``key`` on ``size`` training images: dropout kind -> seed -> value."""
    return {k: {r["seed"]: r["metrics"][key] for r in rs} for k, rs in _by(runs, size).items()}


def sizes(config: dict) -> dict[str, int]:
    """``small`` and ``large``: the two training-set sizes."""
    return dict(zip(SIZES, config["train_sizes"], strict=True))


def gain(runs: list[dict], size: int, arm: str = "spatial", base: str = "none") -> dict[int, float]:
    """Held-out mean detection rate of ``arm`` minus ``base`` on ``size`` training images, per seed."""
    rate = per_seed(runs, size, "mean_detection_rate")
    return {s: rate[arm][s] - rate[base][s] for s in rate[arm] if s in rate[base]}


def r_at_one_pixel(runs: list[dict]) -> dict[str, dict[str, float]]:
    """Correlation of activations one pixel apart entering each net's dropout layer: kind -> net ("<size>, seed s") -> r."""
    out: dict[str, dict[str, float]] = {k: {} for k in ARMS}
    for r in runs:
        size, kind = r["arm"].split("/")
        out[kind][f"{size} images, seed {r['seed']}"] = r["metrics"]["neighbour_correlation"][0]
    return out


def claims(config: dict, runs: list[dict]) -> list[dict]:
    """The chapter's claims, decided by :mod:`replib.claims`' rule over seeds; thresholds fixed above."""
    out = []
    for tag, n in sizes(config).items():
        rate = per_seed(runs, n, "mean_detection_rate")
        out += [
            rule.direction(f"spatial_beats_none_{tag}", f"On {n:,} training images, SpatialDropout gives a higher "
                           "held-out detection rate than no dropout (the mean over the nine normalized distances "
                           "of Figure 14(b)).", rate["spatial"], rate["none"], claimed="greater",
                           names=("spatial", "none"), unit=" points"),
            rule.direction(f"spatial_beats_dropout_{tag}", f"On {n:,} training images, at the same drop probability, "
                           "SpatialDropout gives a higher held-out detection rate than element-wise dropout.",
                           rate["spatial"], rate["dropout"], claimed="greater", names=("spatial", "dropout"),
                           unit=" points"),
            rule.equivalence(f"dropout_close_to_none_{tag}", (
                f"On {n:,} training images, element-wise dropout before the 1x1 convolution changes the held-out "
                f"detection rate by at most {rule.fmt(CLOSE_POINTS, 1)} points from no dropout (half the paper's own "
                f"SpatialDropout gain, {rule.fmt(PAPER_MEAN_GAIN, 1)} points averaged over Figure 14(b)'s distances)."),
                rate["dropout"], rate["none"], margin=CLOSE_POINTS, names=("dropout", "none"), unit=" points"),
        ]
    small, large = config["train_sizes"]
    out.append(rule.direction(
        "gain_larger_on_small_set", f"SpatialDropout helps most where the training set is small: its gain over no "
        f"dropout is larger on {small:,} training images than on {large:,}.", gain(runs, small), gain(runs, large),
        claimed="greater", names=(f"gain on {small:,}", f"gain on {large:,}"), unit=" points"))
    r1 = r_at_one_pixel(runs)
    out.append(rule.check("neighbours_correlated", (
        "The premise: in every trained localization net, activations one pixel apart in the maps entering the "
        f"dropout layer are strongly correlated (Pearson r >= {rule.fmt(STRONG_CORRELATION, 1)})."),
        all(r >= STRONG_CORRELATION for d in r1.values() for r in d.values()),
        {f"r at 1 px, {ARM_LABELS[k]}": f"lowest {rule.fmt(min(d.values()))} of {len(d)} nets, mean "
         f"{rule.fmt(np.mean(list(d.values())))}" for k, d in r1.items()},
        why="our images are smooth (backgrounds upsampled from 32x32 CIFAR-10 crops) and neighbouring positions "
            "of the maps share most of their receptive field, so these maps are correlated before any training "
            "(an untrained HeatmapNet already gives r above the threshold); it describes the substitute data, "
            "not a finding"))
    return out


def facts(result: dict) -> dict[str, str]:
    """The numbers the chapter's prose quotes, formatted from the result."""
    runs, cfg = result["runs"], result["config"]
    out = {}
    for tag, n in sizes(cfg).items():
        for name, key in (("rate", "mean_detection_rate"), ("train_rate", "train_mean_detection_rate")):
            out |= {f"{name}_{k}_{tag}": rule.mean_sd(v.values(), 1, " %") for k, v in per_seed(runs, n, key).items()}
        for a, b in (("spatial", "none"), ("spatial", "dropout"), ("dropout", "none")):
            diff = list(gain(runs, n, a, b).values())
            out |= {f"gain_{a}_{b}_{tag}": rule.fmt_interval(*rule.interval(diff), 1, " points"),
                    f"gain_{a}_{b}_{tag}_per_seed": rule.per_seed(diff, 1)}
        curves = _rates(result, n)
        by_distance = (curves["spatial"] - curves["none"]).mean(0)  # per normalized distance, mean over seeds
        out |= {f"gain_largest_at_{tag}": f"{kp.THRESHOLDS[int(by_distance.argmax())]:g}",
                f"gain_largest_{tag}": rule.fmt(by_distance.max(), 1), f"size_{tag}": f"{n:,}",
                f"epochs_{tag}": str(epochs_for(cfg, n))}
    small, large = cfg["train_sizes"]
    diff = rule.paired(gain(runs, small), gain(runs, large))
    r1 = r_at_one_pixel(runs)
    return out | {
        "gain_difference": rule.fmt_interval(*rule.interval(diff), 1, " points"),
        "gain_difference_per_seed": rule.per_seed(diff, 1),
        "r1_lowest": rule.fmt(min(r for d in r1.values() for r in d.values())),
        "r1_mean": rule.fmt(np.mean([r for d in r1.values() for r in d.values()])),
        "paper_gain": rule.fmt(PAPER_MEAN_GAIN, 1), "close_points": rule.fmt(CLOSE_POINTS, 1),
        "seeds": str(len(result["seeds"])),
        "minutes_per_net": rule.fmt(np.mean([r["wall_seconds"] for r in runs]) / 60, 1),
    }


# --------------------------------------------------------------------------- presentation

ARM_LABELS = {"none": "no dropout", "dropout": "element-wise dropout", "spatial": "SpatialDropout"}


def _backgrounds(result: dict) -> str:
    """What the CIFAR-10 backgrounds were: the JPEG copy (say so in every figure) or the original."""
    jpeg = any("JPEG" in r["metrics"]["data"] for r in result["runs"])
    return data.CIFAR10_JPEG_NOTE if jpeg else "CIFAR-10"


def _colors() -> dict:
    from .. import plotting

    return dict(zip(ARMS, plotting.palette(len(ARMS))))


def _rates(result: dict, size: int) -> dict[str, np.ndarray]:
    """Held-out detection rate (%) per normalized distance: kind -> (seeds, thresholds)."""
    return {k: np.array([r["metrics"]["detection_rate"] for r in rs]) for k, rs in _by(result["runs"], size).items()}


def table(result: dict) -> pd.DataFrame:
    """Figure 14(b) as a table: paper (FLIC wrist) vs ours (all four keypoints, each training-set size), mean ± sd over seeds."""
    paper = {(v["arm"], v["threshold"]): v["value"] for v in result["paper_values"]}
    ours = {n: _rates(result, n) for n in result["config"]["train_sizes"]}
    rows = [{"normalized distance": f"{t:g}", "paper: with SpatialDropout": rule.fmt(paper[("spatial", t)], 1),
             "paper: without": rule.fmt(paper[("none", t)], 1),
             **{f"ours, {n:,} images: {ARM_LABELS[k]}": rule.mean_sd(c[:, i], 1, count=False)
                for n, curves in ours.items() for k, c in curves.items()}}
            for i, t in enumerate(kp.THRESHOLDS)]
    rows.append({"normalized distance": "mean", "paper: with SpatialDropout": rule.fmt(np.mean(_FIG14B["spatial"]), 1),
                 "paper: without": rule.fmt(np.mean(_FIG14B["none"]), 1),
                 **{f"ours, {n:,} images: {ARM_LABELS[k]}": rule.mean_sd(c.mean(1), 1, count=False)
                    for n, curves in ours.items() for k, c in curves.items()}})
    return pd.DataFrame(rows).set_index("normalized distance")


def table_sizes(result: dict) -> pd.DataFrame:
    """Per training-set size and arm: held-out and training detection rate (mean over distances) and their gap."""
    rows = []
    for n in result["config"]["train_sizes"]:
        for k, rs in _by(result["runs"], n).items():
            held, own = ([r["metrics"][key] for r in rs] for key in ("mean_detection_rate", "train_mean_detection_rate"))
            rows.append({"training images": f"{n:,}", "arm": ARM_LABELS[k], "held-out rate (%)": rule.mean_sd(held, 1),
                         "training rate (%)": rule.mean_sd(own, 1),
                         "training − held-out (points)": rule.mean_sd(np.subtract(own, held), 1)})
    return pd.DataFrame(rows).set_index(["training images", "arm"])


def figure(result: dict):
    """Ours beside Figure 14(b) at each training-set size, and SpatialDropout's gain against the size."""
    import matplotlib.pyplot as plt

    colors, cfg, t = _colors(), result["config"], np.array(kp.THRESHOLDS)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), gridspec_kw={"width_ratios": [1, 1, 0.8]})
    for ax, n, letter in zip(axes, cfg["train_sizes"], "ab"):
        for k, c in _rates(result, n).items():
            sd = c.std(0, ddof=1) if len(c) > 1 else np.zeros(len(t))
            ax.plot(t, c.mean(0), marker="o", color=colors[k], label=f"ours: {ARM_LABELS[k]}")
            ax.fill_between(t, c.mean(0) - sd, c.mean(0) + sd, color=colors[k], alpha=0.2, linewidth=0)
        for arm, style in (("spatial", "-"), ("none", ":")):
            ax.plot(t, _FIG14B[arm], color="0.35", linestyle=style, marker="x", markersize=4, linewidth=1.2,
                    label=f"paper, FLIC wrist: {'with' if arm == 'spatial' else 'without'} SpatialDropout")
        ax.set(xlabel="normalized distance (error / digit ink height)", ylabel="held-out detection rate (%)",
               ylim=(0, 100))
        ax.set_title(f"({letter}) {n:,} training images, {epochs_for(cfg, n)} epochs", fontsize=10)
    axes[0].legend(fontsize=7.5, loc="lower right")
    bx = axes[2]
    for k, offset in (("spatial", -0.04), ("dropout", 0.04)):
        per = [list(gain(result["runs"], n, k).values()) for n in cfg["train_sizes"]]
        x = np.log10(cfg["train_sizes"]) + offset
        for xi, values in zip(x, per):
            bx.scatter(np.full(len(values), xi), values, color=colors[k], alpha=0.5, s=18)
        bx.plot(x, [np.mean(v) for v in per], marker="o", color=colors[k], label=f"{ARM_LABELS[k]} − no dropout")
    bx.axhline(0, color="0.5", linewidth=0.8)
    bx.axhline(PAPER_MEAN_GAIN, color="0.35", linestyle="-.", linewidth=1,
               label=f"paper's SpatialDropout gain, FLIC wrist ({rule.fmt(PAPER_MEAN_GAIN, 1)})")
    bx.set_xticks(np.log10(cfg["train_sizes"]), [f"{n:,}" for n in cfg["train_sizes"]])
    bx.set(xlabel="training images", ylabel="held-out rate minus no dropout (points)")
    bx.set_title("(c) gain over no dropout, one dot per seed", fontsize=10)
    bx.legend(fontsize=7.5)
    fig.suptitle(f"FLIC substitute: MNIST digits on {_backgrounds(result)} backgrounds, 4 keypoints, "
                 f"{cfg['test_size']:,} held-out images, mean ± sd over {len(result['seeds'])} seeds "
                 f"({result['profile']} profile)", fontsize=10)
    fig.tight_layout()
    return fig


def figure_overfitting(result: dict):
    """Heat-map loss per epoch on the training images and the held-out monitor images, at each training-set size."""
    import matplotlib.pyplot as plt

    colors, cfg = _colors(), result["config"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, n, letter in zip(axes, cfg["train_sizes"], "ab"):
        for k, rs in _by(result["runs"], n).items():
            for key, style, split in (("monitor_loss", "-", "held out"), ("train_loss", "--", "training")):
                curve = np.array([r["curves"][key] for r in rs]).mean(0)
                ax.plot(np.arange(1, len(curve) + 1), curve, color=colors[k], linestyle=style,
                        linewidth=1.5 if style == "-" else 1, label=f"{ARM_LABELS[k]}, {split}")
        ax.set(yscale="log", xlabel="epoch", ylabel="heat-map MSE")
        ax.set_title(f"({letter}) {n:,} training images, p = {cfg['p']}", fontsize=10)
    axes[0].legend(fontsize=7, ncol=2)
    fig.suptitle(f"Over-fitting: loss on the training images (dashed) and the first {cfg['monitor_size']} held-out "
                 f"images (solid), mean over seeds ({result['profile']} profile)", fontsize=10)
    fig.tight_layout()
    return fig


def figure_examples(result: dict):
    """Four held-out images with the true keypoints (circles) and each arm's first-seed predictions (crosses)."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    colors = _colors()
    shown = {r["arm"].split("/")[1]: r["metrics"]["examples"] for r in result["runs"] if "examples" in r["metrics"]}
    first = next(iter(shown.values()))
    fig, axes = plt.subplots(1, len(first["images"]), figsize=(2.6 * len(first["images"]), 2.9))
    for i, ax in enumerate(np.atleast_1d(axes)):
        ax.imshow(np.array(first["images"][i]), cmap="gray", vmin=0, vmax=255)
        truth = np.array(first["truth"][i])
        ax.scatter(truth[:, 0], truth[:, 1], s=40, facecolors="none", edgecolors="white", linewidths=1.5)
        for k, ex in shown.items():
            pred = np.array(ex["pred"][i])
            ax.scatter(pred[:, 0], pred[:, 1], marker="x", s=22, color=colors[k], label=ARM_LABELS[k] if i == 0 else None)
        ax.set(xticks=[], yticks=[])
        ax.grid(False)
    truth = Line2D([], [], marker="o", markerfacecolor="none", markeredgecolor="0.3", linestyle="")
    handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
    fig.legend([truth, *handles], ["truth (white circles)", *labels], loc="lower center", ncol=4, fontsize=8,
               frameon=False)
    fig.suptitle(f"Held-out images ({', '.join(kp.KEYPOINTS)} keypoints), nets trained on "
                 f"{result['config']['train_sizes'][0]:,} images; backgrounds: {_backgrounds(result)}", fontsize=9)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def figure_correlation(result: dict):
    """Correlation of activations d pixels apart at the input of the dropout layer, per arm and training-set size."""
    import matplotlib.pyplot as plt

    colors, cfg = _colors(), result["config"]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for n, style in zip(cfg["train_sizes"], ("-", "--")):
        for k, rs in _by(result["runs"], n).items():
            c = np.array([r["metrics"]["neighbour_correlation"] for r in rs]).mean(0)
            ax.plot(OFFSETS[: len(c)], c, marker="o", linestyle=style, color=colors[k],
                    label=f"{ARM_LABELS[k]}, {n:,} images")
    ax.axhline(STRONG_CORRELATION, color="0.5", linewidth=0.8, linestyle=":")
    ax.set(xlabel="distance between activations (pixels of the feature map)", ylabel="Pearson r (mean over feature maps)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=8)
    ax.set_title(f"Maps entering the dropout layer, trained nets, mean over seeds ({result['profile']} profile)",
                 fontsize=10)
    fig.tight_layout()
    return fig


FIGURES = {"figure14b": figure, "overfitting": figure_overfitting, "examples": figure_examples,
           "correlation": figure_correlation}
TABLES = {"paper_vs_ours": table, "sizes": table_sizes}

"""Tompson et al. (2015), Figure 14(b) and section 3.2: SpatialDropout in a fully convolutional net.

Tompson, Goroshin, Jain, LeCun, Bregler, "Efficient Object Localization Using
Convolutional Networks", CVPR 2015. Section 3.2: in a fully convolutional net,
neighbouring activations of a feature map are strongly correlated, so standard
(element-wise) dropout before the first 1x1 convolution "did not prevent over-training",
while dropping whole feature maps (SpatialDropout) does, "especially on the FLIC dataset,
where the training set size is small". Figure 14(b) plots the FLIC wrist detection rate
with and without SpatialDropout.

Units ``<task>/<arm>``, arms ``none``, ``dropout`` (element-wise) and ``spatial`` at the same p:
``keypoints``, heat-map regression on the synthetic FLIC substitute of :mod:`replib.keypoints`
with :class:`HeatmapNet` (dropout before its first 1x1 convolution, a training set small
enough to over-fit), scored by FLIC's detection rate on held-out images; ``cifar``, a small
:class:`ConvNet` on a CIFAR-10 subset with dropout after every block (beyond the paper: shown
apart, not counted). Every net also records the diagnostic behind the paper's argument: the
correlation of activations 1-4 pixels apart in the maps entering the dropout layer.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from .. import claims as rule
from .. import data, seeding
from .. import keypoints as kp
from .._validate import DropProbability, NonNegativeInt, PositiveFloat, PositiveInt, Spec, Widths
from ..models import DROPOUT_KINDS, ConvNet, HeatmapNet
from ..train import adam_schedule, fit, minibatches
from . import _cifar

PAPER = "tompson2015"
TITLE = "Tompson et al. 2015: SpatialDropout"
ARMS = DROPOUT_KINDS
TASKS = ("keypoints", "cifar")
UNITS = tuple(f"{task}/{kind}" for task in TASKS for kind in ARMS)
STRIDE = 4  # HeatmapNet pools twice: heat-maps are 1/4 of the image's side
OFFSETS = (1, 2, 3, 4)  # pixel distances at which neighbouring activations are correlated


class CifarCheck(_cifar.CifarTraining.with_defaults(train_size=5000, batch_size=64, lr=0.02, weight_decay=5e-4,
                                                    crop_flip=False)):
    """The CIFAR-10 check (not in the paper): :class:`ConvNet` on :mod:`~replib.experiments._cifar`'s split, no augmentation."""

    val_size: PositiveInt = Field(1000, description="held out of the 50,000 training images, for the per-epoch monitor curve")
    channels: Annotated[list[PositiveInt], Field(min_length=3, max_length=3)] = Field(
        [32, 64, 128], description="one 3x3 convolution per block, each followed by max-pool and dropout")
    p: DropProbability = Field(0.2, description="drop probability of both dropout arms after every block")
    epochs: PositiveInt = Field(15, description="passes over the training images")


class Config(Spec):
    train_size: PositiveInt = Field(300, description="training images; FLIC has 3,987: what matters is a set small enough to over-fit")
    test_size: PositiveInt = Field(1000, description="held-out images (FLIC: 1,016), from MNIST and CIFAR-10 test splits")
    image_size: Annotated[int, Field(ge=64, multiple_of=STRIDE)] = Field(
        64, description="pixels per side (the digits are up to 56 px); heat-maps are image_size / 4")
    sigma: PositiveFloat = Field(1.5, description="sd of the target Gaussians in heat-map pixels, as the paper")
    data_seed: NonNegativeInt = Field(0, description="the generated images (the same for every seed and arm)")
    channels: Annotated[list[PositiveInt], Field(min_length=4, max_length=4)] = Field(
        [16, 32, 32, 64], description="feature maps of HeatmapNet's four 5x5 convolutions")
    hidden: Widths = Field([64], max_length=1, description="feature maps of the one hidden 1x1 convolution")
    p: DropProbability = Field(0.5, description="drop probability of both dropout arms, before the first 1x1 convolution")
    epochs: PositiveInt = Field(120, description="long enough that the no-dropout net is well past its best held-out loss")
    batch_size: PositiveInt = Field(32, description="images per minibatch")
    lr: PositiveFloat = Field(1e-3, description="Adam's learning rate")
    monitor_size: PositiveInt = Field(
        250, description="the first n test images give the per-epoch held-out loss (all of them the final scores)")
    correlation_size: PositiveInt = Field(250, description="test images on which neighbouring-activation correlations are measured")
    cifar: CifarCheck = Field(default_factory=CifarCheck, description="the CIFAR-10 check (not in the paper)")

    @model_validator(mode="after")
    def _subsets_fit(self):
        for key in ("monitor_size", "correlation_size"):
            if getattr(self, key) > self.test_size:
                raise ValueError(f"{key} ({getattr(self, key)}) must not exceed test_size ({self.test_size})")
        if self.correlation_size > min(self.cifar.test_size or 10_000, 10_000):
            raise ValueError(f"correlation_size ({self.correlation_size}) must not exceed the CIFAR test images "
                             f"(cifar.test_size = {self.cifar.test_size})")
        return self


# Cost of cpu at 1 torch thread (AMD EPYC, other core busy): 135-152 s per keypoints run, 92-100 s
# per cifar run (with its 10,000 test images); 3 seeds x 3 arms x (~145 + ~97) s ~ 36 min.
PROFILES = {
    "smoke": {"train_size": 64, "test_size": 48, "channels": [4, 8, 8, 8], "hidden": [8], "epochs": 2,
              "monitor_size": 16, "correlation_size": 16,
              "cifar": {"train_size": 256, "val_size": 64, "test_size": 128, "channels": [4, 8, 8], "epochs": 1},
              "seeds": 1},
    "cpu": {"seeds": 3},
    # FLIC's set sizes and a wider net; the paper's training length and drop rate are not in
    # shared/PAPERS.md, these are ours.
    "paper": {"train_size": 3987, "test_size": 1016, "channels": [64, 128, 128, 256], "hidden": [256], "epochs": 100,
              "monitor_size": 1016, "correlation_size": 1000,
              "cifar": {"train_size": 45_000, "val_size": 5000, "epochs": 60}, "seeds": 5},
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


def units(config: dict, seeds: list[int], done: dict) -> list[tuple[str, int]]:
    return [(arm, seed) for seed in seeds for arm in UNITS]


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


def _run_keypoints(config: dict, kind: str, seed: int, progress: bool) -> dict:
    s, device = config["data_seed"], config["device"]
    common = {"image_size": config["image_size"], "stride": STRIDE, "sigma": config["sigma"]}
    train = kp.cached(config["train_size"], "train", 2 * s, **common)  # generated once per process
    test = kp.cached(config["test_size"], "test", 2 * s + 1, **common)
    mean, sd = float(train.images.mean()), float(train.images.std())
    x_train, x_test = (((d.images - mean) / sd).to(device) for d in (train, test))
    y_train, y_test = train.heatmaps.to(device), test.heatmaps.to(device)
    n = config["monitor_size"]
    model = HeatmapNet(config["channels"], config["hidden"][0], len(kp.KEYPOINTS), kind, config["p"]).to(device)
    curves = fit(
        model, minibatches((x_train, y_train), config["batch_size"], seed), epochs=config["epochs"],
        optimizer=torch.optim.Adam(model.parameters(), lr=config["lr"]), schedule=adam_schedule(config["lr"]),
        loss=heatmap_loss, monitor=lambda m: {"loss": float(F.mse_loss(predict_heatmaps(m, x_test[:n]), y_test[:n]))},
        progress=progress, desc=f"keypoints/{kind} seed {seed}",
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
    if seed == 0:  # a few held-out images with truth and prediction, for the chapter's picture of the data
        metrics["examples"] = {
            "images": (test.images[:4, 0] * 255).round().to(torch.uint8).tolist(),
            "truth": [[_r(p, 2) for p in img] for img in test.keypoints[:4]],
            "pred": [[_r(p, 2) for p in img] for img in pred[:4]],
        }
    return {"metrics": metrics, "curves": curves}


def _run_cifar(config: dict, kind: str, seed: int, progress: bool) -> dict:
    task = {**config["cifar"], "device": config["device"]}
    model = ConvNet(task["channels"], kind, task["p"])
    curves = _cifar.train_classifier(model, task, seed, monitor="val", progress=progress, desc=f"cifar/{kind} seed {seed}")
    x_test, _ = _cifar.eval_set(task, "test")
    # Without a test subset the JPEG copy's test images come sorted by class: correlate a random sample.
    pick = torch.randperm(len(x_test), generator=seeding.generator(config["data_seed"]))[: config["correlation_size"]]
    corr = [neighbour_correlation(inputs_of(model, drop, x_test[pick]), OFFSETS[:2]) for drop in model.drops]
    metrics = {
        "test_error": _cifar.error_on(model, task, "test"),
        "val_error": curves["monitor_error"][-1],
        "train_loss": curves["train_loss"][-1],
        "neighbour_correlation": [_r(r) for r in corr],  # per block, at 1 and 2 pixels
        "seconds_per_epoch": float(np.mean(curves["seconds"])),
        "data": _cifar.splits(task["train_size"], task["val_size"], task["test_size"]).source.split(":")[0],
    }
    return {"metrics": metrics, "curves": curves}


def run_one(config: dict, arm: str, seed: int, progress: bool = True) -> dict:
    """Train one net: ``arm`` is ``<task>/<dropout>``, e.g. ``keypoints/spatial`` or ``cifar/none``."""
    if arm not in UNITS:
        raise ValueError(f"arm must be one of {list(UNITS)}, got {arm!r}")
    task, _, kind = arm.partition("/")
    return (_run_keypoints if task == "keypoints" else _run_cifar)(config, kind, seed, progress)


# --------------------------------------------------------------------------- analysis


def _by(runs: list[dict], task: str) -> dict[str, list[dict]]:
    """The runs of ``task`` per dropout kind, in seed order."""
    return {k: sorted((r for r in runs if r["arm"] == f"{task}/{k}"), key=lambda r: r["seed"]) for k in ARMS}


def per_seed(runs: list[dict], task: str, key: str) -> dict[str, dict[int, float]]:
    """Metric ``key`` of ``task``: dropout kind -> seed -> value."""
    return {k: {r["seed"]: r["metrics"][key] for r in rs} for k, rs in _by(runs, task).items()}


def r_at_one_pixel(runs: list[dict]) -> dict[str, dict[int, float]]:
    """Correlation of activations one pixel apart entering the localization net's dropout: kind -> seed -> r."""
    return {k: {s: v[0] for s, v in d.items()} for k, d in per_seed(runs, "keypoints", "neighbour_correlation").items()}


def claims(config: dict, runs: list[dict]) -> list[dict]:
    """The chapter's claims, decided by :mod:`replib.claims`' rule over seeds; thresholds fixed above."""
    rate = per_seed(runs, "keypoints", "mean_detection_rate")
    r1 = r_at_one_pixel(runs)
    error = per_seed(runs, "cifar", "test_error")
    return [
        rule.direction("spatial_beats_none", "SpatialDropout gives a higher held-out detection rate than no dropout "
                       "(the mean over the nine normalized distances of Figure 14(b)).",
                       rate["spatial"], rate["none"], claimed="greater", names=("spatial", "none"), unit=" points"),
        rule.direction("spatial_beats_dropout", "At the same drop probability, SpatialDropout gives a higher "
                       "held-out detection rate than element-wise dropout (same measure).",
                       rate["spatial"], rate["dropout"], claimed="greater", names=("spatial", "dropout"), unit=" points"),
        rule.equivalence("dropout_close_to_none", (
            "Element-wise dropout before the 1x1 convolution changes the held-out detection rate by at most "
            f"{rule.fmt(CLOSE_POINTS, 1)} points from no dropout (half the paper's own SpatialDropout gain, "
            f"{rule.fmt(PAPER_MEAN_GAIN, 1)} points averaged over Figure 14(b)'s distances)."),
            rate["dropout"], rate["none"], margin=CLOSE_POINTS, names=("dropout", "none"), unit=" points"),
        rule.check("neighbours_correlated", (
            "The premise: in every trained localization net, activations one pixel apart in the maps entering the "
            f"dropout layer are strongly correlated (Pearson r >= {rule.fmt(STRONG_CORRELATION, 1)})."),
            all(r >= STRONG_CORRELATION for d in r1.values() for r in d.values()),
            {f"r at 1 px, {ARM_LABELS[k]}": f"{rule.per_seed(d)} (lowest {rule.fmt(min(d.values()))})"
             for k, d in r1.items()},
            why="our images are smooth (backgrounds upsampled from 32x32 CIFAR-10 crops) and neighbouring positions "
                "of the maps share most of their receptive field, so these maps are correlated before any training "
                "(an untrained HeatmapNet already gives r above the threshold); it describes the substitute data, "
                "not a finding"),
        rule.beyond_paper(rule.direction("cifar_spatial_beats_dropout", (
            "The argument carried to classification (not in the paper): with dropout after every convolutional "
            "block of a small CIFAR-10 net, SpatialDropout gives a lower test error than element-wise dropout at "
            "the same p."), error["spatial"], error["dropout"], names=("spatial", "dropout"), unit=" points")),
    ]


def facts(result: dict) -> dict[str, str]:
    """The numbers the chapter's prose quotes, formatted from the result."""
    runs, cfg = result["runs"], result["config"]
    out = {}
    for name, task, key, digits, unit in (("rate", "keypoints", "mean_detection_rate", 1, " %"),
                                          ("train_rate", "keypoints", "train_mean_detection_rate", 1, " %"),
                                          ("cifar_error", "cifar", "test_error", 1, " %"),
                                          ("cifar_train_loss", "cifar", "train_loss", 2, "")):
        out |= {f"{name}_{k}": rule.mean_sd(v.values(), digits, unit) for k, v in per_seed(runs, task, key).items()}
    rate = per_seed(runs, "keypoints", "mean_detection_rate")
    for a, b in (("spatial", "none"), ("spatial", "dropout"), ("dropout", "none")):
        diff = rule.paired(rate[a], rate[b])
        out |= {f"gain_{a}_{b}": rule.fmt_interval(*rule.interval(diff), 1, " points"),
                f"gain_{a}_{b}_per_seed": rule.per_seed(diff, 1)}
    curves = {k: np.array([r["metrics"]["detection_rate"] for r in rs]) for k, rs in _by(runs, "keypoints").items()}
    gain = (curves["spatial"] - curves["none"]).mean(0)  # per normalized distance, mean over seeds
    r1 = r_at_one_pixel(runs)
    return out | {f"r1_{k}": rule.mean_sd(d.values(), 2) for k, d in r1.items()} | {
        "r1_lowest": rule.fmt(min(r for d in r1.values() for r in d.values())),
        "paper_gain": rule.fmt(PAPER_MEAN_GAIN, 1), "close_points": rule.fmt(CLOSE_POINTS, 1),
        "gain_largest_at": f"{kp.THRESHOLDS[int(gain.argmax())]:g}", "gain_largest": rule.fmt(gain.max(), 1),
        "cifar_p": rule.fmt(cfg["cifar"]["p"], 1), "cifar_epochs": str(cfg["cifar"]["epochs"]),
        "cifar_first_maps": str(cfg["cifar"]["channels"][0]), "train_size": f"{cfg['train_size']:,}",
    }


# --------------------------------------------------------------------------- presentation

ARM_LABELS = {"none": "no dropout", "dropout": "element-wise dropout", "spatial": "SpatialDropout"}


def _backgrounds(result: dict, task: str) -> str:
    """What the CIFAR-10 images of ``task`` were: the JPEG copy (say so in every figure) or the original."""
    jpeg = any("JPEG" in r["metrics"]["data"] for r in result["runs"] if r["arm"].startswith(f"{task}/"))
    return data.CIFAR10_JPEG_NOTE if jpeg else "CIFAR-10"


def _colors() -> dict:
    from .. import plotting

    return dict(zip(ARMS, plotting.palette(len(ARMS))))


def table(result: dict) -> pd.DataFrame:
    """Figure 14(b) as a table: paper (FLIC wrist) vs ours (all four keypoints), mean ± sd over seeds."""
    paper = {(v["arm"], v["threshold"]): v["value"] for v in result["paper_values"]}
    curves = {k: np.array([r["metrics"]["detection_rate"] for r in rs]) for k, rs in _by(result["runs"], "keypoints").items()}
    rows = [{"normalized distance": f"{t:g}", "paper: with SpatialDropout": paper.get(("spatial", t), ""),
             "paper: without": paper.get(("none", t), ""),
             **{f"ours: {ARM_LABELS[k]}": rule.mean_sd(c[:, i], 1) for k, c in curves.items()}}
            for i, t in enumerate(kp.THRESHOLDS)]
    rows.append({"normalized distance": "mean", "paper: with SpatialDropout": rule.fmt(np.mean(_FIG14B["spatial"]), 1),
                 "paper: without": rule.fmt(np.mean(_FIG14B["none"]), 1),
                 **{f"ours: {ARM_LABELS[k]}": rule.mean_sd(c.mean(1), 1) for k, c in curves.items()}})
    return pd.DataFrame(rows).set_index("normalized distance")


def table_cifar(result: dict) -> pd.DataFrame:
    """The CIFAR check (no paper numbers): test error, final training loss and neighbour correlations per arm."""
    rows = []
    for k, rs in _by(result["runs"], "cifar").items():
        corr = np.array([r["metrics"]["neighbour_correlation"] for r in rs])[:, :, 0]  # (seeds, blocks) at 1 px
        rows.append({
            "arm": ARM_LABELS[k],
            f"test error % ({_backgrounds(result, 'cifar')})": rule.mean_sd([r["metrics"]["test_error"] for r in rs]),
            "final training loss": rule.mean_sd([r["metrics"]["train_loss"] for r in rs], 3),
            "r at 1 px, per block": ", ".join(rule.fmt(c) for c in corr.mean(0)),
        })
    return pd.DataFrame(rows).set_index("arm")


def figure(result: dict):
    """Ours beside Figure 14(b): held-out detection rate against normalized distance, and the loss curves."""
    import matplotlib.pyplot as plt

    colors, cfg, t = _colors(), result["config"], np.array(kp.THRESHOLDS)
    fig, (ax, ax_loss) = plt.subplots(1, 2, figsize=(11, 4.5))
    for k, rs in _by(result["runs"], "keypoints").items():
        c = np.array([r["metrics"]["detection_rate"] for r in rs])
        sd = c.std(0, ddof=1) if len(c) > 1 else np.zeros(len(t))
        ax.plot(t, c.mean(0), marker="o", color=colors[k], label=f"ours: {ARM_LABELS[k]}")
        ax.fill_between(t, c.mean(0) - sd, c.mean(0) + sd, color=colors[k], alpha=0.2, linewidth=0)
        for key, style, split in (("monitor_loss", "-", "held out"), ("train_loss", "--", "training")):
            curve = np.array([r["curves"][key] for r in rs]).mean(0)
            ax_loss.plot(np.arange(1, len(curve) + 1), curve, color=colors[k], linestyle=style,
                         linewidth=1.5 if style == "-" else 1, label=f"{ARM_LABELS[k]}, {split}")
    for arm, style in (("spatial", "-"), ("none", ":")):
        ax.plot(t, _FIG14B[arm], color="0.35", linestyle=style, marker="x", markersize=4, linewidth=1.2,
                label=f"paper, FLIC wrist: {'with' if arm == 'spatial' else 'without'} SpatialDropout")
    ax.set(xlabel="normalized distance (error / digit ink height)", ylabel="detection rate (%)", ylim=(0, 100))
    ax.set_title(f"Held-out localization, {cfg['test_size']} images ({len(result['seeds'])} seed(s), mean ± sd)",
                 fontsize=10)
    ax.legend(fontsize=7.5, loc="lower right")
    ax_loss.set(yscale="log", xlabel="epoch", ylabel="heat-map MSE")
    ax_loss.set_title(f"Over-fitting: {cfg['train_size']} training images, p = {cfg['p']}", fontsize=10)
    ax_loss.legend(fontsize=7, ncol=2)
    fig.suptitle(f"FLIC substitute: MNIST digits on {_backgrounds(result, 'keypoints')} backgrounds, 4 keypoints "
                 f"({result['profile']} profile)", fontsize=10)
    fig.tight_layout()
    return fig


def figure_examples(result: dict):
    """Four held-out images with the true keypoints (circles) and each arm's first-seed predictions (crosses)."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    colors = _colors()
    shown = {r["arm"].split("/")[1]: r["metrics"]["examples"] for r in result["runs"]
             if r["arm"].startswith("keypoints/") and "examples" in r["metrics"]}
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
    fig.suptitle(f"Held-out images ({', '.join(kp.KEYPOINTS)} keypoints); backgrounds: "
                 f"{_backgrounds(result, 'keypoints')}", fontsize=9)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def figure_cifar(result: dict):
    """The CIFAR check: test error per arm (one dot per seed, bar at the mean) and validation error per epoch."""
    import matplotlib.pyplot as plt

    colors, c = _colors(), result["config"]["cifar"]
    fig, (ax, ax_curve) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, (k, rs) in enumerate(_by(result["runs"], "cifar").items()):
        errs = np.array([r["metrics"]["test_error"] for r in rs])
        ax.bar(i, errs.mean(), color=colors[k], alpha=0.5, width=0.6)
        ax.scatter(np.full(len(errs), i), errs, color=colors[k], zorder=3)
        curve = np.array([r["curves"]["monitor_error"] for r in rs]).mean(0)
        ax_curve.plot(np.arange(1, len(curve) + 1), curve, marker="o", markersize=3, color=colors[k],
                      label=ARM_LABELS[k])
    lowest = min(r["metrics"]["test_error"] for r in result["runs"] if r["arm"].startswith("cifar/"))
    ax.set(xticks=range(len(ARMS)), xticklabels=[ARM_LABELS[k] for k in ARMS], ylabel="test error (%)",
           ylim=(max(0.0, lowest - 10), None))
    ax.set_title(f"Test error, p = {c['p']} after every block ({len(result['seeds'])} seed(s))", fontsize=10)
    ax_curve.set(xlabel="epoch", ylabel="validation error (%)")
    ax_curve.xaxis.get_major_locator().set_params(integer=True)
    ax_curve.legend(fontsize=8)
    ax_curve.set_title(f"Validation error per epoch, {c['val_size']} held-out training images (mean over seeds)",
                       fontsize=10)
    fig.suptitle(f"{_backgrounds(result, 'cifar')}: {c['train_size']} training images, convolutional blocks "
                 f"{c['channels']} ({result['profile']} profile)", fontsize=10)
    fig.tight_layout()
    return fig


def figure_correlation(result: dict):
    """Correlation of activations d pixels apart at the input of the dropout layer(s), per arm and task."""
    import matplotlib.pyplot as plt

    colors = _colors()
    fig, (ax_kp, ax_c) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for k, rs in _by(result["runs"], "keypoints").items():
        c = np.array([r["metrics"]["neighbour_correlation"] for r in rs]).mean(0)
        ax_kp.plot(OFFSETS[: len(c)], c, marker="o", color=colors[k], label=ARM_LABELS[k])
    for k, rs in _by(result["runs"], "cifar").items():
        c = np.array([r["metrics"]["neighbour_correlation"] for r in rs]).mean(0)  # (blocks, offsets)
        for b, style in zip(range(len(c)), ("-", "--", ":")):
            ax_c.plot(OFFSETS[: c.shape[1]], c[b], marker="o", linestyle=style, color=colors[k],
                      label=f"{ARM_LABELS[k]}, block {b + 1}")
    ax_kp.axhline(STRONG_CORRELATION, color="0.5", linewidth=0.8, linestyle=":")
    ax_kp.set_title("Localization net: maps before the 1x1 convolution", fontsize=10)
    ax_c.set_title(f"CIFAR net ({_backgrounds(result, 'cifar')}): maps entering each dropout", fontsize=10)
    for ax in (ax_kp, ax_c):
        ax.set_xlabel("distance between activations (pixels of the feature map)")
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax_kp.set_ylabel("Pearson r (mean over feature maps)")
    ax_kp.legend(fontsize=8)
    ax_c.legend(fontsize=7, ncol=2)
    fig.suptitle(f"Neighbouring activations in the trained nets, mean over seeds ({result['profile']} profile)",
                 fontsize=10)
    fig.tight_layout()
    return fig


FIGURES = {"figure14b": figure, "examples": figure_examples, "correlation": figure_correlation, "cifar": figure_cifar}
TABLES = {"paper_vs_ours": table, "cifar": table_cifar}

"""Tompson et al. (2015), Figure 14(b) and section 3.2: SpatialDropout in a fully convolutional net.

Tompson, Goroshin, Jain, LeCun, Bregler, "Efficient Object Localization Using
Convolutional Networks", CVPR 2015. Section 3.2: in a fully convolutional net,
neighbouring activations of a feature map are strongly correlated, so standard
(element-wise) dropout before the first 1x1 convolution "did not prevent over-training",
while dropping whole feature maps (SpatialDropout) does, "especially on the FLIC dataset,
where the training set size is small". Figure 14(b) plots the FLIC wrist detection rate
with and without SpatialDropout.

Two tasks, each trained with three arms at the same drop probability: ``none``,
``dropout`` (element-wise, :class:`~replib.methods.Dropout`) and ``spatial``
(:class:`~replib.methods.SpatialDropout`):

- ``keypoints/<arm>``: heat-map regression on the synthetic FLIC substitute of
  :mod:`replib.keypoints` (MNIST digits on CIFAR-10 clutter, 4 keypoints, Gaussian
  targets with sigma 1.5 output pixels) with :class:`HeatmapNet`, dropout just before its
  first 1x1 convolution, and a training set small enough to over-fit. Scored by FLIC's
  detection rate against normalized distance on held-out images.
- ``cifar/<arm>``: a small convolutional classifier (:class:`ConvNet`) on a subset of
  CIFAR-10 with dropout after every convolutional block: does the paper's argument carry
  over to classification?

For every trained net, the diagnostic behind the paper's argument: the correlation of
activations one to four pixels apart in the feature maps that enter the dropout layer.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .. import data
from .. import keypoints as kp
from ..models import DROPOUT_KINDS, ConvNet, HeatmapNet
from ..train import seed_everything
from . import _cifar
from ._config import apply_overrides, check_drop_probability, check_fractions, check_int

PAPER = "tompson2015"
TITLE = "Tompson et al. 2015: SpatialDropout"
ARMS = DROPOUT_KINDS
TASKS = ("keypoints", "cifar")
STRIDE = 4  # HeatmapNet pools twice: heat-maps are 1/4 of the image's side
OFFSETS = (1, 2, 3, 4)  # pixel distances at which neighbouring activations are correlated

_COMMON = {
    # keypoints: the FLIC substitute (replib.keypoints) and HeatmapNet
    "train_images": 300,  # training images; FLIC has 3,987: what matters is a set small enough to over-fit
    "test_images": 1000,  # held-out images (FLIC: 1,016), from MNIST and CIFAR-10 test splits
    "image_size": 64,  # pixels per side; heat-maps are image_size / 4
    "sigma": 1.5,  # sd of the target Gaussians in heat-map pixels, as the paper
    "data_seed": 0,  # the generated images (the same for every seed and arm)
    "channels": [16, 32, 32, 64],  # feature maps of HeatmapNet's four 5x5 convolutions
    "hidden": 64,  # feature maps of the first 1x1 convolution
    "p": 0.5,  # drop probability of both dropout arms, before the first 1x1 convolution
    "epochs": 120,  # long enough that the no-dropout net is well past its best held-out loss
    "batch_size": 32,
    "lr": 1e-3,  # Adam
    "curve_images": 250,  # the first n test images give the per-epoch held-out loss (all of them the final scores)
    # cifar: ConvNet on a CIFAR-10 subset (the fixed split of replib.experiments._cifar), no augmentation
    "cifar_train": 5000,  # training images, after holding out the validation images
    "cifar_val": 1000,  # held out of the 50,000 training images, for the per-epoch curve
    "cifar_test": None,  # None: all 10,000 test images, else a fixed random n of them; scored once after training
    "cifar_channels": [32, 64, 128],  # one 3x3 convolution per block, each followed by max-pool and dropout
    "cifar_p": 0.2,  # drop probability of both dropout arms after every block
    "cifar_epochs": 15,
    "cifar_batch_size": 64,
    "cifar_lr": 0.02,  # SGD with momentum 0.9
    "cifar_lr_fractions": [0.5, 0.75],  # x cifar_lr_gamma at these fractions of the run: the rate ends 100x lower
    "cifar_lr_gamma": 0.1,
    "cifar_weight_decay": 5e-4,
    "corr_images": 250,  # test images on which neighbouring-activation correlations are measured
    "device": "cpu",
}
# Cost at 1 torch thread (OMP_NUM_THREADS=1) on this machine's AMD EPYC, the other core busy
# with another training job, measured with single runs of the cpu config (seed 0):
# keypoints: 1.08-1.22 s per epoch (300 training images, ~3 ms each, plus the 250-image
# held-out curve), 135-152 s per run of 120 epochs with the final scoring;
# cifar: 5.6-5.9 s per epoch (5,000 training plus 1,000 validation images), 92-100 s per run
# of 15 epochs with the 10,000 test images. 3 seeds x 3 arms x (~145 + ~97) s ~ 36 min,
# plus under a minute to generate the images and, the first time only, to decode CIFAR-10.
PROFILES = {
    "smoke": {**_COMMON, "train_images": 64, "test_images": 48, "channels": [4, 8, 8, 8], "hidden": 8,
              "epochs": 2, "curve_images": 16, "cifar_train": 256, "cifar_val": 64, "cifar_test": 128,
              "cifar_channels": [4, 8, 8], "cifar_epochs": 1, "corr_images": 16, "seeds": 1},
    "cpu": {**_COMMON, "seeds": 3},
    # FLIC's set sizes and a wider net; the paper's training length and drop rate are not in
    # shared/PAPERS.md, these are ours.
    "paper": {**_COMMON, "train_images": 3987, "test_images": 1016, "channels": [64, 128, 128, 256], "hidden": 256,
              "epochs": 100, "curve_images": 1016, "cifar_train": 45_000, "cifar_val": 5000, "cifar_epochs": 60,
              "corr_images": 1000, "seeds": 5},
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


# --------------------------------------------------------------------------- config


def _int_list(config: dict, key: str, length: int) -> None:
    v = config[key]
    if not isinstance(v, list) or len(v) != length or not all(
            isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in v):
        raise ValueError(f"{key} must be a list of {length} positive ints, got {v!r} "
                         f"(from papermill pass lists as YAML: -y '{key}: {PROFILES['cpu'][key]}')")


def resolve(profile: str, **overrides) -> dict:
    """The profile's config with ``overrides`` applied; every value checked, bad ones raise ``ValueError``."""
    config = apply_overrides(PAPER, PROFILES, profile, overrides)
    for key in ("train_images", "test_images", "hidden", "batch_size", "curve_images", "cifar_train", "cifar_epochs",
                "cifar_batch_size", "corr_images"):
        check_int(config, key)
    check_int(config, "cifar_test", allow_none=True)
    check_int(config, "data_seed", 0)
    check_int(config, "cifar_val")  # the per-epoch CIFAR curve is read on it
    _int_list(config, "channels", 4)
    _int_list(config, "cifar_channels", 3)
    for key in ("p", "cifar_p"):
        check_drop_probability(config, key)
    for key in ("lr", "cifar_lr"):
        v = config[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise ValueError(f"{key} must be a learning rate > 0, got {v!r}")
    check_fractions(config, "cifar_lr_fractions")
    v = config["cifar_lr_gamma"]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
        raise ValueError(f"cifar_lr_gamma must be a factor in (0, 1], got {v!r}")
    v = config["cifar_weight_decay"]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
        raise ValueError(f"cifar_weight_decay must be a number >= 0, got {v!r}")
    size = config["image_size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 64 or size % STRIDE:
        raise ValueError(f"image_size must be an int >= 64 divisible by {STRIDE} (the digits are up to 56 px), "
                         f"got {size!r}")
    kp.check_geometry(size, STRIDE, config["sigma"])
    for key in ("curve_images", "corr_images"):
        if config[key] > config["test_images"]:
            raise ValueError(f"{key} ({config[key]}) must not exceed test_images ({config['test_images']})")
    if config["corr_images"] > min(config["cifar_test"] or 10_000, 10_000):
        raise ValueError(f"corr_images ({config['corr_images']}) must not exceed the CIFAR test images")
    return config


def arms(config: dict) -> list[str]:
    return [f"{task}/{arm}" for task in TASKS for arm in ARMS]


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
    return [round(float(v), digits) for v in np.asarray(values, dtype=float).reshape(-1)]


# --------------------------------------------------------------------------- runs


def keypoint_data(config: dict) -> tuple[kp.KeypointData, kp.KeypointData]:
    """The training and test sets of the config (generated once per process)."""
    s = config["data_seed"]
    common = {"image_size": config["image_size"], "stride": STRIDE, "sigma": config["sigma"]}
    return (kp.cached(config["train_images"], "train", 2 * s, **common),
            kp.cached(config["test_images"], "test", 2 * s + 1, **common))


@torch.no_grad()
def predict_heatmaps(model: nn.Module, x: torch.Tensor, batch_size: int = 250) -> torch.Tensor:
    was_training = model.training
    model.eval()
    out = torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out


def _run_keypoints(config: dict, arm: str, seed: int, progress: bool) -> dict:
    train, test = keypoint_data(config)
    device = config["device"]
    mean, sd = float(train.images.mean()), float(train.images.std())
    x_train, y_train = ((train.images - mean) / sd).to(device), train.heatmaps.to(device)
    x_test, y_test = ((test.images - mean) / sd).to(device), test.heatmaps.to(device)
    n_curve = config["curve_images"]
    seed_everything(seed)
    model = HeatmapNet(config["channels"], config["hidden"], len(kp.KEYPOINTS), arm, config["p"]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    order = torch.Generator().manual_seed(seed)
    curves: dict[str, list] = {"epoch": [], "train_loss": [], "test_loss": [], "seconds": []}

    from tqdm.auto import tqdm

    for epoch in tqdm(range(config["epochs"]), desc=f"keypoints/{arm} seed {seed}", unit="epoch",
                      disable=not progress, leave=False):
        tic = time.perf_counter()
        model.train()
        loss_sum = torch.zeros((), device=device)
        for idx in torch.randperm(len(x_train), generator=order).to(device).split(config["batch_size"]):
            loss = F.mse_loss(model(x_train[idx]), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(idx)
        held_out = F.mse_loss(predict_heatmaps(model, x_test[:n_curve]), y_test[:n_curve])
        curves["epoch"].append(epoch + 1)
        curves["train_loss"].append(float(loss_sum) / len(x_train))
        curves["test_loss"].append(float(held_out))
        curves["seconds"].append(time.perf_counter() - tic)

    maps = predict_heatmaps(model, x_test)
    pred = kp.heatmap_peaks(maps.cpu(), STRIDE)
    rate = kp.detection_rate(pred, test.keypoints, test.size)  # (T, K)
    train_rate = kp.detection_rate(kp.heatmap_peaks(predict_heatmaps(model, x_train).cpu(), STRIDE),
                                   train.keypoints, train.size)
    corr = neighbour_correlation(inputs_of(model, model.drop, x_test[: config["corr_images"]]))
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


def cifar_config(config: dict) -> dict:
    """The CIFAR task's entries under the names :mod:`replib.experiments._cifar` reads: no augmentation but
    normalisation, SGD with momentum 0.9, a step schedule, validation error after every epoch."""
    return {
        "train_size": config["cifar_train"], "val_size": config["cifar_val"], "test_size": config["cifar_test"],
        "epochs": config["cifar_epochs"], "batch_size": config["cifar_batch_size"], "lr": config["cifar_lr"],
        "momentum": 0.9, "nesterov": False, "weight_decay": config["cifar_weight_decay"],
        "lr_fractions": config["cifar_lr_fractions"], "lr_gamma": config["cifar_lr_gamma"], "crop_flip": False,
        "eval_every": 1, "device": config["device"],
    }


def _run_cifar(config: dict, arm: str, seed: int, progress: bool) -> dict:
    task = cifar_config(config)
    seed_everything(seed)
    model = ConvNet(config["cifar_channels"], arm, config["cifar_p"])
    fitted = _cifar.train_classifier(model, task, seed, monitor="val", progress=progress, desc=f"cifar/{arm} seed {seed}")
    x_test, _ = _cifar.eval_set(task, "test")
    # Without a test subset the JPEG copy's test images come sorted by class: correlate a random sample.
    pick = torch.randperm(len(x_test), generator=torch.Generator().manual_seed(config["data_seed"]))
    corr_x = x_test[pick[: config["corr_images"]]]
    corr = [neighbour_correlation(inputs_of(model, drop, corr_x), OFFSETS[:2]) for drop in model.drops]
    metrics = {
        "test_error": _cifar.error_on(model, task, "test"),
        "val_error": fitted["test_error"][-1],  # fit's "test" split is the validation split here
        "train_loss": fitted["train_loss"][-1],
        "neighbour_correlation": [_r(c) for c in corr],  # per block, at 1 and 2 pixels
        "seconds_per_epoch": float(np.mean(fitted["seconds"])),
        "data": _cifar.splits(task["train_size"], task["val_size"], task["test_size"]).source.split(":")[0],
    }
    curves = {"epoch": fitted["epoch"], "lr": fitted["lr"], "train_loss": fitted["train_loss"],
              "val_error": fitted["test_error"], "val_loss": fitted["test_loss"],
              "train_seconds": fitted["train_seconds"], "seconds": fitted["seconds"]}
    return {"metrics": metrics, "curves": curves}


def run_one(config: dict, arm: str, seed: int, progress: bool = True) -> dict:
    """Train one net: ``arm`` is ``<task>/<dropout>``, e.g. ``keypoints/spatial`` or ``cifar/none``."""
    task, _, kind = arm.partition("/")
    if task not in TASKS or kind not in ARMS:
        raise ValueError(f"arm must be one of {arms(config)}, got {arm!r}")
    if task == "keypoints":
        return _run_keypoints(config, kind, seed, progress)
    return _run_cifar(config, kind, seed, progress)


# --------------------------------------------------------------------------- analysis


def _by(runs: list[dict], task: str) -> dict[str, list[dict]]:
    """The runs of ``task`` per dropout kind, in seed order."""
    return {k: sorted((r for r in runs if r["arm"] == f"{task}/{k}"), key=lambda r: r["seed"]) for k in ARMS}


def _values(runs: list[dict], task: str, key: str) -> dict[str, np.ndarray]:
    return {k: np.array([r["metrics"][key] for r in rs], dtype=float) for k, rs in _by(runs, task).items()}


def _sd(a: np.ndarray) -> float | None:
    return round(float(np.std(a, ddof=1)), 3) if len(a) > 1 else None


def claims(config: dict, runs: list[dict]) -> list[dict]:
    """The chapter's claims, from the runs; every threshold is fixed above, before any cpu run."""
    rate = _values(runs, "keypoints", "mean_detection_rate")
    mean = {k: float(v.mean()) for k, v in rate.items()}

    def paired(a: str, b: str) -> dict:
        """a beats b: higher mean, and higher with every seed (a seed gives both arms the same initial weights)."""
        diffs = rate[a] - rate[b]
        return {"holds": bool(diffs.mean() > 0 and (diffs > 0).all()),
                "evidence": {"mean_detection_rate": {a: round(mean[a], 2), b: round(mean[b], 2)},
                             "per_seed_difference": _r(diffs, 2)}}

    corr = {k: np.array([r["metrics"]["neighbour_correlation"][0] for r in rs]) for k, rs in _by(runs, "keypoints").items()}
    err = _values(runs, "cifar", "test_error")
    gap = mean["dropout"] - mean["none"]
    return [
        {
            "id": "spatial_beats_none",
            "statement": "On held-out images, SpatialDropout gives a higher detection rate than no dropout "
                         "(mean over the nine normalized distances of Figure 14(b); higher on average and with "
                         "every seed).",
            **paired("spatial", "none"),
        },
        {
            "id": "spatial_beats_dropout",
            "statement": "At the same drop probability, SpatialDropout gives a higher held-out detection rate than "
                         "element-wise dropout (same measure; higher on average and with every seed).",
            **paired("spatial", "dropout"),
        },
        {
            "id": "dropout_close_to_none",
            "statement": f"Element-wise dropout before the 1x1 convolution changes the held-out detection rate by "
                         f"at most {CLOSE_POINTS:.1f} points from no dropout (half the paper's own SpatialDropout "
                         f"gain, {PAPER_MEAN_GAIN:.1f} points averaged over Figure 14(b)'s distances).",
            "holds": bool(abs(gap) <= CLOSE_POINTS),
            "evidence": {"mean_detection_rate": {"dropout": round(mean["dropout"], 2), "none": round(mean["none"], 2)},
                         "difference": round(gap, 2), "tolerance": round(CLOSE_POINTS, 2)},
        },
        {
            "id": "neighbours_correlated",
            "statement": f"The premise: in every trained localization net, activations one pixel apart in the maps "
                         f"entering the dropout layer are strongly correlated (mean Pearson r >= "
                         f"{STRONG_CORRELATION}).",
            "holds": bool(all((c >= STRONG_CORRELATION).all() for c in corr.values())),
            "evidence": {"mean_r_at_1_pixel": {k: round(float(c.mean()), 3) for k, c in corr.items()},
                         "lowest_r_at_1_pixel": {k: round(float(c.min()), 3) for k, c in corr.items()}},
        },
        {
            "id": "cifar_spatial_beats_dropout",
            "statement": "The argument carried to classification (not in the paper): with dropout after every "
                         "convolutional block of a small CIFAR-10 net, SpatialDropout gives a lower test error than "
                         "element-wise dropout at the same p (mean over seeds).",
            "holds": bool(err["spatial"].mean() < err["dropout"].mean()),
            "evidence": {"test_error_percent": {k: round(float(v.mean()), 2) for k, v in err.items()},
                         "sd": {k: _sd(v) for k, v in err.items()}},
        },
    ]


# --------------------------------------------------------------------------- presentation

ARM_LABELS = {"none": "no dropout", "dropout": "element-wise dropout", "spatial": "SpatialDropout"}


def _cifar_note(result: dict) -> str:
    sources = {r["metrics"]["data"] for r in result["runs"] if r["arm"].startswith("cifar/")}
    return data.CIFAR10_JPEG_NOTE if any(s.startswith(data.CIFAR10_JPEG_NOTE) for s in sources) else "CIFAR-10"


def _mean_sd(values: np.ndarray, fmt: str = "{:.1f}") -> str:
    sd = _sd(values)
    return fmt.format(values.mean()) + ("" if sd is None else " ± " + fmt.format(sd))


def table(result: dict) -> pd.DataFrame:
    """Figure 14(b) as a table: paper (FLIC wrist) vs ours (all four keypoints), mean ± sd over seeds."""
    paper = {(v["arm"], v["threshold"]): v["value"] for v in result["paper_values"]}
    curves = {k: np.array([r["metrics"]["detection_rate"] for r in rs]) for k, rs in _by(result["runs"], "keypoints").items()}
    rows = []
    for i, t in enumerate(kp.THRESHOLDS):
        rows.append({"normalized distance": f"{t:g}",
                     "paper: with SpatialDropout": paper.get(("spatial", t), ""),
                     "paper: without": paper.get(("none", t), ""),
                     **{f"ours: {ARM_LABELS[k]}": _mean_sd(c[:, i]) for k, c in curves.items()}})
    rows.append({"normalized distance": "mean",
                 "paper: with SpatialDropout": round(float(np.mean(_FIG14B["spatial"])), 1),
                 "paper: without": round(float(np.mean(_FIG14B["none"])), 1),
                 **{f"ours: {ARM_LABELS[k]}": _mean_sd(c.mean(1)) for k, c in curves.items()}})
    return pd.DataFrame(rows).set_index("normalized distance")


def table_cifar(result: dict) -> pd.DataFrame:
    """The CIFAR check (no paper numbers): test error, final training loss and neighbour correlations per arm."""
    rows = []
    for k, rs in _by(result["runs"], "cifar").items():
        corr = np.array([r["metrics"]["neighbour_correlation"] for r in rs])[:, :, 0]  # (seeds, blocks) at 1 px
        rows.append({
            "arm": ARM_LABELS[k],
            f"test error % ({_cifar_note(result)})": _mean_sd(np.array([r["metrics"]["test_error"] for r in rs]), "{:.2f}"),
            "final training loss": _mean_sd(np.array([r["metrics"]["train_loss"] for r in rs]), "{:.3f}"),
            "r at 1 px, per block": ", ".join(f"{c:.2f}" for c in corr.mean(0)),
            "seeds": len(rs),
        })
    return pd.DataFrame(rows).set_index("arm")


def figure(result: dict):
    """Ours beside Figure 14(b): held-out detection rate against normalized distance, and the loss curves."""
    import matplotlib.pyplot as plt

    from .. import plotting

    plotting.use_house_style()
    colors = dict(zip(ARMS, plotting.palette(len(ARMS))))
    fig, (ax, ax_loss) = plt.subplots(1, 2, figsize=(11, 4.5))
    t = np.array(kp.THRESHOLDS)
    for k, rs in _by(result["runs"], "keypoints").items():
        c = np.array([r["metrics"]["detection_rate"] for r in rs])
        sd = c.std(0, ddof=1) if len(c) > 1 else np.zeros(len(t))
        ax.plot(t, c.mean(0), marker="o", color=colors[k], label=f"ours: {ARM_LABELS[k]}")
        ax.fill_between(t, c.mean(0) - sd, c.mean(0) + sd, color=colors[k], alpha=0.2, linewidth=0)
        loss = np.array([r["curves"]["test_loss"] for r in rs]).mean(0)
        train = np.array([r["curves"]["train_loss"] for r in rs]).mean(0)
        epochs = np.arange(1, len(loss) + 1)
        ax_loss.plot(epochs, loss, color=colors[k], label=f"{ARM_LABELS[k]}, held out")
        ax_loss.plot(epochs, train, color=colors[k], linestyle="--", linewidth=1, label=f"{ARM_LABELS[k]}, training")
    for arm, style in (("spatial", "-"), ("none", ":")):
        ax.plot(t, _FIG14B[arm], color="0.35", linestyle=style, marker="x", markersize=4, linewidth=1.2,
                label=f"paper, FLIC wrist: {'with' if arm == 'spatial' else 'without'} SpatialDropout")
    cfg = result["config"]
    ax.set_xlabel("normalized distance (error / digit ink height)")
    ax.set_ylabel("detection rate (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Held-out localization, {cfg['test_images']} images ({len(result['seeds'])} seed(s), "
                 f"mean ± sd)", fontsize=10)
    ax.legend(fontsize=7.5, loc="lower right")
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("heat-map MSE")
    ax_loss.set_title(f"Over-fitting: {cfg['train_images']} training images, p = {cfg['p']}", fontsize=10)
    ax_loss.legend(fontsize=7, ncol=2)
    fig.suptitle(f"FLIC substitute: MNIST digits on {data.CIFAR10_JPEG_NOTE if 'JPEG' in _keypoint_source(result) else 'CIFAR-10'} "
                 f"backgrounds, 4 keypoints ({result['profile']} profile)", fontsize=10)
    fig.tight_layout()
    return fig


def _keypoint_source(result: dict) -> str:
    return next((r["metrics"]["data"] for r in result["runs"] if r["arm"].startswith("keypoints/")), "")


def figure_examples(result: dict):
    """Four held-out images with the true keypoints (circles) and each arm's first-seed predictions (crosses)."""
    import matplotlib.pyplot as plt

    from .. import plotting

    plotting.use_house_style()
    colors = dict(zip(ARMS, plotting.palette(len(ARMS))))
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
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    from matplotlib.lines import Line2D

    truth_handle = Line2D([], [], marker="o", markerfacecolor="none", markeredgecolor="0.3", linestyle="",
                          label="truth (white circles)")
    handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
    fig.legend([truth_handle, *handles], [truth_handle.get_label(), *labels], loc="lower center", ncol=4, fontsize=8,
               frameon=False)
    fig.suptitle(f"Held-out images ({', '.join(kp.KEYPOINTS)} keypoints); backgrounds: "
                 f"{data.CIFAR10_JPEG_NOTE if 'JPEG' in _keypoint_source(result) else 'CIFAR-10'}", fontsize=9)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def figure_cifar(result: dict):
    """The CIFAR check: test error per arm (one dot per seed, bar at the mean) and validation error per epoch."""
    import matplotlib.pyplot as plt

    from .. import plotting

    plotting.use_house_style()
    colors = dict(zip(ARMS, plotting.palette(len(ARMS))))
    fig, (ax, ax_curve) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, (k, rs) in enumerate(_by(result["runs"], "cifar").items()):
        errs = np.array([r["metrics"]["test_error"] for r in rs])
        ax.bar(i, errs.mean(), color=colors[k], alpha=0.5, width=0.6)
        ax.scatter(np.full(len(errs), i), errs, color=colors[k], zorder=3)
        curve = np.array([r["curves"]["val_error"] for r in rs]).mean(0)
        ax_curve.plot(np.arange(1, len(curve) + 1), curve, marker="o", markersize=3, color=colors[k],
                      label=ARM_LABELS[k])
    ax.set_xticks(range(len(ARMS)), [ARM_LABELS[k] for k in ARMS])
    ax.set_ylabel("test error (%)")
    lo = min(r["metrics"]["test_error"] for r in result["runs"] if r["arm"].startswith("cifar/"))
    ax.set_ylim(max(0.0, lo - 10), None)
    cfg = result["config"]
    ax.set_title(f"Test error, p = {cfg['cifar_p']} after every block ({len(result['seeds'])} seed(s))", fontsize=10)
    ax_curve.set_xlabel("epoch")
    ax_curve.set_ylabel("validation error (%)")
    ax_curve.xaxis.get_major_locator().set_params(integer=True)
    ax_curve.legend(fontsize=8)
    ax_curve.set_title(f"Validation error per epoch, {cfg['cifar_val']} held-out training images "
                       "(mean over seeds)", fontsize=10)
    fig.suptitle(f"{_cifar_note(result)}: {cfg['cifar_train']} training images, convolutional blocks "
                 f"{cfg['cifar_channels']} ({result['profile']} profile)", fontsize=10)
    fig.tight_layout()
    return fig


def figure_correlation(result: dict):
    """Correlation of activations d pixels apart at the input of the dropout layer(s), per arm and task."""
    import matplotlib.pyplot as plt

    from .. import plotting

    plotting.use_house_style()
    colors = dict(zip(ARMS, plotting.palette(len(ARMS))))
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
    ax_c.set_title(f"CIFAR net ({_cifar_note(result)}): maps entering each dropout", fontsize=10)
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

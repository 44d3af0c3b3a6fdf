"""CIFAR-10 training shared by the convolutional chapters (Cutout, depth dropout): uint8 images in memory,
whole-batch augmentation (:mod:`replib.augment`), all through :func:`replib.train.fit`. Two protocols:

- :func:`train_classifier` (:class:`CifarTraining`): the papers' SGD with momentum and a step schedule whose
  milestones are fractions of the run (:func:`replib.train.step_decay`), so a shortened run keeps its shape.
- :func:`fast_train` (:class:`FastTraining`): the fast CIFAR-10 recipe for a CPU budget: Nesterov SGD under a
  one-cycle learning rate set every step (:func:`replib.train.one_cycle`), label smoothing, flip and a small
  translation, flip averaging at evaluation, channels_last (by default), and bf16 only where :func:`replib.precision.choose`
  measures that it pays.
"""

from __future__ import annotations

import copy
import functools
import math
from typing import Annotated, Callable, Literal

import torch
import torch.nn.functional as F
from pydantic import AfterValidator, Field
from torch import nn

from .. import data
from .._validate import (Fraction, Fractions, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt,
                         Probability, SubSpec)
from ..augment import cifar_pipeline, normalize
from ..models import FlipAveraged
from ..precision import autocast, bf16_native, check_precision, choose
from ..train import classification_monitor, evaluate, fit, minibatches, one_cycle, sgd_schedule, step_decay

EVAL_BATCH = 250  # images per evaluation batch: a ResNet-8 evaluates 2.3x faster than in batches of 10,000


def _resnet_depth(depth: int) -> int:
    if (depth - 2) % 6 != 0 or depth < 8:
        raise ValueError(f"must be 6k + 2 with k >= 1 (8, 14, 20, 32, 44, 56, 110, ...), got {depth!r}")
    return depth


ResNetDepth = Annotated[int, AfterValidator(_resnet_depth)]  # a CIFAR ResNet's layers (He et al. 2016, 4.2)


class CifarSplits(SubSpec):
    """Which CIFAR-10 images a run trains, validates and tests on."""

    train_size: PositiveInt | None = Field(None, description="training images, after the validation images; None: all the rest")
    val_size: NonNegativeInt = Field(0, description="images held out of the 50,000 training images for validation")
    test_size: PositiveInt | None = Field(None, description="test images; None: all 10,000")


class CifarTraining(CifarSplits):
    """CIFAR-10 training settings, He et al.'s (2016, 4.2) protocol by default; a chapter's config
    is ``class Config(CifarTraining.with_defaults(<its paper's protocol>), Spec)``."""

    batch_size: PositiveInt = Field(128, description="images per minibatch")
    lr: PositiveFloat = Field(0.1, description="initial learning rate of SGD")
    momentum: Probability = Field(0.9, description="SGD momentum")
    nesterov: bool = Field(False, description="Nesterov momentum")
    weight_decay: NonNegativeFloat = Field(1e-4, description="L2 penalty on every parameter")
    lr_milestones: Fractions = Field([0.5, 0.75], description="fractions of the run at which the rate is multiplied by lr_gamma")
    lr_gamma: PositiveFloat = Field(0.1, description="factor of the learning rate at each milestone")
    crop_flip: bool = Field(True, description="standard augmentation: random 4-pixel-padded crop and horizontal flip")
    eval_every: PositiveInt = Field(1, description="epochs between evaluations of the held-out split during training")


splits = functools.lru_cache(maxsize=2)(data.cifar10_splits)  # uint8 splits, decoded once per process


@functools.lru_cache(maxsize=4)
def _normalised(which: str, train_size: int | None, val_size: int, test_size: int | None, device: str):
    x, y = getattr(splits(train_size, val_size, test_size), which)
    return normalize(x, data.CIFAR10_MEAN, data.CIFAR10_STD).to(device), y.to(device)


def eval_set(config: dict, which: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The normalised float ``train``, ``val`` or ``test`` set of ``config``, on its device (``train``: the
    training images as they are, without augmentation)."""
    return _normalised(which, config["train_size"], config["val_size"], config["test_size"], config["device"])


def train_classifier(model: nn.Module, config: dict, seed: int, *, cutout_length: int = 0, monitor: str = "test",
                     progress: bool = True, desc: str = "") -> dict[str, list]:
    """Train ``model`` through :func:`replib.train.fit` on ``config`` (:class:`CifarTraining`, ``epochs``, ``device``);
    ``monitor``: the split (``"val"`` or ``"test"``) whose ``monitor_error`` (%) etc. fit records."""
    device = config["device"]
    x, y = splits(config["train_size"], config["val_size"], config["test_size"]).train
    return fit(
        model.to(device),
        minibatches((x.to(device), y.to(device)), config["batch_size"], seed,
                    augment=cifar_pipeline(data.CIFAR10_MEAN, data.CIFAR10_STD, config["crop_flip"], cutout_length)),
        epochs=config["epochs"],
        optimizer=torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=config["momentum"],
                                  nesterov=config["nesterov"], weight_decay=config["weight_decay"]),
        schedule=sgd_schedule(step_decay(config["lr"], config["lr_milestones"], config["lr_gamma"]), config["momentum"]),
        monitor=classification_monitor(eval_set(config, monitor), EVAL_BATCH),
        eval_every=config["eval_every"], progress=progress, desc=desc,
    )


def error_on(model: nn.Module, config: dict, which: str) -> float:
    """Error of ``model`` in % on the ``train``, ``val`` or ``test`` set of ``config`` (:func:`eval_set`), in eval mode."""
    x, y = eval_set(config, which)
    return 100.0 * evaluate(model, (x, y), EVAL_BATCH)[0] / len(y)


# --------------------------------------------------------------------------- the fast recipe


class FastTraining(CifarSplits):
    """The fast CIFAR-10 recipe's settings (:func:`fast_train`); a chapter's config is
    ``class Config(FastTraining.with_defaults(...), Spec)``, with ``epochs`` and ``device`` of its own."""

    batch_size: PositiveInt = Field(128, description="images per minibatch")
    lr: PositiveFloat = Field(0.2, description="peak learning rate of the one-cycle schedule (Nesterov SGD)")
    momentum: Probability = Field(0.9, description="Nesterov momentum")
    weight_decay: NonNegativeFloat = Field(5e-4, description="L2 penalty on every parameter")
    warmup: Fraction = Field(0.25, description="share of the steps over which the rate rises to its peak (then falls to 0)")
    label_smoothing: Probability = Field(0.2, description="share of each target's probability spread over all classes")
    translate: NonNegativeInt = Field(2, description="pixels of random translation (padded crop); 0: none")
    flip: bool = Field(True, description="random horizontal flips in training")
    flip_test: bool = Field(True, description="evaluate on the mean logits of each image and its mirror image")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="auto: bf16 only where the CPU has it natively and a step measures >= 1.2x faster")
    eval_every: PositiveInt = Field(1, description="epochs between evaluations of the held-out split during training")


def layout(config: dict) -> torch.memory_format:
    """The memory format a :class:`FastTraining` config trains and evaluates in: channels_last, fast for
    whole-batch convolutions, unless the chapter's config sets ``channels_last`` false (per-image skipping,
    as in depth dropout, measured slower in channels_last than in the default layout)."""
    return torch.channels_last if config.get("channels_last", True) else torch.contiguous_format


class Evaluated(nn.Module):
    """``model`` as it is evaluated: at ``precision``, on inputs in ``memory_format``, flip-averaged when ``flip``;
    logits in fp32. Shapes as ``model``'s."""

    def __init__(self, model: nn.Module, precision: str = "fp32", flip: bool = True,
                 memory_format: torch.memory_format = torch.channels_last) -> None:
        super().__init__()
        self.net = FlipAveraged(model) if flip else model
        self.precision = check_precision(precision)
        self.memory_format = memory_format

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with autocast(self.precision, x.device.type):
            return self.net(x.contiguous(memory_format=self.memory_format)).float()


def smoothed_loss(smoothing: float, precision: str):
    """A :func:`replib.train.fit` loss: cross-entropy with label smoothing, the forward pass at ``precision``."""
    check_precision(precision)

    def loss(model: nn.Module, batch) -> torch.Tensor:
        x, y = batch
        with autocast(precision, x.device.type):
            logits = model(x)
        return F.cross_entropy(logits.float(), y, label_smoothing=smoothing)

    return loss


def choose_precision(model: nn.Module, config: dict, *, repeats: int = 3) -> dict:
    """``config["precision"]`` if set, else :func:`replib.precision.choose` on training steps of a copy of
    ``model`` with one minibatch of ``config``'s size: what was chosen, and why."""
    if config["precision"] != "auto":
        return {"precision": config["precision"], "bf16_native": bf16_native(), "speedup": None,
                "why": "set in the config"}
    device, n = config["device"], config["batch_size"]
    x = torch.randn(n, 3, 32, 32, device=device).contiguous(memory_format=layout(config))
    y = torch.randint(0, 10, (n,), device=device)

    def step(q: str):
        net = copy.deepcopy(model).to(device, memory_format=layout(config)).train()
        opt, loss = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9), smoothed_loss(0.0, q)

        def run() -> None:
            opt.zero_grad(set_to_none=True)
            loss(net, (x, y)).backward()
            opt.step()

        return run

    return choose(step, repeats=repeats, device=device)


_chosen: dict[tuple, dict] = {}


def precision_once(build: Callable[[], nn.Module], key: tuple, config: dict) -> dict:
    """:func:`choose_precision` for the net ``build()`` makes, measured once per process for each ``key`` (the
    net's settings) with ``config``'s batch size, device, precision setting and layout, so every unit of a run trains
    at the same precision. ``build`` runs under a forked RNG: the nets the run trains are initialised as without it."""
    full = (key, config["batch_size"], config["device"], config["precision"], layout(config))
    if full not in _chosen:
        with torch.random.fork_rng(devices=[]):
            _chosen[full] = choose_precision(build(), config)
    return _chosen[full]


def fast_train(model: nn.Module, config: dict, seed: int, *, precision: str = "fp32", cutout_length: int = 0,
               monitor: str = "test", progress: bool = True, desc: str = "") -> dict[str, list]:
    """Train ``model`` by the fast recipe (:class:`FastTraining` settings in ``config``, with ``epochs`` and
    ``device``) at ``precision`` (:func:`choose_precision`); ``monitor``: the split (``"val"`` or ``"test"``)
    evaluated as :class:`Evaluated` says. Returns :func:`replib.train.fit`'s curves."""
    device = config["device"]
    x, y = splits(config["train_size"], config["val_size"], config["test_size"]).train
    model = model.to(device, memory_format=layout(config))
    steps = config["epochs"] * math.ceil(len(y) / config["batch_size"])
    augment = cifar_pipeline(data.CIFAR10_MEAN, data.CIFAR10_STD, config["translate"] > 0 or config["flip"],
                             cutout_length, padding=config["translate"], flip=config["flip"],
                             memory_format=layout(config))
    measure, evaluated = classification_monitor(eval_set(config, monitor), EVAL_BATCH), Evaluated(
        model, precision, config["flip_test"], layout(config))
    return fit(
        model,
        minibatches((x.to(device), y.to(device)), config["batch_size"], seed, augment=augment),
        epochs=config["epochs"],
        optimizer=torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=config["momentum"], nesterov=True,
                                  weight_decay=config["weight_decay"]),
        schedule=sgd_schedule(config["lr"], config["momentum"]),
        step_schedule=one_cycle(config["lr"], steps, warmup=config["warmup"]),
        loss=smoothed_loss(config["label_smoothing"], precision),
        monitor=lambda _: measure(evaluated), eval_every=config["eval_every"], progress=progress, desc=desc,
    )


def precision_facts(result: dict) -> dict[str, str]:
    """For a chapter's prose: the precision its runs trained in and why (as :func:`precision_once` recorded it),
    the run's minutes, and what they would have been in fp32 at the speed-up measured for the choice."""
    chosen = result["runs"][0].get("precision") or {"precision": "fp32", "speedup": None, "why": "not recorded"}
    minutes, speedup = result["provenance"]["wall_seconds"] / 60, chosen.get("speedup")
    in_fp32 = minutes * speedup if speedup and chosen["precision"] == "bf16" else minutes
    return {"precision": chosen["precision"], "precision_why": chosen["why"],
            "run_minutes": f"{minutes:.0f} min", "fp32_minutes": f"{in_fp32:.0f} min"}

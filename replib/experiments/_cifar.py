"""CIFAR-10 training shared by the convolutional chapters (Cutout, depth dropout).

Images stay uint8 in memory; every training minibatch is augmented and normalised as a
whole (:mod:`replib.augment`), evaluation sets are normalised once. The optimiser is
SGD with momentum and a step schedule whose milestones are *fractions* of the run, so
a shortened run keeps the shape of the paper's schedule.
"""

from __future__ import annotations

import functools
from typing import Sequence

import torch
from torch import nn

from .. import data
from ..augment import cifar_pipeline, normalize
from ..train import evaluate, fit
from ._config import check_fractions, check_int


EVAL_BATCH = 250  # images per evaluation batch: a ResNet-8 evaluates 2.3x faster than in batches of 10,000


@functools.lru_cache(maxsize=2)
def splits(train_size: int | None, val_size: int, test_size: int | None) -> data.ImageSplits:
    """uint8 splits, decoded once per process (the validation split is a fixed hold-out of the training images)."""
    return data.cifar10_splits(train_size, val_size, test_size)


@functools.lru_cache(maxsize=4)
def _normalised(which: str, train_size: int | None, val_size: int, test_size: int | None, device: str):
    x, y = getattr(splits(train_size, val_size, test_size), which)
    return normalize(x, data.CIFAR10_MEAN, data.CIFAR10_STD).to(device), y.to(device)


def eval_set(config: dict, which: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The normalised float ``val`` or ``test`` set of ``config``, on its device."""
    return _normalised(which, config["train_size"], config.get("val_size", 0), config["test_size"], config["device"])


def milestones(epochs: int, fractions: Sequence[float]) -> list[int]:
    """Epochs at which the learning rate steps, e.g. fractions (0.3, 0.6, 0.8) of 200 -> [60, 120, 160]."""
    return [max(1, round(f * epochs)) for f in fractions]


def train_classifier(model: nn.Module, config: dict, seed: int, *, cutout_length: int = 0, monitor: str = "test",
                     progress: bool = True, desc: str = "") -> dict[str, list]:
    """Train ``model`` on ``config``'s CIFAR-10 training split; return :func:`replib.train.fit`'s curves.

    Reads ``train_size``, ``val_size``, ``test_size``, ``epochs``, ``batch_size``, ``lr``,
    ``momentum``, ``nesterov``, ``weight_decay``, ``lr_fractions``, ``lr_gamma``,
    ``crop_flip``, ``eval_every`` and ``device`` from ``config``. ``monitor`` is the
    split evaluated during training (``"val"`` or ``"test"``).
    """
    device = config["device"]
    x, y = splits(config["train_size"], config.get("val_size", 0), config["test_size"]).train
    return fit(
        model.to(device), (x.to(device), y.to(device)), eval_set(config, monitor),
        epochs=config["epochs"], batch_size=config["batch_size"], lr=config["lr"],
        lr_milestones=milestones(config["epochs"], config["lr_fractions"]), lr_gamma=config["lr_gamma"],
        momentum=config["momentum"], nesterov=config["nesterov"], weight_decay=config["weight_decay"],
        augment=cifar_pipeline(data.CIFAR10_MEAN, data.CIFAR10_STD, config["crop_flip"], cutout_length),
        eval_every=config["eval_every"], eval_batch_size=EVAL_BATCH, seed=seed, progress=progress, desc=desc,
    )


def error_on(model: nn.Module, config: dict, which: str) -> float:
    """Test (or validation) error of ``model`` in %, in eval mode."""
    x, y = eval_set(config, which)
    errors, _ = evaluate(model, (x, y), EVAL_BATCH)
    return 100.0 * errors / len(y)


def check_sizes(config: dict) -> None:
    """Clear errors for the split sizes and schedule entries every CIFAR config has."""
    for key in ("train_size", "test_size"):
        check_int(config, key, allow_none=True)  # None: the whole split
    for key in ("batch_size", "eval_every"):
        check_int(config, key)
    check_fractions(config, "lr_fractions")

"""CIFAR-10 training shared by the convolutional chapters (Cutout, depth dropout): uint8 images in memory,
whole-batch augmentation (:mod:`replib.augment`), SGD with momentum and a step schedule whose milestones
are fractions of the run (:func:`replib.train.step_decay`), so a shortened run keeps the paper's shape."""

from __future__ import annotations

import functools
from typing import Annotated

import torch
from pydantic import AfterValidator, Field, create_model
from pydantic.fields import FieldInfo
from torch import nn

from .. import data
from .._validate import Fractions, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Probability, SubSpec
from ..augment import cifar_pipeline, normalize
from ..train import classification_monitor, evaluate, fit, minibatches, sgd_schedule, step_decay

EVAL_BATCH = 250  # images per evaluation batch: a ResNet-8 evaluates 2.3x faster than in batches of 10,000


def _resnet_depth(depth: int) -> int:
    if (depth - 2) % 6 != 0 or depth < 8:
        raise ValueError(f"must be 6k + 2 with k >= 1 (8, 14, 20, 32, 44, 56, 110, ...), got {depth!r}")
    return depth


ResNetDepth = Annotated[int, AfterValidator(_resnet_depth)]  # a CIFAR ResNet's layers (He et al. 2016, 4.2)


class CifarTraining(SubSpec):
    """CIFAR-10 training settings, He et al.'s (2016, 4.2) protocol by default; a chapter's config
    is ``class Config(CifarTraining.with_defaults(<its paper's protocol>), Spec)``."""

    train_size: PositiveInt | None = Field(None, description="training images, after the validation images; None: all the rest")
    val_size: NonNegativeInt = Field(0, description="images held out of the 50,000 training images for validation")
    test_size: PositiveInt | None = Field(None, description="test images; None: all 10,000")
    batch_size: PositiveInt = Field(128, description="images per minibatch")
    lr: PositiveFloat = Field(0.1, description="initial learning rate of SGD")
    momentum: Probability = Field(0.9, description="SGD momentum")
    nesterov: bool = Field(False, description="Nesterov momentum")
    weight_decay: NonNegativeFloat = Field(1e-4, description="L2 penalty on every parameter")
    lr_milestones: Fractions = Field([0.5, 0.75], description="fractions of the run at which the rate is multiplied by lr_gamma")
    lr_gamma: PositiveFloat = Field(0.1, description="factor of the learning rate at each milestone")
    crop_flip: bool = Field(True, description="standard augmentation: random 4-pixel-padded crop and horizontal flip")
    eval_every: PositiveInt = Field(1, description="epochs between evaluations of the held-out split during training")

    @classmethod
    def with_defaults(cls, **defaults) -> type[CifarTraining]:
        """These settings with other defaults; descriptions and checks unchanged."""
        fields = {k: (cls.model_fields[k].annotation, FieldInfo.merge_field_infos(cls.model_fields[k], default=v))
                  for k, v in defaults.items()}
        return create_model(cls.__name__, __base__=cls, **fields)


splits = functools.lru_cache(maxsize=2)(data.cifar10_splits)  # uint8 splits, decoded once per process


@functools.lru_cache(maxsize=4)
def _normalised(which: str, train_size: int | None, val_size: int, test_size: int | None, device: str):
    x, y = getattr(splits(train_size, val_size, test_size), which)
    return normalize(x, data.CIFAR10_MEAN, data.CIFAR10_STD).to(device), y.to(device)


def eval_set(config: dict, which: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The normalised float ``val`` or ``test`` set of ``config``, on its device."""
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
    """Test (or validation) error of ``model`` in %, in eval mode."""
    x, y = eval_set(config, which)
    return 100.0 * evaluate(model, (x, y), EVAL_BATCH)[0] / len(y)

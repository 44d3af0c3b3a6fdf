"""Whole-batch image augmentation for the convolutional chapters: no per-image Python.

Images stay in memory as uint8 ``(N, 3, H, W)``; each training minibatch is cropped,
flipped and normalised in a few tensor operations (the "standard" CIFAR augmentation of
He et al. 2016, which the Cutout paper's "+" rows use: pad by 4, random 32x32 crop,
horizontal flip with probability 1/2). :func:`cifar_pipeline` composes them with an
optional :func:`replib.methods.cutout`, applied after normalisation as in the Cutout
authors' code, for :func:`replib.train.fit`'s ``augment`` argument.
"""

from __future__ import annotations

import numbers
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from .methods import cutout


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 ``(N, C, H, W)`` in 0..255 -> float32 ``(N, C, H, W)``, ``(x / 255 - mean) / std`` per channel."""
    if x.dim() != 4 or len(mean) != x.shape[1] or len(std) != x.shape[1]:
        raise ValueError(f"normalize needs (N, C, H, W) with one mean and sd per channel; got shape "
                         f"{tuple(x.shape)}, {len(mean)} means, {len(std)} sds")
    m = torch.tensor(mean, dtype=torch.float32, device=x.device).view(1, -1, 1, 1) * 255.0
    s = torch.tensor(std, dtype=torch.float32, device=x.device).view(1, -1, 1, 1) * 255.0
    return (x.float() - m) / s


def random_crop_flip(x: torch.Tensor, padding: int = 4, flip: bool = True,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero-pad by ``padding``, crop back to ``(H, W)`` at a uniform offset per image, and mirror half the images.

    Args:
        x: ``(N, C, H, W)``, any dtype (uint8 pads with black, as torchvision's ``RandomCrop``).
        padding: pixels of zero padding on each side; the offset is uniform in ``0 .. 2 * padding``.
        flip: also flip each image horizontally with probability 1/2.
        generator: optional ``torch.Generator`` (on ``x``'s device) for the offsets and flips.

    Returns:
        A new ``(N, C, H, W)`` tensor of ``x``'s dtype.
    """
    if isinstance(padding, bool) or not isinstance(padding, numbers.Integral) or padding < 0:
        raise ValueError(f"padding must be an int >= 0, got {padding!r}")
    if x.dim() != 4:
        raise ValueError(f"random_crop_flip needs a batch of images (N, C, H, W), got shape {tuple(x.shape)}")
    n, _, h, w = x.shape
    out = x
    if padding:
        padded = F.pad(x, (padding, padding, padding, padding))
        dy = torch.randint(0, 2 * padding + 1, (n, 1), device=x.device, generator=generator)
        dx = torch.randint(0, 2 * padding + 1, (n, 1), device=x.device, generator=generator)
        rows = (dy + torch.arange(h, device=x.device)).view(n, 1, h, 1).expand(n, x.shape[1], h, w + 2 * padding)
        out = padded.gather(2, rows)  # (N, C, H, W + 2p): each image's rows
        cols = (dx + torch.arange(w, device=x.device)).view(n, 1, 1, w).expand(n, x.shape[1], h, w)
        out = out.gather(3, cols)  # (N, C, H, W)
    if flip:
        mirrored = torch.rand(n, device=x.device, generator=generator) < 0.5
        out = torch.where(mirrored.view(n, 1, 1, 1), out.flip(3), out)
    return out


def cifar_pipeline(mean: Sequence[float], std: Sequence[float], crop_flip: bool = True,
                   cutout_length: int = 0, *, padding: int = 4, flip: bool = True,
                   memory_format: torch.memory_format = torch.contiguous_format) -> Callable[[torch.Tensor], torch.Tensor]:
    """A training-batch transform: uint8 batch -> [crop (``padding`` pixels) + ``flip``] -> normalise -> [Cutout(length)],
    laid out in ``memory_format`` (``torch.channels_last`` for nets that run faster so).

    Evaluation batches only need :func:`normalize`.
    """

    def transform(x: torch.Tensor) -> torch.Tensor:
        if crop_flip:
            x = random_crop_flip(x, padding, flip)
        return cutout(normalize(x, mean, std), cutout_length).contiguous(memory_format=memory_format)

    return transform

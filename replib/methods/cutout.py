"""Cutout: mask one square patch of every training image.

DeVries & Taylor (2017), "Improved Regularization of Convolutional Neural Networks with
Cutout", arXiv 1708.04552.

For every image of the batch, independently, a centre (cy, cx) is drawn uniformly over
**all** pixels, including those near the border, and the ``length`` x ``length`` square
around it is clipped to the image. Holes near the border are therefore partial, which
the authors found essential (a hole always fully inside the image did worse). The
square is set to zero; applied after normalisation, as in the authors' code, zero is
the dataset mean. Every image gets a hole (the paper's default; no probability of
skipping). The same hole covers every channel.

Works on a whole batch in one vectorised call: no per-image Python.
"""

from __future__ import annotations

import numbers

import torch
from torch import nn


def _check_length(length: object) -> int:
    if isinstance(length, bool) or not isinstance(length, numbers.Integral) or length < 0:
        raise ValueError(f"length must be an int >= 0 (the side of the square in pixels), got {length!r}")
    return int(length)


def cutout(x: torch.Tensor, length: int, training: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero a ``length`` x ``length`` square, clipped at the border, at a uniform random centre of each image.

    Args:
        x: ``(N, C, H, W)``, already normalised (so zero is the mean).
        length: side of the square in pixels; 0 leaves ``x`` unchanged.
        training: if False return ``x`` unchanged (Cutout is a training-time augmentation).
        generator: optional ``torch.Generator`` for the centres.

    Returns:
        A new tensor of the shape of ``x`` (``x`` itself when nothing is cut).

    The square covers rows ``cy - length // 2 .. cy - length // 2 + length - 1`` (and the
    same for columns), intersected with the image: for even ``length`` exactly the
    authors' code, whose slice ``[cy - length // 2, cy + length // 2)`` is one pixel
    narrower for odd ``length``; here the side is always ``length``.
    """
    length = _check_length(length)
    if x.dim() != 4:
        raise ValueError(f"cutout needs a batch of images (N, C, H, W), got shape {tuple(x.shape)}")
    if not training or length == 0:
        return x
    n, _, h, w = x.shape
    cy = torch.randint(0, h, (n, 1), device=x.device, generator=generator)
    cx = torch.randint(0, w, (n, 1), device=x.device, generator=generator)
    rows = torch.arange(h, device=x.device).unsqueeze(0)  # (1, H)
    cols = torch.arange(w, device=x.device).unsqueeze(0)  # (1, W)
    top, left = cy - length // 2, cx - length // 2
    in_rows = (rows >= top) & (rows < top + length)  # (N, H)
    in_cols = (cols >= left) & (cols < left + length)  # (N, W)
    hole = in_rows.unsqueeze(2) & in_cols.unsqueeze(1)  # (N, H, W)
    return x.masked_fill(hole.unsqueeze(1), 0.0)


class Cutout(nn.Module):
    """Module form of :func:`cutout`: one clipped square hole per image in ``train()``, identity in ``eval()``.

    Shapes: input ``(N, C, H, W)``, output the same.
    """

    def __init__(self, length: int) -> None:
        super().__init__()
        self.length = _check_length(length)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cutout(x, self.length, self.training)

    def extra_repr(self) -> str:
        return f"length={self.length}"

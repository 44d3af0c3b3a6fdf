"""Depth dropout: skip a residual block's main path for some images, and really save the compute.

Guo & Gould (2016), "Depth Dropout: Efficient Training of Residual Convolutional Neural
Networks", DICTA 2016. Related: stochastic depth (Huang et al. 2016), which skips a block
for the whole minibatch at once.

A block computes, for image n of the minibatch,

    y_n = relu( T(x_n) + a_n F(x_n) ),   a_n ~ Bernoulli(1 - p)   (training)
    y_n = relu( T(x_n) + F(x_n) )                                  (test: a_n = 1, no rescaling)

where F is the main path (3x3 conv, batch norm, ReLU, 3x3 conv, batch norm) and T a
trainable 1x1 convolution on the shortcut, which keeps information flowing (and lets the
block change width or stride) when F is skipped. The gate is drawn **per image**. F runs
only on the kept images: they are gathered, passed through F, and their outputs added
back in place (``index_add``), so skipped images cost nothing in F, forward or backward;
multiplying F's output by a zero would save nothing. Batch norm inside F therefore sees
the kept images only.

Not confirmed from the paper's full text (see ``shared/PAPERS.md``; only the abstract is):
the exact block form, whether T is followed by batch norm (here it is not) and whether
test-time outputs are rescaled (the specification we follow says they are not).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .._validate import check_positive_int, check_probability
from .drop_path import add_on_kept


def depth_dropout_residual(
    x: torch.Tensor,
    main: Callable[[torch.Tensor], torch.Tensor],
    shortcut: Callable[[torch.Tensor], torch.Tensor],
    p: float,
    training: bool,
) -> torch.Tensor:
    """``shortcut(x) + a ⋆ main(x)`` with ``a_n ~ Bernoulli(1 - p)`` per image; ``main`` runs on kept images only.

    Args:
        x: ``(N, ...)``, a batch.
        main, shortcut: maps from ``(K, ...)`` to ``(K, ...out)`` for any K (the same output shape).
        p: probability of skipping ``main`` for an image.
        training: draw gates (True) or use ``a_n = 1`` for every image (False).

    Returns:
        ``(N, ...out)``, before the block's final activation.
    """
    p = check_probability(p)
    out = shortcut(x)
    if not training or p == 0.0:
        return out + main(x)
    return add_on_kept(out, x, main, p)  # unscaled, as the paper's rule


def residual_paths(in_channels: int, out_channels: int, stride: int = 1) -> tuple[nn.Sequential, nn.Conv2d]:
    """A CIFAR residual block's two paths, built in this order (one seed, the same weights, in every block that
    uses them): the main path, 3x3 conv (stride ``stride``), batch norm, ReLU, 3x3 conv, batch norm; the shortcut,
    a 1x1 convolution (stride ``stride``, no batch norm), even where the width and resolution do not change."""
    in_channels = check_positive_int(in_channels, "in_channels")
    out_channels = check_positive_int(out_channels, "out_channels")
    if stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, got {stride!r}")
    main = nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),
        nn.BatchNorm2d(out_channels),
    )
    return main, nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)


class DepthDropoutBlock(nn.Module):
    """A CIFAR-style residual block with depth dropout; see :func:`depth_dropout_residual`.

    Shapes: input ``(N, in_channels, H, W)``, output ``(N, out_channels, H / stride, W / stride)``.
    ``main_images`` counts the images that went through the main path in the latest forward pass.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, p: float = 0.5) -> None:
        super().__init__()
        self.p = check_probability(p)
        self.main, self.shortcut = residual_paths(in_channels, out_channels, stride)
        self.main_images = 0

    def _main(self, x: torch.Tensor) -> torch.Tensor:
        self.main_images += x.shape[0]
        return self.main(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.main_images = 0
        return F.relu(depth_dropout_residual(x, self._main, self.shortcut, self.p, self.training))

    def extra_repr(self) -> str:
        return f"p={self.p}"

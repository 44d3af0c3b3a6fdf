"""SpatialDropout: drop whole feature maps.

Tompson, Goroshin, Jain, LeCun, Bregler (2015), "Efficient Object Localization Using
Convolutional Networks", CVPR 2015, section 3.2.

In a fully convolutional net neighbouring activations of a feature map are strongly
correlated, so dropping single activations barely changes what the next layer sees.
SpatialDropout instead draws **one Bernoulli(1 - p) per feature map per example** and
zeroes the whole map together. Kept maps are scaled by 1 / (1 - p) in training (inverted
scaling), so the layer is the identity at test time.

Input must be ``(N, C, H, W)`` (or ``(N, C, D, H, W)``): PyTorch's ``Dropout2d`` silently
treats 3-D input as ``(N, C, L)`` and drops whole channels of a 1-D signal, or, in older
versions, an unbatched ``(C, H, W)`` image; we refuse to guess and reject anything else.
"""

from __future__ import annotations

import torch

from .._validate import check_probability
from ._stochastic import StochasticLayer

SPATIAL_DIMS = (4, 5)  # (N, C, H, W) and (N, C, D, H, W)


def spatial_dropout(x: torch.Tensor, p: float = 0.5, training: bool = True) -> torch.Tensor:
    """Zero each feature map of each example with probability ``p``; scale the kept ones by 1/(1-p).

    Args:
        x: ``(N, C, H, W)`` or ``(N, C, D, H, W)``, floating point.
        p: drop probability of a feature map, in [0, 1].
        training: if False (test time) return ``x`` unchanged.

    Returns:
        A tensor of the shape of ``x``; ``x`` itself at ``p = 0`` or in eval, zeros at ``p = 1``.

    Raises:
        ValueError: for a bad ``p`` or an input that is not 4-D or 5-D (which dimension is
        the channel would be a guess).
    """
    p = check_probability(p)
    if x.dim() not in SPATIAL_DIMS:
        raise ValueError(
            f"spatial_dropout needs a batch of feature maps (N, C, H, W) or (N, C, D, H, W), got shape "
            f"{tuple(x.shape)}; add the batch dimension with x.unsqueeze(0) for a single image"
        )
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    keep = 1.0 - p
    mask_shape = (x.shape[0], x.shape[1]) + (1,) * (x.dim() - 2)  # one draw per (example, channel)
    scaled_mask = (torch.rand(mask_shape, device=x.device) < keep).to(x.dtype).mul_(1.0 / keep)
    return x * scaled_mask


class SpatialDropout(StochasticLayer):
    """Module form of :func:`spatial_dropout`: whole maps dropped per example in ``train()``, identity in ``eval()``.

    Shapes: input ``(N, C, H, W)`` or ``(N, C, D, H, W)``, output the same.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = check_probability(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return spatial_dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"

"""Max-pooling dropout, with probabilistic weighted pooling at test time.

Wu & Gu (2015), "Towards dropout training for convolutional neural networks", Neural Networks 71 (arXiv
1512.00242), sections 2-3.

Training: every input of a max-pooling layer is kept with probability ``q = 1 - p`` and zeroed otherwise, drawn
**per element**, and then each window is max-pooled; kept values are *not* rescaled. For non-negative inputs (the
paper pools rectified activations) the output of a window is then a draw from a multinomial over its values:
with its values sorted ``a_1 <= ... <= a_n``, it is ``a_i`` with probability ``q (1 - q)^(n - i)`` (``a_i`` kept,
every larger one dropped) and 0 with probability ``(1 - q)^n`` (all dropped).

Test: *probabilistic weighted pooling*, the expectation of that output, ``sum_i q (1 - q)^(n - i) a_i``: each
sorted activation weighted by its probability of being the kept maximum. It equals the mean training output for
non-negative inputs; for negative ones the zero of a dropped unit can be the maximum, and it does not.

Windows are ``kernel_size`` square or rectangular, ``stride`` (default: the kernel) apart, without padding;
inputs ``(N, C, H, W)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._validate import check_probability
from ._stochastic import StochasticLayer


def _pair(value, name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in pair):
        raise ValueError(f"{name}={value!r}: must be an int >= 1 or a pair of them")
    return pair


def _check(x: torch.Tensor, kernel_size, stride) -> tuple[tuple[int, int], tuple[int, int]]:
    if x.dim() != 4:
        raise ValueError(f"max-pooling dropout needs (N, C, H, W) input, got shape {tuple(x.shape)}")
    kernel = _pair(kernel_size, "kernel_size")
    step = kernel if stride is None else _pair(stride, "stride")
    if x.shape[2] < kernel[0] or x.shape[3] < kernel[1]:
        raise ValueError(f"a {kernel} window does not fit an input of {tuple(x.shape[2:])} pixels")
    return kernel, step


def maxpool_dropout(x: torch.Tensor, kernel_size, p: float = 0.5, stride=None, training: bool = True) -> torch.Tensor:
    """Max-pool ``x`` after dropping each input with probability ``p`` (training) or by probabilistic weighted
    pooling (test).

    Args:
        x: ``(N, C, H, W)``, floating point (non-negative, e.g. after a ReLU, for the test rule to be the
            training output's mean).
        kernel_size: the window, an int or ``(kh, kw)``.
        p: drop probability of an input, in [0, 1].
        stride: the windows' step (default: ``kernel_size``).
        training: True: the random mask, then max-pooling; False: :func:`probabilistic_weighted_pooling`.

    Returns:
        ``(N, C, H_out, W_out)`` with ``H_out = (H - kh) // sh + 1`` (likewise ``W_out``). At ``p = 0`` both rules
        are plain max-pooling.
    """
    p = check_probability(p)
    kernel, step = _check(x, kernel_size, stride)
    if not training:
        return probabilistic_weighted_pooling(x, kernel, p, step)
    kept = x if p == 0.0 else x * (torch.rand_like(x) >= p).to(x.dtype)
    return F.max_pool2d(kept, kernel, step)


def probabilistic_weighted_pooling(x: torch.Tensor, kernel_size, p: float = 0.5, stride=None) -> torch.Tensor:
    """Each window's values sorted ascending, ``a_1 <= ... <= a_n``, summed with weights ``q (1 - q)^(n - i)``,
    ``q = 1 - p``: the expected output of max-pooling dropout for non-negative inputs. Shapes as
    :func:`maxpool_dropout`."""
    p = check_probability(p)
    kernel, step = _check(x, kernel_size, stride)
    n, c, h, w = x.shape
    windows = F.unfold(x.reshape(n * c, 1, h, w), kernel, stride=step)  # (N*C, kh*kw, windows)
    size = windows.shape[1]
    q = 1.0 - p
    weights = q * (1.0 - q) ** torch.arange(size - 1, -1, -1, dtype=x.dtype, device=x.device)  # ascending a_i
    pooled = (windows.sort(dim=1).values * weights[:, None]).sum(1)
    return pooled.reshape(n, c, (h - kernel[0]) // step[0] + 1, (w - kernel[1]) // step[1] + 1)


class MaxPoolDropout(StochasticLayer):
    """Module form of :func:`maxpool_dropout`: random masks then max-pooling in ``train()``, probabilistic
    weighted pooling in ``eval()`` (a Monte Carlo sample under :func:`replib.methods.mc_predict`).

    Shapes: input ``(N, C, H, W)``, output ``(N, C, H_out, W_out)``.
    """

    def __init__(self, kernel_size, p: float = 0.5, stride=None) -> None:
        super().__init__()
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride")
        self.p = check_probability(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return maxpool_dropout(x, self.kernel_size, self.p, self.stride, self.training)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, p={self.p}, stride={self.stride}"

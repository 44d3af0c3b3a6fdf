"""Drop path that skips the compute: a residual branch run only on the samples that keep it.

Stochastic depth drops a residual branch per sample (Huang et al. 2016, "Deep Networks with Stochastic Depth",
per minibatch there; per sample in the drop-path form of Larsson et al. 2017 and of today's vision libraries).
The common implementation multiplies the branch's output by a per-sample mask, so a dropped sample still costs a
full forward and backward pass through the branch. Here, as in the depth-dropout block
(:func:`replib.methods.depth_dropout_residual`) and in DINOv2's ``drop_add_residual_stochastic_depth``, the kept
samples are gathered, the branch runs on them alone, and its output is added back in place:

    y_n = x_n + a_n * s * branch(x_n),   a_n ~ Bernoulli(1 - p) per sample   (training)
    y_n = x_n + branch(x_n)                                                  (test)

with ``s = 1 / (1 - p)`` when ``scale=True`` (the drop-path convention: the identity in expectation, nothing to do
at test time), or ``s = 1`` (the depth-dropout and stochastic-depth papers' training rule; their test rule then
uses the branch unscaled, as here, or scaled by ``1 - p``: pass ``test_scale``). The result has the distribution
of the mask-multiply form; only the cost differs. A branch with batch norm sees the kept samples only.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .._validate import check_probability


def drop_add_residual(x: torch.Tensor, branch: Callable[[torch.Tensor], torch.Tensor], p: float,
                      training: bool = True, scale: bool = True, test_scale: float = 1.0) -> torch.Tensor:
    """``x + a * s * branch(x)`` with ``a_n ~ Bernoulli(1 - p)`` per sample; ``branch`` runs on kept samples only.

    Args:
        x: ``(N, ...)``, a batch; ``branch`` maps ``(K, ...)`` to ``(K, ...)`` of the same shape, for any K.
        p: probability that a sample skips the branch, in [0, 1].
        training: draw the gates (True), or run the branch on every sample (False).
        scale: in training, scale a kept branch by ``1 / (1 - p)`` (True) or not (False).
        test_scale: at test time, the branch's factor (1.0, or ``1 - p`` for the unscaled training rule's mean).

    Returns:
        ``(N, ...)``. Samples that skip get ``x_n`` itself (the branch never sees them, forward or backward).
    """
    p = check_probability(p)
    if not training or p == 0.0:
        out = branch(x)
        return x + (out if test_scale == 1.0 else test_scale * out)
    if p == 1.0:  # every sample skips: the branch never runs
        return x
    return add_on_kept(x, x, branch, p, 1.0 / (1.0 - p) if scale else 1.0)


def add_on_kept(base: torch.Tensor, x: torch.Tensor, branch: Callable[[torch.Tensor], torch.Tensor], p: float,
                factor: float = 1.0) -> torch.Tensor:
    """``base + a * factor * branch(x)`` with ``a_n ~ Bernoulli(1 - p)`` per sample, the branch run on the kept
    samples only (gathered, then added back in place): the per-sample gate that drop path and depth dropout
    share. ``base`` and ``branch(x)`` have one shape; ``x`` is ``(N, ...)``."""
    kept = (torch.rand(x.shape[0], device=x.device) < 1.0 - p).nonzero().squeeze(1)
    if kept.numel() == 0:
        return base
    if kept.numel() == x.shape[0]:
        residual = branch(x)
        return base + (residual if factor == 1.0 else factor * residual)
    residual = branch(x.index_select(0, kept))
    return base.index_add(0, kept, (residual if factor == 1.0 else factor * residual).to(base.dtype))


class DropAddResidual(nn.Module):
    """``x + branch(x)`` with the branch dropped per sample by :func:`drop_add_residual` in ``train()``; wraps any
    residual branch (a module mapping ``(K, ...)`` to the same shape, e.g. a transformer block's attention or MLP
    branch, or a ResNet block's main path with a matching shortcut left outside).

    Shapes: input ``(N, ...)``, output the same. ``branch_samples`` counts the samples the branch saw last time.
    Not a :class:`~replib.methods._stochastic.StochasticLayer`: :func:`~replib.methods.mc_predict` would put the
    wrapped branch (its batch norm included) in training mode with it.
    """

    def __init__(self, branch: nn.Module, p: float = 0.1, scale: bool = True, test_scale: float = 1.0) -> None:
        super().__init__()
        self.branch = branch
        self.p = check_probability(p)
        self.scale, self.test_scale = bool(scale), float(test_scale)
        self.branch_samples = 0

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        self.branch_samples += x.shape[0]
        return self.branch(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.branch_samples = 0
        return drop_add_residual(x, self._branch, self.p, self.training, self.scale, self.test_scale)

    def extra_repr(self) -> str:
        return f"p={self.p}, scale={self.scale}, test_scale={self.test_scale}"

"""Max-Drop: drop the largest activation of a group instead of a random one.

Park & Kwak (2016), "Analysis on the Dropout Effect in Convolutional Neural Networks", ACCV 2016
(LNCS 10112, pp. 189-204).

The paper's abstract states the idea: rather than dropping activations at random, drop those with high values
across the feature map or across the channels. Its exact rule (how many activations, with what probability, and
what happens at test time) is not confirmed here, so this module implements one stated reading of it:

- ``mode="feature"`` (feature-wise): for every example and channel, the largest activation of that feature map
  (over its positions) is zeroed with probability ``p``: **one Bernoulli(p) draw per (example, channel)**;
- ``mode="channel"`` (channel-wise): for every example and position, the largest activation across the channels
  is zeroed with probability ``p``: **one Bernoulli(p) draw per (example, position)**.

Every activation equal to its group's maximum belongs to it (ties are dropped together; for ReLU outputs a map
of zeros "drops" zeros, which changes nothing). Nothing else is touched or rescaled: at most one value per group
changes, so inverted scaling has no natural form.

Test time: each group's maximum is multiplied by ``1 - p`` and every other activation passes unchanged, which is
the expectation of the training output for a fixed input (dropout's weight-scaling rule carried over; our choice,
as the paper's is not confirmed). :func:`~replib.methods.mc_predict` keeps the training-mode draws instead.

Shapes: ``(N, C, *spatial)`` for both modes, with at least one spatial dimension for ``"feature"``; ``"channel"``
also takes ``(N, C)`` (the most active unit of each example).
"""

from __future__ import annotations

import torch

from .._validate import check_choice, check_probability
from ._stochastic import StochasticLayer

MODES = ("feature", "channel")


def group_maxima(x: torch.Tensor, mode: str) -> torch.Tensor:
    """Boolean mask of the shape of ``x``: True where an activation equals the maximum of its group (its feature
    map for ``"feature"``, its position across the channels for ``"channel"``)."""
    if mode == "feature":
        top = x.flatten(2).amax(2).view(*x.shape[:2], *(1,) * (x.dim() - 2))
    else:
        top = x.amax(1, keepdim=True)
    return x == top


def max_drop(x: torch.Tensor, p: float = 0.5, mode: str = "feature", training: bool = True) -> torch.Tensor:
    """Zero the maximum of each group with probability ``p`` (training), or scale it by ``1 - p`` (test).

    Args:
        x: ``(N, C, *spatial)``, floating point; ``(N, C)`` is allowed with ``mode="channel"``.
        p: probability that a group's maximum is dropped, in [0, 1].
        mode: ``"feature"`` (one group per example and channel: the feature map) or ``"channel"`` (one group per
            example and position: the channels there).
        training: draw the drops; if False, return the test-time rule (maxima times ``1 - p``).

    Returns:
        A tensor of the shape and dtype of ``x``; ``x`` itself at ``p = 0``. Gradients flow to every kept
        activation unchanged and are zero at dropped ones.

    Raises:
        ValueError: for a bad ``p`` or ``mode``, or an input with too few dimensions for ``mode``.
    """
    p = check_probability(p)
    check_choice(mode, MODES, "mode")
    least = 3 if mode == "feature" else 2
    if x.dim() < least:
        raise ValueError(
            f"max_drop(mode={mode!r}) needs an input of shape "
            f"{'(N, C, *spatial) with at least one spatial dimension' if mode == 'feature' else '(N, C, *spatial)'}, "
            f"got shape {tuple(x.shape)}")
    if p == 0.0:
        return x
    is_max = group_maxima(x.detach(), mode)
    if not training:
        return torch.where(is_max, x * (1.0 - p), x)
    groups = (*x.shape[:2], *(1,) * (x.dim() - 2)) if mode == "feature" else (x.shape[0], 1, *x.shape[2:])
    dropped = torch.rand(groups, device=x.device) < p
    return x.masked_fill(is_max & dropped, 0.0)


class MaxDrop(StochasticLayer):
    """Module form of :func:`max_drop`: group maxima dropped in ``train()``, scaled by ``1 - p`` in ``eval()``.

    Shapes: input ``(N, C, *spatial)`` (``(N, C)`` too for ``mode="channel"``), output the same.
    """

    def __init__(self, p: float = 0.5, mode: str = "feature") -> None:
        super().__init__()
        self.p = check_probability(p)
        self.mode = check_choice(mode, MODES, "mode")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return max_drop(x, self.p, self.mode, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode!r}"

"""Gaussian dropout: multiplicative Gaussian noise in place of the Bernoulli mask.

Srivastava, Hinton, Krizhevsky, Sutskever, Salakhutdinov (2014), "Dropout: A Simple Way to Prevent Neural
Networks from Overfitting", JMLR 15, section 10 ("Multiplicative Gaussian Noise").

Every element is multiplied by its own draw of ``N(1, sigma^2)`` with ``sigma^2 = p / (1 - p)``, the variance of
the inverted Bernoulli mask ``Bernoulli(1 - p) / (1 - p)`` of the same drop rate ``p``: the noise has the mean and
variance of inverted dropout, Gaussian in shape. The noise is drawn **per element**; its mean is 1, so the layer
needs no rescaling and is the identity at test time.
"""

from __future__ import annotations

import math

import torch

from .._validate import check_probability
from ._stochastic import StochasticLayer


def gaussian_noise_sd(p: float) -> float:
    """The noise's standard deviation for drop rate ``p``: ``sqrt(p / (1 - p))`` (that of inverted dropout)."""
    p = check_probability(p)
    if p == 1.0:
        raise ValueError("Gaussian dropout at p = 1 has infinite noise variance p/(1-p): use p in [0, 1)")
    return math.sqrt(p / (1.0 - p))


def gaussian_dropout(x: torch.Tensor, p: float = 0.5, training: bool = True) -> torch.Tensor:
    """Multiply each element of ``x`` by independent ``N(1, p / (1 - p))`` noise.

    Args:
        x: any shape ``(*)``; floating point.
        p: the drop rate whose Bernoulli noise variance the Gaussian matches, in [0, 1).
        training: if False (test time) return ``x`` unchanged.

    Returns:
        A tensor of the shape of ``x``; ``x`` itself at ``p = 0`` or in eval.
    """
    sd = gaussian_noise_sd(p)
    if not training or sd == 0.0:
        return x
    return x * torch.randn_like(x).mul_(sd).add_(1.0)


class GaussianDropout(StochasticLayer):
    """Module form of :func:`gaussian_dropout`: per-element multiplicative noise in ``train()``, identity in
    ``eval()`` (and a Monte Carlo sample under :func:`replib.methods.mc_predict`).

    Shapes: input ``(*)``, output ``(*)``.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        gaussian_noise_sd(p)  # refuses p = 1 and anything outside [0, 1] here, not at the first forward
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gaussian_dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"

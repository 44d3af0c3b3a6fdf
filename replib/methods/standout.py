"""Standout (adaptive dropout): a belief network decides which units to keep.

Ba & Frey (2013), "Adaptive dropout for training deep neural networks", NIPS 26.

A binary belief network overlays the layer: hidden unit j of example n is kept with
probability π_nj = σ(α s_nj + β), where s = W a + b is the unit's own pre-activation
(the "tied" form: the belief network's weights are αW, its biases αb + β). The keep
probability is therefore a function of the same input the unit sees, and rises with it
for α > 0. Masks are drawn **per unit per example**. The belief network has no
parameters of its own to learn: it follows W, and no gradient flows through π (it is
computed from a detached s), which is what tying means here.

Training: h = m ⋆ g(s), m ~ Bernoulli(π). Test time: h = π ⋆ g(s), the expected output
(no rescaling during training, as in the paper).

Not confirmed from the paper's full text (see ``shared/PAPERS.md``): whether the bias
enters the belief network; we include it because π should see the unit's whole input.
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F
from torch import nn

from .._validate import check_choice
from ._activations import INNER_ACTIVATIONS
from ._stochastic import StochasticLayer


def _check_real(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != value:
        raise ValueError(f"{name} must be a real number, got {value!r}")
    return float(value)


def standout_keep_probability(pre: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """π = sigmoid(alpha * pre + beta), with no gradient into ``pre``. Shapes ``(*)`` -> ``(*)``."""
    return torch.sigmoid(alpha * pre.detach() + beta)


def standout_linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    alpha: float,
    beta: float,
    training: bool,
    activation: str = "relu",
) -> torch.Tensor:
    """Linear layer, activation and standout mask. ``(N, in)`` -> ``(N, out)``."""
    alpha, beta = _check_real(alpha, "alpha"), _check_real(beta, "beta")
    act = INNER_ACTIVATIONS[check_choice(activation, INNER_ACTIVATIONS, "activation")]
    pre = F.linear(x, weight, bias)
    keep = standout_keep_probability(pre, alpha, beta)
    if training:
        return act(pre) * (torch.rand_like(keep) < keep)
    return act(pre) * keep


class StandoutLinear(StochasticLayer):
    """Module form of :func:`standout_linear`; ``last_keep`` holds π of the latest forward pass.

    Shapes: input ``(N, in_features)``, output ``(N, out_features)``.
    """

    def __init__(self, in_features: int, out_features: int, alpha: float = 1.0, beta: float = 0.0,
                 activation: str = "relu") -> None:
        super().__init__()
        self.alpha, self.beta = _check_real(alpha, "alpha"), _check_real(beta, "beta")
        self.activation = check_choice(activation, INNER_ACTIVATIONS, "activation")
        self.linear = nn.Linear(in_features, out_features)

    @property
    def weight(self) -> torch.Tensor:
        return self.linear.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return standout_linear(x, self.linear.weight, self.linear.bias, self.alpha, self.beta, self.training,
                               self.activation)

    def keep_probability(self, x: torch.Tensor) -> torch.Tensor:
        """π for input ``x``: ``(N, in)`` -> ``(N, out)``."""
        return standout_keep_probability(self.linear(x), self.alpha, self.beta)

    def extra_repr(self) -> str:
        return (f"{self.linear.in_features}, {self.linear.out_features}, alpha={self.alpha}, beta={self.beta}, "
                f"activation={self.activation}")

"""Standard (inverted) dropout.

Hinton, Srivastava, Krizhevsky, Sutskever, Salakhutdinov (2012), "Improving neural
networks by preventing co-adaptation of feature detectors", arXiv 1207.0580;
Srivastava et al. (2014), JMLR 15, for the inverted scaling used here.

Masks are drawn **per element**: every activation of every example gets its own
Bernoulli(1 - p) draw. Kept activations are scaled by 1 / (1 - p) during training so
that the layer is the identity in expectation and needs no rescaling at test time
(the paper instead halves the outgoing weights at test time; the two are equivalent
for the mean network).
"""

from __future__ import annotations

import torch

from .._validate import check_probability
from ._stochastic import StochasticLayer


def dropout(x: torch.Tensor, p: float = 0.5, training: bool = True) -> torch.Tensor:
    """Zero each element of ``x`` independently with probability ``p``; scale the rest by 1/(1-p).

    Args:
        x: any shape ``(*)``; floating point.
        p: drop probability in [0, 1].
        training: if False (test time) return ``x`` unchanged.

    Returns:
        A tensor of the same shape as ``x``. ``p = 0`` or ``training=False`` returns
        ``x`` itself; ``p = 1`` returns zeros (still connected to the graph).

    The mask is ``rand_like(x) < 1 - p``: on CPU this is about 3x cheaper than the
    Bernoulli sampler behind ``torch.nn.functional.dropout`` (see
    ``benchmarks/bench_dropout.py``).
    """
    p = check_probability(p)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    keep = 1.0 - p
    scaled_mask = (torch.rand_like(x) < keep).to(x.dtype).mul_(1.0 / keep)
    return x * scaled_mask


class Dropout(StochasticLayer):
    """Module form of :func:`dropout`: per-element masks in ``train()``, identity in ``eval()``.

    Shapes: input ``(*)``, output ``(*)``.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = check_probability(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"

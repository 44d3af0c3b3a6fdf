"""MC dropout: keep dropout on at test time and average many stochastic forward passes.

Gal & Ghahramani (2016), "Dropout as a Bayesian Approximation: Representing Model
Uncertainty in Deep Learning", ICML 2016 (arXiv 1506.02142).

The predictive mean is the average of ``samples`` forward passes, each with fresh dropout
masks; their spread estimates the model's uncertainty. Only the dropout layers are put
in training mode: ``model.train()`` would also switch batch norm to batch statistics
(and update its running averages), a silent bug common in the wild. Every module's
mode is restored afterwards, even if a pass raises.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
from torch import nn

from .._validate import check_positive_int
from ._stochastic import StochasticLayer

# Modules whose training mode means "sample masks"; nothing else is switched on. Our own
# layers (Dropout, SpatialDropout, DropConnectLinear, StandoutLinear, VariationalLSTM)
# subclass StochasticLayer, so this module needs to import none of them.
STOCHASTIC_MODULES: tuple[type[nn.Module], ...] = (nn.modules.dropout._DropoutNd, StochasticLayer)


class MCPrediction(NamedTuple):
    """``mean`` and ``std`` over the passes (shape of one output); ``samples`` ``(samples, *output)`` or None."""

    mean: torch.Tensor
    std: torch.Tensor
    samples: torch.Tensor | None


@torch.no_grad()
def mc_predict(
    model: nn.Module,
    x: torch.Tensor,
    samples: int = 100,
    *,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    return_samples: bool = False,
) -> MCPrediction:
    """Monte Carlo dropout prediction of ``model`` on ``x``.

    Args:
        model: any module; its dropout-type layers (:data:`STOCHASTIC_MODULES`: PyTorch's
            ``nn.Dropout*`` and every :class:`~replib.methods._stochastic.StochasticLayer`)
            sample masks, every other layer (batch norm included) stays in eval mode.
        x: the input, any shape ``model`` accepts.
        samples: number of stochastic forward passes, >= 1.
        transform: applied to each pass's output before averaging, e.g.
            ``lambda z: z.softmax(-1)`` to average class probabilities.
        return_samples: also return every pass, stacked on a new first dimension.

    Returns:
        :class:`MCPrediction`: ``mean`` and ``std`` (population sd over passes; zero for a
        single pass) with the shape of one output, and ``samples`` or None.
    """
    samples = check_positive_int(samples, "samples")
    stochastic = [m for m in model.modules() if isinstance(m, STOCHASTIC_MODULES)]
    if not stochastic:
        raise ValueError(
            f"{type(model).__name__} has no dropout layer (an nn.Dropout* or a replib StochasticLayer such as "
            "Dropout, SpatialDropout, DropConnectLinear, StandoutLinear, VariationalLSTM): "
            "every pass would be identical"
        )
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        for m in stochastic:
            m.train()
        outs = []
        for _ in range(samples):
            y = model(x)
            outs.append(y if transform is None else transform(y))
        stacked = torch.stack(outs)
    finally:
        for m, mode in modes.items():
            m.training = mode
    return MCPrediction(stacked.mean(0), stacked.std(0, correction=0), stacked if return_samples else None)

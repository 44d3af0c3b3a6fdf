"""DropConnect: drop individual weights instead of units.

Wan, Zeiler, Zhang, LeCun, Fergus (2013), "Regularization of Neural Networks using
DropConnect", ICML 2013.

Training computes r = a((M ⋆ W) v + m ⋆ b) with an independent Bernoulli(1 - p) mask over
every weight and bias. ``masks="per_example"`` (the paper's scheme) draws a **new mask
for every example** of the minibatch; ``masks="per_minibatch"`` draws **one mask shared
by the whole minibatch** (the cheaper variant the paper says regularizes less). As in the
paper, kept weights are *not* rescaled during training; instead inference works with the
keep probability q = 1 - p:

- ``inference="mean"``: r = a(q (W v + b)), the mean network (as dropout);
- ``inference="gaussian"``: the paper's moment matching. Each unit's input is
  u ~ N(q (W v + b), q (1 - q) ((W ⋆ W)(v ⋆ v) + b ⋆ b)); ``samples`` draws of u go through
  the activation and are averaged (the paper uses 1000).

Per-example masks cost O(batch · out · in) random draws per step; they are generated in
chunks of examples so memory stays bounded (``max_mask_elements``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import ACTIVATIONS, check_choice, check_probability

MASKS = ("per_example", "per_minibatch")
INFERENCE = ("mean", "gaussian")


def dropconnect_linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    p: float,
    training: bool,
    *,
    activation: str = "relu",
    masks: str = "per_example",
    inference: str = "mean",
    samples: int = 1000,
    max_mask_elements: int = 2**24,
) -> torch.Tensor:
    """DropConnect layer followed by its activation.

    Args:
        x: ``(N, in_features)``.
        weight: ``(out_features, in_features)``; bias: ``(out_features,)`` or None.
        p: probability of dropping each weight (the paper's keep probability is 1 - p).
        training: draw masks (True) or run inference (False).
        activation: ``relu``, ``tanh``, ``sigmoid`` or ``identity``; applied inside the layer
            because Gaussian inference averages activations, not pre-activations.
        masks: ``per_example`` (a new mask for every example) or ``per_minibatch``.
        inference: ``mean`` or ``gaussian`` (see the module docstring).
        samples: draws per unit for Gaussian inference.
        max_mask_elements: per-example masks are drawn for as many examples at a time as fit.

    Returns:
        ``(N, out_features)`` activations.
    """
    p = check_probability(p)
    act = ACTIVATIONS[check_choice(activation, ACTIVATIONS, "activation")]
    check_choice(masks, MASKS, "masks")
    check_choice(inference, INFERENCE, "inference")
    if x.dim() != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"x must be (N, {weight.shape[1]}), got shape {tuple(x.shape)}")
    keep = 1.0 - p
    if training:
        if masks == "per_minibatch":
            w = weight * (torch.rand_like(weight) < keep)
            b = None if bias is None else bias * (torch.rand_like(bias) < keep)
            return act(F.linear(x, w, b))
        chunk = max(1, max_mask_elements // weight.numel())
        outs = []
        for xc in x.split(chunk):
            m = torch.rand((len(xc), *weight.shape), device=x.device) < keep  # (c, out, in)
            u = torch.einsum("coi,ci->co", weight * m, xc)
            if bias is not None:
                u = u + bias * (torch.rand((len(xc), len(bias)), device=x.device) < keep)
            outs.append(u)
        return act(torch.cat(outs))
    mean = keep * F.linear(x, weight, bias)
    if inference == "mean" or p == 0.0:
        return act(mean)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be an int >= 1, got {samples!r}")
    second = F.linear(x * x, weight * weight, None if bias is None else bias * bias)
    std = (keep * (1.0 - keep) * second).sqrt()
    total = torch.zeros_like(mean)
    for _ in range(samples):  # one (N, out) draw at a time: memory independent of `samples`
        total += act(mean + std * torch.randn_like(mean))
    return total / samples


class DropConnectLinear(nn.Module):
    """Linear layer with DropConnect and its activation; see :func:`dropconnect_linear`.

    Shapes: input ``(N, in_features)``, output ``(N, out_features)``. In ``eval()`` mode the
    ``inference`` rule applies (``mean`` is deterministic; ``gaussian`` samples).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        p: float = 0.5,
        *,
        activation: str = "relu",
        masks: str = "per_example",
        inference: str = "mean",
        samples: int = 1000,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.p = check_probability(p)
        self.activation = check_choice(activation, ACTIVATIONS, "activation")
        self.masks = check_choice(masks, MASKS, "masks")
        self.inference = check_choice(inference, INFERENCE, "inference")
        self.samples = samples
        self.linear = nn.Linear(in_features, out_features, bias=bias)

    @property
    def weight(self) -> torch.Tensor:
        return self.linear.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropconnect_linear(
            x, self.linear.weight, self.linear.bias, self.p, self.training, activation=self.activation,
            masks=self.masks, inference=self.inference, samples=self.samples,
        )

    def extra_repr(self) -> str:
        return (f"{self.linear.in_features}, {self.linear.out_features}, p={self.p}, activation={self.activation}, "
                f"masks={self.masks}, inference={self.inference}")

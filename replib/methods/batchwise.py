"""Batchwise dropout: one dropout pattern per minibatch, computed with submatrices.

Graham, Reizenstein, Robinson (2015), "Efficient batchwise dropout training using
submatrices", arXiv 1502.02478.

All examples of a minibatch share one pattern: for each layer a set of kept units.
Following the authors' released code, **exactly round(n (1 - p)) units** of each
dropped layer are kept per minibatch (not a Bernoulli number). Layer l then computes
only ``h_out[:, K_out] = a(h_in[:, K_in] @ W[K_out, K_in].T + b[K_out])``: dropped units
are never computed, forward or backward, and :class:`SubmatrixSGD` updates only the
weights of the submatrix and *their* momentum (the rest of W and of the momentum buffer
are untouched, not decayed). Kept units are not rescaled during training; at test time
every weight matrix is scaled by the fraction of its inputs that were kept, k / n (the
authors scale by 1 - p, equal whenever n (1 - p) is a whole number).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._validate import check_choice, check_probability
from ._activations import INNER_ACTIVATIONS


def submatrix_index(rows: torch.Tensor, cols: torch.Tensor | None, n_cols: int) -> torch.Tensor:
    """Flat indices of ``full[rows][:, cols]`` in a row-major ``(n_out, n_cols)`` matrix (``cols=None``: all).

    One gather or scatter over flat indices is the cheapest submatrix access on CPU
    (two ``index_select`` calls or advanced indexing with two index tensors cost 2-6x more).
    """
    cols = torch.arange(n_cols, device=rows.device) if cols is None else cols
    return (rows[:, None] * n_cols + cols[None, :]).reshape(-1)


def kept_count(n: int, p: float) -> int:
    """Units kept per minibatch in a layer of ``n`` units at drop probability ``p`` (at least 1)."""
    return max(1, round(n * (1.0 - p)))


class BatchwiseDropoutMLP(nn.Module):
    """Fully connected classifier trained with batchwise (submatrix) dropout.

    ``sizes`` = (inputs, hidden..., outputs). ``p_input`` drops input features,
    ``p_hidden`` hidden units; outputs are never dropped. Input ``(N, sizes[0])``, output
    logits ``(N, sizes[-1])``. Train it with :class:`SubmatrixSGD`, which knows the pattern
    of the latest forward pass.
    """

    def __init__(self, sizes: Sequence[int], p_input: float = 0.2, p_hidden: float = 0.5,
                 activation: str = "relu") -> None:
        super().__init__()
        if len(sizes) < 2 or any(not isinstance(s, int) or s < 1 for s in sizes):
            raise ValueError(f"sizes must be at least two positive ints (inputs, ..., outputs), got {sizes!r}")
        self.sizes = list(sizes)
        self.p_input = check_probability(p_input, "p_input")
        self.p_hidden = check_probability(p_hidden, "p_hidden")
        if self.p_input == 1.0 or self.p_hidden == 1.0:
            raise ValueError("batchwise dropout keeps at least one unit: p_input and p_hidden must be < 1")
        self.activation = check_choice(activation, INNER_ACTIVATIONS, "activation")
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        ps = [self.p_input] + [self.p_hidden] * (len(sizes) - 2) + [0.0]
        self.kept = [kept_count(n, p) for n, p in zip(sizes, ps)]
        self.hidden_layers = list(self.linears[:-1])
        self.active: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (rows, flat, w, b)

    def sample_pattern(self) -> list[torch.Tensor]:
        """One sorted index tensor of kept units per layer (inputs, hidden..., outputs)."""
        device = self.linears[0].weight.device
        return [
            torch.arange(n, device=device) if k == n else torch.randperm(n, device=device)[:k].sort().values
            for n, k in zip(self.sizes, self.kept)
        ]

    def forward(self, x: torch.Tensor, pattern: list[torch.Tensor] | None = None) -> torch.Tensor:
        act = INNER_ACTIVATIONS[self.activation]
        x = x.flatten(1)
        if not self.training:
            h = x
            for i, layer in enumerate(self.linears):
                h = F.linear(h, layer.weight * (self.kept[i] / self.sizes[i]), layer.bias)
                h = act(h) if i < len(self.linears) - 1 else h
            return h
        pattern = self.sample_pattern() if pattern is None else pattern
        self.active = []
        h = x.index_select(1, pattern[0])
        for i, layer in enumerate(self.linears):
            k_in, k_out = pattern[i], pattern[i + 1]
            flat = submatrix_index(k_out, k_in, self.sizes[i])
            # Leaf copies of the submatrix: gradients land here, never in the full W.
            w = layer.weight.detach().reshape(-1).index_select(0, flat).view(len(k_out), len(k_in)).requires_grad_()
            b = layer.bias.detach().index_select(0, k_out).requires_grad_()
            self.active.append((k_out, flat, w, b))
            h = F.linear(h, w, b)
            h = act(h) if i < len(self.linears) - 1 else h
        return h

    def dense_equivalent(self, x: torch.Tensor, pattern: list[torch.Tensor]) -> torch.Tensor:
        """The same training forward as a masked dense computation (for tests): zeros for dropped units."""
        act = INNER_ACTIVATIONS[self.activation]
        masks = [torch.zeros(n, device=x.device).index_fill_(0, k, 1.0) for n, k in zip(self.sizes, pattern)]
        h = x.flatten(1) * masks[0]
        for i, layer in enumerate(self.linears):
            h = F.linear(h, layer.weight, layer.bias) * masks[i + 1]
            h = act(h) if i < len(self.linears) - 1 else h
        return h


class SubmatrixSGD(torch.optim.Optimizer):
    """SGD with momentum that updates only the submatrices used by the latest training forward.

    Pass the model's parameters and the model. For each active submatrix W[K_out, K_in]:
    ``buf[K] = momentum * buf[K] + grad (+ weight_decay * W[K])``; ``W[K] -= lr * buf[K]``.
    """

    def __init__(self, params, model: BatchwiseDropoutMLP, lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0, dampening: float = 0.0, nesterov: bool = False) -> None:
        if nesterov:
            raise ValueError("SubmatrixSGD implements classical momentum only; got nesterov=True")
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay,
                                  "dampening": dampening})
        self.model = model
        self.buffers = [(torch.zeros_like(l.weight), torch.zeros_like(l.bias)) for l in model.linears]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Nothing to clear: each forward makes fresh leaf submatrices."""

    @torch.no_grad()
    def step(self, closure=None):
        group = self.param_groups[0]
        lr, momentum, wd, damp = group["lr"], group["momentum"], group["weight_decay"], group["dampening"]
        for layer, (wbuf, bbuf), (k_out, flat, w, b) in zip(self.model.linears, self.buffers, self.model.active):
            for full, buf, sub, index in ((layer.weight, wbuf, w, flat), (layer.bias, bbuf, b, k_out)):
                value, grad = sub.detach().reshape(-1), sub.grad.reshape(-1)
                if wd:
                    grad = grad + wd * value
                new = buf.view(-1).index_select(0, index).mul_(momentum).add_(grad, alpha=1.0 - damp)
                buf.view(-1).scatter_(0, index, new)
                full.view(-1).scatter_(0, index, value - lr * new)
        self.model.active = []

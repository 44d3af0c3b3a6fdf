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

Per-example masks cost O(batch · out · in) random draws per step and rule out a single
matrix product. Two implementations (``backend``) compute
u[n, o] = Σ_i M[n, o, i] W[o, i] v[n, i] + m[n, o] b[o]:

- ``numba`` (float32 CPU tensors): compiled kernels that **never store a mask**. Each call
  draws one seed from torch's default generator, ``torch.randint(0, 2**62, ())``, so
  ``torch.manual_seed`` makes training reproducible. Every mask element is then a pure
  function of that seed and the element's index (n, o, i): a 16-bit chunk of a SplitMix64
  hash (one 64-bit hash per 4 weights; a separate stream for the bias masks), kept if it
  is below round(q · 65536). The backward pass recomputes the same bits instead of reading
  a saved mask, so the gradients are those of the network the forward pass sampled.
  This is the paper's method, not an approximation: every example draws its own
  Bernoulli mask over every weight, independent in the sense that pseudo-random numbers
  are (SplitMix64 passes the BigCrush test battery). The only difference from comparing
  a float uniform with q is that q is rounded to a multiple of 1/65536 (exact for p = 0.5,
  off by less than 7.7e-6 otherwise). Memory: x and W are saved for the backward pass,
  as for ``F.linear``, and nothing else. ``_dropconnect_kernels`` specifies the scheme;
  :func:`per_example_masks` materialises the masks a seed gives.
- ``torch`` (any device and dtype): the reference implementation, which draws masks with
  ``torch.rand`` for as many examples at a time as fit in ``max_mask_elements``; autograd
  keeps every mask until the backward pass.

``backend="auto"`` picks ``numba`` wherever it applies and ``torch`` elsewhere (e.g. on
CUDA). The two draw different random numbers, so one ``torch.manual_seed`` gives different
masks (from the same distribution) under each. The backend only matters for per-example
masks in training: the per-minibatch path and inference are the same for all three values.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from .._validate import check_choice, check_positive_int, check_probability
from . import _dropconnect_kernels as kernels
from ._activations import INNER_ACTIVATIONS
from ._dropconnect_kernels import per_example_masks
from ._stochastic import StochasticLayer

__all__ = ["DropConnectLinear", "dropconnect_linear", "per_example_masks"]

MASKS = ("per_example", "per_minibatch")
INFERENCE = ("mean", "gaussian")
BACKENDS = ("auto", "numba", "torch")

# Per-call seeds are drawn from [0, SEED_BOUND): an int64 for torch.randint, below the
# kernels' limit of 2**63.
SEED_BOUND = 2**62


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
    backend: str = "auto",
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
        max_mask_elements: the ``torch`` backend draws per-example masks for as many
            examples at a time as fit.
        backend: how per-example masks are computed in training: ``numba`` (float32 CPU
            tensors only), ``torch``, or ``auto`` (``numba`` where it applies); see the
            module docstring.

    Returns:
        ``(N, out_features)`` activations.
    """
    p = check_probability(p)
    act = INNER_ACTIVATIONS[check_choice(activation, INNER_ACTIVATIONS, "activation")]
    check_choice(masks, MASKS, "masks")
    check_choice(inference, INFERENCE, "inference")
    check_choice(backend, BACKENDS, "backend")
    if weight.dim() != 2:
        raise ValueError(f"weight must be (out_features, in_features), got shape {tuple(weight.shape)}")
    if x.dim() != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"x must be (N, {weight.shape[1]}), got shape {tuple(x.shape)}")
    # The numba kernels do not bounds-check: a wrong bias length must stop here.
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"bias must be ({weight.shape[0]},) or None, got shape {tuple(bias.shape)}")
    keep = 1.0 - p
    if training:
        if masks == "per_minibatch":
            w = weight * (torch.rand_like(weight) < keep)
            b = None if bias is None else bias * (torch.rand_like(bias) < keep)
            return act(F.linear(x, w, b))
        numba_applies = _numba_applies(x, weight, bias)
        if backend == "numba" and not numba_applies:
            found = ", ".join(f"{t.dtype} on {t.device}" for t in (x, weight, bias) if t is not None)
            raise ValueError(f"backend='numba' needs float32 CPU tensors, got {found}")
        if backend == "numba" or (backend == "auto" and numba_applies):
            seed = int(torch.randint(0, SEED_BOUND, ()))
            threshold = kernels.keep_threshold(keep)
            return act(_PerExampleDropConnect.apply(x, weight, bias, np.uint64(seed), np.uint64(threshold)))
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
    samples = check_positive_int(samples, "samples")
    second = F.linear(x * x, weight * weight, None if bias is None else bias * bias)
    std = (keep * (1.0 - keep) * second).sqrt()
    total = torch.zeros_like(mean)
    for _ in range(samples):  # one (N, out) draw at a time: memory independent of `samples`
        total += act(mean + std * torch.randn_like(mean))
    return total / samples


def _numba_applies(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> bool:
    return all(t.device.type == "cpu" and t.dtype == torch.float32 for t in (x, weight, bias) if t is not None)


def _as_numpy(t: torch.Tensor) -> np.ndarray:
    """A NumPy view of ``t``'s data; a copy only if ``t`` is not contiguous."""
    return t.detach().contiguous().numpy()


def _set_numba_threads() -> None:
    # Follow torch's thread count at call time, so torch.set_num_threads(1) also holds
    # for the kernels; numba cannot go beyond the pool it started with.
    numba.set_num_threads(min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))


class _PerExampleDropConnect(torch.autograd.Function):
    """Pre-activation u ``(N, out)`` of per-example DropConnect, by the numba kernels.

    Inputs: x ``(N, in)``, weight ``(out, in)``, bias ``(out,)`` or None, and the uint64
    ``seed`` and ``threshold`` that fix the masks (see ``_dropconnect_kernels``). Only x and
    weight are saved; the backward pass regenerates the masks from the seed.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, seed, threshold):
        ctx.seed, ctx.threshold, ctx.has_bias = seed, threshold, bias is not None
        ctx.save_for_backward(x, weight)
        u = torch.empty(x.shape[0], weight.shape[0], dtype=torch.float32)
        b = _as_numpy(bias) if ctx.has_bias else np.empty(0, np.float32)
        _set_numba_threads()
        kernels.forward(_as_numpy(x), _as_numpy(weight), b, ctx.has_bias, seed, threshold, u.numpy())
        return u

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_u):
        x, weight = ctx.saved_tensors
        gu = _as_numpy(grad_u)
        grad_x = grad_w = grad_b = None
        _set_numba_threads()
        if ctx.needs_input_grad[0]:
            grad_x = torch.empty(x.shape, dtype=torch.float32)
            kernels.grad_input(gu, _as_numpy(weight), ctx.seed, ctx.threshold, grad_x.numpy())
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            grad_w = torch.empty(weight.shape, dtype=torch.float32)
            grad_b = torch.empty(weight.shape[0], dtype=torch.float32) if ctx.has_bias else None
            b_out = grad_b.numpy() if ctx.has_bias else np.empty(0, np.float32)
            kernels.grad_weight_bias(gu, _as_numpy(x), ctx.has_bias, ctx.seed, ctx.threshold, grad_w.numpy(), b_out)
        return grad_x, grad_w, grad_b, None, None


class DropConnectLinear(StochasticLayer):
    """Linear layer with DropConnect and its activation; see :func:`dropconnect_linear`.

    Shapes: input ``(N, in_features)``, output ``(N, out_features)``. In ``eval()`` mode the
    ``inference`` rule applies (``mean`` is deterministic; ``gaussian`` samples).
    ``backend`` chooses how per-example masks are computed in training.
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
        backend: str = "auto",
    ) -> None:
        super().__init__()
        self.p = check_probability(p)
        self.activation = check_choice(activation, INNER_ACTIVATIONS, "activation")
        self.masks = check_choice(masks, MASKS, "masks")
        self.inference = check_choice(inference, INFERENCE, "inference")
        self.backend = check_choice(backend, BACKENDS, "backend")
        self.samples = samples
        self.linear = nn.Linear(in_features, out_features, bias=bias)

    @property
    def weight(self) -> torch.Tensor:
        return self.linear.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropconnect_linear(
            x, self.linear.weight, self.linear.bias, self.p, self.training, activation=self.activation,
            masks=self.masks, inference=self.inference, samples=self.samples, backend=self.backend,
        )

    def extra_repr(self) -> str:
        return (f"{self.linear.in_features}, {self.linear.out_features}, p={self.p}, activation={self.activation}, "
                f"masks={self.masks}, inference={self.inference}, backend={self.backend}")

"""Training several same-shaped MLPs as one: weights stacked on a leading axis, batched matrix products.

Small nets leave a CPU's cores idle; stacking ``M`` of them (one per seed or per arm of the
same shape) turns ``M`` small matrix products into one batched product. Each member keeps
everything that makes it a net trained alone:

- its own initialisation (the members are built one by one, each after seeding with its
  own seed, and then stacked: :meth:`StackedMLP.from_members`);
- its own order of examples (:func:`stacked_minibatches`, one generator per member);
- its own dropout masks (drawn per element of the stacked activations, so independent
  across members; they are not the masks a lone net would draw from the same seed, so a
  member is the same net *in distribution*, not bit for bit);
- its own gradient and optimiser state: the loss is the *sum* of the members' mean
  losses, so each member's gradient is exactly its own, and SGD, momentum and max-norm
  act element-wise (or per unit) on the stacked tensors.

Everything trains through :func:`replib.train.fit`; :func:`split_curves` gives each
member its own curves. ``benchmarks/bench_ensemble.py`` measures the speed-up against
training the members one at a time.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._validate import check_positive_int
from .methods import dropout
from .models import ACTIVATIONS, MLP
from .train import Batches, evaluate


class StackedMLP(nn.Module):
    """``M`` :class:`replib.models.MLP` of one shape, trained together.

    Shapes: input ``(M, B, *)`` (member m's minibatch in row m; trailing dims flatten to
    ``sizes[0]``), output logits ``(M, B, sizes[-1])``. Parameters: ``weights[i]`` of shape
    ``(M, in, out)`` (member m's ``layer.weight.T``: batched products are fastest in this layout)
    and ``biases[i]`` of shape ``(M, 1, out)``.
    """

    def __init__(self, sizes: Sequence[int], members: int, activation: str = "relu", p_input: float = 0.0,
                 p_hidden: float = 0.0) -> None:
        super().__init__()
        self.members = check_positive_int(members, "members")
        template = MLP(sizes, activation, p_input, p_hidden)  # validates the arguments
        self.sizes, self.activation = list(sizes), activation
        self.p_input, self.p_hidden = template.p_input, template.p_hidden
        self.act = ACTIVATIONS[activation]()
        self.weights = nn.ParameterList(
            [nn.Parameter(torch.zeros(members, a, b)) for a, b in zip(sizes[:-1], sizes[1:])])
        self.biases = nn.ParameterList([nn.Parameter(torch.zeros(members, 1, b)) for b in sizes[1:]])

    @classmethod
    def from_members(cls, nets: Sequence[MLP], activation: str = "relu") -> "StackedMLP":
        """Stack ``nets`` (each initialised on its own, e.g. after seeding with its seed)."""
        first = nets[0]
        linears = [[m for m in net.net if isinstance(m, nn.Linear)] for net in nets]
        sizes = [linears[0][0].in_features] + [layer.out_features for layer in linears[0]]
        for net, layers in zip(nets, linears):
            shape = [layers[0].in_features] + [layer.out_features for layer in layers]
            if shape != sizes or (net.p_input, net.p_hidden) != (first.p_input, first.p_hidden):
                raise ValueError(f"members must share sizes and drop probabilities: {sizes} "
                                 f"(p {first.p_input}, {first.p_hidden}) vs {shape} (p {net.p_input}, {net.p_hidden})")
        stacked = cls(sizes, len(nets), activation, first.p_input, first.p_hidden)
        with torch.no_grad():
            for i in range(len(sizes) - 1):
                stacked.weights[i].copy_(torch.stack([layers[i].weight.T for layers in linears]))
                stacked.biases[i].copy_(torch.stack([layers[i].bias[None] for layers in linears]))
        return stacked.to(first.net[-1].weight.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(2)
        h = dropout(h, self.p_input, self.training)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = dropout(self.act(h), self.p_hidden, self.training)
        return h

    @property
    def hidden_weights(self) -> list[torch.Tensor]:
        """The weights whose units carry the max-norm constraint (all but the output layer)."""
        return list(self.weights)[:-1]

    def member(self, m: int) -> MLP:
        """Member ``m`` as a lone :class:`MLP` (a copy), in the mode of the stack."""
        net = MLP(self.sizes, self.activation, self.p_input, self.p_hidden).to(self.weights[0].device)
        layers = [layer for layer in net.net if isinstance(layer, nn.Linear)]
        with torch.no_grad():
            for layer, w, b in zip(layers, self.weights, self.biases):
                layer.weight.copy_(w[m].T)
                layer.bias.copy_(b[m, 0])
        return net.train(self.training)

    def extra_repr(self) -> str:
        return f"members={self.members}, sizes={self.sizes}, p_input={self.p_input}, p_hidden={self.p_hidden}"


def stacked_max_norm(weights: Sequence[torch.Tensor], bound: float):
    """An ``after_step`` hook: each unit's incoming weights (a column of ``(M, in, out)``) limited to norm ``bound``."""
    if not bound > 0 or not weights:
        raise ValueError(f"stacked_max_norm needs a bound > 0 and the weights it constrains, got {bound!r}")
    weights = list(weights)

    def apply() -> None:
        with torch.no_grad():
            for w in weights:
                norm = w.square().sum(1, keepdim=True).sqrt_()  # 2x faster than w.norm(dim=1) here
                w.mul_((bound / norm.clamp_min_(1e-12)).clamp_(max=1.0))

    return apply


def stacked_minibatches(data: tuple[torch.Tensor, torch.Tensor], batch_size: int, seeds: Sequence[int]) -> Batches:
    """Minibatches of ``(M, B, *)`` inputs and ``(M, B)`` labels: member m's order from its own ``seeds[m]``,
    the same order :func:`replib.train.minibatches` gives a lone net with that seed."""
    check_positive_int(batch_size, "batch_size")
    x, y = data
    orders = [torch.Generator().manual_seed(seed) for seed in seeds]

    def epoch_batches(epoch: int):
        perms = [torch.randperm(len(y), generator=g).to(y.device).split(batch_size) for g in orders]
        for parts in zip(*perms):
            idx = torch.stack(parts)  # (M, B): every member's batch has the same length
            yield x[idx], y[idx]

    return epoch_batches


def stacked_cross_entropy(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Each member's mean cross-entropy, shape ``(M,)``: :func:`replib.train.fit` minimises their sum, so
    each member gets exactly its own gradient, and records each member's training loss."""
    x, y = batch
    logits = model(x)
    return F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(y.shape).mean(1)


def stacked_classification_monitor(data: tuple[torch.Tensor, torch.Tensor], batch_size: int = 10_000):
    """A ``monitor`` of every member on ``data``: ``errors``, ``error`` (%) and ``loss``, each a list over members."""

    def measure(model: StackedMLP) -> dict[str, list[float]]:
        out = {"errors": [], "error": [], "loss": []}
        for m in range(model.members):
            errors, loss = evaluate(model.member(m), data, batch_size)
            out["errors"].append(errors)
            out["error"].append(100.0 * errors / len(data[1]))
            out["loss"].append(loss)
        return out

    return measure


def split_curves(curves: dict[str, list], members: int) -> list[dict[str, list]]:
    """:func:`replib.train.fit`'s curves of a stack, one dict per member: per-member values (lists, such as
    ``train_loss`` and the monitor's metrics) are split, shared ones (epoch, schedule, timings) copied."""
    return [{key: [v[m] if isinstance(v, list) else v for v in values] for key, values in curves.items()}
            for m in range(members)]

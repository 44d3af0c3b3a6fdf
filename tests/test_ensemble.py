"""Stacked training: each member is the net it would be trained alone (same init, order, gradient), masks independent."""

from __future__ import annotations

import copy

import pytest
import torch
from scipy import stats

from replib import seeding
from replib.ensemble import (StackedMLP, split_curves, stacked_classification_monitor, stacked_cross_entropy,
                             stacked_max_norm, stacked_minibatches)
from replib.models import MLP
from replib.train import classification_monitor, fit, max_norm, minibatches, sgd_schedule

SIZES = [20, 16, 16, 3]
SEEDS = [3, 7, 11]


def data(n=96):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 20, generator=g)
    return x, (x[:, 0] > 0).long() + (x[:, 1] > 1).long()


def lone(seed, p_hidden=0.0):
    seeding.seed_everything(seed)
    return MLP(SIZES, "relu", 0.0, p_hidden)


def train_alone(seed, epochs=2, bound=None):
    net = lone(seed)
    curves = fit(net, minibatches(data(), 16, seed), epochs=epochs, optimizer=torch.optim.SGD(net.parameters(), lr=0.1),
                 schedule=sgd_schedule(0.1, 0.9), after_step=max_norm([layer.weight for layer in net.hidden_layers], bound) if bound else None,
                 monitor=classification_monitor(data()), progress=False)
    return net, curves


def train_stacked(epochs=2, bound=None):
    stack = StackedMLP.from_members([lone(s) for s in SEEDS])
    curves = fit(stack, stacked_minibatches(data(), 16, SEEDS), epochs=epochs,
                 optimizer=torch.optim.SGD(stack.parameters(), lr=0.1), schedule=sgd_schedule(0.1, 0.9),
                 loss=stacked_cross_entropy, after_step=stacked_max_norm(stack.hidden_weights, bound) if bound else None,
                 monitor=stacked_classification_monitor(data()), progress=False)
    return stack, curves


def test_stacking_keeps_each_members_initialisation_and_outputs():
    nets = [lone(s) for s in SEEDS]
    stack = StackedMLP.from_members(nets)
    x = data()[0][:8]
    out = stack(x.expand(len(SEEDS), *x.shape))
    for m, net in enumerate(nets):
        torch.testing.assert_close(out[m], net(x), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(stack.member(m)(x), net(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bound", [None, 0.5])
def test_a_member_trains_as_the_same_net_trained_alone(bound):
    """No dropout: same init, same order, same gradient, same optimiser state, same max-norm, so the same weights
    after 2 epochs (12 steps), up to the rounding of batched against single matrix products."""
    stack, curves = train_stacked(bound=bound)
    members = split_curves(curves, len(SEEDS))
    for m, seed in enumerate(SEEDS):
        alone, alone_curves = train_alone(seed, bound=bound)
        for a, b in zip(stack.member(m).parameters(), alone.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
        assert members[m]["monitor_errors"] == alone_curves["monitor_errors"]
        assert members[m]["train_loss"] == pytest.approx(alone_curves["train_loss"], rel=1e-4)  # its own loss
    if bound:
        assert max(float(w.detach().norm(dim=1).max()) for w in stack.hidden_weights) <= bound + 1e-5


def test_members_draw_independent_masks_at_the_drop_rate(monkeypatch):
    """Three copies of one net, p = 0.5, hidden layer 1 (64 examples x 16 units, its active units): in eval the
    members agree exactly; in training each member's kept share passes a binomial test (alpha 0.001), and two
    members' masks agree no more often than chance would have them (binomial, alpha 0.001)."""
    from replib import ensemble

    drawn = []

    def recording(x, p, training):
        out = ensemble_dropout(x, p, training)
        drawn.append((x, out))
        return out

    ensemble_dropout = ensemble.dropout
    monkeypatch.setattr(ensemble, "dropout", recording)
    same = lone(0, p_hidden=0.5)
    stack = StackedMLP.from_members([same, copy.deepcopy(same), copy.deepcopy(same)])
    x = data()[0][:64].expand(3, 64, 20)
    out = stack.eval()(x)
    assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])
    drawn.clear()
    seeding.seed_everything(0)
    stack.train()(torch.randn(3, 64, 20))
    x, out = drawn[1]  # drawn[0] is the input layer (p = 0, nothing dropped)
    active = (x[0] != 0) & (x[1] != 0)  # where a unit is silent, a drop cannot be seen
    kept = out != 0
    for m in range(3):
        seen = x[m] != 0
        assert stats.binomtest(int(kept[m][seen].sum()), int(seen.sum()), 0.5).pvalue > 1e-3
    agree = int((kept[0][active] == kept[1][active]).sum())
    assert stats.binomtest(agree, int(active.sum()), 0.5).pvalue > 1e-3


def test_split_curves_gives_each_member_its_own_values():
    curves = {"epoch": [1, 2], "lr": [0.1, 0.1], "train_loss": [[0.9, 1.0, 1.1], [0.4, 0.5, 0.6]],
              "monitor_error": [[1, 2, 3], [4, 5, 6]]}
    members = split_curves(curves, 3)
    assert members[1] == {"epoch": [1, 2], "lr": [0.1, 0.1], "train_loss": [1.0, 0.5], "monitor_error": [2, 5]}


def test_members_of_another_shape_are_refused():
    with pytest.raises(ValueError, match=r"members must share sizes and drop probabilities: \[20, 16, 16, 3\]"):
        StackedMLP.from_members([lone(0), MLP([20, 8, 3])])


def test_stacked_max_norm_needs_a_bound():
    with pytest.raises(ValueError, match="stacked_max_norm needs a bound > 0 and the weights it constrains, got 0"):
        stacked_max_norm([torch.zeros(2, 3, 4)], 0)

"""Standout (Ba & Frey 2013): keep probability formula, per-unit-per-example masks, test-time scaling."""

from __future__ import annotations

import math
import re

import pytest
import torch

from replib.methods import StandoutLinear, standout_keep_probability

Z = 5.0  # |deviation| < 5 standard errors: a false failure has probability < 1e-6 per check


def test_keep_probability_equals_the_sigmoid_formula():
    torch.manual_seed(0)
    layer = StandoutLinear(10, 7, alpha=1.5, beta=-0.3)
    x = torch.randn(4, 10)
    pre = x @ layer.linear.weight.T + layer.linear.bias
    torch.testing.assert_close(layer.keep_probability(x), torch.sigmoid(1.5 * pre - 0.3))


def test_keep_probability_rises_with_the_units_input_for_positive_alpha():
    pre = torch.linspace(-3, 3, 50)
    keep = standout_keep_probability(pre, 2.0, 0.0)
    assert (keep.diff() > 0).all()


def test_mask_rate_matches_keep_probability_binomial():
    torch.manual_seed(0)
    layer = StandoutLinear(1, 1, alpha=0.0, beta=math.log(0.7 / 0.3), activation="identity")  # pi = 0.7
    with torch.no_grad():
        layer.linear.weight.fill_(0.0)
        layer.linear.bias.fill_(1.0)
    n = 100_000
    kept = int((layer.train()(torch.zeros(n, 1)) != 0).sum())
    assert abs(kept - 0.7 * n) < Z * math.sqrt(n * 0.21)


def test_masks_are_per_unit_per_example():
    torch.manual_seed(0)
    layer = StandoutLinear(5, 64, alpha=0.0, beta=0.0).train()
    with torch.no_grad():
        layer.linear.bias.fill_(1.0)
        layer.linear.weight.fill_(0.0)
    y = layer(torch.zeros(8, 5))  # identical inputs, keep probability 0.5 everywhere
    mask = y != 0
    assert not torch.equal(mask[0], mask[1]) and not torch.equal(mask[:, 0], mask[:, 1])


def test_eval_scales_activations_by_keep_probability_deterministically():
    torch.manual_seed(0)
    layer = StandoutLinear(10, 7, alpha=1.0, beta=0.5).eval()
    x = torch.randn(4, 10)
    pre = layer.linear(x)
    torch.testing.assert_close(layer(x), torch.relu(pre) * torch.sigmoid(pre + 0.5))
    torch.testing.assert_close(layer(x), layer(x))


def test_no_gradient_flows_through_the_belief_network():
    """Tied weights: the mask's probability follows W but is not trained through."""
    torch.manual_seed(0)
    layer = StandoutLinear(3, 4, alpha=1.0, beta=0.0, activation="identity").eval()
    x = torch.randn(2, 3)
    layer(x).sum().backward()
    keep = layer.keep_probability(x)
    expected = (keep.T @ x)  # d/dW of sum(pre * keep) with keep held constant
    torch.testing.assert_close(layer.linear.weight.grad, expected)


@pytest.mark.parametrize("kwargs,message", [
    ({"alpha": "1"}, "alpha must be a real number, got '1'"),
    ({"beta": float("nan")}, "beta must be a real number, got nan"),
    ({"activation": "softplus"}, "activation must be one of ['relu', 'tanh', 'sigmoid', 'identity'], got 'softplus'"),
])
def test_bad_arguments_rejected(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        StandoutLinear(3, 2, **kwargs)

"""Semantics of standard dropout, tested statistically with fixed seeds."""

from __future__ import annotations

import math
import re

import pytest
import torch

from replib.methods import Dropout, dropout

SEEDS = range(5)
N = 200_000
Z = 5.0  # |deviation| < 5 standard errors: a false failure has probability < 1e-6 per check


@pytest.mark.parametrize("p", [0.1, 0.2, 0.5, 0.8])
def test_drop_rate_matches_p_binomial(p):
    for seed in SEEDS:
        torch.manual_seed(seed)
        dropped = int((dropout(torch.ones(N), p, training=True) == 0).sum())
        assert abs(dropped - N * p) < Z * math.sqrt(N * p * (1 - p)), (seed, dropped)


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_output_is_unbiased(p):
    torch.manual_seed(0)
    x = torch.rand(N) + 0.5
    y = dropout(x, p, training=True)
    # Var(y_i) = x_i^2 p / (1 - p); the mean of N terms has sd sqrt(sum Var) / N.
    sd = math.sqrt(float((x**2).sum()) * p / (1 - p)) / N
    assert abs(float(y.mean() - x.mean())) < Z * sd


def test_kept_elements_are_scaled_by_inverse_keep_probability():
    torch.manual_seed(0)
    x = torch.rand(1000) + 1.0
    y = dropout(x, 0.25, training=True)
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] / 0.75)


def test_masks_are_per_element_not_per_example_or_feature():
    torch.manual_seed(0)
    mask = dropout(torch.ones(64, 512), 0.5, training=True) != 0
    assert not torch.equal(mask[0], mask[1]), "rows share a mask: per-feature, not per-element"
    assert not torch.equal(mask[:, 0], mask[:, 1]), "columns share a mask: per-example, not per-element"
    assert 0 < mask.float().mean(1).min() and mask.float().mean(1).max() < 1


def test_identity_in_eval_mode():
    x = torch.randn(32, 100)
    layer = Dropout(0.5).eval()
    assert layer(x) is x
    assert dropout(x, 0.9, training=False) is x


def test_identity_at_p_zero():
    x = torch.randn(32, 100)
    assert torch.equal(Dropout(0.0).train()(x), x)


def test_zeros_at_p_one_and_gradient_still_flows():
    x = torch.randn(32, 100, requires_grad=True)
    y = dropout(x, 1.0, training=True)
    assert torch.count_nonzero(y) == 0
    y.sum().backward()
    assert torch.count_nonzero(x.grad) == 0


def test_gradient_is_the_scaled_mask():
    torch.manual_seed(0)
    x = torch.randn(16, 50, requires_grad=True)
    y = dropout(x, 0.5, training=True)
    y.sum().backward()
    torch.testing.assert_close(x.grad, (y != 0).float() * 2.0)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "0.5", None, True])
def test_bad_p_is_rejected_with_the_value_quoted(bad):
    message = rf"^p must be (a real number|a probability) in \[0, 1\], got {re.escape(repr(bad))}"
    with pytest.raises(ValueError, match=message):
        Dropout(bad)
    with pytest.raises(ValueError, match=message):
        dropout(torch.ones(3), bad)


def test_extra_repr_shows_p():
    assert "p=0.3" in repr(Dropout(0.3))

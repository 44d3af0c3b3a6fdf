"""Drop path that skips the compute: the distribution of the mask-multiply drop path, with the branch run (and
differentiated) on the kept samples only."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from replib.methods import DropAddResidual, drop_add_residual

Z = 5.0  # |deviation| < 5 standard errors: a false failure has probability < 1e-6 per check


def mask_multiply(x, branch, p, scale=True):
    """The usual drop path (as in the common vision libraries): the branch on every sample, times a mask."""
    keep = (torch.rand(x.shape[0], *([1] * (x.dim() - 1))) < 1 - p).to(x.dtype)
    return x + branch(x) * keep / ((1 - p) if scale else 1.0)


@pytest.mark.parametrize("scale", [True, False])
def test_each_sample_is_the_mask_multiply_result_with_the_same_rate(scale):
    torch.manual_seed(0)
    p, n = 0.3, 40_000
    x = torch.randn(1, 4).repeat(n, 1)
    branch = nn.Linear(4, 4)
    with torch.no_grad():
        ours = drop_add_residual(x, branch, p, scale=scale)
        theirs = mask_multiply(x, branch, p, scale=scale)
        kept_value = x[0] + branch(x[:1])[0] / ((1 - p) if scale else 1.0)
    for out in (ours, theirs):  # every sample is one of the two values the mask allows
        is_kept = torch.isclose(out, kept_value.expand_as(out)).all(1)
        assert bool((is_kept | (out == x).all(1)).all())
        assert abs(int(is_kept.sum()) - n * (1 - p)) < Z * math.sqrt(n * p * (1 - p))
    if scale:  # the identity in expectation: the test-time output is the mean
        residual = branch(x[:1])[0].detach()
        se = residual.abs() * math.sqrt(p / (1 - p) / n)  # of the mean of n draws of a r / (1 - p), a ~ Bernoulli(1 - p)
        assert bool(((ours.mean(0) - (x[0] + residual)).abs() < Z * se + 1e-6).all())


def test_the_branch_sees_and_is_differentiated_on_the_kept_samples_only():
    torch.manual_seed(1)
    x = torch.randn(64, 8, requires_grad=True)
    layer = DropAddResidual(nn.Linear(8, 8), p=0.5).train()
    torch.manual_seed(2)
    y = layer(x)
    y.pow(2).sum().backward()
    kept = ~(y == x).all(1)
    assert layer.branch_samples == int(kept.sum()) and 0 < layer.branch_samples < 64
    # the branch's gradient is that of the kept samples alone, computed densely
    weight = layer.branch.weight.detach().clone().requires_grad_(True)
    xs = x.detach()[kept]
    dense = xs + (xs @ weight.t() + layer.branch.bias.detach()) / 0.5
    dense.pow(2).sum().backward()
    torch.testing.assert_close(layer.branch.weight.grad, weight.grad)
    torch.testing.assert_close(x.grad[~kept], 2 * x.detach()[~kept])  # a skipped sample: the identity path only


def test_test_time_runs_every_sample_with_either_convention():
    torch.manual_seed(3)
    x, branch = torch.randn(5, 3), nn.Linear(3, 3)
    layer = DropAddResidual(branch, p=0.4).eval()
    torch.testing.assert_close(layer(x), x + branch(x))
    assert layer.branch_samples == 5
    torch.testing.assert_close(drop_add_residual(x, branch, 0.4, training=False, test_scale=0.6), x + 0.6 * branch(x))


def test_p_zero_and_p_one():
    x, branch = torch.randn(6, 3), nn.Linear(3, 3)
    torch.testing.assert_close(drop_add_residual(x, branch, 0.0), x + branch(x))
    assert torch.equal(drop_add_residual(x, branch, 1.0), x)


def test_a_bad_rate_is_refused():
    with pytest.raises(ValueError, match="p must be a probability in \\[0, 1\\], got 1.5"):
        DropAddResidual(nn.Identity(), p=1.5)

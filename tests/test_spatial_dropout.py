"""SpatialDropout (Tompson et al. 2015): whole feature maps dropped per example, at the right rate."""

from __future__ import annotations

import math
import re

import pytest
import torch

from replib.methods import SpatialDropout, spatial_dropout

Z = 5.0  # |deviation| < 5 standard errors: a false failure has probability < 1e-6 per check


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_channel_drop_rate_binomial(p):
    n, c = 64, 32  # 2,048 maps per seed, 3 fixed seeds
    for seed in range(3):
        torch.manual_seed(seed)
        y = spatial_dropout(torch.ones(n, c, 5, 5), p, True)
        dropped = int((y[:, :, 0, 0] == 0).sum())
        draws = n * c
        assert abs(dropped - draws * p) < Z * math.sqrt(draws * p * (1 - p)), (seed, dropped)


def test_whole_maps_dropped_together_and_kept_maps_scaled():
    torch.manual_seed(0)
    y = spatial_dropout(torch.ones(16, 8, 6, 7), 0.5, True)
    per_map = y.flatten(2)
    assert torch.equal(per_map.amin(2), per_map.amax(2))  # every map is constant: all dropped or all kept
    assert set(per_map.unique().tolist()) == {0.0, 2.0}


def test_masks_are_per_example_not_per_batch():
    torch.manual_seed(0)
    y = spatial_dropout(torch.ones(32, 16, 2, 2), 0.5, True)
    assert not all(torch.equal(y[0], y[i]) for i in range(32))


def test_expectation_is_the_input():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 2, 2)
    mean = torch.stack([spatial_dropout(x, 0.3, True) for _ in range(4000)]).mean(0)
    # sd of one draw is |x| sqrt(p / (1 - p)); tolerance 5 standard errors of the mean of 4000
    sd = x.abs() * math.sqrt(0.3 / 0.7) / math.sqrt(4000)
    assert ((mean - x).abs() <= Z * sd + 1e-6).all()


def test_identity_in_eval_and_at_p_zero_zeros_at_p_one():
    x = torch.randn(2, 3, 4, 4)
    assert SpatialDropout(0.5).eval()(x) is x
    assert spatial_dropout(x, 0.0, True) is x
    assert torch.equal(spatial_dropout(x, 1.0, True), torch.zeros_like(x))


def test_volumes_drop_whole_maps_too():
    torch.manual_seed(0)
    y = spatial_dropout(torch.ones(8, 4, 3, 3, 3), 0.5, True).flatten(2)
    assert torch.equal(y.amin(2), y.amax(2))


@pytest.mark.parametrize("shape", [(3, 4, 4), (8, 16), (8,)])
def test_ambiguous_input_rejected(shape):
    message = f"needs a batch of feature maps (N, C, H, W) or (N, C, D, H, W), got shape {shape}"
    with pytest.raises(ValueError, match=re.escape(message)):
        spatial_dropout(torch.ones(shape), 0.5, True)


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan"), "0.5", True])
def test_bad_p_rejected(p):
    with pytest.raises(ValueError, match=rf"^p must be (a real number|a probability) in \[0, 1\], got {re.escape(repr(p))}"):
        SpatialDropout(p)

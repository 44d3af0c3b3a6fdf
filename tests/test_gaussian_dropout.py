"""Gaussian dropout (Srivastava et al. 2014, section 10): per-element N(1, p/(1-p)) noise, identity in eval."""

from __future__ import annotations

import math

import pytest
import torch

from replib.methods import GaussianDropout, gaussian_dropout, mc_predict

N = 400_000
Z = 5.0  # |deviation| < 5 standard errors: a false failure has probability < 1e-6 per check


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.8])
def test_the_noise_has_mean_one_and_the_variance_of_inverted_dropout(p):
    torch.manual_seed(0)
    noise = gaussian_dropout(torch.ones(N, dtype=torch.float64), p)
    var = p / (1 - p)
    assert abs(float(noise.mean()) - 1.0) < Z * math.sqrt(var / N)
    # the sample variance of N normals has sd var * sqrt(2 / (N - 1))
    assert abs(float(noise.var()) - var) < Z * var * math.sqrt(2 / (N - 1))


def test_the_noise_is_gaussian_not_bernoulli():
    torch.manual_seed(0)
    noise = gaussian_dropout(torch.ones(N, dtype=torch.float64), 0.5)
    centred = (noise - 1.0) / 1.0  # sd 1 at p = 0.5
    assert abs(float((centred**3).mean())) < Z * math.sqrt(15 / N)  # skewness 0
    assert abs(float((centred**4).mean()) - 3.0) < Z * math.sqrt(96 / N)  # kurtosis 3
    assert int((noise == 0).sum()) == 0  # nothing is dropped outright


def test_the_noise_is_drawn_per_element():
    torch.manual_seed(0)
    noise = gaussian_dropout(torch.ones(64, 256), 0.5)
    assert not torch.equal(noise[0], noise[1]), "rows share their noise: per feature, not per element"
    assert not torch.equal(noise[:, 0], noise[:, 1]), "columns share their noise: per example, not per element"


def test_identity_in_eval_and_at_p_zero_and_a_sample_under_mc_predict():
    x = torch.randn(16, 32)
    layer = GaussianDropout(0.5).eval()
    assert layer(x) is x and gaussian_dropout(x, 0.0) is x and gaussian_dropout(x, 0.7, training=False) is x
    net = torch.nn.Sequential(torch.nn.Linear(32, 8), GaussianDropout(0.5), torch.nn.Linear(8, 2)).eval()
    torch.manual_seed(0)
    passes = mc_predict(net, x, samples=3, return_samples=True).samples
    assert passes.shape == (3, 16, 2) and not torch.equal(passes[0], passes[1])


def test_gradients_are_the_noise_times_the_upstream_gradient():
    torch.manual_seed(0)
    x = torch.randn(100, requires_grad=True)
    torch.manual_seed(1)
    y = gaussian_dropout(x, 0.4)
    y.sum().backward()
    torch.manual_seed(1)
    noise = gaussian_dropout(torch.ones(100), 0.4)
    torch.testing.assert_close(x.grad, noise)


@pytest.mark.parametrize("p", [1.0, -0.1, 1.5])
def test_a_rate_without_finite_noise_is_refused(p):
    with pytest.raises(ValueError, match=r"p"):
        GaussianDropout(p)

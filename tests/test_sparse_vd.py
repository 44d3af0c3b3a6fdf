"""Sparse variational dropout (Molchanov et al. 2017): the KL approximation against the divergence it fits, the
local reparameterisation's moments, and pruning that gives the masked dense net."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from replib.methods import SparseVDConv2d, SparseVDLinear, kl_approximation, mc_predict, sparse_vd_linear
from replib.methods.sparse_vd import K1, PRUNE_THRESHOLD

Z = 5.0  # |deviation| < 5 standard errors: a false failure has probability < 1e-6 per check


@pytest.mark.parametrize("log_alpha", [-6.0, -4.0, -2.0, 0.0, 1.0, 3.0, 6.0])
def test_the_kl_approximation_fits_the_divergence_from_the_log_uniform_prior(log_alpha):
    """-KL(N(theta, alpha theta^2) || log-uniform) = 0.5 log alpha - E log|1 + sqrt(alpha) eps| + C, with C = -k1 so
    that it vanishes as alpha grows (the paper's fit). The fit is within 0.01 of a Monte Carlo estimate."""
    torch.manual_seed(0)
    eps = torch.randn(2_000_000, dtype=torch.float64)
    terms = torch.log((1 + math.sqrt(math.exp(log_alpha)) * eps).abs())
    exact = 0.5 * log_alpha - float(terms.mean()) - K1
    se = float(terms.std()) / math.sqrt(len(eps))
    approx = -float(kl_approximation(torch.tensor(log_alpha, dtype=torch.float64)))
    assert abs(exact - approx) < 0.01 + Z * se, (exact, approx)


def test_the_kl_falls_as_the_dropout_rate_grows_and_vanishes_for_a_dropped_weight():
    grid = torch.linspace(-8, 8, 161, dtype=torch.float64)
    kl = kl_approximation(grid)
    assert bool((kl.diff() < 0).all()) and bool((kl > 0).all())
    assert float(kl_approximation(torch.tensor(10.0))) < 1e-3


def test_training_outputs_have_the_local_reparameterisations_mean_and_variance():
    torch.manual_seed(0)
    layer = SparseVDLinear(5, 3)
    with torch.no_grad():
        layer.log_sigma2.copy_(torch.log(layer.theta**2) + torch.linspace(-2, 1, 15).reshape(3, 5))  # log alpha
    x = torch.randn(1, 5)
    draws = layer.train()(x.repeat(200_000, 1)).detach().double()
    mean = F.linear(x, layer.theta, layer.bias).double()[0]
    variance = F.linear(x * x, layer.log_sigma2.exp()).double()[0]
    assert bool(((draws.mean(0) - mean).abs() < Z * (variance / len(draws)).sqrt()).all())
    assert bool(((draws.var(0) - variance).abs() < Z * variance * math.sqrt(2 / len(draws))).all())
    # the same moments as sampling every weight from its posterior: b = sum_i x_i w_i with w_i ~ N(theta, sigma^2)
    weights = layer.theta.double() + layer.log_sigma2.exp().sqrt().double() * torch.randn(20_000, 3, 5, dtype=torch.float64)
    direct = (weights @ x.double()[0]) + layer.bias.double()
    assert bool(((direct.var(0) - variance).abs() < Z * variance * math.sqrt(2 / len(direct))).all())


def test_the_convolution_samples_with_the_same_moments():
    torch.manual_seed(1)
    layer = SparseVDConv2d(2, 3, 3, padding=1)
    with torch.no_grad():
        layer.log_sigma2.copy_(torch.log(layer.theta**2))  # alpha = 1 everywhere
    x = torch.randn(1, 2, 4, 4)
    draws = layer.train()(x.repeat(50_000, 1, 1, 1)).detach().double()
    variance = F.conv2d(x * x, layer.log_sigma2.exp(), None, 1, 1).double()[0]
    assert bool(((draws.mean(0) - F.conv2d(x, layer.theta, layer.bias, 1, 1).double()[0]).abs()
                 < Z * (variance / len(draws)).sqrt() + 1e-6).all())
    assert bool(((draws.var(0) - variance).abs() < Z * variance * math.sqrt(2 / len(draws)) + 1e-6).all())


def test_pruning_removes_the_weights_above_the_threshold_and_gives_the_masked_dense_net():
    torch.manual_seed(2)
    layer = SparseVDLinear(20, 10)
    with torch.no_grad():
        log_alpha = torch.linspace(-5, 8, 200).reshape(10, 20)
        layer.log_sigma2.copy_(torch.log(layer.theta**2 + 1e-8) + log_alpha)
    kept = layer.log_alpha <= PRUNE_THRESHOLD
    assert 0 < int(kept.sum()) < kept.numel()
    assert layer.sparsity() == pytest.approx(1 - float(kept.float().mean()))
    x = torch.randn(8, 20)
    out = layer.eval()(x)
    torch.testing.assert_close(out, F.linear(x, layer.theta * kept, layer.bias))
    assert torch.equal(layer(x), out)  # deterministic at test time
    assert not torch.equal(mc_predict(layer, x, samples=2, return_samples=True).samples[0], out)  # MC: the posterior


def test_minimising_the_kl_alone_prunes_every_weight():
    torch.manual_seed(3)
    layer = SparseVDLinear(10, 10)
    optimiser = torch.optim.Adam(layer.parameters(), lr=0.1)
    for _ in range(300):
        optimiser.zero_grad()
        layer.kl().backward()
        optimiser.step()
    assert layer.sparsity() == 1.0
    torch.testing.assert_close(sparse_vd_linear(torch.randn(3, 10), layer.theta, layer.log_sigma2, None, False),
                               torch.zeros(3, 10))

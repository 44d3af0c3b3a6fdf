"""Structured Bayesian pruning (Neklyudov et al. 2017): truncated log-normal unit noise, closed-form KL, SNR pruning."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from replib.methods import StructuredBayesianPruning, mc_predict, sbp_kl, sbp_moments, structured_bayesian_pruning
from replib.methods.structured_pruning import LOG_BOUNDS, sbp_sample, sbp_snr

Z = 5.0  # |deviation| < 5 standard errors: a false failure has probability < 1e-6 per check
POSTERIORS = [(0.0, -5.0), (-1.0, 0.0), (-3.0, 1.0), (-10.0, 2.0), (2.0, 0.5)]  # (mu, log sigma) of log theta


def _truncnorm(mu: float, log_sigma: float):
    sigma = math.exp(log_sigma)
    a, b = LOG_BOUNDS
    return stats.truncnorm((a - mu) / sigma, (b - mu) / sigma, loc=mu, scale=sigma)


def _params(mu, log_sigma):
    return torch.tensor([mu], dtype=torch.float64), torch.tensor([log_sigma], dtype=torch.float64)


@pytest.mark.parametrize("mu, log_sigma", POSTERIORS)
def test_the_kl_is_the_interval_log_width_minus_the_truncated_normals_entropy(mu, log_sigma):
    expected = math.log(LOG_BOUNDS[1] - LOG_BOUNDS[0]) - _truncnorm(mu, log_sigma).entropy()
    assert float(sbp_kl(*_params(mu, log_sigma))) == pytest.approx(expected, rel=1e-6, abs=1e-8)


def test_the_kl_is_zero_only_at_the_prior():
    mu = torch.full((1,), sum(LOG_BOUNDS) / 2, dtype=torch.float64)
    wide = float(sbp_kl(mu, torch.full((1,), 8.0, dtype=torch.float64)))  # sigma >> b - a: nearly uniform
    assert 0.0 <= wide < 1e-6
    kls = sbp_kl(torch.tensor([m for m, _ in POSTERIORS], dtype=torch.float64),
                 torch.tensor([s for _, s in POSTERIORS], dtype=torch.float64))
    assert torch.all(kls > wide)


@pytest.mark.parametrize("mu, log_sigma", POSTERIORS)
def test_the_moments_of_theta_match_numerical_integration(mu, log_sigma):
    dist = _truncnorm(mu, log_sigma)
    mean, var = sbp_moments(*_params(mu, log_sigma))
    expected_mean = dist.expect(np.exp)
    expected_var = dist.expect(lambda t: np.exp(2 * t)) - expected_mean**2
    assert float(mean) == pytest.approx(expected_mean, rel=1e-5)
    assert float(var) == pytest.approx(expected_var, rel=1e-4, abs=1e-11)


@pytest.mark.parametrize("mu, log_sigma", [(-1.0, 0.0), (-3.0, 1.0), (0.0, -1.0), (-25.0, 1.0)])
def test_draws_follow_the_truncated_log_normal(mu, log_sigma):
    torch.manual_seed(0)
    n = 200_000
    theta = sbp_sample(*_params(mu, log_sigma), n).squeeze(1)
    assert torch.all((theta >= math.exp(LOG_BOUNDS[0])) & (theta <= math.exp(LOG_BOUNDS[1])))
    mean, var = sbp_moments(*_params(mu, log_sigma))
    assert abs(float(theta.mean() - mean)) < Z * math.sqrt(float(var) / n)
    # the whole distribution: a Kolmogorov-Smirnov test of log theta against scipy's truncated normal
    assert stats.kstest(theta.log().numpy(), _truncnorm(mu, log_sigma).cdf).pvalue > 1e-6


@pytest.mark.parametrize("mu, log_sigma", [(5.0, -2.3), (-40.0, -1.4)])
def test_an_interval_far_in_the_tail_is_sampled_at_its_nearer_bound_with_finite_gradients(mu, log_sigma):
    """mu 5 with sigma 0.1 puts [a, b] 50 sd below the mean, mu -40 with sigma 0.25 puts it 81 sd above: the
    truncated normal there is close to an exponential at the nearer bound, sampled without underflow."""
    torch.manual_seed(0)
    n = 200_000
    mu_t, ls_t = (v.requires_grad_() for v in _params(mu, log_sigma))
    theta = sbp_sample(mu_t, ls_t, n).squeeze(1)
    mean, var = sbp_moments(mu_t.detach(), ls_t.detach())
    assert abs(float(theta.mean().detach() - mean)) < Z * math.sqrt(float(var) / n) + 1e-3 * float(mean)
    theta.mean().backward()
    assert torch.isfinite(mu_t.grad).all() and torch.isfinite(ls_t.grad).all()
    assert torch.isfinite(sbp_kl(*_params(mu, log_sigma))).all()


def test_training_draws_one_noise_per_example_and_unit_shared_over_a_channels_positions():
    layer = StructuredBayesianPruning(6, init_log_sigma=0.0)
    x = torch.ones(16, 6, 5, 5)
    torch.manual_seed(1)
    out = layer(x)
    assert torch.all(out == out[:, :, :1, :1]), "a channel's positions got different noise"
    noise = out[:, :, 0, 0]
    assert not torch.equal(noise[0], noise[1]) and not torch.equal(noise[:, 0], noise[:, 1])


def test_eval_multiplies_by_the_mean_noise_and_removes_the_units_of_low_snr():
    layer = StructuredBayesianPruning(4)
    with torch.no_grad():
        layer.mu.copy_(torch.tensor([0.0, -1.0, -8.0, -1.0]))
        layer.log_sigma.copy_(torch.tensor([-5.0, -2.0, 1.5, 2.0]))
    snr = sbp_snr(layer.mu, layer.log_sigma)
    kept = layer.kept()
    assert kept.tolist() == (snr >= 1.0).tolist() and kept.any() and not kept.all()
    layer.eval()
    x = torch.randn(8, 4)
    mean, _ = sbp_moments(layer.mu, layer.log_sigma)
    torch.testing.assert_close(layer(x), x * torch.where(kept, mean, torch.zeros_like(mean)).detach())
    assert torch.all(layer(x)[:, ~kept] == 0) and torch.equal(layer(x), layer(x))


def test_the_kl_and_the_output_have_gradients_for_mu_and_sigma():
    layer = StructuredBayesianPruning(5, init_log_sigma=-1.0)
    torch.manual_seed(2)
    (layer(torch.randn(32, 5)).pow(2).mean() + layer.kl()).backward()
    for g in (layer.mu.grad, layer.log_sigma.grad):
        assert g is not None and torch.all(torch.isfinite(g)) and bool(g.abs().sum() > 0)


def test_the_functional_form_and_mc_predict():
    mu, log_sigma = torch.zeros(3), torch.full((3,), -1.0)
    x = torch.randn(4, 3)
    torch.manual_seed(3)
    assert not torch.equal(structured_bayesian_pruning(x, mu, log_sigma), structured_bayesian_pruning(x, mu, log_sigma))
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), StructuredBayesianPruning(8, init_log_sigma=0.0),
                              torch.nn.Linear(8, 2)).eval()
    passes = mc_predict(net, x, samples=3, return_samples=True).samples
    assert passes.shape == (3, 4, 2) and not torch.equal(passes[0], passes[1])


@pytest.mark.parametrize("call, message", [
    (lambda: StructuredBayesianPruning(4)(torch.ones(2, 5)), "shape (N, 4, ...)"),
    (lambda: StructuredBayesianPruning(0), "units must be an int >= 1, got 0"),
    (lambda: StructuredBayesianPruning(3, bounds=(0.0, -20.0)), "a < b <= 0"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert message in str(err.value)


def test_training_removes_the_units_the_data_do_not_need_and_keeps_the_others():
    """A regression on 8 inputs of which 2 matter, the noise on the inputs: the evidence lower bound should drive the
    noise of the 6 useless inputs to the prior (low SNR, removed) and keep the 2 useful ones."""
    torch.manual_seed(0)
    n = 128
    x = torch.randn(n, 8)
    y = x[:, 0] * 1.5 - x[:, 1] * 2.0 + 0.1 * torch.randn(n)
    gate, head = StructuredBayesianPruning(8, init_log_sigma=-3.0), torch.nn.Linear(8, 1)
    opt = torch.optim.Adam([*gate.parameters(), *head.parameters()], lr=0.05)
    for _ in range(1500):
        opt.zero_grad()
        nll = 0.5 * ((head(gate(x)).squeeze(1) - y) ** 2).sum() / 0.1**2  # the Gaussian likelihood, sd 0.1
        ((nll + gate.kl()) / n).backward()
        opt.step()
    assert gate.kept().tolist() == [True, True] + [False] * 6
    gate.eval()
    with torch.no_grad():
        assert float(((head(gate(x)).squeeze(1) - y) ** 2).mean().sqrt()) < 0.2  # the pruned net still fits

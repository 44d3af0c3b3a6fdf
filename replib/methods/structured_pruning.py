"""Structured Bayesian pruning: a learned log-normal noise on every neuron or channel, and the noisy ones removed.

Neklyudov, Molchanov, Ashukha & Vetrov (2017), "Structured Bayesian Pruning via Log-Normal Multiplicative Noise",
NIPS 2017 (arXiv 1705.07283).

Sparse variational dropout learns a dropout rate per *weight*, which prunes weights but leaves every neuron in the
computation. This layer instead multiplies each output *unit* ``i`` (a neuron of a linear layer, a channel of a
convolution) by its own noise ``theta_i``, with ``log theta_i ~ N(mu_i, sigma_i^2)`` truncated to ``[a, b]``: a
truncated log-normal, **one draw per example and unit** (shared over a channel's positions). The prior is
log-uniform on the same interval (uniform in ``log theta``), so the KL divergence of the evidence lower bound is
closed-form: the log-width of the interval minus the entropy of the truncated normal,

``KL = log(b - a) - log(sqrt(2 pi e) sigma Z) - (alpha pdf(alpha) - beta pdf(beta)) / (2 Z)``,

with ``alpha = (a - mu) / sigma``, ``beta = (b - mu) / sigma`` and ``Z = Phi(beta) - Phi(alpha)``.

Test time: each unit is multiplied by its mean noise ``E[theta]``, and a unit whose signal-to-noise ratio
``E[theta] / sd[theta]`` is below 1 is removed (multiplied by 0): the structured, deterministic pruned net.
The abstract confirms the log-normal noise on the units, the truncated log-uniform prior, the closed-form KL and
the removal of units of low SNR; the interval ``[a, b] = [-20, 0]`` (in ``log theta``), the SNR threshold of 1
and the initialisation below are our reading of the authors' public code, not confirmed in the paper here.
In ``train()`` the layer samples, so :func:`~replib.methods.mc_predict` draws from the posterior.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .._validate import check_positive_int
from ._stochastic import StochasticLayer

LOG_BOUNDS = (-20.0, 0.0)  # [a, b]: log theta is truncated here (prior and posterior)
SNR_THRESHOLD = 1.0  # a unit with E[theta] / sd[theta] below this is removed at test time
TINY = 1e-12  # keeps the variance (and the log of a mass) away from 0
EXACT_LOG_MASS = -600.0  # below this log mass, an interval is sampled from the normal's exponential tail


def _log_mass(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """``log(Phi(hi) - Phi(lo))`` for ``lo <= hi``, accurate in both tails (an interval above 0 is mirrored below it,
    where ``log Phi`` keeps its precision)."""
    mirror = lo > 0
    lo, hi = torch.where(mirror, -hi, lo), torch.where(mirror, -lo, hi)
    log_lo, log_hi = torch.special.log_ndtr(lo), torch.special.log_ndtr(hi)
    return log_hi + torch.log(-torch.expm1((log_lo - log_hi).clamp(max=-TINY)))


def _standardised(mu: torch.Tensor, log_sigma: torch.Tensor, bounds: tuple[float, float]):
    """``(mu, sigma, alpha, beta, log Z)`` in float64, the precision the tails of the truncated normal need."""
    mu, sigma = mu.double(), log_sigma.double().exp()
    alpha, beta = (bounds[0] - mu) / sigma, (bounds[1] - mu) / sigma
    return mu, sigma, alpha, beta, _log_mass(alpha, beta)


def _log_pdf(t: torch.Tensor) -> torch.Tensor:
    return -0.5 * t * t - 0.5 * math.log(2 * math.pi)


def sbp_kl(mu: torch.Tensor, log_sigma: torch.Tensor, bounds: tuple[float, float] = LOG_BOUNDS) -> torch.Tensor:
    """KL divergence from the truncated log-uniform prior to the truncated log-normal posterior, per unit (>= 0).

    Args:
        mu, log_sigma: ``(units,)``: the mean and log standard deviation of ``log theta`` before truncation.
        bounds: ``(a, b)``, the truncation interval of ``log theta``.

    Returns:
        ``(units,)``, in the dtype of ``mu``; 0 exactly when the posterior is the prior (the limit sigma -> inf).
    """
    mu64, sigma, alpha, beta, log_z = _standardised(mu, log_sigma, bounds)
    hazard = (alpha * torch.exp(_log_pdf(alpha) - log_z) - beta * torch.exp(_log_pdf(beta) - log_z)) / 2
    entropy = 0.5 * math.log(2 * math.pi * math.e) + torch.log(sigma) + log_z + hazard
    return (math.log(bounds[1] - bounds[0]) - entropy).to(mu.dtype)


def sbp_moments(mu: torch.Tensor, log_sigma: torch.Tensor,
                bounds: tuple[float, float] = LOG_BOUNDS) -> tuple[torch.Tensor, torch.Tensor]:
    """``(E[theta], Var[theta])`` of the truncated log-normal noise, per unit, in the dtype of ``mu``.

    ``E[theta^k] = exp(k mu + k^2 sigma^2 / 2) (Phi(beta - k sigma) - Phi(alpha - k sigma)) / Z`` for k = 1, 2,
    computed in logs.
    """
    mu64, sigma, alpha, beta, log_z = _standardised(mu, log_sigma, bounds)

    def raw(k: int) -> torch.Tensor:
        return torch.exp(k * mu64 + 0.5 * (k * sigma) ** 2 + _log_mass(alpha - k * sigma, beta - k * sigma) - log_z)

    mean = raw(1)
    return mean.to(mu.dtype), (raw(2) - mean * mean).clamp_min(TINY).to(mu.dtype)


def sbp_snr(mu: torch.Tensor, log_sigma: torch.Tensor, bounds: tuple[float, float] = LOG_BOUNDS) -> torch.Tensor:
    """The signal-to-noise ratio ``E[theta] / sd[theta]`` of each unit's noise."""
    mean, var = sbp_moments(mu, log_sigma, bounds)
    return mean / var.sqrt()


def sbp_sample(mu: torch.Tensor, log_sigma: torch.Tensor, batch: int,
               bounds: tuple[float, float] = LOG_BOUNDS) -> torch.Tensor:
    """``(batch, units)`` draws of ``theta`` (differentiable in mu and sigma), in the dtype of ``mu``.

    By the inverse CDF of the truncated normal, an interval above the mean mirrored below it, where the CDF keeps
    its precision. An interval so far in the tail that its mass underflows (log mass below
    :data:`EXACT_LOG_MASS`, more than about 34 standard deviations out) is sampled from the normal's exponential
    tail at its nearer bound instead (relative error below 0.1% there).
    """
    mu64, sigma, alpha, beta, log_z = _standardised(mu, log_sigma, bounds)
    mirror = alpha > 0
    lo, hi = torch.where(mirror, -beta, alpha), torch.where(mirror, -alpha, beta)
    u = torch.rand(batch, mu.numel(), device=mu.device, dtype=torch.float64)
    log_p = torch.logaddexp(torch.special.log_ndtr(lo), torch.log(u) + log_z)  # Phi(lo) + u Z, in logs
    exact = torch.special.ndtri(log_p.exp().clamp(1e-300, 1 - 1e-16))
    rate = (-hi).clamp_min(1.0)  # far below 0, the density falls as exp(-|hi| s) from hi: an exponential
    spread = -torch.log1p(u * torch.expm1(-((hi - lo) * rate).clamp_max(700.0))) / rate
    t = torch.where(log_z > EXACT_LOG_MASS, exact, hi - spread)
    t = torch.where(mirror, -t, t)
    return torch.exp((mu64 + sigma * t).clamp(*bounds)).to(mu.dtype)


def structured_bayesian_pruning(x: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor, training: bool = True,
                                bounds: tuple[float, float] = LOG_BOUNDS,
                                snr_threshold: float = SNR_THRESHOLD) -> torch.Tensor:
    """Multiply every unit of ``x`` by its noise: a fresh draw per example (training), or ``E[theta]`` with the units
    of SNR below ``snr_threshold`` removed (test).

    Args:
        x: ``(N, units)`` or ``(N, units, *spatial)``; dimension 1 holds the units.
        mu, log_sigma: ``(units,)``.

    Returns:
        A tensor of the shape of ``x``.

    Raises:
        ValueError: when ``x`` has no dimension 1 of ``units`` entries.
    """
    if x.dim() < 2 or x.shape[1] != mu.numel():
        raise ValueError(f"structured_bayesian_pruning needs an input of shape (N, {mu.numel()}, ...), one entry of "
                         f"dimension 1 per unit, got shape {tuple(x.shape)}")
    if training:
        theta = sbp_sample(mu, log_sigma, x.shape[0], bounds)
    else:
        mean, var = sbp_moments(mu, log_sigma, bounds)
        theta = torch.where(mean / var.sqrt() < snr_threshold, torch.zeros_like(mean), mean).expand(x.shape[0], -1)
    return x * theta.to(x.dtype).view(*theta.shape, *(1,) * (x.dim() - 2))


class StructuredBayesianPruning(StochasticLayer):
    """Module form of :func:`structured_bayesian_pruning`, placed after a layer's output (before its activation).

    Shapes: input ``(N, units)`` or ``(N, units, *spatial)``, output the same. ``kl()`` is the layer's term of the
    evidence lower bound (add it, divided by the training-set size, to the loss); ``kept()`` says which units
    survive at test time. Initialised as the authors' code: ``mu = 0`` and ``log sigma = -5``, a noise close to 1.
    """

    def __init__(self, units: int, bounds: tuple[float, float] = LOG_BOUNDS, snr_threshold: float = SNR_THRESHOLD,
                 init_log_sigma: float = -5.0) -> None:
        super().__init__()
        units = check_positive_int(units, "units")
        a, b = (float(v) for v in bounds)
        if not a < b <= 0.0:
            raise ValueError(f"bounds must be (a, b) with a < b <= 0 on the scale of log theta, got {bounds!r}")
        self.bounds, self.snr_threshold = (a, b), float(snr_threshold)
        self.mu = nn.Parameter(torch.zeros(units))
        self.log_sigma = nn.Parameter(torch.full((units,), float(init_log_sigma)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return structured_bayesian_pruning(x, self.mu, self.log_sigma, self.training, self.bounds, self.snr_threshold)

    def kl(self) -> torch.Tensor:
        return sbp_kl(self.mu, self.log_sigma, self.bounds).sum()

    def kept(self) -> torch.Tensor:
        """Boolean ``(units,)``: True for the units kept at test time (SNR at least the threshold)."""
        return sbp_snr(self.mu, self.log_sigma, self.bounds).detach() >= self.snr_threshold

    def extra_repr(self) -> str:
        return f"units={self.mu.numel()}, bounds={self.bounds}, snr_threshold={self.snr_threshold}"

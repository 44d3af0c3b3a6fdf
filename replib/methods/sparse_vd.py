"""Sparse variational dropout: a dropout rate learned for every weight, and the weights it learns to drop pruned.

Molchanov, Ashukha & Vetrov (2017), "Variational Dropout Sparsifies Deep Neural Networks", ICML 2017 (arXiv
1701.05369), sections 3-4. Kingma, Salimans & Welling (2015), "Variational Dropout and the Local
Reparameterization Trick", for the reparameterisation. The structured variant (Neklyudov et al. 2017), which
prunes whole units, is :mod:`replib.methods.structured_pruning`.

Every weight ``w_ij`` has a Gaussian posterior ``N(theta_ij, sigma_ij^2)``, that is multiplicative Gaussian noise
``w = theta (1 + sqrt(alpha) eps)`` with a **per-weight** dropout rate ``alpha_ij = sigma_ij^2 / theta_ij^2``
(Gaussian dropout's ``p / (1 - p)``), under the log-uniform prior. Training samples the *pre-activations*, not the
weights (the local reparameterisation trick): for a linear layer ``b = x theta^T + sqrt(x^2 (sigma^2)^T) * eps``,
one ``eps ~ N(0, 1)`` per example and output unit; for a convolution, the same with convolutions. The loss adds
the KL divergence from the prior, approximated as in the paper (equation 14):
``-KL ~= k1 sigmoid(k2 + k3 log alpha) - 0.5 log(1 + 1/alpha) - k1``, ``k1, k2, k3 = 0.63576, 1.87320, 1.48695``.

Test time: the mean weights ``theta``, with every weight whose ``log alpha`` exceeds the threshold (3, the paper's:
a dropout rate above about 0.95) set to zero: the pruned, deterministic net. In ``train()`` the layer samples,
so :func:`replib.methods.mc_predict` draws from the posterior.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._stochastic import StochasticLayer

K1, K2, K3 = 0.63576, 1.87320, 1.48695  # the fit of -KL in Molchanov et al. (2017), equation 14
LOG_ALPHA_RANGE = (-10.0, 10.0)  # log alpha is clipped here, as in the authors' code, for stable gradients
PRUNE_THRESHOLD = 3.0  # prune where log alpha > 3 (section 4.3)
EPS = 1e-8  # under the square root of a pre-activation's variance


def kl_approximation(log_alpha: torch.Tensor) -> torch.Tensor:
    """The approximate KL divergence from the log-uniform prior, elementwise (non-negative; 0 as alpha -> inf).

    ``KL ~= k1 - k1 sigmoid(k2 + k3 log alpha) + 0.5 log(1 + 1/alpha)``, the negative of the paper's equation 14.
    """
    return K1 - K1 * torch.sigmoid(K2 + K3 * log_alpha) + 0.5 * F.softplus(-log_alpha)


def log_alpha_of(theta: torch.Tensor, log_sigma2: torch.Tensor) -> torch.Tensor:
    """``log alpha = log sigma^2 - log theta^2``, clipped to :data:`LOG_ALPHA_RANGE`."""
    return (log_sigma2 - torch.log(theta**2 + EPS)).clamp(*LOG_ALPHA_RANGE)


def sparse_vd_linear(x: torch.Tensor, theta: torch.Tensor, log_sigma2: torch.Tensor, bias: torch.Tensor | None = None,
                     training: bool = True, threshold: float = PRUNE_THRESHOLD) -> torch.Tensor:
    """A linear layer with sparse variational dropout.

    Args:
        x: ``(N, in_features)``.
        theta, log_sigma2: ``(out_features, in_features)``: the posterior's means and log variances.
        bias: ``(out_features,)`` or None (deterministic).
        training: True: a sample of the pre-activations by the local reparameterisation trick; False: the mean
            weights with those of ``log alpha > threshold`` pruned.

    Returns:
        ``(N, out_features)``.
    """
    if not training:
        return F.linear(x, pruned_weight(theta, log_sigma2, threshold), bias)
    mean = F.linear(x, theta, bias)
    variance = F.linear(x * x, log_sigma2.exp().clamp(max=_max_variance(theta)))
    return mean + (variance + EPS).sqrt() * torch.randn_like(mean)


def sparse_vd_conv2d(x: torch.Tensor, theta: torch.Tensor, log_sigma2: torch.Tensor, bias: torch.Tensor | None = None,
                     training: bool = True, threshold: float = PRUNE_THRESHOLD, stride=1, padding=0) -> torch.Tensor:
    """A 2-d convolution with sparse variational dropout; as :func:`sparse_vd_linear`, with ``x`` ``(N, C, H, W)``,
    ``theta`` and ``log_sigma2`` ``(out_channels, C, kh, kw)``, and one ``eps`` per output element."""
    if not training:
        return F.conv2d(x, pruned_weight(theta, log_sigma2, threshold), bias, stride, padding)
    mean = F.conv2d(x, theta, bias, stride, padding)
    variance = F.conv2d(x * x, log_sigma2.exp().clamp(max=_max_variance(theta)), None, stride, padding)
    return mean + (variance + EPS).sqrt() * torch.randn_like(mean)


def _max_variance(theta: torch.Tensor) -> torch.Tensor:
    """sigma^2 at the top of the clipped log alpha range: alpha never exceeds exp(10)."""
    return (theta**2 + EPS) * math.exp(LOG_ALPHA_RANGE[1])


def pruned_weight(theta: torch.Tensor, log_sigma2: torch.Tensor, threshold: float = PRUNE_THRESHOLD) -> torch.Tensor:
    """The test-time weights: ``theta`` where ``log alpha <= threshold``, zero where the weight is dropped."""
    return theta * (log_alpha_of(theta, log_sigma2) <= threshold).to(theta.dtype)


class _SparseVD(StochasticLayer):
    threshold: float

    def _init(self, shape: tuple[int, ...], bias: bool, fan_in: int, threshold: float) -> None:
        self.theta = nn.Parameter(torch.empty(shape))
        nn.init.kaiming_uniform_(self.theta, a=math.sqrt(5))  # as nn.Linear / nn.Conv2d
        self.log_sigma2 = nn.Parameter(torch.full(shape, -10.0))  # start with almost no noise (the authors' init)
        self.bias = nn.Parameter(torch.empty(shape[0]).uniform_(-1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))) \
            if bias else None
        self.threshold = float(threshold)

    @property
    def log_alpha(self) -> torch.Tensor:
        return log_alpha_of(self.theta, self.log_sigma2)

    def kl(self) -> torch.Tensor:
        """The layer's approximate KL divergence from the prior, summed over its weights (add it to the loss,
        scaled by 1 / the number of training examples for a per-example loss)."""
        return kl_approximation(self.log_alpha).sum()

    def sparsity(self) -> float:
        """The share of the layer's weights that test time prunes (``log alpha > threshold``)."""
        return float((self.log_alpha > self.threshold).float().mean())


class SparseVDLinear(_SparseVD):
    """Module form of :func:`sparse_vd_linear`; ``kl()`` for the loss, ``sparsity()`` for the share pruned.

    Shapes: input ``(N, in_features)``, output ``(N, out_features)``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 threshold: float = PRUNE_THRESHOLD) -> None:
        super().__init__()
        self._init((out_features, in_features), bias, in_features, threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sparse_vd_linear(x, self.theta, self.log_sigma2, self.bias, self.training, self.threshold)

    def extra_repr(self) -> str:
        return f"in_features={self.theta.shape[1]}, out_features={self.theta.shape[0]}, threshold={self.threshold}"


class SparseVDConv2d(_SparseVD):
    """Module form of :func:`sparse_vd_conv2d`; ``kl()`` for the loss, ``sparsity()`` for the share pruned.

    Shapes: input ``(N, in_channels, H, W)``, output ``(N, out_channels, H_out, W_out)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 bias: bool = True, threshold: float = PRUNE_THRESHOLD) -> None:
        super().__init__()
        self.stride, self.padding = stride, padding
        self._init((out_channels, in_channels, kernel_size, kernel_size), bias, in_channels * kernel_size**2,
                   threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sparse_vd_conv2d(x, self.theta, self.log_sigma2, self.bias, self.training, self.threshold,
                                self.stride, self.padding)

    def extra_repr(self) -> str:
        out, inp, k, _ = self.theta.shape
        return f"{inp}, {out}, kernel_size={k}, stride={self.stride}, padding={self.padding}, threshold={self.threshold}"

"""DropConnect (Wan et al. 2013): per-example vs per-minibatch masks, rates, inference rules."""

from __future__ import annotations

import math

import pytest
import torch

from replib.methods import DropConnectLinear, dropconnect_linear

Z = 5.0


@pytest.mark.parametrize("masks", ["per_example", "per_minibatch"])
@pytest.mark.parametrize("p", [0.2, 0.5])
def test_weight_drop_rate_binomial(masks, p):
    """With a one-hot input, output unit o of example n is W[o, i] * M[n, o, i]: the mask is visible."""
    out_features, n = 400, 64
    weight = torch.ones(out_features, 1)
    for seed in range(3):
        torch.manual_seed(seed)
        y = dropconnect_linear(torch.ones(n, 1), weight, None, p, True, activation="identity", masks=masks)
        dropped = int((y == 0).sum())
        draws = out_features * (n if masks == "per_example" else 1)
        dropped = dropped if masks == "per_example" else int((y[0] == 0).sum())
        assert abs(dropped - draws * p) < Z * math.sqrt(draws * p * (1 - p)), (seed, dropped, draws)


def test_identical_inputs_get_different_outputs_only_with_per_example_masks():
    torch.manual_seed(0)
    layer = DropConnectLinear(20, 30, p=0.5, masks="per_example").train()
    x = torch.randn(1, 20).expand(8, 20)
    y = layer(x)
    assert not torch.equal(y[0], y[1])
    layer.masks = "per_minibatch"
    y = layer(x)
    assert all(torch.equal(y[0], y[i]) for i in range(8))


def test_chunked_generation_matches_unchunked_statistics_and_shapes():
    torch.manual_seed(0)
    weight, x = torch.randn(50, 40), torch.randn(33, 40)
    y = dropconnect_linear(x, weight, torch.zeros(50), 0.5, True, max_mask_elements=50 * 40 * 4)
    assert y.shape == (33, 50)
    # Expected pre-activation is (1 - p) W x: the mean over many draws approaches it.
    torch.manual_seed(1)
    draws = torch.stack([dropconnect_linear(x[:2], weight, None, 0.5, True, activation="identity",
                                            max_mask_elements=2000) for _ in range(4000)])
    sd = (0.25 * (weight**2) @ (x[:2] ** 2).T).sqrt().T / math.sqrt(4000)
    assert ((draws.mean(0) - 0.5 * x[:2] @ weight.T).abs() < Z * sd).all()


def test_gradient_flows_only_through_kept_weights():
    torch.manual_seed(0)
    weight = torch.ones(10, 1, requires_grad=True)
    y = dropconnect_linear(torch.ones(1, 1), weight, None, 0.5, True, activation="identity")
    y.sum().backward()
    torch.testing.assert_close(weight.grad.squeeze(1), (y.detach().squeeze(0) != 0).float())


def test_mean_inference_is_the_scaled_deterministic_network():
    torch.manual_seed(0)
    layer = DropConnectLinear(20, 30, p=0.3, inference="mean").eval()
    x = torch.randn(5, 20)
    expected = torch.relu(0.7 * layer.linear(x))
    torch.testing.assert_close(layer(x), expected)
    torch.testing.assert_close(layer(x), layer(x))


def test_gaussian_inference_matches_closed_form_moments():
    """With the identity activation, the average of S samples has the paper's mean and variance / S."""
    torch.manual_seed(0)
    weight, bias, x = torch.randn(6, 4), torch.randn(6), torch.randn(3, 4)
    p, q, samples, reps = 0.4, 0.6, 50, 400
    mean = q * (x @ weight.T + bias)
    var = q * (1 - q) * ((x**2) @ (weight**2).T + bias**2)
    outs = torch.stack([dropconnect_linear(x, weight, bias, p, False, activation="identity",
                                           inference="gaussian", samples=samples) for _ in range(reps)])
    se_mean = (var / samples / reps).sqrt()
    assert ((outs.mean(0) - mean).abs() < Z * se_mean).all()
    ratio = outs.var(0) / (var / samples)
    assert (ratio > 0.7).all() and (ratio < 1.4).all()  # sample variance of 400 draws: within ~±30%


def test_gaussian_inference_averages_the_activation_not_the_input():
    """E[relu(u)] > relu(E[u]) for a wide u (Jensen): Gaussian inference must exceed the mean rule."""
    torch.manual_seed(0)
    x, weight, bias = torch.tensor([[1.0]]), torch.tensor([[1.0]]), torch.tensor([-0.5])
    y = dropconnect_linear(x, weight, bias, 0.5, False, inference="gaussian", samples=20000)
    relu_of_mean = dropconnect_linear(x, weight, bias, 0.5, False, inference="mean")
    assert float(y) > float(relu_of_mean) + 0.02


def test_identity_at_p_zero_in_training():
    layer = DropConnectLinear(5, 3, p=0.0, activation="identity")
    x = torch.randn(4, 5)
    torch.testing.assert_close(layer.train()(x), layer.linear(x))


@pytest.mark.parametrize("kwargs,match", [
    ({"p": 1.5}, "p must be"), ({"masks": "per_batch"}, "'per_batch'"),
    ({"inference": "sampling"}, "'sampling'"), ({"activation": "gelu"}, "'gelu'"),
])
def test_bad_arguments_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DropConnectLinear(4, 3, **kwargs)


def test_wrong_input_shape_rejected():
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        DropConnectLinear(4, 3)(torch.randn(2, 5))

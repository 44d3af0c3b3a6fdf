"""DropConnect (Wan et al. 2013): per-example vs per-minibatch masks, rates, inference rules, and the
numba backend's hash-drawn masks (exactness against a dense computation, rates, seeding)."""

from __future__ import annotations

import math
import re

import pytest
import torch

from replib.methods import DropConnectLinear, dropconnect_linear
from replib.methods.dropconnect import SEED_BOUND, per_example_masks

Z = 5.0  # |deviation| < 5 standard errors: a false failure has probability < 1e-6 per check


@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize("p", [0.2, 0.5])
def test_per_example_weight_drop_rate_binomial(backend, p):
    """One input of 1 and weights of 1: output o of example n is M[n, o, 0], so y shows 256 x 400 = 102,400 draws."""
    n, out_features = 256, 400
    for seed in range(3):
        torch.manual_seed(seed)
        y = dropconnect_linear(torch.ones(n, 1), torch.ones(out_features, 1), None, p, True, activation="identity",
                               masks="per_example", backend=backend)
        draws, dropped = y.numel(), int((y == 0).sum())
        # 5 standard errors of a Binomial(102,400, p) count: about ±0.8% of the draws at p = 0.5
        assert abs(dropped - draws * p) < Z * math.sqrt(draws * p * (1 - p)), (seed, dropped, draws)


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_per_minibatch_weight_drop_rate_binomial(p):
    """Identity-matrix input and weights of 1: y[n, o] = M[o, n], the one shared mask, 200 x 500 = 100,000 draws."""
    n_in, out_features = 200, 500
    for seed in range(3):
        torch.manual_seed(seed)
        y = dropconnect_linear(torch.eye(n_in), torch.ones(out_features, n_in), None, p, True, activation="identity",
                               masks="per_minibatch")
        draws, dropped = y.numel(), int((y == 0).sum())
        # 5 standard errors of a Binomial(100,000, p) count: about ±0.8% of the draws at p = 0.5
        assert abs(dropped - draws * p) < Z * math.sqrt(draws * p * (1 - p)), (seed, dropped, draws)


@pytest.mark.parametrize("masks,n,out_features", [("per_example", 200, 500), ("per_minibatch", 1, 100_000)])
def test_bias_drop_rate_binomial(masks, n, out_features):
    """Zero input, biases of 1: y[n, o] = m[n, o] (per example) or m[o] (per minibatch); 100,000 draws."""
    p = 0.3
    torch.manual_seed(0)
    y = dropconnect_linear(torch.zeros(n, 1), torch.ones(out_features, 1), torch.ones(out_features), p, True,
                           activation="identity", masks=masks)
    draws, dropped = y.numel(), int((y == 0).sum())
    assert abs(dropped - draws * p) < Z * math.sqrt(draws * p * (1 - p)), dropped  # 5 standard errors


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_identical_inputs_get_different_outputs_only_with_per_example_masks(backend):
    torch.manual_seed(0)
    layer = DropConnectLinear(20, 30, p=0.5, masks="per_example", backend=backend).train()
    x = torch.randn(1, 20).expand(8, 20)
    y = layer(x)
    assert not torch.equal(y[0], y[1])
    layer.masks = "per_minibatch"
    y = layer(x)
    assert all(torch.equal(y[0], y[i]) for i in range(8))


def test_torch_backend_drawing_masks_in_chunks_gives_the_expected_pre_activation():
    """Chunks of one example each (max_mask_elements = one mask): the mean over draws approaches (1 - p) W x."""
    torch.manual_seed(0)
    weight, x = torch.randn(50, 40), torch.randn(3, 40)
    torch.manual_seed(1)
    draws = torch.stack([dropconnect_linear(x, weight, None, 0.5, True, activation="identity",
                                            max_mask_elements=50 * 40, backend="torch") for _ in range(4000)])
    # Var of one draw: p (1 - p) sum_i W[o, i]^2 x[n, i]^2; tolerance 5 standard errors of the mean of 4000
    sd = (0.25 * (weight**2) @ (x**2).T).sqrt().T / math.sqrt(4000)
    assert ((draws.mean(0) - 0.5 * x @ weight.T).abs() < Z * sd).all()


def test_torch_backend_masks_every_example_when_the_last_chunk_is_partial():
    """33 examples in chunks of 4: every row is computed, none left at zero or copied from another chunk."""
    torch.manual_seed(0)
    weight, x = torch.ones(50, 40), torch.ones(33, 40)
    y = dropconnect_linear(x, weight, None, 0.5, True, activation="identity", max_mask_elements=50 * 40 * 4,
                           backend="torch")
    assert y.shape == (33, 50) and (y.sum(1) > 0).all()
    assert len({tuple(row.tolist()) for row in y}) == 33


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


@pytest.mark.parametrize("kwargs,message", [
    ({"p": 1.5}, "p must be a probability in [0, 1], got 1.5"),
    ({"masks": "per_batch"}, "masks must be one of ['per_example', 'per_minibatch'], got 'per_batch'"),
    ({"inference": "sampling"}, "inference must be one of ['mean', 'gaussian'], got 'sampling'"),
    ({"activation": "gelu"}, "activation must be one of ['relu', 'tanh', 'sigmoid', 'identity'], got 'gelu'"),
    ({"backend": "cuda"}, "backend must be one of ['auto', 'numba', 'torch'], got 'cuda'"),
])
def test_bad_arguments_rejected(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        DropConnectLinear(4, 3, **kwargs)


@pytest.mark.parametrize("samples", [0, 2.5, True])
def test_bad_gaussian_sample_count_rejected(samples):
    with pytest.raises(ValueError, match=re.escape(f"samples must be an int >= 1, got {samples!r}")):
        dropconnect_linear(torch.ones(2, 4), torch.ones(3, 4), None, 0.5, False, inference="gaussian",
                           samples=samples)


def test_wrong_input_shape_rejected():
    with pytest.raises(ValueError, match=re.escape("x must be (N, 4), got shape (2, 5)")):
        DropConnectLinear(4, 3)(torch.randn(2, 5))


def test_wrong_bias_shape_rejected():
    with pytest.raises(ValueError, match=re.escape("bias must be (3,) or None, got shape (5,)")):
        dropconnect_linear(torch.ones(2, 4), torch.ones(3, 4), torch.ones(5), 0.5, True)


# The numba backend: masks from a counter-based hash, regenerated in the backward pass.


def seed_of_next_call(torch_seed: int) -> int:
    """The seed the next numba DropConnect call draws after ``torch.manual_seed(torch_seed)``."""
    torch.manual_seed(torch_seed)
    return int(torch.randint(0, SEED_BOUND, ()))


def dense_reference(x, weight, bias, seed, p):
    """u[n, o] = sum_i M[n, o, i] W[o, i] x[n, i] + Mb[n, o] b[o] with the kernels' masks, materialised."""
    weight_mask, bias_mask = per_example_masks(seed, len(x), *weight.shape, 1 - p)
    return torch.einsum("noi,oi,ni->no", weight_mask.float(), weight, x) + bias_mask.float() * bias


def test_numba_forward_equals_dense_einsum_with_materialised_masks():
    # 13 inputs and 7 outputs are not multiples of 4: the last hash of each row is partly used.
    torch.manual_seed(1)
    x, weight, bias = torch.randn(5, 13), torch.randn(7, 13), torch.randn(7)
    expected = dense_reference(x, weight, bias, seed_of_next_call(0), 0.5)
    torch.manual_seed(0)
    y = dropconnect_linear(x, weight, bias, 0.5, True, activation="identity", backend="numba")
    torch.testing.assert_close(y, expected)


@pytest.mark.parametrize("activation", ["identity", "relu"])  # relu: zero output gradients are skipped
def test_numba_gradients_equal_dense_einsum_with_materialised_masks(activation):
    torch.manual_seed(1)
    x, weight, bias = (torch.randn(*shape, requires_grad=True) for shape in [(6, 13), (7, 13), (7,)])
    grad_out = torch.randn(6, 7)
    act = {"identity": lambda u: u, "relu": torch.relu}[activation]
    act(dense_reference(x, weight, bias, seed_of_next_call(0), 0.3)).backward(grad_out)
    expected = [t.grad.clone() for t in (x, weight, bias)]
    for t in (x, weight, bias):
        t.grad = None
    torch.manual_seed(0)
    dropconnect_linear(x, weight, bias, 0.3, True, activation=activation, backend="numba").backward(grad_out)
    for t, e in zip((x, weight, bias), expected):
        torch.testing.assert_close(t.grad, e)


@pytest.mark.parametrize("which", ["weight", "bias"])
@pytest.mark.parametrize("p", [0.2, 0.5])
def test_hash_mask_drop_rate_binomial(which, p):
    # 128,000 weight draws or 3,200 bias draws per seed; tolerance 5 standard errors of the count
    for seed in range(3):
        weight_mask, bias_mask = per_example_masks(seed, 64, 40, 50, 1 - p)
        mask = weight_mask if which == "weight" else bias_mask
        draws, dropped = mask.numel(), int((~mask).sum())
        assert abs(dropped - draws * p) < Z * math.sqrt(draws * p * (1 - p)), (seed, dropped, draws)


def test_hash_masks_differ_between_examples():
    weight_mask, _ = per_example_masks(7, 16, 10, 20, 0.5)
    flat = weight_mask.flatten(1)
    assert all(not torch.equal(flat[a], flat[b]) for a in range(16) for b in range(a))


def test_same_seed_gives_same_masks():
    first, second = per_example_masks(11, 4, 9, 6, 0.5), per_example_masks(11, 4, 9, 6, 0.5)
    assert all(torch.equal(a, b) for a, b in zip(first, second))


def test_different_seeds_give_different_masks():
    first, second = per_example_masks(11, 4, 9, 6, 0.5), per_example_masks(12, 4, 9, 6, 0.5)
    assert not any(torch.equal(a, b) for a, b in zip(first, second))


def test_bias_masks_come_from_a_different_stream_than_weight_masks():
    """With out == in, a shared key would make example 0's bias mask equal to its first weight row."""
    weight_mask, bias_mask = per_example_masks(3, 1, 64, 64, 0.5)
    assert not torch.equal(weight_mask[0, 0], bias_mask[0])


def test_masks_follow_the_documented_splitmix64_scheme():
    """Recompute a few mask bits in pure Python from the recipe in _dropconnect_kernels' docstring."""
    mask64 = 2**64 - 1

    def mix64(z):
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask64
        return z ^ (z >> 31)

    def kept(key, counter, chunk, threshold):
        h = mix64((key + (counter + 1) * 0x9E3779B97F4A7C15) & mask64)
        return (h >> (16 * chunk)) & 0xFFFF < threshold

    seed, n_ex, n_out, n_in, keep = 2**62 - 5, 3, 6, 9, 0.7
    weight_mask, bias_mask = per_example_masks(seed, n_ex, n_out, n_in, keep)
    key_w, key_b, threshold = mix64(2 * seed), mix64(2 * seed + 1), round(keep * 65536)
    for n in range(n_ex):
        for o in range(n_out):
            assert bool(bias_mask[n, o]) == kept(key_b, n * 2 + o // 4, o % 4, threshold)
            for i in range(n_in):
                assert bool(weight_mask[n, o, i]) == kept(key_w, (n * n_out + o) * 3 + i // 4, i % 4, threshold)


def test_torch_manual_seed_makes_numba_training_reproducible():
    x, weight = torch.linspace(-1, 1, 40).reshape(4, 10), torch.linspace(-2, 2, 80).reshape(8, 10)
    outputs = []
    for _ in range(2):
        torch.manual_seed(5)
        outputs.append(dropconnect_linear(x, weight, None, 0.5, True, backend="numba"))
    torch.testing.assert_close(outputs[0], outputs[1], rtol=0, atol=0)


def test_numba_backend_rejects_float64():
    with pytest.raises(ValueError, match=re.escape("backend='numba' needs float32 CPU tensors, got torch.float64 on "
                                                   "cpu, torch.float64 on cpu")):
        dropconnect_linear(torch.ones(2, 3, dtype=torch.float64), torch.ones(4, 3, dtype=torch.float64), None,
                           0.5, True, backend="numba")


def test_bad_backend_rejected_by_the_function():
    with pytest.raises(ValueError, match=re.escape("backend must be one of ['auto', 'numba', 'torch'], got 'numpy'")):
        dropconnect_linear(torch.ones(2, 3), torch.ones(4, 3), None, 0.5, True, backend="numpy")


def test_numba_kernels_use_a_threading_layer_that_sleeps_when_idle():
    """OpenMP's spinning workers would starve torch's threads in the same process (see _dropconnect_kernels)."""
    import os

    import numba

    if "NUMBA_THREADING_LAYER" in os.environ:
        pytest.skip("the reader chose a threading layer")
    x = torch.rand(4, 8)
    dropconnect_linear(x, torch.rand(3, 8), None, 0.5, True, backend="numba")
    assert numba.threading_layer() == "workqueue"

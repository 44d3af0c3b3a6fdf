"""Batchwise dropout (Graham et al. 2015): submatrices equal a masked dense layer, with less compute."""

from __future__ import annotations

import re

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from replib.methods import BatchwiseDropoutMLP, SubmatrixSGD
from replib.methods.batchwise import kept_count


def model_and_pattern(seed=0, sizes=(20, 16, 16, 5)):
    torch.manual_seed(seed)
    model = BatchwiseDropoutMLP(list(sizes), p_input=0.2, p_hidden=0.5).train()
    return model, model.sample_pattern()


def test_exactly_round_n_times_keep_units_per_layer():
    model, pattern = model_and_pattern(sizes=(784, 800, 800, 10))
    assert [len(k) for k in pattern] == [627, 400, 400, 10]
    assert kept_count(5, 0.5) == 2  # round half to even, at least one unit
    assert all(len(k.unique()) == len(k) for k in pattern)


def test_one_pattern_per_minibatch_differs_between_minibatches():
    model, _ = model_and_pattern()
    a, b = model.sample_pattern(), model.sample_pattern()
    assert not all(torch.equal(x, y) for x, y in zip(a[:-1], b[:-1]))


def test_forward_equals_masked_dense_layer_on_kept_units():
    model, pattern = model_and_pattern()
    x = torch.randn(7, 20)
    torch.testing.assert_close(model(x, pattern), model.dense_equivalent(x, pattern)[:, pattern[-1]])


def test_gradients_equal_masked_dense_layer_on_the_submatrix():
    model, pattern = model_and_pattern()
    x, y = torch.randn(7, 20), torch.randint(0, 5, (7,))
    torch.nn.functional.cross_entropy(model(x, pattern), y).backward()
    torch.nn.functional.cross_entropy(model.dense_equivalent(x, pattern), y).backward()
    for i, (layer, (k_out, _, w, b)) in enumerate(zip(model.linears, model.active)):
        torch.testing.assert_close(w.grad, layer.weight.grad[k_out][:, pattern[i]])
        torch.testing.assert_close(b.grad, layer.bias.grad[k_out])


def mask_of(pattern, i, weights):
    """Boolean mask of layer i's submatrix used with ``pattern``."""
    mask = torch.zeros_like(weights[i], dtype=torch.bool)
    mask[pattern[i + 1][:, None], pattern[i][None, :]] = True
    return mask


def test_step_updates_only_the_submatrix_and_its_momentum():
    model, pattern = model_and_pattern()
    before = [l.weight.detach().clone() for l in model.linears]
    opt = SubmatrixSGD(model.parameters(), model, lr=0.1, momentum=0.9)
    opt.buffers[1][0].fill_(1.0)  # old momentum outside the submatrix must not move the weights
    x, y = torch.randn(7, 20), torch.randint(0, 5, (7,))
    torch.nn.functional.cross_entropy(model(x, pattern), y).backward()
    opt.step()
    for i, layer in enumerate(model.linears):
        mask = mask_of(pattern, i, before)
        assert torch.equal(layer.weight.detach()[~mask], before[i][~mask]), "a dropped weight moved"
        assert not torch.equal(layer.weight.detach()[mask], before[i][mask])
    assert (opt.buffers[1][0][~mask_of(pattern, 1, before)] == 1.0).all(), "momentum outside decayed"


def test_eval_is_deterministic_and_scales_weights_by_kept_fraction():
    model, _ = model_and_pattern()
    model.eval()
    x = torch.randn(3, 20)
    h = torch.relu(torch.nn.functional.linear(x, model.linears[0].weight * (16 / 20), model.linears[0].bias))
    h = torch.relu(torch.nn.functional.linear(h, model.linears[1].weight * 0.5, model.linears[1].bias))
    expected = torch.nn.functional.linear(h, model.linears[2].weight * 0.5, model.linears[2].bias)
    torch.testing.assert_close(model(x), expected)
    torch.testing.assert_close(model(x), model(x))


def test_training_step_skips_the_flops_of_dropped_units():
    torch.manual_seed(0)
    sizes = [784, 1000, 1000, 10]
    x, y = torch.randn(100, 784), torch.randint(0, 10, (100,))
    dense = torch.nn.Sequential(torch.nn.Linear(784, 1000), torch.nn.ReLU(), torch.nn.Dropout(0.5),
                                torch.nn.Linear(1000, 1000), torch.nn.ReLU(), torch.nn.Dropout(0.5),
                                torch.nn.Linear(1000, 10))
    batchwise = BatchwiseDropoutMLP(sizes, p_input=0.0, p_hidden=0.5).train()
    flops = {}
    for name, model in (("dense", dense), ("batchwise", batchwise)):
        with FlopCounterMode(display=False) as counter:
            torch.nn.functional.cross_entropy(model(x), y).backward()
        flops[name] = counter.get_total_flops()
    # Matmuls per layer: forward, weight gradient, and input gradient except for the first layer.
    # Kept units: input layer 500 of 1000 outputs, hidden-hidden 500x500 of 1000x1000, output 500 inputs.
    expected = (2 * 784 * 500 + 3 * 500 * 500 + 3 * 500 * 10) / (2 * 784 * 1000 + 3 * 1000 * 1000 + 3 * 1000 * 10)
    assert flops["batchwise"] / flops["dense"] == pytest.approx(expected, rel=0.02)


@pytest.mark.parametrize("kwargs,message", [
    ({"sizes": [784]}, "sizes must be at least two positive ints (inputs, ..., outputs), got [784]"),
    ({"p_hidden": 1.0}, "batchwise dropout keeps at least one unit: p_input and p_hidden must be < 1"),
    ({"p_input": -0.1}, "p_input must be a probability in [0, 1], got -0.1"),
    ({"activation": "elu"}, "activation must be one of ['relu', 'tanh', 'sigmoid', 'identity'], got 'elu'"),
])
def test_bad_arguments_rejected(kwargs, message):
    args = {"sizes": [4, 3, 2], **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        BatchwiseDropoutMLP(args.pop("sizes"), **args)


def test_nesterov_is_rejected_clearly():
    model, _ = model_and_pattern()
    with pytest.raises(ValueError, match=re.escape("classical momentum only; got nesterov=True")):
        SubmatrixSGD(model.parameters(), model, lr=0.1, nesterov=True)

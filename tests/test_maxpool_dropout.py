"""Max-pooling dropout (Wu & Gu 2015): in training, a window's output is a multinomial draw over its sorted
values; at test time, probabilistic weighted pooling is that draw's expectation."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from replib.methods import MaxPoolDropout, maxpool_dropout, mc_predict, probabilistic_weighted_pooling

Z = 5.0  # |deviation| < 5 standard errors: a false failure has probability < 1e-6 per check


def _closed_form(values: list[float], p: float) -> dict[float, float]:
    """P(output = v) for one window: a_i (ascending) with q (1 - q)^(n - i), 0 with (1 - q)^n."""
    q, ordered = 1 - p, sorted(values)
    n = len(ordered)
    law = {a: q * (1 - q) ** (n - 1 - i) for i, a in enumerate(ordered)}
    law[0.0] = law.get(0.0, 0.0) + (1 - q) ** n
    return law


@pytest.mark.parametrize("p", [0.3, 0.5, 0.8])
def test_a_windows_training_output_follows_the_closed_form_multinomial(p):
    values = [0.5, 1.0, 2.0, 3.0]  # one 2x2 window, distinct and positive
    windows = 100_000
    x = torch.tensor(values).reshape(1, 1, 2, 2).repeat(windows, 1, 1, 1)
    torch.manual_seed(0)
    out = maxpool_dropout(x, 2, p).flatten()
    for value, probability in _closed_form(values, p).items():
        count = int((out == value).sum())
        assert abs(count - windows * probability) < Z * math.sqrt(windows * probability * (1 - probability)) + 1, (
            value, count, windows * probability)
    assert int(sum((out == v).sum() for v in [0.0, *values])) == windows  # no other value occurs


@pytest.mark.parametrize("p", [0.0, 0.25, 0.5, 0.9, 1.0])
def test_weighted_pooling_is_the_exact_mean_over_every_mask(p):
    torch.manual_seed(1)
    x = torch.rand(2, 3, 4, 6, dtype=torch.float64)  # non-negative, as after a ReLU
    expected = torch.zeros(2, 3, 2, 3, dtype=torch.float64)
    for bits in itertools.product([0, 1], repeat=4):  # every mask of a 2x2 window, with its probability
        mask = torch.tensor(bits, dtype=torch.float64).reshape(2, 2).repeat(2, 3)
        probability = math.prod((1 - p) if b else p for b in bits)
        expected += probability * F.max_pool2d(x * mask, 2)
    torch.testing.assert_close(probabilistic_weighted_pooling(x, 2, p), expected)
    torch.testing.assert_close(maxpool_dropout(x, 2, p, training=False), expected)


def test_training_is_unbiased_for_the_test_rule_with_overlapping_windows():
    torch.manual_seed(2)
    x = torch.rand(1, 1, 5, 5, dtype=torch.float64)
    draws = torch.stack([maxpool_dropout(x, 3, 0.5, stride=1) for _ in range(20_000)])
    mean, sd = draws.mean(0), draws.std(0) / math.sqrt(len(draws))
    assert bool(((mean - probabilistic_weighted_pooling(x, 3, 0.5, stride=1)).abs() < Z * sd + 1e-9).all())


def test_at_p_zero_both_rules_are_max_pooling():
    x = torch.rand(2, 3, 6, 6)
    torch.testing.assert_close(maxpool_dropout(x, 2, 0.0), F.max_pool2d(x, 2))
    torch.testing.assert_close(maxpool_dropout(x, (2, 3), 0.0, training=False), F.max_pool2d(x, (2, 3)))


def test_the_mask_is_per_element_and_gradients_reach_only_the_chosen_input():
    torch.manual_seed(3)
    x = torch.rand(1, 1, 2, 2, requires_grad=True)
    out = maxpool_dropout(x.repeat(1000, 1, 1, 1), 2, 0.5).flatten()
    assert len(torch.unique(out)) == 5  # every input, and zero, is some window's output: masks differ per element
    torch.manual_seed(4)
    y = maxpool_dropout(x, 2, 0.5)
    y.sum().backward()
    assert int((x.grad != 0).sum()) == (0 if float(y.detach()) == 0 else 1)


def test_the_module_in_eval_and_under_mc_predict():
    torch.manual_seed(5)
    x = torch.rand(4, 2, 4, 4)
    layer = MaxPoolDropout(2, 0.5).eval()
    torch.testing.assert_close(layer(x), probabilistic_weighted_pooling(x, 2, 0.5))
    passes = mc_predict(layer, x, samples=2, return_samples=True).samples
    assert not torch.equal(passes[0], passes[1])


@pytest.mark.parametrize("shape,kernel,message", [
    ((2, 4, 4), 2, r"needs \(N, C, H, W\) input"),
    ((1, 1, 4, 4), 0, "kernel_size=0: must be an int >= 1"),
    ((1, 1, 2, 2), 3, r"a \(3, 3\) window does not fit"),
])
def test_bad_input_is_refused_naming_it(shape, kernel, message):
    with pytest.raises(ValueError, match=message):
        maxpool_dropout(torch.rand(shape), kernel, 0.5)

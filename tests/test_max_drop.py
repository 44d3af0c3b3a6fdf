"""Max-Drop (Park & Kwak 2016, our reading): a group's maximum dropped with probability p, scaled by 1 - p in eval."""

from __future__ import annotations

import math

import pytest
import torch

from replib.methods import MaxDrop, max_drop, mc_predict
from replib.methods.max_drop import group_maxima

Z = 5.0  # |deviation| < 5 standard errors: a false failure has probability < 1e-6 per check
GROUP_DIMS = {"feature": (2, 3), "channel": (1,)}  # the dimensions a group spans, for (N, C, H, W) input


def _distinct(shape, seed=0) -> torch.Tensor:
    """Activations without ties, so every group has exactly one maximum."""
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(math.prod(shape), generator=g).reshape(shape).to(torch.float64) / math.prod(shape)


@pytest.mark.parametrize("mode", ["feature", "channel"])
def test_what_is_dropped_is_the_group_maximum_and_nothing_else_changes(mode):
    x = _distinct((32, 6, 5, 5))
    torch.manual_seed(0)
    out = max_drop(x, 0.5, mode)
    changed = out != x
    assert changed.any(), "nothing was dropped at p = 0.5"
    top = x.amax(GROUP_DIMS[mode], keepdim=True)
    assert torch.equal(x[changed], top.expand_as(x)[changed]), "an activation other than its group's maximum changed"
    assert torch.all(out[changed] == 0)
    assert int(changed.sum(GROUP_DIMS[mode]).max()) == 1, "more than one activation of a group changed"


@pytest.mark.parametrize("mode", ["feature", "channel"])
@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_a_group_loses_its_maximum_with_probability_p(mode, p):
    x = _distinct((200, 8, 6, 6))
    torch.manual_seed(1)
    dropped = (max_drop(x, p, mode) != x).sum(GROUP_DIMS[mode])  # 0 or 1 per group
    n = dropped.numel()  # 1,600 groups (feature) or 7,200 (channel)
    assert abs(int(dropped.sum()) - n * p) < Z * math.sqrt(n * p * (1 - p))


def test_the_draws_are_independent_per_example_and_group():
    x = _distinct((1, 16, 4, 4)).expand(64, -1, -1, -1).contiguous()  # every example the same
    torch.manual_seed(2)
    feature = (max_drop(x, 0.5, "feature") != x).any(3).any(2)  # (example, channel): was the map's maximum dropped?
    assert not torch.equal(feature[0], feature[1]), "two examples share their drops"
    assert not torch.equal(feature[:, 0], feature[:, 1]), "two channels share their drops"
    channel = (max_drop(x, 0.5, "channel") != x).any(1)  # (example, position)
    assert not torch.equal(channel[0], channel[1]) and not torch.equal(channel[:, 0, 0], channel[:, 0, 1])


@pytest.mark.parametrize("mode", ["feature", "channel"])
def test_eval_is_the_mean_of_the_training_output(mode):
    p, passes = 0.3, 4000
    x = _distinct((4, 3, 4, 4)) + 0.5
    torch.manual_seed(3)
    mean = torch.stack([max_drop(x, p, mode) for _ in range(passes)]).mean(0)
    expected = max_drop(x, p, mode, training=False)
    is_max = group_maxima(x, mode)
    torch.testing.assert_close(expected[~is_max], x[~is_max])  # only the maxima are scaled
    torch.testing.assert_close(expected[is_max], (1 - p) * x[is_max])
    sd = x[is_max] * math.sqrt(p * (1 - p) / passes)  # each pass gives 0 or the maximum
    assert torch.all((mean[is_max] - expected[is_max]).abs() < Z * sd)


def test_p_zero_is_the_identity_and_p_one_removes_every_maximum():
    x = torch.randn(8, 4, 5, 5)
    assert max_drop(x, 0.0, "feature") is x and max_drop(x, 0.0, "channel", training=False) is x
    for training in (True, False):
        out = max_drop(x, 1.0, "feature", training)
        assert torch.all(out[group_maxima(x, "feature")] == 0)
        assert torch.equal(out[~group_maxima(x, "feature")], x[~group_maxima(x, "feature")])


def test_ties_are_dropped_together():
    x = torch.ones(50, 4, 3, 3)  # every activation is its map's maximum
    torch.manual_seed(4)
    out = max_drop(x, 0.5, "feature")
    per_map = out.flatten(2)
    assert torch.all((per_map == 0).all(2) | (per_map == 1).all(2)), "a map was dropped in part"
    assert 0 < int((per_map == 0).all(2).sum()) < per_map.shape[0] * per_map.shape[1]


def test_channel_mode_takes_a_batch_of_vectors():
    x = _distinct((500, 10))
    torch.manual_seed(5)
    changed = max_drop(x, 0.5, "channel") != x
    assert torch.equal(changed.any(1), changed[torch.arange(500), x.argmax(1)])
    assert abs(int(changed.sum()) - 250) < Z * math.sqrt(500 * 0.25)


def test_gradients_reach_the_kept_activations_unchanged_and_not_the_dropped_ones():
    x = _distinct((16, 4, 3, 3)).requires_grad_()
    torch.manual_seed(6)
    out = max_drop(x, 0.5, "feature")
    out.sum().backward()
    dropped = (out != x).detach()
    assert dropped.any()
    assert torch.all(x.grad[dropped] == 0) and torch.all(x.grad[~dropped] == 1)


def test_the_module_and_mc_predict():
    layer = MaxDrop(0.5, "channel")
    assert "mode='channel'" in repr(layer)
    x = torch.randn(8, 6, 4, 4, dtype=torch.bfloat16)
    assert layer(x).dtype == torch.bfloat16
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), MaxDrop(0.5, "feature"), torch.nn.Flatten(),
                              torch.nn.LazyLinear(2))
    images = torch.randn(16, 3, 6, 6)
    net(images)  # materialise the lazy layer
    net.eval()
    torch.manual_seed(7)
    passes = mc_predict(net, images, samples=3, return_samples=True).samples
    assert passes.shape == (3, 16, 2) and not torch.equal(passes[0], passes[1])
    torch.testing.assert_close(net(images), net(images))  # eval: deterministic


@pytest.mark.parametrize("call, message", [
    (lambda: max_drop(torch.ones(2, 3, 4, 4), 0.5, "spatial"), "mode must be one of ['feature', 'channel'], got 'spatial'"),
    (lambda: MaxDrop(1.5), "p must be a probability in [0, 1], got 1.5"),
    (lambda: max_drop(torch.ones(2, 3), 0.5, "feature"), "at least one spatial dimension, got shape (2, 3)"),
    (lambda: max_drop(torch.ones(3), 0.5, "channel"), "got shape (3,)"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert message in str(err.value)

"""Depth dropout (Guo & Gould 2016): the main path runs only for kept images, at the right rate."""

from __future__ import annotations

import math

import pytest
import torch

from replib.methods import DepthDropoutBlock, DepthDropoutResNet, depth_dropout_residual

Z = 5.0


@pytest.mark.parametrize("p", [0.25, 0.5])
def test_main_path_sees_only_the_kept_images_binomial(p):
    block = DepthDropoutBlock(4, 4, p=p).train()
    n, total = 64, 0
    for seed in range(20):
        torch.manual_seed(seed)
        block(torch.randn(n, 4, 6, 6))
        total += block.main_images
    draws = 20 * n
    assert abs(total - draws * (1 - p)) < Z * math.sqrt(draws * p * (1 - p))


def test_skipped_images_get_exactly_the_shortcut_and_kept_ones_the_full_block():
    torch.manual_seed(0)
    x = torch.randn(16, 3, 5, 5)
    main = lambda t: 10.0 + t  # noqa: E731  a main path whose contribution is easy to see
    shortcut = lambda t: 2.0 * t  # noqa: E731
    y = depth_dropout_residual(x, main, shortcut, 0.5, True)
    kept = ((y - 2.0 * x).abs() > 1.0).flatten(1).all(1)
    assert 0 < int(kept.sum()) < 16
    torch.testing.assert_close(y[~kept], 2.0 * x[~kept])
    torch.testing.assert_close(y[kept], 3.0 * x[kept] + 10.0)


def test_equals_the_dense_block_when_every_image_is_kept():
    torch.manual_seed(0)
    block = DepthDropoutBlock(3, 8, stride=2, p=0.0).train()
    x = torch.randn(8, 3, 8, 8, requires_grad=True)
    y = block(x)
    dense = torch.relu(block.shortcut(x) + block.main(x))
    torch.testing.assert_close(y, dense)
    assert block.main_images == 8


def test_gradients_reach_the_main_path_only_through_kept_images():
    torch.manual_seed(1)
    block = DepthDropoutBlock(2, 2, p=0.5).train()
    x = torch.randn(32, 2, 4, 4, requires_grad=True)
    block(x).sum().backward()
    assert block.main[0].weight.grad is not None and block.shortcut.weight.grad.abs().sum() > 0
    assert 0 < block.main_images < 32


def test_eval_keeps_every_image_and_is_deterministic():
    net = DepthDropoutResNet(8, p=0.5).eval()
    x = torch.randn(4, 3, 16, 16)
    assert torch.equal(net(x), net(x))
    assert all(b.main_images == 4 for b in net.blocks)


def test_every_image_skipped_leaves_only_the_shortcut():
    block = DepthDropoutBlock(3, 3, p=1.0).train()
    x = torch.randn(4, 3, 5, 5)
    torch.testing.assert_close(block(x), torch.relu(block.shortcut(x)))
    assert block.main_images == 0


def test_resnet20_shapes_and_block_count():
    net = DepthDropoutResNet(20, p=0.25, num_classes=10)
    assert len(net.blocks) == 9
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("kwargs,match", [({"depth": 21}, "depth must be 6k"), ({"depth": 2}, "depth must be 6k"),
                                          ({"p": 1.2}, "p must be"), ({"num_classes": 0}, "num_classes")])
def test_bad_resnet_arguments_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DepthDropoutResNet(**kwargs)


def test_bad_stride_rejected():
    with pytest.raises(ValueError, match="stride must be 1 or 2"):
        DepthDropoutBlock(3, 3, stride=3)

"""Depth dropout (Guo & Gould 2016): the main path runs only for kept images, at the right rate."""

from __future__ import annotations

import copy
import math
import re

import pytest
import torch

from replib.methods import DepthDropoutBlock, depth_dropout_residual
from replib.models import DepthDropoutResNet

Z = 5.0  # |deviation| < 5 standard errors: a false failure has probability < 1e-6 per check


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


def test_gradients_equal_the_dense_block_on_the_kept_images_and_the_shortcut_alone_on_the_dropped():
    """Forward and backward of a block that skips F for some images, against two dense computations.

    Kept images: the dense block (p = 0) run on the kept subset only, so that batch norm in F
    sees the same images. Dropped images: relu(shortcut(x)), F contributing nothing (identity
    on the residual branch). Every parameter gradient and the input gradient must match.
    """
    torch.manual_seed(1)
    block = DepthDropoutBlock(2, 3, p=0.5).train()
    dense = copy.deepcopy(block)
    dense.p = 0.0
    x = torch.randn(32, 2, 4, 4)
    weights = torch.randn(32, 3, 4, 4)  # a loss that weighs every output differently
    seen = []
    block.main.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].detach()))

    x_block = x.clone().requires_grad_()
    y = block(x_block)
    (y * weights).sum().backward()
    (main_input,) = seen
    kept = torch.tensor([any(torch.equal(x[n], row) for row in main_input) for n in range(32)])
    assert 0 < int(kept.sum()) < 32 and int(kept.sum()) == len(main_input)
    assert torch.equal(main_input, x[kept]), "F must see the kept images, in order"

    x_dense = x.clone().requires_grad_()
    y_kept = dense(x_dense[kept])
    y_dropped = torch.relu(dense.shortcut(x_dense[~kept]))
    ((y_kept * weights[kept]).sum() + (y_dropped * weights[~kept]).sum()).backward()

    torch.testing.assert_close(y[kept], y_kept)
    torch.testing.assert_close(y[~kept], y_dropped)
    for (name, a), (_, b) in zip(block.named_parameters(), dense.named_parameters()):
        torch.testing.assert_close(a.grad, b.grad, msg=name)
    torch.testing.assert_close(x_block.grad, x_dense.grad)
    for name in ("running_mean", "running_var"):  # batch norm in F updated on the kept images only
        torch.testing.assert_close(getattr(block.main[1], name), getattr(dense.main[1], name))


def test_eval_keeps_every_image_and_is_deterministic():
    torch.manual_seed(0)
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


@pytest.mark.parametrize("kwargs,match", [
    ({"depth": 21}, r"depth must be 6k \+ 2 with k >= 1 .*, got 21$"),
    ({"depth": 2}, r"depth must be 6k \+ 2 with k >= 1 .*, got 2$"),
    ({"p": 1.2}, re.escape("p must be a probability in [0, 1], got 1.2")),
    ({"num_classes": 0}, re.escape("num_classes must be an int >= 1, got 0")),
])
def test_bad_resnet_arguments_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DepthDropoutResNet(**kwargs)


def test_bad_stride_rejected():
    with pytest.raises(ValueError, match=re.escape("stride must be 1 or 2, got 3")):
        DepthDropoutBlock(3, 3, stride=3)


@pytest.mark.parametrize("p", [-0.5, float("nan"), "0.5"])
def test_bad_p_of_the_function_rejected(p):
    with pytest.raises(ValueError, match=rf"p must be .*\[0, 1\], got {re.escape(repr(p))}"):
        depth_dropout_residual(torch.ones(2, 1), lambda t: t, lambda t: t, p, True)

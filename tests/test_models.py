"""Models shared by the chapters: the plain CIFAR ResNet is DepthDropoutResNet(depth, 0.0), bit for bit; MLP checks."""

from __future__ import annotations

import re

import pytest
import torch

from replib.methods import DepthDropoutBlock
from replib.models import MLP, DepthDropoutFastNet, DepthDropoutResNet, FastCifarNet, ResNet


def both(depth: int, seed: int = 0) -> tuple[ResNet, DepthDropoutResNet]:
    torch.manual_seed(seed)
    plain = ResNet(depth)
    torch.manual_seed(seed)
    return plain, DepthDropoutResNet(depth, 0.0)


def assert_same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb), "parameter and buffer names or order differ"
    for name in sa:
        assert sa[name].shape == sb[name].shape and sa[name].dtype == sb[name].dtype, name
        assert torch.equal(sa[name], sb[name]), name


@pytest.mark.parametrize("depth", [8, 14])
def test_resnet_has_the_state_dict_of_depth_dropout_resnet_at_p_zero_from_the_same_seed(depth):
    plain, reference = both(depth)
    assert_same_state(plain, reference)
    # and DepthDropoutResNet's weights load into ResNet without renaming
    plain.load_state_dict(reference.state_dict(), strict=True)


@pytest.mark.parametrize("depth", [8, 14])
def test_resnet_outputs_gradients_and_batch_norm_statistics_equal_depth_dropout_resnet_at_p_zero(depth):
    plain, reference = both(depth)
    torch.manual_seed(1)
    x, target = torch.randn(6, 3, 16, 16), torch.randint(0, 10, (6,))
    losses = []
    for model in (plain, reference):
        model.train()
        out = model(x)
        loss = torch.nn.functional.cross_entropy(out, target)
        loss.backward()
        losses.append((out.detach(), loss.detach()))
    assert torch.equal(losses[0][0], losses[1][0]) and torch.equal(losses[0][1], losses[1][1])
    for (name, a), (_, b) in zip(plain.named_parameters(), reference.named_parameters()):
        assert torch.equal(a.grad, b.grad), name
    assert_same_state(plain, reference)  # the training pass updated the running statistics identically
    assert torch.equal(plain.eval()(x), reference.eval()(x))


def test_resnet_contains_no_depth_dropout_block():
    """A change to the depth-dropout method must not reach the chapters that use the plain ResNet."""
    assert not any(isinstance(m, DepthDropoutBlock) for m in ResNet(8).modules())


def test_resnet20_has_nine_blocks_and_one_logit_per_class():
    net = ResNet(20, num_classes=7)
    assert len(net.blocks) == 9
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 7)


@pytest.mark.parametrize("kwargs,match", [
    ({"depth": 21}, r"depth must be 6k \+ 2 with k >= 1 .*, got 21$"),
    ({"depth": 2}, r"depth must be 6k \+ 2 with k >= 1 .*, got 2$"),
    ({"depth": 20.0}, r"depth must be an int >= 1, got 20\.0$"),
    ({"num_classes": 0}, r"num_classes must be an int >= 1, got 0$"),
])
def test_bad_resnet_arguments_rejected_with_the_value_quoted(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ResNet(**kwargs)


def test_mlp_rejects_sizes_without_an_output_layer():
    with pytest.raises(ValueError, match=re.escape("sizes must be at least two positive ints (inputs, ..., outputs), "
                                                   "got [784]")):
        MLP([784])


def test_mlp_rejects_an_unknown_activation_listing_the_known_ones():
    with pytest.raises(ValueError, match=re.escape("activation must be one of ['relu', 'sigmoid', 'tanh'], got 'gelu'")):
        MLP([4, 2], activation="gelu")


@pytest.mark.parametrize("name", ["p_input", "p_hidden"])
def test_mlp_rejects_a_drop_probability_outside_zero_one(name):
    with pytest.raises(ValueError, match=re.escape(f"{name} must be a probability in [0, 1], got 1.5")):
        MLP([4, 3, 2], **{name: 1.5})


def test_residual_fast_net_skips_each_blocks_main_path_for_a_binomial_share_of_images_in_training_only():
    torch.manual_seed(0)
    net = DepthDropoutFastNet((4, 8, 8), blocks=2, p=0.25).train()
    blocks = [m for m in net.modules() if isinstance(m, DepthDropoutBlock)]
    assert len(blocks) == 6 and all(b.p == 0.25 for b in blocks)
    kept = 0
    for _ in range(20):
        net(torch.randn(50, 3, 32, 32))
        kept += sum(b.main_images for b in blocks)
    # 20 x 50 images x 6 blocks = 6000 gates at keep 0.75: sd of the count about 34, so 5 sd is 168
    assert abs(kept - 4500) < 168
    net.eval()
    with torch.no_grad():
        net(torch.randn(7, 3, 32, 32))
    assert all(b.main_images == 7 for b in blocks)  # at test every main path runs on every image


def test_residual_fast_net_at_p_zero_is_deterministic_in_training_and_has_the_fast_nets_resolution():
    torch.manual_seed(0)
    net, x = DepthDropoutFastNet((4, 8), blocks=1, p=0.0).train(), torch.randn(5, 3, 32, 32)
    assert torch.equal(net(x), net(x))  # no gate drawn: batch statistics alone, the same batch twice
    assert all(b.main_images == 5 for b in net.modules() if isinstance(b, DepthDropoutBlock))  # nothing skipped
    assert net(x).shape == (5, 10)
    torch.manual_seed(0)
    fast = FastCifarNet((4, 8), depth=3)
    assert sum(t.numel() for t in net.parameters()) - sum(t.numel() for t in fast.parameters()) == 4 * 4 + 8 * 8


@pytest.mark.parametrize("kwargs,match", [
    ({"widths": ()}, r"widths must name one to four stages .*got \[\]$"),
    ({"widths": (4, 4, 4, 4, 4)}, r"widths must name one to four stages .*got \[4, 4, 4, 4, 4\]$"),
    ({"blocks": 0}, r"blocks must be an int >= 1, got 0$"),
    ({"p": 1.5}, r"p must be .*1\.5"),
])
def test_residual_fast_net_rejects_bad_arguments_naming_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DepthDropoutFastNet(**kwargs)

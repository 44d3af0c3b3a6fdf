"""Whole-batch crop, flip and normalisation for the CIFAR chapters."""

import math
import re

import pytest
import torch

from replib.augment import cifar_pipeline, normalize, random_crop_flip

Z = 4.0  # two-sided tolerance in standard deviations: fails by chance about once in 16,000 seeds


def _distinct_images(n: int) -> torch.Tensor:
    """uint8 images whose every pixel value tells its (row, column), so crops can be located."""
    rows = torch.arange(8).view(1, 1, 8, 1) * 16
    cols = torch.arange(8).view(1, 1, 1, 8) + 1
    return (rows + cols).expand(n, 3, 8, 8).to(torch.uint8).contiguous()


def _offsets(out: torch.Tensor, x: torch.Tensor, padding: int) -> list[tuple[int, int]]:
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    size, found = x.shape[-1], []
    for i in range(len(x)):
        matches = [(dy, dx) for dy in range(2 * padding + 1) for dx in range(2 * padding + 1)
                   if torch.equal(out[i], padded[i, :, dy : dy + size, dx : dx + size])]
        assert len(matches) == 1, f"image {i} is not exactly one window of the zero-padded image"
        found.append(matches[0])
    return found


def test_crops_are_uniform_per_image_windows_of_the_zero_padded_image():
    x = _distinct_images(1500)
    out = random_crop_flip(x, padding=2, flip=False, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(torch.tensor([dy * 5 + dx for dy, dx in _offsets(out, x, 2)]), minlength=25).double()
    expected = len(x) / 25
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 24 + Z * math.sqrt(2 * 24), counts  # chi-square, 24 degrees of freedom


def test_flip_rate_is_one_half_by_binomial_test():
    x = _distinct_images(4000)
    out = random_crop_flip(x, padding=0, flip=True, generator=torch.Generator().manual_seed(2))
    is_flipped = out[:, 0, 0, 0] != x[:, 0, 0, 0]
    assert torch.equal(out[is_flipped], x[is_flipped].flip(3)) and torch.equal(out[~is_flipped], x[~is_flipped])
    n, k = len(x), int(is_flipped.sum())
    assert abs(k - n / 2) < Z * math.sqrt(n / 4), k


def test_padding_zero_without_flip_is_identity_and_dtype_is_kept():
    x = _distinct_images(10)
    out = random_crop_flip(x, padding=0, flip=False)
    assert torch.equal(out, x) and out.dtype == torch.uint8


def test_normalize_per_channel():
    x = torch.full((2, 3, 4, 4), 255, dtype=torch.uint8)
    out = normalize(x, (0.5, 0.0, 1.0), (0.5, 1.0, 0.25))
    assert torch.allclose(out[:, 0], torch.ones(2, 4, 4)) and torch.allclose(out[:, 1], torch.ones(2, 4, 4))
    assert torch.allclose(out[:, 2], torch.zeros(2, 4, 4))


def test_pipeline_cuts_a_mean_valued_hole_after_normalisation():
    x = torch.full((64, 3, 32, 32), 200, dtype=torch.uint8)
    out = cifar_pipeline((0.1, 0.2, 0.3), (0.2, 0.2, 0.2), crop_flip=False, cutout_length=8)(x)
    zeros = (out == 0).all(1)  # (N, H, W): the hole, same on every channel
    assert zeros.any((1, 2)).all() and zeros.sum((1, 2)).max() == 64


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_bad_padding_is_rejected(bad):
    with pytest.raises(ValueError, match=re.escape(f"padding must be an int >= 0, got {bad!r}")):
        random_crop_flip(_distinct_images(2), padding=bad)


def test_crop_of_a_single_image_is_rejected():
    with pytest.raises(ValueError, match=re.escape("needs a batch of images (N, C, H, W), got shape (3, 8, 8)")):
        random_crop_flip(torch.zeros(3, 8, 8))


def test_normalize_with_one_statistic_for_three_channels_is_rejected():
    with pytest.raises(ValueError, match=re.escape("one mean and sd per channel; got shape (1, 3, 2, 2), 1 means, 1 sds")):
        normalize(torch.zeros(1, 3, 2, 2, dtype=torch.uint8), (0.5,), (0.5,))

"""Cutout (DeVries & Taylor 2017): one square per image, uniform centres, clipped at the border."""

from __future__ import annotations

import math
import re

import pytest
import torch

from replib.methods import Cutout, cutout


def holes(length: int, n: int = 2000, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Boolean (n, size, size): where the hole is, from a batch of ones."""
    y = cutout(torch.ones(n, 3, size, size), length, True, torch.Generator().manual_seed(seed))
    assert torch.equal(y[:, 0] == 0, y[:, 2] == 0), "the hole must cover every channel"
    return y[:, 0] == 0


def test_one_square_hole_of_side_length_away_from_the_border():
    h = holes(8, size=64)
    rows, cols = h.any(2), h.any(1)
    inside = (rows.sum(1) == 8) & (cols.sum(1) == 8)  # holes not clipped by the border
    assert inside.float().mean() > 0.5
    assert torch.equal(h[inside].sum((1, 2)), torch.full((int(inside.sum()),), 64))
    assert torch.equal(h[inside], (rows[inside].unsqueeze(2) & cols[inside].unsqueeze(1)))  # one rectangle


def test_holes_near_the_border_are_clipped_not_moved():
    h = holes(16)
    area = h.sum((1, 2))
    assert (area < 256).any() and (area > 0).all() and (area <= 256).all()
    # Centres are uniform over the whole image, so about (1 - (16/32)^2 ...) of holes are partial:
    # a hole is whole only when its centre is at least 8 pixels from the top/left and 7 from the bottom/right.
    whole = ((32 - 16 + 1) / 32) ** 2
    share = float((area == 256).float().mean())
    # 2,000 holes from seed 0; tolerance 5 standard errors of a binomial proportion
    assert abs(share - whole) < 5 * math.sqrt(whole * (1 - whole) / len(area))


def test_centres_are_uniform_over_every_pixel():
    h = holes(1, n=20_000)
    counts = h.sum(0).flatten().float()  # each pixel is the centre with probability 1/1024
    expected = 20_000 / 1024
    assert counts.min() > 0
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    # 20,000 centres from seed 0; chi-square with 1023 degrees of freedom below its mean + 5 sd
    assert chi2 < 1023 + 5 * math.sqrt(2 * 1023)


def test_centres_differ_between_images():
    h = holes(8, n=64)
    assert len({tuple(img.nonzero()[0].tolist()) for img in h}) > 32


def test_hole_is_filled_with_zero_the_mean_of_normalised_data():
    x = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(1)) + 5.0
    y = cutout(x, 8, True, torch.Generator().manual_seed(0))
    changed = y != x
    assert (y[changed] == 0).all() and changed.any()


def test_identity_in_eval_and_at_length_zero():
    x = torch.randn(2, 3, 8, 8)
    assert Cutout(8).eval()(x) is x
    assert cutout(x, 0, True) is x


@pytest.mark.parametrize("length", [-1, 2.5, "16", True])
def test_bad_length_rejected(length):
    message = f"length must be an int >= 0 (the side of the square in pixels), got {length!r}"
    with pytest.raises(ValueError, match=re.escape(message)):
        Cutout(length)


def test_non_batch_input_rejected():
    with pytest.raises(ValueError, match=re.escape("cutout needs a batch of images (N, C, H, W), got shape (3, 32, 32)")):
        cutout(torch.ones(3, 32, 32), 8, True)

"""A synthetic stand-in for FLIC: keypoint localization with heat-maps, and FLIC's metric.

Tompson, Goroshin, Jain, LeCun, Bregler (2015), "Efficient Object Localization Using
Convolutional Networks", CVPR 2015, train a fully convolutional net to output one
Gaussian heat-map per body joint (sigma ~ 1.5 px at output resolution, MSE loss) on
FLIC (3,987 training images), and report the share of joints found within a normalized
distance of the truth (Figure 14). FLIC is not available offline, so this module builds
the closest task the offline data allows:

- **Images.** Grayscale ``image_size`` x ``image_size`` (default 64). The background is a
  random crop (zoom 1-2x, random horizontal flip) of a CIFAR-10 image converted to
  luminance and resized: real, cluttered natural-image texture. On it, one MNIST digit is
  drawn after a random similarity transform: scale so that the ink is about 28-44 px
  tall, rotation within +-20 degrees (the paper's augmentation range), random position
  with the whole ink inside the image. The ink's grey level is set away from the
  background under it by 0.3-0.6 (dark ink on bright clutter, bright ink on dark), and
  pixel noise (sd 0.02) is added. Training images take digits and backgrounds from the
  MNIST and CIFAR-10 *training* splits, test images from the *test* splits.
- **Keypoints** (``KEYPOINTS``, K = 4), defined on the upright 28x28 digit like joints on a
  body and carried through the same transform: the topmost, bottommost, leftmost and
  rightmost ink (pixels > 127); e.g. "top" is the mean column of the ink in the topmost
  ink row. Coordinates are ``(x, y)`` = (column, row) of pixel centres, sub-pixel.
- **Targets.** One Gaussian heat-map per keypoint at output resolution (``stride`` 4, so
  16x16 for 64x64 images), sd ``sigma`` = 1.5 output pixels, peak 1.
- **Size for the metric.** FLIC normalizes distances by torso size; here by the distance
  between the "top" and "bottom" keypoints, the digit's ink height after the transform
  (about 20-50 px): the analogue of a body-frame length measured between two labelled joints.

Everything is generated once, vectorised, from a ``torch.Generator`` seed: the same
arguments give bit-identical tensors. The CIFAR-10 backgrounds come from whatever
:func:`replib.data.load_cifar10` reads, offline the lossy JPEG copy; ``source`` says so
and any figure of a net trained on these images must carry ``data.CIFAR10_JPEG_NOTE``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import data

KEYPOINTS = ("top", "bottom", "left", "right")
# Figure 14(b)'s horizontal axis: normalized distances at which the detection rate is plotted.
THRESHOLDS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2)
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 RGB -> grey
INK_THRESHOLD = 127  # MNIST pixels above this are ink for the keypoint definitions
MNIST_SIZE = 28


@dataclass(frozen=True)
class KeypointData:
    """A generated localization set held in memory.

    ``images``: float32 ``(N, 1, S, S)`` in [0, 1]. ``keypoints``: float32 ``(N, K, 2)``,
    ``(x, y)`` in image pixels. ``heatmaps``: float32 ``(N, K, S/stride, S/stride)``.
    ``size``: float32 ``(N,)``, the normalizing length (top-to-bottom keypoint distance, px).
    ``digits``: int64 ``(N,)`` MNIST labels. ``source``: where digits and backgrounds came from.
    """

    images: torch.Tensor
    keypoints: torch.Tensor
    heatmaps: torch.Tensor
    size: torch.Tensor
    digits: torch.Tensor
    stride: int
    sigma: float
    source: str

    def __len__(self) -> int:
        return len(self.images)


def _check_int(name: str, value: object, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{name} must be an int >= {least}, got {value!r}")
    return value


def check_geometry(image_size: int, stride: int, sigma: float) -> None:
    """Raise ``ValueError`` unless ``stride`` divides ``image_size`` (>= 32) and ``sigma`` > 0."""
    _check_int("image_size", image_size, 32)
    _check_int("stride", stride, 1)
    if image_size % stride:
        raise ValueError(f"stride must divide image_size, got stride={stride!r}, image_size={image_size!r}")
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not sigma > 0:
        raise ValueError(f"sigma must be a positive number of output pixels, got {sigma!r}")


# --------------------------------------------------------------------------- keypoints and heat-maps


def ink_keypoints(digits: torch.Tensor) -> torch.Tensor:
    """Extreme ink points of upright MNIST digits: uint8 ``(N, 28, 28)`` -> float32 ``(N, 4, 2)`` (x, y).

    In ``KEYPOINTS`` order: top (mean column of the ink in the first row holding ink),
    bottom (same, last such row), left (mean row of the ink in the first column holding
    ink), right (same, last such column). Every digit must hold some ink.
    """
    ink = digits > INK_THRESHOLD  # (N, 28, 28), [row, col]
    if not bool(ink.flatten(1).any(1).all()):
        raise ValueError("every digit needs some ink (a pixel > 127) to define its keypoints")
    idx = torch.arange(MNIST_SIZE, dtype=torch.float32)
    points = []
    for dim, last in ((1, False), (1, True), (2, False), (2, True)):  # rows top/bottom, then columns left/right
        has = ink.any(dim=3 - dim)  # (N, 28): which rows (dim 1) or columns (dim 2) hold ink
        first = has.float().argmax(1) if not last else MNIST_SIZE - 1 - has.flip(1).float().argmax(1)
        line = ink.gather(dim, first.view(-1, 1, 1).expand(-1, 1, MNIST_SIZE) if dim == 1
                          else first.view(-1, 1, 1).expand(-1, MNIST_SIZE, 1)).reshape(-1, MNIST_SIZE).float()
        along = (line * idx).sum(1) / line.sum(1)  # mean position of the ink along that row or column
        xy = (along, first.float()) if dim == 1 else (first.float(), along)
        points.append(torch.stack(xy, 1))
    return torch.stack(points, 1)


def heatmaps(keypoints: torch.Tensor, image_size: int, stride: int = 4, sigma: float = 1.5) -> torch.Tensor:
    """Gaussian target heat-maps: ``(N, K, 2)`` image-pixel (x, y) -> float32 ``(N, K, S/stride, S/stride)``.

    Output pixel ``u`` covers image pixels ``stride*u .. stride*u + stride - 1``, so its centre
    is at image coordinate ``stride*u + (stride - 1)/2``. Each map is
    ``exp(-d^2 / (2 sigma^2))``, ``d`` the distance in output pixels: peak 1 at the keypoint.
    """
    check_geometry(image_size, stride, sigma)
    out = image_size // stride
    k = to_output_coords(keypoints, stride)  # (N, K, 2)
    grid = torch.arange(out, dtype=torch.float32, device=keypoints.device)
    gx = torch.exp(-((grid.view(1, 1, -1) - k[..., :1]) ** 2) / (2 * sigma**2))  # (N, K, W')
    gy = torch.exp(-((grid.view(1, 1, -1) - k[..., 1:]) ** 2) / (2 * sigma**2))  # (N, K, H')
    return gy.unsqueeze(-1) * gx.unsqueeze(-2)  # separable: (N, K, H', W')


def to_output_coords(xy: torch.Tensor, stride: int) -> torch.Tensor:
    """Image-pixel coordinates -> heat-map-pixel coordinates (inverse of :func:`to_image_coords`)."""
    return (xy - (stride - 1) / 2) / stride


def to_image_coords(uv: torch.Tensor, stride: int) -> torch.Tensor:
    """Heat-map-pixel coordinates -> image-pixel coordinates."""
    return uv * stride + (stride - 1) / 2


def heatmap_peaks(maps: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """Sub-pixel peak of each map: ``(N, K, H, W)`` -> float32 ``(N, K, 2)`` (x, y) in image pixels.

    Per axis, the vertex of the parabola through the log of three neighbouring values
    around the arg-max (shifted inwards when the arg-max is on a border; values floored
    at 1e-3 of the peak), kept within half a pixel of the arg-max. For a Gaussian peak the
    log is exactly a parabola, so the read-out of a target heat-map is exact up to
    rounding, on the border too; where the three values do not bend down it is the
    arg-max itself. ``stride`` maps the result to image pixels (1: stay in map pixels).
    """
    if maps.dim() != 4 or min(maps.shape[-2:]) < 3:
        raise ValueError(f"heatmap_peaks needs (N, K, H, W) maps with H, W >= 3, got shape {tuple(maps.shape)}")
    n, k, h, w = maps.shape
    flat = maps.reshape(n, k, h * w).float()
    peak_value, arg = flat.max(-1)
    floor = (peak_value.abs() * 1e-3).clamp_min(1e-12)

    def log_at(r, c):
        return torch.maximum(flat.gather(-1, (r * w + c).unsqueeze(-1)).squeeze(-1), floor).log()

    def refine(pos, length, along_rows):
        mid = pos.clamp(1, length - 2)  # centre of the three-point window
        other = arg % w if along_rows else arg // w
        at = (lambda i: log_at(i, other)) if along_rows else (lambda i: log_at(other, i))
        lp, lc, ln = at(mid - 1), at(mid), at(mid + 1)
        bend = lp - 2 * lc + ln
        safe = torch.where(bend < 0, bend, -torch.ones_like(bend))
        vertex = torch.where(bend < 0, mid.float() + (lp - ln) / (2 * safe), pos.float())
        return torch.minimum(torch.maximum(vertex, pos - 0.5), pos + 0.5)

    y = refine(arg // w, h, along_rows=True)
    x = refine(arg % w, w, along_rows=False)
    return to_image_coords(torch.stack((x, y), -1), stride)


# --------------------------------------------------------------------------- the metric


def normalized_distances(pred: torch.Tensor, truth: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """Euclidean error of each keypoint divided by its image's size: ``(N, K, 2)``, ``(N,)`` -> float64 ``(N, K)``."""
    if pred.shape != truth.shape or pred.dim() != 3 or pred.shape[-1] != 2:
        raise ValueError(f"pred and truth must both be (N, K, 2), got {tuple(pred.shape)} and {tuple(truth.shape)}")
    if size.shape != pred.shape[:1] or not bool((size > 0).all()):
        raise ValueError(f"size must be (N,) = ({pred.shape[0]},) and positive, got shape {tuple(size.shape)}")
    return (pred.double() - truth.double()).norm(dim=-1) / size.double().view(-1, 1)


def detection_rate(pred: torch.Tensor, truth: torch.Tensor, size: torch.Tensor,
                   thresholds=THRESHOLDS) -> torch.Tensor:
    """FLIC's detection rate (%): the share of keypoints within ``t`` x size of the truth, per threshold.

    ``pred``, ``truth``: ``(N, K, 2)``; ``size``: ``(N,)``. Returns float64 ``(T, K)``, one
    column per keypoint; a keypoint at normalized distance exactly ``t`` counts as found.
    """
    d = normalized_distances(pred, truth, size)  # (N, K)
    t = torch.as_tensor(thresholds, dtype=torch.float64).view(-1, 1, 1)
    if t.numel() == 0 or bool((t < 0).any()):
        raise ValueError(f"thresholds must be a non-empty sequence of numbers >= 0, got {thresholds!r}")
    return 100.0 * (d.unsqueeze(0) <= t).double().mean(1)


# --------------------------------------------------------------------------- generation


def _similarity(scale: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """``(N,)`` scale and angle (radians) -> ``(N, 2, 2)`` matrices ``scale * R(angle)`` acting on (x, y)."""
    c, s = torch.cos(angle), torch.sin(angle)
    return scale.view(-1, 1, 1) * torch.stack((torch.stack((c, -s), -1), torch.stack((s, c), -1)), -2)


def _backgrounds(cifar: torch.Tensor, size: int, g: torch.Generator) -> torch.Tensor:
    """uint8 ``(N, 3, 32, 32)`` -> float32 grey ``(N, 1, size, size)`` in [0, 1]: random zoomed, flipped crops."""
    n = len(cifar)
    luma = torch.tensor(LUMA).view(1, 3, 1, 1)
    grey = (cifar.float() / 255.0 * luma).sum(1, keepdim=True)
    half = 1.0 / (1.0 + torch.rand(n, generator=g))  # half-width of the crop in normalized units: zoom 1-2x
    centre = (torch.rand(n, 2, generator=g) * 2 - 1) * (1 - half).view(-1, 1)
    flip = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = half * flip, half
    theta[:, :, 2] = centre
    grid = F.affine_grid(theta, (n, 1, size, size), align_corners=False)
    return F.grid_sample(grey, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _draw_digits(digits: torch.Tensor, size: int, g: torch.Generator, scale_range, max_rotation: float):
    """Place each digit: returns ink coverage ``(N, 1, size, size)`` in [0, 1] and the transform ``(A, c)``.

    A digit pixel at ``p`` (x, y; the 28x28 centre is 13.5) lands at ``c + A (p - 13.5)``.
    """
    n = len(digits)
    scale = scale_range[0] + (scale_range[1] - scale_range[0]) * torch.rand(n, generator=g)
    angle = math.radians(max_rotation) * (2 * torch.rand(n, generator=g) - 1)
    a = _similarity(scale, angle)  # (N, 2, 2)
    # The ink's bounding box, transformed with c = 0, bounds where the centre c may go.
    ink = digits > 0
    rows, cols = ink.any(2), ink.any(1)
    lo_r, hi_r = rows.float().argmax(1), MNIST_SIZE - 1 - rows.flip(1).float().argmax(1)
    lo_c, hi_c = cols.float().argmax(1), MNIST_SIZE - 1 - cols.flip(1).float().argmax(1)
    corners = torch.stack([torch.stack((x, y), -1) for x in (lo_c, hi_c) for y in (lo_r, hi_r)], 1).float() - 13.5
    placed = torch.einsum("nij,nkj->nki", a, corners)  # (N, 4, 2)
    margin = 1.0
    low = margin - placed.amin(1)  # (N, 2): smallest allowed centre per axis
    high = (size - 1 - margin) - placed.amax(1)
    if bool((high < low).any()):
        raise ValueError(f"digits scaled by up to {scale_range[1]} do not fit a {size}x{size} image")
    centre = low + (high - low) * torch.rand(n, 2, generator=g)
    # Sampling grid: for every image pixel q, the digit pixel p = 13.5 + A^-1 (q - c), normalized for grid_sample.
    q = torch.stack(torch.meshgrid(torch.arange(size), torch.arange(size), indexing="xy"), -1).float()  # (S, S, 2)
    a_inv = torch.linalg.inv(a)
    p = torch.einsum("nij,nhwj->nhwi", a_inv, q.unsqueeze(0) - centre.view(-1, 1, 1, 2))  # relative to 13.5
    grid = p / (MNIST_SIZE / 2)  # align_corners=False: pixel centre 13.5 + t maps to t / 14
    coverage = F.grid_sample(digits.float().unsqueeze(1) / 255.0, grid, mode="bilinear", padding_mode="zeros",
                             align_corners=False)
    return coverage, a, centre


def generate(n: int, split: str = "train", seed: int = 0, *, image_size: int = 64, stride: int = 4,
             sigma: float = 1.5, scale_range: tuple[float, float] = (1.4, 2.2), max_rotation: float = 20.0,
             noise: float = 0.02) -> KeypointData:
    """``n`` localization images from the ``split`` ("train" or "test") sources, deterministic in ``seed``.

    ``scale_range``: image pixels per MNIST pixel (MNIST ink is about 20 px tall, so 1.4-2.2
    gives 28-44 px). ``max_rotation``: degrees either way. See the module docstring.
    """
    _check_int("n", n, 1)
    check_geometry(image_size, stride, sigma)
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if not 0 < scale_range[0] <= scale_range[1]:
        raise ValueError(f"scale_range must be (low, high) with 0 < low <= high, got {scale_range!r}")
    mnist, cifar = data.load_mnist(split), data.load_cifar10(split)
    g = torch.Generator().manual_seed(seed)
    digit_idx = torch.randperm(len(mnist), generator=g)[:n] if n <= len(mnist) else torch.randint(
        len(mnist), (n,), generator=g)
    back_idx = torch.randint(len(cifar), (n,), generator=g)
    digits = mnist.images[digit_idx]
    background = _backgrounds(cifar.images[back_idx], image_size, g)
    coverage, a, centre = _draw_digits(digits, image_size, g, scale_range, max_rotation)

    under = (background * coverage).sum((1, 2, 3)) / coverage.sum((1, 2, 3))  # grey level beneath the ink
    away = torch.where(under > 0.5, -1.0, 1.0)
    ink = (under + away * (0.3 + 0.3 * torch.rand(n, generator=g))).clamp(0.0, 1.0).view(-1, 1, 1, 1)
    images = background * (1 - coverage) + ink * coverage
    images = (images + noise * torch.randn(images.shape, generator=g)).clamp(0.0, 1.0)

    kp = centre.unsqueeze(1) + torch.einsum("nij,nkj->nki", a, ink_keypoints(digits) - 13.5)  # (N, K, 2)
    size = (kp[:, KEYPOINTS.index("top")] - kp[:, KEYPOINTS.index("bottom")]).norm(dim=-1)
    return KeypointData(
        images=images.contiguous(), keypoints=kp, heatmaps=heatmaps(kp, image_size, stride, sigma), size=size,
        digits=mnist.labels[digit_idx], stride=stride, sigma=float(sigma),
        source=f"MNIST {split} digits on {cifar.source.split(':')[0]} {split} backgrounds",
    )


@functools.lru_cache(maxsize=4)
def cached(n: int, split: str, seed: int, image_size: int = 64, stride: int = 4, sigma: float = 1.5) -> KeypointData:
    """:func:`generate`, once per process for the same arguments (every arm and seed of a run share it)."""
    return generate(n, split, seed, image_size=image_size, stride=stride, sigma=sigma)

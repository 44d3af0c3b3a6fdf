"""Numba kernels for DropConnect with per-example masks (Wan et al., ICML 2013).

For a minibatch ``v`` of shape ``(N, in)``, weights ``W`` of shape ``(out, in)`` and bias
``b`` of shape ``(out,)``, every example ``n`` has its own Bernoulli(keep) masks ``M[n]``
of shape ``(out, in)`` and ``Mb[n]`` of shape ``(out,)``:

    u[n, o] = sum_i M[n, o, i] W[o, i] v[n, i] + Mb[n, o] b[o]

Materialising ``M`` costs ``N * out * in`` values per layer and step (80 million for a
batch of 128 through an 800x784 layer), so the kernels never store it. Each mask bit is
a pure function of a 64-bit seed and the bit's position (a *counter-based* generator),
and every kernel recomputes the bits it needs; the backward pass therefore sees exactly
the mask of the forward pass.

How a mask is drawn from ``seed`` (``0 <= seed < 2**63``):

- Two streams, one for weights and one for biases, with keys
  ``key_w = mix64(2 * seed)`` and ``key_b = mix64(2 * seed + 1)``, where ``mix64`` is the
  SplitMix64 finaliser (Steele, Lea, Flood, "Fast splittable pseudorandom number
  generators", OOPSLA 2014). ``mix64`` is a bijection, so distinct (seed, stream) pairs get
  distinct keys.
- ``hash(key, c) = mix64(key + (c + 1) * 0x9E3779B97F4A7C15)`` is the ``c``-th output of a
  SplitMix64 generator started at state ``key``, computed directly instead of
  sequentially. Two calls share hash values only if their keys are fewer increments apart
  than the hashes a call draws: a chance of about 2e-12 for two calls with a batch of
  128 through 800x800 weights.
- One 64-bit hash covers 4 weights: weight ``(n, o, i)`` uses 16-bit chunk ``i % 4``
  (bits ``16 * (i % 4)`` and up) of ``hash(key_w, (n * out + o) * ceil(in / 4) + i // 4)``;
  bias ``(n, o)`` uses chunk ``o % 4`` of ``hash(key_b, n * ceil(out / 4) + o // 4)``.
- The element is kept when its chunk, uniform on {0, ..., 65535}, is below
  ``threshold = round(keep * 65536)``. The keep probability is therefore quantised to the
  nearest multiple of 1/65536 (an error below 7.7e-6; exact for p = 0.5, 0.25, ...).

Kept weights are not rescaled, as in the paper. The kernels neither check shapes nor
bounds: the caller (``dropconnect.py``) validates them and passes float32 C-contiguous
arrays, with ``seed`` and ``threshold`` as ``np.uint64``; outputs are written into arrays
the caller allocates.
"""

from __future__ import annotations

import numbers
import os

import numba
import numpy as np
import torch
from numba import njit, prange

from .._validate import check_probability

# Numba's default OpenMP threading layer leaves its worker threads spin-waiting after
# every parallel kernel; in the same process they starve torch's own OpenMP threads
# (measured here: a plain 784-200-200-10 MLP step went from 3 ms to 70 ms after one
# DropConnect step). The workqueue layer's threads sleep when idle. A reader's own
# $NUMBA_THREADING_LAYER is respected.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

CHUNK_BITS = 16
CHUNKS_PER_HASH = 64 // CHUNK_BITS
# round(keep * THRESHOLD_SCALE) is the number of the 2**16 chunk values that keep an element.
THRESHOLD_SCALE = 1 << CHUNK_BITS

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # SplitMix64's increment, 2**64 / golden ratio
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)
_CHUNK = np.uint64(0xFFFF)
# Numba promotes mixed int64/uint64 arithmetic to float64, so every constant is uint64.
_SHIFT = (np.uint64(0), np.uint64(16), np.uint64(32), np.uint64(48))
_S27, _S30, _S31 = np.uint64(27), np.uint64(30), np.uint64(31)
_ONE, _TWO = np.uint64(1), np.uint64(2)

# Summing in any order lets LLVM vectorise the dot products; results then differ from a
# sequential sum by float32 rounding only. No flag that assumes finite values is set.
_REORDER = {"reassoc", "contract", "nsz"}


def keep_threshold(keep: float) -> int:
    """The kernels' threshold for keep probability ``keep``: chunks below it keep their element."""
    return round(check_probability(keep, "keep") * THRESHOLD_SCALE)


@njit(cache=True, inline="always")
def _mix64(z):
    """SplitMix64's output function: a bijective avalanche of a uint64."""
    z = (z ^ (z >> _S30)) * _MUL1
    z = (z ^ (z >> _S27)) * _MUL2
    return z ^ (z >> _S31)


@njit(cache=True, inline="always")
def _stream_key(seed, stream):
    return _mix64(np.uint64(seed) * _TWO + np.uint64(stream))


@njit(cache=True, inline="always")
def _hash(key, counter):
    return _mix64(key + (counter + _ONE) * _GOLDEN)


@njit(cache=True, inline="always")
def _weight_mask_row(key_w, row, n_in, threshold, mask):
    """``mask[i] = M[n, o, i]`` for ``row = n * out + o``, as 0/1 in ``mask``'s dtype."""
    groups = (n_in + CHUNKS_PER_HASH - 1) // CHUNKS_PER_HASH
    first = np.uint64(row) * np.uint64(groups)
    full = n_in // CHUNKS_PER_HASH
    for g in range(full):  # each hash gives the four weights 4g .. 4g + 3
        h = _hash(key_w, first + np.uint64(g))
        i = CHUNKS_PER_HASH * g
        mask[i] = (h & _CHUNK) < threshold
        mask[i + 1] = ((h >> _SHIFT[1]) & _CHUNK) < threshold
        mask[i + 2] = ((h >> _SHIFT[2]) & _CHUNK) < threshold
        mask[i + 3] = (h >> _SHIFT[3]) < threshold
    if full < groups:  # in_features not a multiple of 4: the last hash is partly used
        h = _hash(key_w, first + np.uint64(full))
        for j in range(n_in - CHUNKS_PER_HASH * full):
            mask[CHUNKS_PER_HASH * full + j] = ((h >> _SHIFT[j]) & _CHUNK) < threshold


@njit(cache=True, inline="always")
def _bias_kept(key_b, n, o, n_out, threshold):
    """``Mb[n, o]``: the bias stream, laid out like one weight row of length ``out`` per example."""
    groups = (n_out + CHUNKS_PER_HASH - 1) // CHUNKS_PER_HASH
    h = _hash(key_b, np.uint64(n) * np.uint64(groups) + np.uint64(o // CHUNKS_PER_HASH))
    return ((h >> _SHIFT[o % CHUNKS_PER_HASH]) & _CHUNK) < threshold


@njit(parallel=True, cache=True, fastmath=_REORDER)
def forward(v, w, b, has_bias, seed, threshold, u):
    """``u[n, o] = sum_i M[n, o, i] w[o, i] v[n, i] + Mb[n, o] b[o]``; parallel over examples.

    ``v``: ``(N, in)``, ``w``: ``(out, in)``, ``b``: ``(out,)`` (ignored unless ``has_bias``),
    ``u``: ``(N, out)``, written.
    """
    n_ex, n_in = v.shape
    n_out = w.shape[0]
    key_w, key_b = _stream_key(seed, 0), _stream_key(seed, 1)
    for n in prange(n_ex):
        mask = np.empty(n_in, np.float32)  # one row of M[n], reused for every output unit
        for o in range(n_out):
            _weight_mask_row(key_w, n * n_out + o, n_in, threshold, mask)
            acc = np.float32(0.0)
            for i in range(n_in):
                acc += mask[i] * w[o, i] * v[n, i]
            if has_bias and _bias_kept(key_b, n, o, n_out, threshold):
                acc += b[o]
            u[n, o] = acc


@njit(parallel=True, cache=True, fastmath=_REORDER)
def grad_input(grad_u, w, seed, threshold, grad_v):
    """``grad_v[n, i] = sum_o M[n, o, i] w[o, i] grad_u[n, o]``; parallel over examples.

    ``grad_u``: ``(N, out)``, ``w``: ``(out, in)``, ``grad_v``: ``(N, in)``, written.
    """
    n_ex, n_out = grad_u.shape
    n_in = w.shape[1]
    key_w = _stream_key(seed, 0)
    for n in prange(n_ex):
        mask = np.empty(n_in, np.float32)
        grad_v[n, :] = 0.0
        for o in range(n_out):
            g = grad_u[n, o]
            # Units a ReLU switched off pass back exact zeros. Skipping them halves the work
            # in a ReLU network and changes nothing unless a weight is inf or NaN.
            if g == 0.0:
                continue
            _weight_mask_row(key_w, n * n_out + o, n_in, threshold, mask)
            for i in range(n_in):
                grad_v[n, i] += g * mask[i] * w[o, i]


@njit(parallel=True, cache=True, fastmath=_REORDER)
def grad_weight_bias(grad_u, v, has_bias, seed, threshold, grad_w, grad_b):
    """``grad_w[o, i] = sum_n M[n, o, i] grad_u[n, o] v[n, i]`` and ``grad_b[o] = sum_n Mb[n, o] grad_u[n, o]``.

    Parallel over output units, so each thread owns whole rows of ``grad_w`` and no two
    threads write the same element. ``grad_u``: ``(N, out)``, ``v``: ``(N, in)``,
    ``grad_w``: ``(out, in)`` and ``grad_b``: ``(out,)``, written (``grad_b`` only if
    ``has_bias``).
    """
    n_ex, n_out = grad_u.shape
    n_in = v.shape[1]
    key_w, key_b = _stream_key(seed, 0), _stream_key(seed, 1)
    for o in prange(n_out):
        mask = np.empty(n_in, np.float32)
        grad_w[o, :] = 0.0
        acc_b = np.float32(0.0)
        for n in range(n_ex):
            g = grad_u[n, o]
            if g == 0.0:  # as in grad_input: exact, and free for units a ReLU switched off
                continue
            _weight_mask_row(key_w, n * n_out + o, n_in, threshold, mask)
            for i in range(n_in):
                grad_w[o, i] += g * mask[i] * v[n, i]
            if has_bias and _bias_kept(key_b, n, o, n_out, threshold):
                acc_b += g
        if has_bias:
            grad_b[o] = acc_b


@njit(parallel=True, cache=True)
def _fill_masks(seed, threshold, weight_mask, bias_mask):
    """Write M into ``weight_mask`` ``(N, out, in)`` and Mb into ``bias_mask`` ``(N, out)``."""
    n_ex, n_out, n_in = weight_mask.shape
    key_w, key_b = _stream_key(seed, 0), _stream_key(seed, 1)
    for n in prange(n_ex):
        for o in range(n_out):
            _weight_mask_row(key_w, n * n_out + o, n_in, threshold, weight_mask[n, o])
            bias_mask[n, o] = _bias_kept(key_b, n, o, n_out, threshold)


def per_example_masks(seed: int, n: int, out_features: int, in_features: int,
                      keep: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The masks the kernels use for ``seed``, materialised (for tests and inspection).

    Args:
        seed: the per-call seed, an int in ``[0, 2**63)``.
        n: number of examples; out_features, in_features: the layer's weight shape.
        keep: keep probability ``1 - p`` (quantised as the kernels do, see the module docstring).

    Returns:
        ``(weight_mask, bias_mask)``: bool tensors of shapes ``(n, out_features, in_features)``
        and ``(n, out_features)``; True where the element is kept.
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an int in [0, 2**63), got {seed!r}")
    for name, value in (("n", n), ("out_features", out_features), ("in_features", in_features)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    weight_mask = np.empty((n, out_features, in_features), np.bool_)
    bias_mask = np.empty((n, out_features), np.bool_)
    _fill_masks(np.uint64(seed), np.uint64(keep_threshold(keep)), weight_mask, bias_mask)
    return torch.from_numpy(weight_mask), torch.from_numpy(bias_mask)

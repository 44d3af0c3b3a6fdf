"""Shared by the methods: argument validation (fail at the boundary, quoting the bad value) and activations."""

from __future__ import annotations

import numbers

import torch


def check_probability(value: object, name: str = "p") -> float:
    """Return ``value`` as a float if it is a probability in [0, 1], else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number in [0, 1], got {value!r} ({type(value).__name__})")
    value = float(value)
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return value


def check_choice(value: object, allowed, name: str):
    """Return ``value`` if it is one of ``allowed``, else raise ``ValueError`` listing them."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
    return value


# Element-wise activations a layer may apply itself (DropConnect and standout need them inside).
ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "identity": lambda u: u}

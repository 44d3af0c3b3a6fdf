"""Argument validation shared by every method: fail at the boundary, quoting the bad value."""

from __future__ import annotations

import numbers


def check_probability(value: object, name: str = "p") -> float:
    """Return ``value`` as a float if it is a probability in [0, 1], else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number in [0, 1], got {value!r} ({type(value).__name__})")
    value = float(value)
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return value

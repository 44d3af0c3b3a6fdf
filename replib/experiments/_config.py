"""Resolving a profile into a config: shared by every experiment module."""

from __future__ import annotations

import torch


def apply_overrides(paper: str, profiles: dict, profile: str, overrides: dict) -> dict:
    """The profile's config with ``overrides`` applied; unknown keys, bad ``epochs`` and absent CUDA rejected."""
    config = {**profiles[profile]}
    unknown = sorted(set(overrides) - set(config))
    if unknown:
        raise ValueError(f"unknown {paper} config keys {unknown}; allowed: {sorted(config)}")
    config.update(overrides)
    if "epochs" in config:  # experiments that count iterations instead have none
        epochs = config["epochs"]
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be an int >= 1, got {epochs!r}")
    device = config["device"]
    if not isinstance(device, str) or not device.startswith(("cpu", "cuda")):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available here; use 'cpu'")
    return config


def check_int(config: dict, key: str, least: int = 1, *, allow_none: bool = False) -> None:
    """``config[key]`` must be an int >= ``least`` (or None, if allowed); otherwise a ValueError naming it."""
    v = config[key]
    if v is None and allow_none:
        return
    if isinstance(v, bool) or not isinstance(v, int) or v < least:
        raise ValueError(f"{key} must be {'None or ' if allow_none else ''}an int >= {least}, got {v!r}")


def check_drop_probability(config: dict, key: str) -> None:
    """``config[key]`` must be a drop probability in [0, 1)."""
    v = config[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v < 1.0:
        raise ValueError(f"{key} must be a drop probability in [0, 1), got {v!r}")


def check_fractions(config: dict, key: str) -> None:
    """``config[key]`` must be a list of fractions of the run in (0, 1), e.g. learning-rate milestones."""
    v = config[key]
    if not isinstance(v, list) or not all(isinstance(f, (int, float)) and not isinstance(f, bool) and 0 < f < 1
                                          for f in v):
        raise ValueError(f"{key} must be a list of fractions of the run in (0, 1), got {v!r}")

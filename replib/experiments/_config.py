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

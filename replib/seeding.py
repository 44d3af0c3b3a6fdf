"""The one seeding rule: seed ``s`` trains with ``s`` and evaluates with ``EVALUATION_OFFSET + s``.

The runner (:func:`replib.experiments.run`) seeds Python, NumPy and torch with the unit's
seed before an experiment builds and trains its model, so initial weights, dropout masks
and minibatch order are reproducible. Stochastic evaluation (MC dropout passes, sampled
inference) draws from its own stream, opened with :func:`evaluation`, so that changing
how long a net trains never changes which evaluation masks another setting would see,
and the training stream is left where it was.
"""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch

EVALUATION_OFFSET = 10_000


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def evaluation(seed: int):
    """Inside: torch's global generators seeded with ``EVALUATION_OFFSET + seed``; outside, unchanged."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(EVALUATION_OFFSET + seed)
        yield


def generator(seed: int) -> torch.Generator:
    """A CPU generator of its own, e.g. for a fixed data subset that must not depend on the training seed."""
    return torch.Generator().manual_seed(seed)

"""The arithmetic of a run: fp32, or bf16 where the CPU has it natively and it measurably pays.

CPUs with AVX-512 bf16 or AMX run bf16 convolutions and products in hardware; on CPUs with
AVX2 only, torch emulates bf16 and a ResNet-20 step runs about ten times slower than in
fp32. So the precision is never assumed: :func:`choose` keeps fp32 where bf16 is not
native, and otherwise times a step both ways in the same process, interleaved
(:mod:`replib.timing`), and takes bf16 only for a speed-up of at least ``min_speedup``. The
choice, the measured speed-up and the CPU go into the result with everything else.

bf16 here is autocast (:func:`autocast`): weights, optimiser state and the loss stay fp32,
products and convolutions run in bf16.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch

from .results import NATIVE_BF16_FLAGS, cpu_flags
from .timing import interleaved_median

PRECISIONS = ("fp32", "bf16")


def bf16_native() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX-512 bf16 or AMX)."""
    return bool(cpu_flags() & NATIVE_BF16_FLAGS)


def check_precision(precision: object) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    return precision


@contextlib.contextmanager
def autocast(precision: str, device: str = "cpu") -> Iterator[None]:
    """Inside: products and convolutions in bf16 (``precision="bf16"``), or nothing changed (``"fp32"``)."""
    check_precision(precision)
    with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        yield


def choose(step: Callable[[str], Callable[[], object]], *, repeats: int = 5, min_speedup: float = 1.2,
           device: str = "cpu") -> dict:
    """The precision for a run whose training step at precision ``q`` is ``step(q)()``.

    Returns ``precision``, ``bf16_native``, ``speedup`` (fp32 seconds / bf16 seconds per step, None when
    not measured) and ``why``. On CUDA bf16 is measured too; on a CPU without native bf16 it is not.
    """
    native = device.startswith("cuda") or bf16_native()
    if not native:
        return {"precision": "fp32", "bf16_native": False, "speedup": None,
                "why": "this CPU has no native bf16 (AVX-512 bf16 or AMX), where bf16 is emulated and far slower"}
    median = interleaved_median({q: step(q) for q in PRECISIONS}, repeats)
    speedup = median["fp32"] / median["bf16"]
    chosen = "bf16" if speedup >= min_speedup else "fp32"
    return {"precision": chosen, "bf16_native": True, "speedup": round(speedup, 3),
            "why": f"a bf16 step measured {speedup:.2f}x as fast as fp32 here; bf16 is taken from {min_speedup}x"}

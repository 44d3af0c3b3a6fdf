"""The training loops the chapters share.

:func:`fit`, for every classifier: SGD with (optionally ramped) momentum, per-epoch learning-rate schedules, the max-norm
constraint on each unit's incoming weights, evaluation after every epoch and per-epoch
curves. Data lives in memory as tensors; a minibatch is one index into them, so the
loop adds almost nothing to the bare PyTorch step (``benchmarks/bench_train_loop.py``
measures it against a hand-written loop).

:func:`fit_regression`, for small regression sets such as the CO2 series: full-batch
Adam on squared error.
"""

from __future__ import annotations

import random
import time
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .methods._checks import check_probability

Batch = tuple[torch.Tensor, torch.Tensor]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so model init and masks are reproducible."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def momentum_at(epoch: int, momentum: float, momentum_start: float | None, ramp_epochs: int) -> float:
    """Momentum for 0-based ``epoch``: linear from ``momentum_start`` to ``momentum`` over ``ramp_epochs``.

    Hinton et al. (2012), App. A.1: 0.5 rising linearly to 0.99 over the first 500 epochs.
    """
    if momentum_start is None or ramp_epochs <= 0 or epoch >= ramp_epochs:
        return momentum
    return momentum_start + (momentum - momentum_start) * epoch / ramp_epochs


def lr_at(epoch: int, lr: float, lr_decay: float = 1.0, milestones: Sequence[int] = (), gamma: float = 1.0) -> float:
    """Learning rate for 0-based ``epoch``: ``lr * lr_decay**epoch * gamma**(milestones passed)``.

    ``lr_decay`` gives exponential schedules (Hinton: 0.998 per epoch); ``milestones`` and
    ``gamma`` give step schedules (e.g. x0.2 at epochs 60/120/160).
    """
    return lr * lr_decay**epoch * gamma ** sum(epoch >= m for m in milestones)


def apply_max_norm(weights: Sequence[torch.Tensor], max_norm: float) -> None:
    """Rescale every row (one unit's incoming weights) of each matrix whose L2 norm exceeds ``max_norm``.

    Hinton et al. (2012) bound the *squared* length by l = 15, i.e. ``max_norm = sqrt(15)``.
    """
    with torch.no_grad():
        for w in weights:
            w.renorm_(2, 0, max_norm)


@torch.inference_mode()
def evaluate(model: nn.Module, data: Batch, batch_size: int = 10_000) -> tuple[int, float]:
    """Return (number of misclassified examples, mean cross-entropy) of ``model`` in eval mode."""
    was_training = model.training
    model.eval()
    errors = 0
    loss = 0.0
    x, y = data
    for i in range(0, len(y), batch_size):
        logits = model(x[i : i + batch_size])
        errors += int((logits.argmax(1) != y[i : i + batch_size]).sum())
        loss += float(F.cross_entropy(logits, y[i : i + batch_size], reduction="sum"))
    model.train(was_training)
    return errors, loss / len(y)


def fit(
    model: nn.Module,
    train: Batch,
    test: Batch,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    lr_decay: float = 1.0,
    lr_milestones: Sequence[int] = (),
    lr_gamma: float = 1.0,
    momentum: float = 0.0,
    momentum_start: float | None = None,
    momentum_ramp_epochs: int = 0,
    lr_times_one_minus_momentum: bool = False,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    max_norm: float | None = None,
    max_norm_weights: Sequence[torch.Tensor] = (),
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    eval_every: int = 1,
    eval_batch_size: int = 10_000,
    seed: int = 0,
    progress: bool = True,
    desc: str = "",
) -> dict[str, list]:
    """Train ``model`` with minibatch SGD; evaluate on ``test`` after every epoch.

    Args:
        train, test: ``(inputs, int64 labels)`` already on the model's device.
        lr_times_one_minus_momentum: Hinton et al.'s update, where the gradient step is
            scaled by ``(1 - momentum)`` (implemented as SGD ``dampening = momentum``).
        max_norm, max_norm_weights: after every step, clip each row of these weight
            matrices to L2 norm ``max_norm`` (None: no constraint).
        augment: optional function applied to each whole input batch (no per-example Python).
        optimizer: replaces the default ``torch.optim.SGD`` (e.g. batchwise dropout's
            ``SubmatrixSGD``); its ``lr``, ``momentum`` and ``dampening`` follow the schedule.
        eval_every: evaluate on ``test`` after every ``eval_every``-th epoch and after the last.
        eval_batch_size: examples per evaluation batch (conv nets run faster in small ones).
        seed: fixes the order of examples (model init is seeded by the caller).

    Returns:
        Per-epoch curves: ``epoch`` (1-based), ``lr``, ``momentum``, ``train_loss``,
        ``test_errors`` (count), ``test_error`` (%), ``test_loss`` (these three None after
        epochs not evaluated), ``train_seconds`` (the epoch's training steps alone) and
        ``seconds`` (with the evaluation).
    """
    if epochs < 1 or batch_size < 1 or eval_every < 1:
        raise ValueError(f"epochs, batch_size and eval_every must be >= 1, got epochs={epochs!r}, "
                         f"batch_size={batch_size!r}, eval_every={eval_every!r}")
    check_probability(momentum, "momentum")
    if max_norm is not None and (max_norm <= 0 or not max_norm_weights):
        raise ValueError(f"max_norm must be > 0 and come with the weights it constrains, got {max_norm!r}")
    x, y = train
    n = len(y)
    order = torch.Generator().manual_seed(seed)
    if optimizer is None:
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, nesterov=nesterov,
                                    weight_decay=weight_decay)
    curves: dict[str, list] = {k: [] for k in ("epoch", "lr", "momentum", "train_loss", "test_errors", "test_error", "test_loss", "train_seconds", "seconds")}

    from tqdm.auto import tqdm

    bar = tqdm(range(epochs), desc=desc or "epochs", unit="epoch", disable=not progress, leave=False)
    model.train()
    for epoch in bar:
        start = time.perf_counter()
        m = momentum_at(epoch, momentum, momentum_start, momentum_ramp_epochs)
        rate = lr_at(epoch, lr, lr_decay, lr_milestones, lr_gamma)
        for group in optimizer.param_groups:
            group.update(lr=rate, momentum=m, dampening=m if lr_times_one_minus_momentum else 0.0)
        loss_sum = torch.zeros((), device=y.device)
        for idx in torch.randperm(n, generator=order).to(y.device).split(batch_size):
            xb, yb = x[idx], y[idx]
            if augment is not None:
                xb = augment(xb)
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if max_norm is not None:
                apply_max_norm(max_norm_weights, max_norm)
            loss_sum += loss.detach() * len(yb)
        train_loss = float(loss_sum) / n  # synchronises, so the training time below is complete
        trained = time.perf_counter()
        errors, test_error, test_loss = None, None, None
        if (epoch + 1) % eval_every == 0 or epoch + 1 == epochs:
            errors, test_loss = evaluate(model, test, eval_batch_size)
            test_error = 100.0 * errors / len(test[1])
            bar.set_postfix(test_err=f"{test_error:.2f}%", loss=f"{train_loss:.3f}")
        for key, value in (
            ("epoch", epoch + 1), ("lr", rate), ("momentum", m), ("train_loss", train_loss),
            ("test_errors", errors), ("test_error", test_error), ("test_loss", test_loss),
            ("train_seconds", trained - start), ("seconds", time.perf_counter() - start),
        ):
            curves[key].append(value)
    bar.close()
    return curves


def fit_regression(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    iterations: int,
    lr: float,
    weight_decay: float = 0.0,
    record_every: int = 100,
    progress: bool = True,
    desc: str = "",
) -> dict[str, list]:
    """Full-batch regression with Adam and squared error, for small data sets (e.g. the CO2 series).

    Every iteration uses all of ``x`` ``(N, D)`` and ``y`` ``(N, 1)``, with fresh dropout
    masks. ``weight_decay`` is L2 on every parameter (the dropout-as-Bayes prior, Gal &
    Ghahramani 2016). Returns ``iteration`` and ``train_mse`` every ``record_every`` steps.
    """
    if iterations < 1 or record_every < 1:
        raise ValueError(f"iterations and record_every must be >= 1, got {iterations!r}, {record_every!r}")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    curves: dict[str, list] = {"iteration": [], "train_mse": []}

    from tqdm.auto import tqdm

    model.train()
    running = torch.zeros((), device=y.device)
    for it in tqdm(range(1, iterations + 1), desc=desc or "iterations", disable=not progress, leave=False,
                   mininterval=1.0):
        loss = F.mse_loss(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        running += loss.detach()
        if it % record_every == 0:
            curves["iteration"].append(it)
            curves["train_mse"].append(float(running) / record_every)
            running.zero_()
    return curves

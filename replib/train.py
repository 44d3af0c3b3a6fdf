"""The training loops the chapters share.

:func:`fit` trains every network whose data come in minibatches: classifiers, the
keypoint heat-map net, the PTB language model. It owns the epoch loop, the schedule
(learning rate and momentum as functions of progress through the run), the hooks around
each optimiser step (gradient clipping, max-norm), evaluation on a held-out ``monitor``
split and the per-epoch curves with their timings. A minibatch of in-memory tensors is
one index into them, so the loop adds almost nothing to the bare PyTorch step
(``benchmarks/bench_train_loop.py`` measures it against a hand-written loop).

:func:`fit_regression`, for small regression sets such as the CO2 series: full-batch
Adam on squared error, optionally until the fit reaches a target error.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._validate import check_positive_int, check_probability
from .progress import bar as progress_bar

Batch = tuple[torch.Tensor, ...]
# A schedule maps (0-based epoch, epochs in the run) to a value; its points are fractions of the run.
Schedule = Callable[[int, int], float]
# A step schedule maps the 0-based step of the whole run to an optimiser's param-group settings.
StepSchedule = Callable[[int], dict[str, float]]
Batches = Callable[[int], Iterable[Batch]]  # 0-based epoch -> that epoch's minibatches
Loss = Callable[[nn.Module, Batch], torch.Tensor]
Monitor = Callable[[nn.Module], dict[str, float]]  # named metrics of the held-out split, in eval mode


# --------------------------------------------------------------------------- schedules


def constant(value: float) -> Schedule:
    return lambda epoch, epochs: value


def at_epoch(fraction: float, epochs: int) -> int:
    """The epoch a schedule point falls on: ``fraction`` of ``epochs``, rounded, at least 1.

    Milestones (0.3, 0.6, 0.8) of 200 epochs are epochs 60, 120 and 160.
    """
    return max(1, round(fraction * epochs))


def step_decay(start: float, milestones: Sequence[float], gamma: float) -> Schedule:
    """``start * gamma**(milestones passed)``; ``milestones`` are fractions of the run (e.g. x0.2 at 0.3, 0.6, 0.8)."""
    return lambda epoch, epochs: start * gamma ** sum(epoch >= at_epoch(m, epochs) for m in milestones)


def exponential_decay(start: float, per_epoch: float) -> Schedule:
    """``start * per_epoch**epoch`` (Hinton et al. 2012: x0.998 per epoch)."""
    return lambda epoch, epochs: start * per_epoch**epoch


def decay_after(start: float, fraction: float, factor: float) -> Schedule:
    """``start`` until ``fraction`` of the run, then x``factor`` every epoch (Zaremba et al. 2014 on PTB).

    With ``k = at_epoch(fraction)`` the rate of 0-based epoch ``e`` is ``start * factor**max(0, e + 1 - k)``.
    """
    return lambda epoch, epochs: start * factor ** max(0, epoch + 1 - at_epoch(fraction, epochs))


def linear_ramp(start: float, end: float, until: float) -> Schedule:
    """From ``start`` to ``end`` linearly over the first ``until`` of the run, then ``end``.

    Hinton et al. (2012), App. A.1: momentum 0.5 rising to 0.99 over the first 500 of 3000 epochs.
    """

    def value(epoch: int, epochs: int) -> float:
        ramp = round(until * epochs)
        return end if ramp <= 0 or epoch >= ramp else start + (end - start) * epoch / ramp

    return value


def one_cycle(peak: float, steps: int, *, warmup: float = 0.25, start: float = 0.1, end: float = 0.0) -> StepSchedule:
    """The learning rate of every step as a function of progress through the run: a linear rise from
    ``start * peak`` to ``peak`` over the first ``warmup`` of the ``steps``, then a linear fall to ``end * peak``
    at the last step (the one-cycle shape of Smith & Topin 2019, as the fast CIFAR-10 recipes use it).
    For :func:`fit`'s ``step_schedule``; returns ``{"lr": ...}``."""
    check_positive_int(steps, "steps")
    if not (peak > 0 and 0 <= warmup < 1 and 0 <= start <= 1 and 0 <= end <= 1):
        raise ValueError(f"one_cycle needs peak > 0, 0 <= warmup < 1 and start, end in [0, 1]; got peak={peak!r}, "
                         f"warmup={warmup!r}, start={start!r}, end={end!r}")
    rise = warmup * (steps - 1)

    def settings(step: int) -> dict[str, float]:
        if step < rise:
            return {"lr": peak * (start + (1 - start) * step / rise)}
        fall = (step - rise) / max(steps - 1 - rise, 1e-12)
        return {"lr": peak * (1 - (1 - end) * min(fall, 1.0))}

    return settings


def sgd_schedule(lr: Schedule | float, momentum: Schedule | float = 0.0, *, dampened: bool = False):
    """The param-group settings of SGD at each epoch: ``lr``, ``momentum`` and ``dampening``.

    ``dampened``: Hinton et al.'s update, the gradient step scaled by ``(1 - momentum)``
    (SGD's ``dampening = momentum``).
    """
    lr = lr if callable(lr) else constant(lr)
    momentum = momentum if callable(momentum) else constant(momentum)

    def settings(epoch: int, epochs: int) -> dict[str, float]:
        m = check_probability(momentum(epoch, epochs), "momentum")
        return {"lr": lr(epoch, epochs), "momentum": m, "dampening": m if dampened else 0.0}

    return settings


def adam_schedule(lr: Schedule | float):
    """The param-group setting of Adam at each epoch: ``lr``."""
    lr = lr if callable(lr) else constant(lr)
    return lambda epoch, epochs: {"lr": lr(epoch, epochs)}


def flush_denormals() -> bool:
    """Make this process's CPU float arithmetic treat denormal numbers as zero (x86 FTZ/DAZ).

    Denormals (|x| < 1.2e-38 in float32) appear as a net's gradients and momentum buffers
    die away (a no-dropout net reaches zero training loss; unused ReLU units stop
    learning); each one takes a slow path through the CPU's vector units, and a
    784-800-800-10 dropout net's epoch grew to about 1.5x its time as they accumulated
    (2 threads, AVX-512). Flushing changes no result beyond
    float32's own resolution. Returns whether the CPU supports it (every x86-64 does);
    :func:`replib.results.hardware` records whether it is on.
    """
    return torch.set_flush_denormal(True)


# --------------------------------------------------------------------------- pieces of a step


def minibatches(data: Batch, batch_size: int, seed: int, augment: Callable | None = None) -> Batches:
    """Shuffled minibatches of in-memory tensors; the order is fixed by ``seed``, fresh every epoch.

    ``augment`` is applied to each whole input batch (no per-example Python).
    """
    check_positive_int(batch_size, "batch_size")
    x, *rest = data
    order = torch.Generator().manual_seed(seed)

    def epoch_batches(epoch: int):
        for idx in torch.randperm(len(x), generator=order).to(x.device).split(batch_size):
            xb = x[idx]
            yield (augment(xb) if augment is not None else xb, *(t[idx] for t in rest))

    return epoch_batches


def cross_entropy(model: nn.Module, batch: Batch) -> torch.Tensor:
    """Mean cross-entropy of a classifier on ``(inputs, int64 labels)``."""
    x, y = batch
    return F.cross_entropy(model(x), y)


def apply_max_norm(weights: Sequence[torch.Tensor], max_norm: float) -> None:
    """Rescale every row (one unit's incoming weights) of each matrix whose L2 norm exceeds ``max_norm``.

    Hinton et al. (2012) bound the *squared* length by l = 15, i.e. ``max_norm = sqrt(15)``.
    """
    with torch.no_grad():
        for w in weights:
            w.renorm_(2, 0, max_norm)


def max_norm(weights: Sequence[torch.Tensor], bound: float) -> Callable[[], None]:
    """An ``after_step`` hook: the max-norm constraint on ``weights`` after every update."""
    if not bound > 0 or not weights:
        raise ValueError(f"max_norm needs a bound > 0 and the weights it constrains, got {bound!r}")
    weights = list(weights)
    return lambda: apply_max_norm(weights, bound)


def clip_grad_norm(parameters: Iterable[torch.Tensor], bound: float) -> Callable[[], None]:
    """A ``before_step`` hook: clip the global gradient norm to ``bound`` (Zaremba et al.: 5)."""
    if not bound > 0:
        raise ValueError(f"clip_grad_norm needs a bound > 0, got {bound!r}")
    parameters = list(parameters)
    return lambda: torch.nn.utils.clip_grad_norm_(parameters, bound)


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


def classification_monitor(data: Batch, batch_size: int = 10_000) -> Monitor:
    """A ``monitor``: ``errors`` (count), ``error`` (%) and ``loss`` (mean cross-entropy) on ``data``."""

    def measure(model: nn.Module) -> dict[str, float]:
        errors, loss = evaluate(model, data, batch_size)
        return {"errors": errors, "error": 100.0 * errors / len(data[1]), "loss": loss}

    return measure


# --------------------------------------------------------------------------- the loop


def fit(
    model: nn.Module,
    batches: Batches,
    *,
    epochs: int,
    optimizer: torch.optim.Optimizer,
    schedule: Callable[[int, int], dict[str, float]],
    loss: Loss = cross_entropy,
    before_step: Callable[[], Any] | None = None,
    after_step: Callable[[], Any] | None = None,
    step_schedule: StepSchedule | None = None,
    monitor: Monitor | None = None,
    eval_every: int = 1,
    progress: bool = True,
    desc: str = "",
) -> dict[str, list]:
    """Train ``model`` for ``epochs``; evaluate the held-out ``monitor`` split every ``eval_every`` epochs.

    Args:
        batches: the minibatches of each epoch (:func:`minibatches` for in-memory tensors).
        optimizer: any torch optimiser; ``schedule(epoch, epochs)`` sets its param-group
            settings at the start of every epoch (:func:`sgd_schedule`, :func:`adam_schedule`).
        step_schedule: optional settings before every optimiser step, from the step's 0-based index
            in the whole run (:func:`one_cycle`); they override the epoch's ``schedule`` for the
            keys they name, and the curves record their values at each epoch's first step.
        loss: ``loss(model, batch)``, the scalar minimised (default: :func:`cross_entropy`); or,
            for a stack of ``M`` nets (:mod:`replib.ensemble`), one mean loss per member, shape
            ``(M,)``, whose sum is minimised (each member gets exactly its own gradient) and
            whose ``train_loss`` is then a list over members.
        before_step: called after ``backward`` and before the update (e.g. :func:`clip_grad_norm`).
        after_step: called after every update (e.g. :func:`max_norm`).
        monitor: metrics of a held-out split (:func:`classification_monitor`), taken in
            eval mode after every ``eval_every``-th epoch and after the last; a metric may be
            a list (one value per member of a :class:`replib.ensemble.StackedMLP`).

    Returns:
        Per-epoch curves: ``epoch`` (1-based), the schedule's settings (``lr``, ...),
        ``train_loss`` (the mean of ``loss`` over the epoch's examples, weighted by batch
        length), ``monitor_<name>`` for each monitor metric (None after epochs not
        evaluated), ``train_seconds`` (the epoch's training steps alone) and ``seconds``
        (with the evaluation).
    """
    check_positive_int(epochs, "epochs")
    check_positive_int(eval_every, "eval_every")
    curves: dict[str, list] = {"epoch": []}

    def record(key: str, value) -> None:
        curves.setdefault(key, [None] * (len(curves["epoch"]) - 1)).append(value)

    bar = progress_bar(range(epochs), desc=desc or "epochs", unit="epoch", disable=not progress, leave=False)
    model.train()
    step = 0
    for epoch in bar:
        start = time.perf_counter()
        settings = schedule(epoch, epochs)
        for group in optimizer.param_groups:
            group.update(settings)
        loss_sum, count, first = None, 0, step
        for batch in batches(epoch):
            if step_schedule is not None:
                now = step_schedule(step)
                for group in optimizer.param_groups:
                    group.update(now)
                if step == first:
                    settings = {**settings, **now}
            step += 1
            value = loss(model, batch)
            optimizer.zero_grad(set_to_none=True)
            (value if value.ndim == 0 else value.sum()).backward()
            if before_step is not None:
                before_step()
            optimizer.step()
            if after_step is not None:
                after_step()
            n = len(batch[-1]) if value.ndim == 0 else batch[-1].shape[1]  # a stack's labels are (M, B)
            term = value.detach() * n
            loss_sum = term if loss_sum is None else loss_sum + term
            count += n
        if count == 0:
            raise ValueError(f"epoch {epoch + 1} had no minibatches")
        mean_loss = loss_sum / count
        train_loss = mean_loss.tolist()  # synchronises, so the training time below is complete
        trained = time.perf_counter()
        measured = {}
        if monitor is not None and ((epoch + 1) % eval_every == 0 or epoch + 1 == epochs):
            was_training = model.training
            model.eval()
            measured = monitor(model)
            model.train(was_training)
            bar.set_postfix({k: f"{v:.4g}" for k, v in measured.items() if isinstance(v, (int, float))},
                            loss=f"{float(mean_loss.mean()):.3f}")
        curves["epoch"].append(epoch + 1)
        for key, value in settings.items():
            record(key, value)
        record("train_loss", train_loss)
        for key, value in measured.items():
            record(f"monitor_{key}", value)
        record("train_seconds", trained - start)
        record("seconds", time.perf_counter() - start)
        for key in curves:  # monitor metrics on epochs not evaluated
            if len(curves[key]) < len(curves["epoch"]):
                curves[key].append(None)
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
    target_rmse: float | None = None,
    check_every: int = 1000,
    record_every: int = 100,
    progress: bool = True,
    desc: str = "",
) -> dict[str, list]:
    """Full-batch regression with Adam and squared error, for small data sets (e.g. the CO2 series).

    Every iteration uses all of ``x`` ``(N, D)`` and ``y`` ``(N, 1)``, with fresh dropout
    masks; the step is PyTorch's fused Adam on CPU and CUDA (the same update, fewer passes
    over memory). ``weight_decay`` is L2 on every parameter (the dropout-as-Bayes prior, Gal &
    Ghahramani 2016). Every ``check_every`` steps (and after the last) the fit is read in
    eval mode (dropout off): its root mean squared error on ``(x, y)``. With ``target_rmse``
    set, training stops at the first such reading below it; ``iterations`` is then the most
    it may take. Returns ``iteration`` and ``train_mse`` (the training loss, dropout on,
    averaged over the last ``record_every`` steps), and ``check_iteration`` and ``train_rmse``
    (dropout off) at every reading; the last ``check_iteration`` is the number of steps taken.
    """
    if iterations < 1 or record_every < 1 or check_every < 1:
        raise ValueError(f"iterations, record_every and check_every must be >= 1, got {iterations!r}, "
                         f"{record_every!r}, {check_every!r}")
    if target_rmse is not None and not target_rmse > 0:
        raise ValueError(f"target_rmse must be > 0 or None, got {target_rmse!r}")
    # fused: the whole step of the CO2 chapter's 4x512 net 1.17x as fast as with Adam's defaults on 2 CPU cores
    # (results/benchmarks/regression_loop.json)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay,
                                 fused=True if y.device.type in ("cpu", "cuda") else None)
    curves: dict[str, list] = {"iteration": [], "train_mse": [], "check_iteration": [], "train_rmse": []}

    def rmse_dropout_off() -> float:
        model.eval()
        with torch.no_grad():
            value = float((model(x) - y).pow(2).mean().sqrt())
        model.train()
        return value

    model.train()
    running = torch.zeros((), device=y.device)
    bar = progress_bar(range(1, iterations + 1), desc=desc or "iterations", disable=not progress, leave=False,
                       mininterval=1.0)
    for it in bar:
        loss = F.mse_loss(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        running += loss.detach()
        if it % record_every == 0:
            curves["iteration"].append(it)
            curves["train_mse"].append(float(running) / record_every)
            running.zero_()
        if it % check_every == 0 or it == iterations:
            curves["check_iteration"].append(it)
            curves["train_rmse"].append(rmse_dropout_off())
            bar.set_postfix(rmse=f"{curves['train_rmse'][-1]:.3f}", refresh=False)
            if target_rmse is not None and curves["train_rmse"][-1] < target_rmse:
                break
    bar.close()
    return curves

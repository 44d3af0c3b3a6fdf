"""The training loop: schedules, the max-norm constraint, determinism, and that it learns."""

from __future__ import annotations

import pytest
import torch

from replib.models import MLP
from replib.train import apply_max_norm, fit, lr_at, momentum_at, seed_everything


def test_momentum_ramps_linearly_then_holds():
    assert momentum_at(0, 0.99, 0.5, 500) == 0.5
    assert momentum_at(250, 0.99, 0.5, 500) == pytest.approx(0.745)
    assert momentum_at(500, 0.99, 0.5, 500) == 0.99
    assert momentum_at(2999, 0.99, 0.5, 500) == 0.99
    assert momentum_at(10, 0.9, None, 0) == 0.9


def test_lr_exponential_and_step_schedules():
    assert lr_at(10, 10.0, 0.998) == pytest.approx(10.0 * 0.998**10)
    assert [lr_at(e, 0.1, milestones=(60, 120), gamma=0.2) for e in (0, 59, 60, 120)] == pytest.approx(
        [0.1, 0.1, 0.02, 0.004]
    )


def test_max_norm_clips_only_rows_above_the_bound():
    w = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, 10.0]])
    apply_max_norm([w], 2.0)
    torch.testing.assert_close(w.norm(dim=1), torch.tensor([2.0, 0.5, 2.0]))
    torch.testing.assert_close(w[0] / w[0].norm(), torch.tensor([0.6, 0.8]))  # direction kept


def toy_problem(n=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 20, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return (x[: n // 2], y[: n // 2]), (x[n // 2 :], y[n // 2 :])


def train_toy(seed, **kwargs):
    train, test = toy_problem()
    seed_everything(seed)
    model = MLP([20, 32, 2], p_hidden=0.5)
    settings = dict(epochs=5, batch_size=32, lr=0.1, momentum=0.9, seed=seed, progress=False)
    return model, fit(model, train, test, **{**settings, **kwargs})


def test_fit_learns_a_separable_problem():
    _, curves = train_toy(0)
    assert curves["test_error"][-1] < 15.0
    assert curves["train_loss"][-1] < curves["train_loss"][0]


def test_fit_is_deterministic_given_the_seed():
    _, a = train_toy(3)
    _, b = train_toy(3)
    _, c = train_toy(4)
    assert a["test_errors"] == b["test_errors"] and a["train_loss"] == b["train_loss"]
    assert a["train_loss"] != c["train_loss"]


def test_fit_records_every_curve_per_epoch():
    _, curves = train_toy(0, momentum_start=0.5, momentum_ramp_epochs=2, lr_decay=0.5)
    assert set(curves) == {"epoch", "lr", "momentum", "train_loss", "test_errors", "test_error", "test_loss",
                           "train_seconds", "seconds"}
    assert curves["epoch"] == [1, 2, 3, 4, 5]
    assert all(0 < t <= s for t, s in zip(curves["train_seconds"], curves["seconds"]))
    assert curves["momentum"] == pytest.approx([0.5, 0.7, 0.9, 0.9, 0.9])
    assert curves["lr"] == pytest.approx([0.1 * 0.5**e for e in range(5)])


def test_fit_evaluates_every_nth_epoch_and_the_last():
    _, curves = train_toy(0, eval_every=2)
    assert [e is not None for e in curves["test_errors"]] == [False, True, False, True, True]
    assert curves["test_error"][0] is None and curves["test_error"][-1] is not None
    with pytest.raises(ValueError, match="eval_every=0"):
        train_toy(0, eval_every=0)


def test_fit_applies_max_norm_to_the_given_weights_only():
    train, test = toy_problem()
    seed_everything(0)
    model = MLP([20, 32, 32, 2])
    constrained, free = model.hidden_layers
    fit(model, train, test, epochs=2, batch_size=32, lr=2.0, momentum=0.9, progress=False,
        max_norm=0.5, max_norm_weights=[constrained.weight])
    assert float(constrained.weight.detach().norm(dim=1).max()) <= 0.5 + 1e-6
    assert float(free.weight.detach().norm(dim=1).max()) > 0.5  # the large rate grows unconstrained rows


@pytest.mark.parametrize("scaled", [False, True])
def test_one_minus_momentum_scaling_matches_hintons_update(scaled):
    """Hinton et al. (2012), App. A.1: with the flag, the gradient step is scaled by (1 - momentum)."""
    lr, m = 1.0, 0.5
    model = torch.nn.Linear(1, 2)
    with torch.no_grad():  # zero input: only the bias moves, and its gradient is softmax(bias) - onehot
        model.weight.zero_()
        model.bias.copy_(torch.tensor([1.0, 0.0]))
    x, y = torch.zeros(1, 1), torch.zeros(1, dtype=torch.long)
    fit(model, (x, y), (x, y), epochs=2, batch_size=1, lr=lr, momentum=m, progress=False,
        lr_times_one_minus_momentum=scaled)

    def grad(b):
        return torch.softmax(b, 0) - torch.tensor([1.0, 0.0])

    b0 = torch.tensor([1.0, 0.0])
    g1 = grad(b0)
    b1 = b0 - lr * g1  # torch's first momentum step takes the raw gradient
    b2 = b1 - lr * (m * g1 + ((1 - m) if scaled else 1.0) * grad(b1))
    torch.testing.assert_close(model.bias.detach(), b2)


@pytest.mark.parametrize("kwargs", [{"epochs": 0}, {"batch_size": 0}, {"momentum": 1.5}, {"max_norm": 1.0}])
def test_bad_arguments_are_rejected(kwargs):
    train, test = toy_problem()
    model = MLP([20, 4, 2])
    settings = dict(epochs=1, batch_size=32, lr=0.1, progress=False)
    with pytest.raises(ValueError):
        fit(model, train, test, **{**settings, **kwargs})


"""The training loop: schedules, hooks, the monitor split, determinism, and that it learns."""

from __future__ import annotations

import copy

import pytest
import torch

from replib import seeding
from replib.models import MLP
from replib.train import (apply_max_norm, at_epoch, classification_monitor, clip_grad_norm, decay_after,
                          exponential_decay, fit, fit_regression, linear_ramp, max_norm, minibatches, one_cycle,
                          sgd_schedule, step_decay)


def test_linear_ramp_over_a_fraction_of_the_run_then_holds():
    """Hinton et al. (2012): momentum 0.5 -> 0.99 over the first 500 of 3000 epochs."""
    ramp = linear_ramp(0.5, 0.99, 500 / 3000)
    assert [ramp(e, 3000) for e in (0, 500, 2999)] == [0.5, 0.99, 0.99]
    assert ramp(250, 3000) == pytest.approx(0.745)
    assert ramp(3, 40) == pytest.approx(0.5 + 0.49 * 3 / 7)  # the ramp's 1/6 of 40 epochs is round(6.67) = 7


def test_schedule_points_are_fractions_rounded_to_epochs():
    assert [at_epoch(f, 200) for f in (0.3, 0.6, 0.8)] == [60, 120, 160]
    assert at_epoch(0.01, 20) == 1  # a milestone never falls before the first epoch
    lr = step_decay(0.1, [0.3, 0.6], 0.2)
    assert [lr(e, 200) for e in (0, 59, 60, 120)] == pytest.approx([0.1, 0.1, 0.02, 0.004])


def test_exponential_decay_and_decay_after_a_point():
    assert exponential_decay(10.0, 0.998)(10, 3000) == pytest.approx(10.0 * 0.998**10)
    ptb = decay_after(1.0, 0.625, 0.5)  # Zaremba et al.: x0.5 per epoch once 5 of 8 epochs are done
    assert [ptb(e, 8) for e in range(8)] == [1, 1, 1, 1, 1, 0.5, 0.25, 0.125]


def test_sgd_schedule_rejects_a_momentum_outside_zero_one():
    with pytest.raises(ValueError, match="momentum must be a probability in \\[0, 1\\], got 1.5"):
        sgd_schedule(0.1, 1.5)(0, 1)


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


def train_toy(seed, *, schedule=None, **kwargs):
    train, test = toy_problem()
    seeding.seed_everything(seed)
    model = MLP([20, 32, 2], p_hidden=0.5)
    settings = dict(epochs=5, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                    schedule=schedule or sgd_schedule(0.1, 0.9), monitor=classification_monitor(test), progress=False)
    return model, fit(model, minibatches(train, 32, seed), **{**settings, **kwargs})


def test_fit_learns_a_separable_problem():
    _, curves = train_toy(0)
    assert curves["monitor_error"][-1] < 15.0
    assert curves["train_loss"][-1] < curves["train_loss"][0]


def test_fit_is_deterministic_given_the_seed():
    _, a = train_toy(3)
    _, b = train_toy(3)
    _, c = train_toy(4)
    assert a["monitor_errors"] == b["monitor_errors"] and a["train_loss"] == b["train_loss"]
    assert a["train_loss"] != c["train_loss"]


def test_fit_records_the_schedule_the_monitor_and_the_timings_per_epoch():
    _, curves = train_toy(0, schedule=sgd_schedule(exponential_decay(0.1, 0.5), linear_ramp(0.5, 0.9, 0.4)))
    assert set(curves) == {"epoch", "lr", "momentum", "dampening", "train_loss", "monitor_errors", "monitor_error",
                           "monitor_loss", "train_seconds", "seconds"}
    assert curves["epoch"] == [1, 2, 3, 4, 5]
    assert all(0 < t <= s for t, s in zip(curves["train_seconds"], curves["seconds"]))
    assert curves["momentum"] == pytest.approx([0.5, 0.7, 0.9, 0.9, 0.9])
    assert curves["lr"] == pytest.approx([0.1 * 0.5**e for e in range(5)])


def test_fit_evaluates_every_nth_epoch_and_the_last():
    _, curves = train_toy(0, eval_every=2)
    assert [e is not None for e in curves["monitor_errors"]] == [False, True, False, True, True]
    assert curves["monitor_error"][0] is None and curves["monitor_error"][-1] is not None


def test_fit_monitors_in_eval_mode_and_returns_to_training():
    modes = []
    model, _ = train_toy(0, epochs=2, monitor=lambda m: modes.append(m.training) or {"x": 1.0})
    assert modes == [False, False] and model.training


def test_after_step_max_norm_constrains_the_given_weights_only():
    train, _ = toy_problem()
    seeding.seed_everything(0)
    model = MLP([20, 32, 32, 2])
    constrained, free = model.hidden_layers
    fit(model, minibatches(train, 32, 0), epochs=2, optimizer=torch.optim.SGD(model.parameters(), lr=2.0),
        schedule=sgd_schedule(2.0, 0.9), after_step=max_norm([constrained.weight], 0.5), progress=False)
    assert float(constrained.weight.detach().norm(dim=1).max()) <= 0.5 + 1e-6
    assert float(free.weight.detach().norm(dim=1).max()) > 0.5  # the large rate grows unconstrained rows


def test_before_step_sees_the_gradient_and_clipping_bounds_it():
    train, _ = toy_problem()
    model = MLP([20, 2])
    norms = []
    clip = clip_grad_norm(model.parameters(), 1e-3)

    def clip_and_record():
        clip()
        norms.append(float(torch.cat([p.grad.flatten() for p in model.parameters()]).norm()))

    fit(model, minibatches(train, 32, 0), epochs=1, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        schedule=sgd_schedule(0.1), before_step=clip_and_record, progress=False)
    assert len(norms) == 8 and max(norms) <= 1e-3 * (1 + 1e-5)


def test_a_custom_loss_and_batch_source_train_a_regression():
    x = torch.linspace(-1, 1, 64).unsqueeze(1)
    model = torch.nn.Linear(1, 1)
    loss = lambda m, batch: torch.nn.functional.mse_loss(m(batch[0]), batch[1])  # noqa: E731
    curves = fit(model, lambda epoch: [(x, 3 * x)], epochs=200, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                 schedule=sgd_schedule(0.1), loss=loss, progress=False)
    assert curves["train_loss"][-1] < 1e-3 and float(model.weight.detach()) == pytest.approx(3.0, abs=0.05)


@pytest.mark.parametrize("scaled", [False, True])
def test_dampened_sgd_matches_hintons_update(scaled):
    """Hinton et al. (2012), App. A.1: with ``dampened``, the gradient step is scaled by (1 - momentum)."""
    lr, m = 1.0, 0.5
    model = torch.nn.Linear(1, 2)
    with torch.no_grad():  # zero input: only the bias moves, and its gradient is softmax(bias) - onehot
        model.weight.zero_()
        model.bias.copy_(torch.tensor([1.0, 0.0]))
    x, y = torch.zeros(1, 1), torch.zeros(1, dtype=torch.long)
    fit(model, minibatches((x, y), 1, 0), epochs=2, optimizer=torch.optim.SGD(model.parameters(), lr=lr),
        schedule=sgd_schedule(lr, m, dampened=scaled), progress=False)

    def grad(b):
        return torch.softmax(b, 0) - torch.tensor([1.0, 0.0])

    b0 = torch.tensor([1.0, 0.0])
    g1 = grad(b0)
    b1 = b0 - lr * g1  # torch's first momentum step takes the raw gradient
    b2 = b1 - lr * (m * g1 + ((1 - m) if scaled else 1.0) * grad(b1))
    torch.testing.assert_close(model.bias.detach(), b2)


@pytest.mark.parametrize("kwargs,match", [
    ({"epochs": 0}, "epochs must be an int >= 1, got 0"),
    ({"eval_every": 0}, "eval_every must be an int >= 1, got 0"),
    ({"epochs": 2.5}, "epochs must be an int >= 1, got 2.5"),
])
def test_bad_arguments_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        train_toy(0, **kwargs)


@pytest.mark.parametrize("hook,match", [
    (lambda p: max_norm([p], 0.0), "max_norm needs a bound > 0 and the weights it constrains, got 0.0"),
    (lambda p: max_norm([], 1.0), "max_norm needs a bound > 0 and the weights it constrains, got 1.0"),
    (lambda p: clip_grad_norm([p], -1.0), "clip_grad_norm needs a bound > 0, got -1.0"),
    (lambda p: minibatches((p, p), 0, 0), "batch_size must be an int >= 1, got 0"),
])
def test_bad_hooks_and_batch_sizes_are_rejected(hook, match):
    with pytest.raises(ValueError, match=match):
        hook(torch.zeros(2, 2))


def test_an_epoch_without_batches_is_an_error():
    model = MLP([20, 2])
    with pytest.raises(ValueError, match="epoch 1 had no minibatches"):
        fit(model, lambda epoch: [], epochs=1, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            schedule=sgd_schedule(0.1), progress=False)


def test_evaluation_stream_is_its_own_and_leaves_training_where_it_was():
    seeding.seed_everything(0)
    with seeding.evaluation(0):
        inside = torch.rand(3)
    after = torch.rand(3)
    seeding.seed_everything(0)
    assert torch.equal(after, torch.rand(3))  # the evaluation draws did not move the training stream
    torch.manual_seed(seeding.EVALUATION_OFFSET)
    assert torch.equal(inside, torch.rand(3))


def _line_regression(target_rmse, iterations=3000):
    torch.manual_seed(0)
    x = torch.linspace(-1, 1, 64).unsqueeze(1)
    y = 3 * x + 0.05 * torch.randn(64, 1, generator=torch.Generator().manual_seed(1))
    model = torch.nn.Sequential(torch.nn.Linear(1, 16), torch.nn.Tanh(), torch.nn.Dropout(0.1), torch.nn.Linear(16, 1))
    curves = fit_regression(model, x, y, iterations=iterations, lr=0.003, target_rmse=target_rmse, check_every=50,
                            progress=False)
    return model, x, y, curves


def test_fit_regression_stops_at_the_first_reading_below_the_target_and_reads_with_dropout_off():
    model, x, y, curves = _line_regression(target_rmse=0.1)
    steps = curves["check_iteration"][-1]
    assert steps < 3000 and steps % 50 == 0  # stopped early, at a reading
    assert curves["train_rmse"][-1] < 0.1 <= min(curves["train_rmse"][:-1])  # the first reading below, not a later one
    model.eval()
    with torch.no_grad():  # the last reading is the fit with dropout off
        assert float((model(x) - y).pow(2).mean().sqrt()) == pytest.approx(curves["train_rmse"][-1], rel=1e-6)
    assert curves["iteration"][-1] <= steps


def test_fit_regression_without_a_target_runs_every_iteration_and_reads_after_the_last():
    _, _, _, curves = _line_regression(target_rmse=None, iterations=120)
    assert curves["check_iteration"] == [50, 100, 120] and curves["iteration"] == [100]


def test_fit_regression_takes_the_steps_of_a_plain_adam_loop_with_the_same_dropout_masks():
    """A dense reference: PyTorch's unfused Adam, L2 weight decay, squared error, one fresh mask per step."""
    torch.manual_seed(3)
    x, y = torch.randn(40, 2), torch.randn(40, 1)
    model = torch.nn.Sequential(torch.nn.Linear(2, 32), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(32, 1))
    initial, reference = copy.deepcopy(model), copy.deepcopy(model)
    torch.manual_seed(4)
    fit_regression(model, x, y, iterations=30, lr=0.01, weight_decay=0.01, check_every=1000, progress=False)
    torch.manual_seed(4)
    optimizer = torch.optim.Adam(reference.parameters(), lr=0.01, weight_decay=0.01, foreach=False)
    for _ in range(30):
        loss = (reference(x) - y).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for ours, theirs, before in zip(model.parameters(), reference.parameters(), initial.parameters()):
        assert (theirs - before).abs().max() > 0.005  # every parameter moved (Adam: about 0.01 a step at most)
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


def test_fit_regression_rejects_a_target_that_is_not_positive():
    with pytest.raises(ValueError, match="target_rmse must be > 0"):
        _line_regression(target_rmse=0.0)


# --------------------------------------------------------------------------- schedules per step


def test_one_cycle_rises_linearly_to_its_peak_then_falls_to_its_end():
    schedule = one_cycle(2.0, 11, warmup=0.2, start=0.1, end=0.0)  # rise over steps 0..2, fall over 2..10
    lrs = [schedule(s)["lr"] for s in range(11)]
    assert lrs == pytest.approx([0.2, 1.1, 2.0, 1.75, 1.5, 1.25, 1.0, 0.75, 0.5, 0.25, 0.0])
    assert one_cycle(1.0, 5, warmup=0.0)(0)["lr"] == 1.0 and one_cycle(1.0, 1)(0)["lr"] == 1.0


@pytest.mark.parametrize("kwargs,match", [
    ({"peak": 0.0}, r"peak > 0.*peak=0\.0"), ({"warmup": 1.0}, r"0 <= warmup < 1.*warmup=1\.0"),
    ({"end": 1.5}, r"end=1\.5"), ({"steps": 0}, r"steps"),
])
def test_one_cycle_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        one_cycle(**{"peak": 1.0, "steps": 10, **kwargs})


def test_fit_applies_the_step_schedule_before_every_step_and_records_each_epochs_first():
    """The optimiser sees the step schedule's rate at every step (over the epoch schedule's), and the curves keep
    the rate of each epoch's first step."""
    seen = []

    class Spy(torch.optim.SGD):
        def step(self, closure=None):
            seen.append(self.param_groups[0]["lr"])
            return super().step(closure)

    model = MLP([2, 4, 2], "relu", 0.0, 0.0)
    data = (torch.randn(40, 2), torch.randint(0, 2, (40,)))  # 4 batches of 10 per epoch
    curves = fit(model, minibatches(data, 10, 0), epochs=3, optimizer=Spy(model.parameters(), lr=9.0),
                 schedule=sgd_schedule(9.0, 0.5), step_schedule=lambda step: {"lr": 0.01 * (step + 1)}, progress=False)
    assert seen == pytest.approx([0.01 * (s + 1) for s in range(12)])
    assert curves["lr"] == pytest.approx([0.01, 0.05, 0.09]) and curves["momentum"] == [0.5, 0.5, 0.5]

"""The batchwise-dropout experiment: FLOP prediction and claims computed from runs."""

from __future__ import annotations

import pytest

from replib.experiments import graham2015 as exp


def test_flop_ratio_of_two_hidden_layers_at_half_dropout():
    # No input dropout: first layer halves (outputs), hidden-hidden quarters, output layer halves (inputs).
    n = 1000
    dense = 2 * 784 * n + 3 * n * n + 3 * n * 10
    kept = 2 * 784 * 500 + 3 * 500 * 500 + 3 * 500 * 10
    assert exp.flop_ratio([784, n, n, 10], 0.0, 0.5) == pytest.approx(dense / kept)
    assert exp.flop_ratio([784, 4000, 4000, 10], 0.0, 0.5) > exp.flop_ratio([784, 500, 500, 10], 0.0, 0.5)


def fake_runs(errors, speedups, flops):
    timing = [{"n": n, "seconds_per_step": {"no dropout": 1.0, "per-sample": s, "batchwise": 1.0},
               "speedup_vs_per_sample": s, "flop_ratio": f} for n, s, f in zip((500, 1000, 2000), speedups, flops)]
    runs = [{"arm": "timing", "seed": 0, "metrics": {}, "curves": {"timing": timing}}]
    runs += [{"arm": arm, "seed": s, "metrics": {"test_error": e, "seconds_per_epoch": 1.0}}
             for arm, per_seed in errors.items() for s, e in enumerate(per_seed)]
    return runs


def test_claims_hold_when_accuracy_matches_and_speed_follows_flops():
    runs = fake_runs({"per-sample": [1.30, 1.32], "batchwise": [1.35, 1.37]}, [1.5, 2.0, 2.8], [2.5, 3.0, 3.3])
    assert all(c["holds"] for c in exp.claims({}, runs))


def test_claims_fail_when_batchwise_is_worse_or_slow():
    runs = fake_runs({"per-sample": [1.30], "batchwise": [1.80]}, [1.5, 1.4, 1.6], [2.5, 3.0, 3.3])
    held = {c["id"]: c["holds"] for c in exp.claims({}, runs)}
    assert held == {"accuracy_within_margin": False, "speedup_grows_with_width": False,
                    "speedup_reaches_flop_prediction": False}


def test_units_run_timing_once_and_accuracy_per_seed():
    assert exp.units({}, [0, 1], {}) == [("timing", 0), ("per-sample", 0), ("batchwise", 0),
                                     ("per-sample", 1), ("batchwise", 1)]

"""The standout experiment: config validation, the check and the claim decided by the paired rule."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from replib import experiments
from replib.experiments import ba2013 as exp
from replib.models import StandoutMLP

COMMITTED = Path(__file__).resolve().parents[1] / "results" / "ba2013" / "cpu.json"
CONFIG = experiments.resolve(exp, "cpu")[0]


def test_units_are_dropout_then_the_grid_for_every_seed():
    config, _ = experiments.resolve(exp, "cpu", standout=[{"alpha": 1.0, "beta": 0.0}, {"alpha": 2.0, "beta": -1.5}])
    assert exp.units(config, [0, 1], {}) == [
        ("dropout", 0), ("standout a=1 b=0", 0), ("standout a=2 b=-1.5", 0),
        ("dropout", 1), ("standout a=1 b=0", 1), ("standout a=2 b=-1.5", 1)]


@pytest.mark.parametrize("grid,match", [
    ([[1.0, 0.0]], r"standout.0 = \[1.0, 0.0\]: Input should be a valid dictionary"),
    ([{"alpha": 0.0, "beta": 0.0}], r"standout.0.alpha = 0.0: Input should be greater than 0"),
    ([{"alpha": 1.0, "beta": float("nan")}], r"standout.0.beta = nan: Input should be a finite number"),
    ([{"alpha": 1.0}], r"standout.0.beta = \{'alpha': 1.0\}: Field required"),
    ([], r"standout = \[\]: List should have at least 1 item"),
])
def test_bad_grid_rejected_quoting_the_value(grid, match):
    with pytest.raises(ValueError, match=match):
        experiments.resolve(exp, "cpu", standout=grid)


def fake_runs(errors: dict[str, list[float]], rho: float = 1.0) -> list[dict]:
    return [{"arm": arm, "seed": s, "metrics": {"test_error": e, "spearman_keep_vs_preactivation": rho}}
            for arm, per_seed in errors.items() for s, e in enumerate(per_seed)]


def outcome(runs, claim: str = "standout_beats_dropout") -> str:
    return next(c["outcome"] for c in exp.claims(CONFIG, runs) if c["id"] == claim)


def test_standout_worse_on_every_seed_fails():
    runs = fake_runs({"dropout": [1.20, 1.30, 1.25], "standout a=1 b=0": [1.45, 1.50, 1.52]})
    assert outcome(runs) == "fails"


def test_standout_better_on_every_seed_holds():
    runs = fake_runs({"dropout": [1.40, 1.50, 1.45], "standout a=1 b=0": [1.20, 1.33, 1.24]})
    assert outcome(runs) == "holds"


def test_one_seed_leaves_the_claim_inconclusive():
    assert outcome(fake_runs({"dropout": [1.4], "standout a=1 b=0": [1.2]})) == "inconclusive"


def test_the_best_standout_setting_by_mean_is_the_one_compared():
    runs = fake_runs({"dropout": [1.40, 1.50, 1.45], "standout a=1 b=-1": [1.9, 2.0, 2.1],
                      "standout a=1 b=0": [1.20, 1.33, 1.24]})
    claim = next(c for c in exp.claims(CONFIG, runs) if c["id"] == "standout_beats_dropout")
    assert "standout a=1 b=0 − dropout" in claim["evidence"]


def test_keep_rising_with_input_is_a_check_not_counted():
    claim = next(c for c in exp.claims(CONFIG, fake_runs({"dropout": [1.2], "standout a=1 b=0": [1.4]}))
                 if c["id"] == "keep_rises_with_input")
    assert (claim["kind"], claim["counts"], claim["outcome"]) == ("check", False, "holds")


def test_keep_check_fails_when_a_net_does_not_rank_keep_by_input():
    runs = fake_runs({"dropout": [1.2], "standout a=1 b=0": [1.4]}, rho=0.2)
    assert outcome(runs, "keep_rises_with_input") == "fails"


def test_keep_probabilities_need_eval_mode():
    model = StandoutMLP([4, 3, 2], alpha=1.0, beta=0.0)
    with pytest.raises(ValueError, match="call pre_activations_and_keep in eval mode"):
        model.pre_activations_and_keep(torch.zeros(1, 4))

"""The standout experiment: config validation and claims computed from runs."""

from __future__ import annotations

import pytest
import torch

from replib.experiments import ba2013 as exp
from replib.models import StandoutMLP


def test_arms_follow_the_grid():
    assert exp.arms(exp.resolve("cpu", standout=[[1.0, 0.0], [2.0, -1.5]])) == [
        "dropout", "standout a=1 b=0", "standout a=2 b=-1.5"]


@pytest.mark.parametrize("bad", [[1.0, 0.0], "[[1, 0]]", [[1.0]]])
def test_bad_grid_rejected(bad):
    with pytest.raises(ValueError, match="standout must be"):
        exp.resolve("cpu", standout=bad)


def runs(errors, rho=0.99):
    return [{"arm": arm, "seed": s, "metrics": {"test_error": e, "spearman_keep_vs_preactivation": rho}}
            for arm, per_seed in errors.items() for s, e in enumerate(per_seed)]


def test_claims_report_standout_losing_plainly():
    held = {c["id"]: c["holds"] for c in exp.claims({}, runs({"dropout": [1.2, 1.3], "standout a=1 b=0": [1.4, 1.5]}))}
    assert held == {"keep_rises_with_input": True, "standout_beats_dropout": False}


def test_claims_report_standout_winning():
    held = {c["id"]: c["holds"] for c in exp.claims({}, runs({"dropout": [1.4], "standout a=1 b=0": [1.2]}, rho=0.2))}
    assert held == {"keep_rises_with_input": False, "standout_beats_dropout": True}


def test_keep_probabilities_need_eval_mode():
    model = StandoutMLP([4, 3, 2], alpha=1.0, beta=0.0)
    with pytest.raises(ValueError, match="eval mode"):
        model.pre_activations_and_keep(torch.zeros(1, 4))

"""The standout experiment: config validation, the check and the claim decided by the paired rule."""

from __future__ import annotations

import json

import pytest
import torch

from replib import experiments
from replib.experiments import ba2013 as exp
from replib.models import StandoutMLP

CONFIG = experiments.resolve(exp, "cpu")[0]


def test_selection_runs_every_arm_at_every_rate_on_the_first_seed_only():
    config, _ = experiments.resolve(exp, "cpu", standout=[{"alpha": 1.0, "beta": 0.0}, {"alpha": 2.0, "beta": -1.5}],
                                    lrs=[0.1, 0.03])
    assert exp.units(config, [4, 5], {}) == [
        ("select dropout lr=0.1", 4), ("select dropout lr=0.03", 4),
        ("select standout a=1 b=0 lr=0.1", 4), ("select standout a=1 b=0 lr=0.03", 4),
        ("select standout a=2 b=-1.5 lr=0.1", 4), ("select standout a=2 b=-1.5 lr=0.03", 4)]


def _selection_done(config, seed, val_errors: dict[str, float]) -> dict:
    return {(arm, seed): {"arm": arm, "seed": seed, "metrics": {"val_error": val_errors[arm]}}
            for arm, _ in exp.selection_units(config, seed)}


def test_the_test_round_runs_dropout_and_the_best_standout_pair_at_their_chosen_rates_on_every_seed():
    config, _ = experiments.resolve(exp, "cpu", standout=[{"alpha": 1.0, "beta": 0.0}, {"alpha": 2.0, "beta": -1.5}],
                                    lrs=[0.1, 0.03])
    val = {"select dropout lr=0.1": 2.0, "select dropout lr=0.03": 1.9,
           "select standout a=1 b=0 lr=0.1": 1.8, "select standout a=1 b=0 lr=0.03": 2.5,
           "select standout a=2 b=-1.5 lr=0.1": 1.85, "select standout a=2 b=-1.5 lr=0.03": 1.7}
    done = _selection_done(config, 0, val)
    assert exp.units(config, [0, 1], done)[len(done):] == [
        ("dropout lr=0.03", 0), ("standout a=2 b=-1.5 lr=0.03", 0), ("dropout lr=0.03", 1), ("standout a=2 b=-1.5 lr=0.03", 1)]
    partial = dict(list(done.items())[:-1])  # one selection run missing: nothing is decided yet
    assert exp.units(config, [0, 1], partial) == exp.selection_units(config, 0)


def test_ties_go_to_the_earlier_setting_and_the_larger_rate():
    config, _ = experiments.resolve(exp, "cpu", standout=[{"alpha": 1.0, "beta": 0.0}, {"alpha": 2.0, "beta": -1.5}],
                                    lrs=[0.1, 0.03])
    done = _selection_done(config, 0, {arm: 1.5 for arm, _ in exp.selection_units(config, 0)})
    assert exp.chosen(config, list(done.values())) == {"dropout": 0.1, "standout a=1 b=0": 0.1}


def test_unit_names_parse_back_to_the_round_the_arm_and_the_rate():
    assert exp.parse("select standout a=1 b=-1 lr=0.07") == (True, "standout a=1 b=-1", 0.07)
    assert exp.parse("dropout lr=0.2") == (False, "dropout", 0.2)


@pytest.mark.parametrize("overrides,match", [
    ({"lrs": [0.1, 0.1]}, r"lrs must be distinct"),
    ({"select_epochs": 70}, r"select_epochs \(70\) must be at most epochs \(60\)"),
    ({"train_size": 5000, "val_size": 5000}, r"val_size \(5000\) must leave training images"),
    ({"lrs": []}, r"lrs = \[\]: List should have at least 1 item"),
])
def test_a_protocol_that_cannot_select_is_rejected_naming_the_value(overrides, match):
    with pytest.raises(ValueError, match=match):
        experiments.resolve(exp, "cpu", **overrides)


@pytest.mark.parametrize("grid,match", [
    ([[1.0, 0.0]], r"standout.0 = \[1.0, 0.0\]: Input should be a valid dictionary"),
    ([{"alpha": 0.0, "beta": 0.0}], r"standout.0.alpha = 0.0: Input should be greater than 0"),
    ([{"alpha": 1.0, "beta": float("nan")}], r"standout.0.beta = nan: Input should be a finite number"),
    ([{"alpha": 1.0}], r"standout.0.beta: Field required"),
    ([], r"standout = \[\]: List should have at least 1 item"),
])
def test_bad_grid_rejected_quoting_the_value(grid, match):
    with pytest.raises(ValueError, match=match):
        experiments.resolve(exp, "cpu", standout=grid)


def fake_runs(errors: dict[str, list[float]], rho: float = 1.0) -> list[dict]:
    """Test-round runs (arm at rate 0.05) and their selection runs, as the runner stores them."""
    test = [{"arm": f"{arm} lr=0.05", "seed": s, "metrics": {"test_error": e, "spearman_keep_vs_preactivation": rho}}
            for arm, per_seed in errors.items() for s, e in enumerate(per_seed)]
    select = [{"arm": f"select {arm} lr=0.05", "seed": 0, "metrics": {"val_error": 2.0}} for arm in errors]
    return select + test


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


def test_the_standout_of_the_test_round_is_the_one_compared_and_selection_runs_are_not():
    runs = fake_runs({"dropout": [1.40, 1.50, 1.45], "standout a=1 b=0": [1.20, 1.33, 1.24]})
    runs.append({"arm": "select standout a=1 b=-1 lr=0.2", "seed": 0, "metrics": {"val_error": 100.0}})
    claim = next(c for c in exp.claims(CONFIG, runs) if c["id"] == "standout_beats_dropout")
    assert "standout a=1 b=0 − dropout" in claim["evidence"] and "0.05" in claim["statement"]


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


def test_a_selection_run_that_diverges_scores_the_worst_error_and_stores_only_finite_numbers(needs_mnist):
    config, _ = experiments.resolve(exp, "smoke", lrs=[1e6], select_epochs=1)
    run = exp.run_one(config, "select dropout lr=1e+06", 0, progress=False)
    assert run["metrics"]["diverged"] and run["metrics"]["val_error"] == exp.DIVERGED
    json.dumps(run, allow_nan=False)  # the result store refuses NaN: the run must still be storable


def test_a_selection_run_trains_on_the_first_images_and_scores_on_the_held_out_last(needs_mnist):
    config, _ = experiments.resolve(exp, "smoke")
    (x_fit, _), (x_val, _) = exp._split(config, selection=True)
    (x_all, _), _ = exp._split(config, selection=False)
    assert len(x_fit) == config["train_size"] - config["val_size"] and len(x_val) == config["val_size"]
    assert torch.equal(torch.cat([x_fit, x_val]), x_all)

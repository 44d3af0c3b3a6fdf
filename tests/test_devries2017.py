"""The Cutout experiment: the two-round protocol (sweep, then the chosen length on more seeds), claims, config errors."""

from __future__ import annotations

import pytest

from replib import experiments
from replib.experiments import devries2017 as exp

CONFIG = {"lengths": [0, 8, 16], "sweep_seeds": 2}


def run(length: int, seed: int, val_error: float, test_error: float) -> dict:
    return {"arm": exp.arm_of(length), "seed": seed, "metrics": {"val_error": val_error, "test_error": test_error}}


def sweep(val: dict[int, float], test: dict[int, float]) -> list[dict]:
    return [run(length, seed, val[length] + seed, test[length] + seed) for seed in (0, 1) for length in val]


def test_units_run_the_sweep_first_then_baseline_and_chosen_length_on_the_other_seeds():
    seeds = [0, 1, 2]
    first = exp.units(CONFIG, seeds, {})
    assert first == [(exp.arm_of(length), seed) for seed in (0, 1) for length in (0, 8, 16)]
    done = {(r["arm"], r["seed"]): r for r in sweep({0: 30, 8: 28, 16: 29}, {0: 31, 8: 29, 16: 30})}
    assert exp.units(CONFIG, seeds, done) == first + [("cutout_0", 2), ("cutout_8", 2)]


def test_units_when_no_length_beats_the_baseline():
    done = {(r["arm"], r["seed"]): r for r in sweep({0: 20, 8: 28, 16: 29}, {0: 21, 8: 29, 16: 30})}
    assert exp.units(CONFIG, [0, 1, 2], done)[-1:] == [("cutout_0", 2)]


def test_chosen_length_maximises_mean_validation_accuracy_on_sweep_seeds_only():
    runs = sweep({0: 30, 8: 28, 16: 29}, {0: 31, 8: 29, 16: 30})
    runs.append(run(16, 2, 0.0, 0.0))  # a later seed, however good, does not choose
    assert exp.chosen_length(CONFIG, runs) == 8


def test_claims_follow_the_runs():
    runs = sweep({0: 30, 8: 28, 16: 29}, {0: 31, 8: 29, 16: 30}) + [run(0, 2, 30, 31), run(8, 2, 28, 30)]
    claims = {c["id"]: c for c in exp.claims(CONFIG, runs)}
    assert claims["cutout_lowers_test_error"]["holds"] and claims["interior_optimum"]["holds"]
    assert claims["cutout_lowers_test_error"]["evidence"]["paired_gain_per_seed"] == [2.0, 2.0, 1.0]
    runs = sweep({0: 30, 8: 29, 16: 28}, {0: 31, 8: 32, 16: 33})  # best at the edge, and worse on test
    claims = {c["id"]: c for c in exp.claims(CONFIG, runs)}
    assert not claims["cutout_lowers_test_error"]["holds"] and not claims["interior_optimum"]["holds"]


@pytest.mark.parametrize("key,bad", [("lengths", [4, 8]), ("lengths", [0, -4]), ("sweep_seeds", 0),
                                     ("val_size", 0), ("train_size", 0), ("lr_fractions", [0.5, 1.5])])
def test_bad_config_rejected(key, bad):
    with pytest.raises(ValueError, match=key):
        exp.resolve("cpu", **{key: bad})


def test_smoke_run_writes_both_rounds(tmp_path, needs_mirror):
    result = experiments.run("devries2017", "smoke", results_dir=tmp_path, progress=False)
    assert [(r["arm"], r["seed"]) for r in result["runs"]][:2] == [("cutout_0", 0), ("cutout_8", 0)]
    assert ("cutout_0", 1) in [(r["arm"], r["seed"]) for r in result["runs"]]
    assert {c["id"] for c in result["claims"]} == {"cutout_lowers_test_error", "interior_optimum"}
    assert (tmp_path / "devries2017" / "smoke.json").is_file()

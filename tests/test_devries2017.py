"""The Cutout experiment: the two-round protocol (sweep, then the chosen length on more seeds), claims, config."""

from __future__ import annotations


import pytest

from replib import experiments
from replib.experiments import devries2017 as exp

CONFIG = {"lengths": [0, 8, 16, 24], "sweep_seeds": 3}


def run(length: int, seed: int, val_error: float, test_error: float = 50.0, train_error: float | None = None) -> dict:
    """One net's metrics; its training error is a third of its validation error unless given."""
    train_error = val_error / 3 if train_error is None else train_error
    return {"arm": exp.arm_of(length), "seed": seed,
            "metrics": {"val_error": val_error, "test_error": test_error, "train_error": train_error}}


def sweep(val: dict[int, list[float]], test: dict[int, list[float]] | None = None) -> list[dict]:
    """Every length on seeds 0..n-1: validation errors per length, test errors where given."""
    test = test or {}
    return [run(length, seed, errors[seed], *([test[length][seed]] if length in test else []))
            for seed in range(len(next(iter(val.values())))) for length, errors in val.items()]


def outcomes(runs: list[dict], config: dict = CONFIG) -> dict[str, str]:
    return {c["id"]: c["outcome"] for c in exp.claims(config, runs)}


# The paper's picture: validation accuracy peaks at 16 px on every seed, cutout lowers test error to ~4%.
PAPER_LIKE = {0: [5.0, 5.2, 4.9], 8: [4.6, 4.7, 4.5], 16: [4.0, 4.1, 3.9], 24: [4.5, 4.7, 4.4]}
PAPER_TEST = {0: [4.8, 4.7, 4.9], 16: [4.0, 4.2, 4.1]}


def test_units_run_the_sweep_first_then_baseline_and_chosen_length_on_the_other_seeds():
    config = {"lengths": [0, 8, 16], "sweep_seeds": 2}
    first = exp.units(config, [0, 1, 2], {})
    assert first == [(exp.arm_of(length), seed) for seed in (0, 1) for length in (0, 8, 16)]
    done = {(r["arm"], r["seed"]): r for r in sweep({0: [30, 31], 8: [28, 29], 16: [29, 30]})}
    assert exp.units(config, [0, 1, 2], done) == first + [("cutout_0", 2), ("cutout_8", 2)]


def test_test_round_runs_the_best_patch_length_even_when_no_cutout_wins_on_validation():
    config = {"lengths": [0, 8, 16], "sweep_seeds": 2}
    done = {(r["arm"], r["seed"]): r for r in sweep({0: [20, 21], 8: [29, 30], 16: [28, 29]})}
    assert exp.units(config, [0, 1, 2], done)[-2:] == [("cutout_0", 2), ("cutout_16", 2)]


def test_chosen_length_maximises_mean_validation_accuracy_on_sweep_seeds_only():
    config = {"lengths": [0, 8, 16], "sweep_seeds": 2}
    runs = sweep({0: [30, 31], 8: [28, 29], 16: [29, 30]}) + [run(16, 2, 0.0)]  # a later seed does not choose
    assert exp.chosen_length(config, runs) == 8


def test_every_claim_holds_on_runs_that_show_the_papers_pattern():
    assert set(outcomes(sweep(PAPER_LIKE, PAPER_TEST)).values()) == {"holds"}


def test_overfitting_is_shown_apart_and_fails_when_the_baseline_fits_training_images_no_better_than_validation():
    runs = [{**r, "metrics": {**r["metrics"], "train_error": r["metrics"]["val_error"] + 1.0 + r["seed"] / 10}}
            for r in sweep(PAPER_LIKE, PAPER_TEST)]
    claim = next(c for c in exp.claims(CONFIG, runs) if c["id"] == "baseline_overfits")
    assert claim["outcome"] == "fails" and not claim["counts"]
    assert next(c for c in exp.claims(CONFIG, sweep(PAPER_LIKE, PAPER_TEST)) if c["id"] == "baseline_overfits")["counts"] is False


def test_cutout_lowers_test_error_fails_when_it_raises_it_on_every_seed():
    assert outcomes(sweep(PAPER_LIKE, {0: [4.8, 4.7, 4.9], 16: [5.5, 5.6, 5.4]}))["cutout_lowers_test_error"] == "fails"


def test_cutout_gain_is_paired_by_seed_over_the_seeds_with_both_arms():
    runs = sweep(PAPER_LIKE, PAPER_TEST) + [run(0, 3, 4.0, 9.0)]  # seed 3 lacks the cutout arm: left out
    claim = next(c for c in exp.claims(CONFIG, runs) if c["id"] == "cutout_lowers_test_error")
    assert claim["evidence"]["cutout 16 px − no cutout per seed"] == "-0.80, -0.50, -0.80"


def test_interior_optimum_fails_when_no_cutout_is_best_on_every_sweep_seed():
    val = {0: [3.0, 3.1, 2.9], 8: [4.6, 4.7, 4.5], 16: [4.0, 4.1, 3.9], 24: [4.5, 4.7, 4.4]}
    assert outcomes(sweep(val, PAPER_TEST))["interior_optimum"] == "fails"


def test_interior_optimum_is_inconclusive_when_the_seeds_disagree_about_the_longest_length():
    val = {**PAPER_LIKE, 24: [3.5, 4.7, 4.4]}  # seed 0's best length is the longest
    assert outcomes(sweep(val, PAPER_TEST))["interior_optimum"] == "inconclusive"


def test_paper_levels_fail_far_above_the_papers_error_and_optimum():
    val = {0: [46.0, 46.2, 45.9], 8: [44.0, 44.1, 43.9], 16: [45.0, 45.1, 44.9], 24: [47.0, 47.2, 46.9]}
    out = outcomes(sweep(val, {0: [46.0, 46.4, 44.3], 8: [44.3, 45.0, 44.2]}))
    assert out["test_error_level"] == "fails" and out["optimum_near_16"] == "fails"


def test_one_seed_decides_nothing():
    one = {length: errors[:1] for length, errors in PAPER_LIKE.items()}
    assert set(outcomes(sweep(one, {k: v[:1] for k, v in PAPER_TEST.items()}), {**CONFIG, "sweep_seeds": 1}).values()) == {"inconclusive"}


@pytest.mark.parametrize("key,bad,match", [
    ("lengths", [4, 8, 12], r"lengths must rise from 0.*got \[4, 8, 12\]"),
    ("lengths", [0, 8], r"lengths must rise from 0.*got \[0, 8\]"),
    ("lengths", [], r"lengths must rise from 0.*got \[\]"),
    ("lengths", [0, 8, 100], r"lengths must be at most 32 px, the images' side, got \[0, 8, 100\]"),
    ("lengths", [0, 16, 8], r"lengths must rise from 0.*got \[0, 16, 8\]"),
    ("lengths", [0, -4, 8], r"lengths\.1 = -4"),
    ("sweep_seeds", 0, r"sweep_seeds = 0"),
    ("val_size", 0, r"val_size must be >= 1.*got 0"),
    ("train_size", 0, r"train_size = 0"),
    ("widths", [8, 8, 8, 8, 8], r"widths must name one to four blocks.*got \[8, 8, 8, 8, 8\]"),
    ("widths", [], r"widths must name one to four blocks.*got \[\]"),
    ("depth", 0, r"depth = 0"),
    ("warmup", 1.5, r"warmup = 1\.5"),
    ("precision", "fp16", r"precision = 'fp16'"),
])
def test_bad_config_rejected_naming_the_value(key, bad, match):
    with pytest.raises(ValueError, match=match):
        experiments.resolve(exp, "cpu", **{key: bad})


def test_smoke_run_writes_both_rounds(tmp_path, needs_mirror):
    result = experiments.run("devries2017", "smoke", results_dir=tmp_path, progress=False)
    assert [(r["arm"], r["seed"]) for r in result["runs"]][:3] == [("cutout_0", 0), ("cutout_8", 0), ("cutout_16", 0)]
    assert ("cutout_0", 1) in [(r["arm"], r["seed"]) for r in result["runs"]]
    assert {c["id"] for c in result["claims"]} == {"cutout_lowers_test_error", "interior_optimum", "test_error_level",
                                                   "optimum_near_16", "baseline_overfits"}
    assert all(r["precision"]["precision"] == "fp32" for r in result["runs"])
    assert all(0.0 <= r["metrics"]["train_error"] <= 100.0 for r in result["runs"])
    assert (tmp_path / "devries2017" / "smoke.json").is_file()

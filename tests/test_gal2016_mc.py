"""The MC dropout experiment: the real CO2 continuation, the config spec, the claims decided from runs, the upgrade."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from replib import claims as rule
from replib import experiments
from replib import results as store
from replib.experiments import gal2016_mc as exp

COMMITTED = store.REPO_ROOT / "results" / exp.PAPER / "cpu.json"


def test_real_continuation_recovers_the_linear_maps_of_the_training_rows():
    rows = np.arange(40, dtype=float)
    co2_ppm = 315 + 0.1 * rows + 2 * np.sin(rows) + 0.002 * rows**2
    raw = pd.DataFrame({"Date": pd.date_range("1958-03-01", periods=40, freq="MS"), "CO2": co2_ppm})
    x_all, y_all = 0.05 * rows - 1.0, 0.5 * co2_ppm - 0.04 * rows - 158.0
    co2 = {"x_train": x_all[:25], "y_train": y_all[:25], "x_test": np.linspace(0.25, 0.7, 10)}
    real = exp.real_continuation(co2, raw)
    assert real["max_residual_x"] < 1e-9 and real["max_residual_y"] < 1e-9
    np.testing.assert_allclose(real["y"], y_all[25:len(real["y"]) + 25])
    assert real["x"].max() <= 0.7 and real["dates"][0] == "1960-04"


@pytest.mark.parametrize("override,match", [
    ({"co2": {"hidden": []}}, r"co2\.hidden = \[\]: List should have at least 1 item"),
    ({"co2": {"hidden": [512, 0]}}, r"co2\.hidden\.1 = 0: Input should be greater than or equal to 1"),
    ({"co2": {"mc_samples": 0}}, r"co2\.mc_samples = 0: Input should be greater than or equal to 1"),
    ({"digits": {"rotations": 1}}, r"digits\.rotations = 1: Input should be greater than or equal to 2"),
    ({"gp": {"steps": 2.5}}, r"gp\.steps = 2\.5: Input should be a valid integer"),
    ({"gp": {"init_lengthscales": []}}, r"gp\.init_lengthscales = \[\]: List should have at least 1 item"),
])
def test_bad_config_rejected_naming_the_nested_key_and_value(override, match):
    with pytest.raises(ValueError, match=match):
        experiments.resolve(exp, "cpu", **override)


@pytest.mark.parametrize("override,match", [
    ({"digit_samples": 20}, r"unknown key 'digit_samples'; allowed: \['co2', 'device', 'digits', 'gp'\]"),
    ({"co2_p": 0.2}, r"unknown key 'co2_p'; allowed: \['co2', 'device', 'digits', 'gp'\]"),
    ({"digits": {"train_subset": 100}}, r"unknown key 'digits\.train_subset'; allowed: \[.*'train_size'\]"),
])
def test_old_flat_names_rejected_with_the_new_ones_listed(override, match):
    with pytest.raises(ValueError, match=match):
        experiments.resolve(exp, "cpu", **override)


# --------------------------------------------------------------------------- claims on fake runs


def fake_runs(miss, relu_far, tanh_far, upright, peak, not_1=(4, 4, 4), via=(5, 5, 5)) -> list[dict]:
    """Three seeds; per-seed values give the standard net's miss at the last real month (real value 3.0),
    the ReLU and TanH spreads far from the data (0.1 on the data, 0.2 near it), and the rotated digit's sds;
    the digit's predicted classes are 1 upright, then ``via`` where one rotation is not 1, then 7."""
    gp = {"arm": "gp", "seed": 0, "metrics": {}, "curves": {
        "x_test": [1.8, 2.5, 3.0], "real_x": [1.9, 2.9], "real_y": [1.0, 3.0], "real_dates": ["1982-01", "1994-03"]}}
    runs = [gp]
    for seed in range(3):
        runs.append({"arm": "co2 relu", "seed": seed, "curves": {"standard": [0.5, 0.5, 3.0 - miss[seed]]},
                     "metrics": {"mc_sd_on_training_inputs": 0.1, "mc_sd_near": 0.2, "mc_sd_far": relu_far[seed]}})
        runs.append({"arm": "co2 tanh", "seed": seed, "curves": {},
                     "metrics": {"mc_sd_on_training_inputs": 0.1, "mc_sd_near": 0.2, "mc_sd_far": tanh_far[seed]}})
        classes = [1] * (5 - not_1[seed]) + ([via[seed]] + [7] * (not_1[seed] - 1) if not_1[seed] else [])
        runs.append({"arm": "lenet", "seed": seed, "curves": {}, "metrics": {
            "predicted_class_by_angle": classes, "sd_of_predicted_probability_by_angle": [upright[seed], 0.05, peak[seed], 0.1]}})
    return runs


PAPER_LIKE = {"miss": (2.0, 2.2, 2.1), "relu_far": (0.8, 0.9, 0.85), "tanh_far": (0.22, 0.21, 0.23),
              "upright": (0.01, 0.02, 0.01), "peak": (0.35, 0.4, 0.38)}


def outcomes(**changes) -> dict[str, str]:
    return {c["id"]: c["outcome"] for c in exp.claims({}, fake_runs(**{**PAPER_LIKE, **changes}))}


def test_every_claim_holds_when_every_seed_shows_the_papers_pattern():
    assert set(outcomes().values()) == {"holds"}


def test_claims_fail_when_every_seed_contradicts_the_paper():
    assert outcomes(miss=(0.2, 0.3, 0.25), relu_far=(0.12, 0.13, 0.14), tanh_far=(0.9, 1.0, 0.95),
                    upright=(0.3, 0.35, 0.32), peak=(0.05, 0.06, 0.04), via=(8, 3, 8)) == {
        "standard_dropout_gives_one_value": "holds", "standard_dropout_misses_far_from_data": "fails",
        "relu_uncertainty_grows": "fails", "tanh_uncertainty_bounded": "fails", "rotation_uncertainty": "fails",
        "paper_class_sequence": "fails"}


def test_rotation_claim_is_decided_per_seed_not_on_the_mean():
    """The committed run's largest sds: their mean is above 0.2 but one seed is below it."""
    assert outcomes(peak=(0.25, 0.19, 0.215))["rotation_uncertainty"] == "inconclusive"


def test_tanh_claim_needs_tanh_below_relu_on_the_seeds():
    assert outcomes(relu_far=(0.8, 0.22, 0.5), tanh_far=(0.22, 0.24, 0.23))["tanh_uncertainty_bounded"] == "inconclusive"


def test_a_prediction_that_never_leaves_class_1_fails_the_rotation_claim():
    assert outcomes(not_1=(0, 0, 0))["rotation_uncertainty"] == "fails"


@pytest.mark.parametrize("classes,follows", [
    ([1, 1, 5, 5, 7, 7], True), ([1, 5, 3, 7], True), ([1, 5, 7], True),
    ([1, 1, 8, 7, 7], False),  # never 5
    ([1, 7, 5, 7], True),  # 5 after a brief 7, then 7 again: 1, 5, 7 in order
    ([1, 7, 5], False),  # ends at 5
    ([5, 1, 5, 7], False),  # does not start upright at 1
    ([1, 5, 7, 3], False), ([], False),
])
def test_the_papers_class_sequence_is_read_in_order(classes, follows):
    assert exp.visits_in_order(classes) is follows


def test_class_sequence_claim_is_decided_per_seed():
    assert outcomes()["paper_class_sequence"] == "holds"
    assert outcomes(via=(5, 5, 8))["paper_class_sequence"] == "inconclusive"  # two seeds of three
    assert outcomes(via=(8, 2, 3))["paper_class_sequence"] == "fails"


def test_standard_dropout_having_no_spread_is_a_check_not_counted():
    claims = exp.claims({}, fake_runs(**PAPER_LIKE))
    check = next(c for c in claims if c["id"] == "standard_dropout_gives_one_value")
    assert check["kind"] == "check" and check not in rule.counted(claims)


# --------------------------------------------------------------------------- the chapter


def test_rotated_digit_starts_upright_and_turns_to_max_angle(needs_mnist):
    digits, angles = exp.rotated_digit({"rotations": 5, "max_angle": 60.0})
    assert digits.shape == (5, 1, 28, 28) and angles == [0.0, 15.0, 30.0, 45.0, 60.0]
    assert not np.allclose(digits[0].numpy(), digits[-1].numpy())

"""The MC dropout experiment: the real CO2 continuation, config validation, claims computed from runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from replib.experiments import gal2016_mc as exp


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


@pytest.mark.parametrize("key,bad", [("co2_hidden", []), ("co2_hidden", [512, 0]), ("mc_samples", 0),
                                     ("rotations", 1), ("gp_steps", 2.5), ("gp_init_lengthscales", [1]),
                                     ("gp_init_lengthscales", [])])
def test_bad_config_rejected(key, bad):
    with pytest.raises(ValueError, match=key):
        exp.resolve("cpu", **{key: bad})


def fake_runs(relu_far=0.8, tanh_far=0.25, standard_end=0.5, peak=0.35, classes=(1, 1, 5, 7)):
    gp = {"arm": "gp", "seed": 0, "metrics": {}, "curves": {
        "x_test": [1.8, 2.5, 3.0], "real_x": [1.9, 2.9], "real_y": [1.0, 3.0], "real_dates": ["1982-01", "1994-03"]}}
    runs = [gp]
    for seed in (0, 1):
        runs.append({"arm": "co2 relu", "seed": seed, "curves": {"standard": [0.5, 0.5, standard_end]},
                     "metrics": {"mc_sd_on_training_inputs": 0.1, "mc_sd_near": 0.2, "mc_sd_far": relu_far}})
        runs.append({"arm": "co2 tanh", "seed": seed, "curves": {},
                     "metrics": {"mc_sd_on_training_inputs": 0.1, "mc_sd_near": 0.2, "mc_sd_far": tanh_far}})
        runs.append({"arm": "lenet", "seed": seed, "curves": {}, "metrics": {
            "predicted_class_by_angle": list(classes), "sd_of_predicted_probability_by_angle": [0.02, 0.1, peak, 0.1]}})
    return runs


def held(**kw) -> dict[str, bool]:
    return {c["id"]: c["holds"] for c in exp.claims({}, fake_runs(**kw))}


def test_every_claim_holds_on_runs_like_the_papers():
    assert all(held().values())


def test_claims_fail_when_the_paper_is_contradicted():
    assert held(relu_far=0.15, tanh_far=0.9, standard_end=2.8, peak=0.05, classes=(1, 1, 1, 1)) == {
        "standard_dropout_misses_far_from_data": False, "relu_uncertainty_grows": False,
        "tanh_uncertainty_bounded": False, "rotation_uncertainty": False,
    }

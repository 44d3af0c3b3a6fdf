"""The depth-dropout experiment: the multiply-accumulate prediction, the per-image skipping it measures, claims."""

from __future__ import annotations

import pytest

from replib import experiments
from replib.experiments import guo2016 as exp


def test_mac_counts_match_a_hand_count_of_resnet8():
    # stem 3->16 (32x32); blocks 16->16 (32x32), 16->32 and 32->64 (stride 2), each with a 1x1 shortcut; head 64->10
    main = 2 * 1024 * 16 * 144 + 256 * 32 * 144 + 256 * 32 * 288 + 64 * 64 * 288 + 64 * 64 * 576
    other = 1024 * 16 * 27 + 1024 * 16 * 16 + 256 * 32 * 16 + 64 * 64 * 32 + 64 * 10
    assert exp.mac_counts(8) == {"main": main, "other": other}
    assert exp.predicted_time_fraction(8, 0.5) == pytest.approx(1 - 0.5 * main / (main + other))
    assert exp.predicted_time_fraction(20, 0.0) == 1.0


def fake(times: dict[float, list[float]], errors: dict[float, list[float]]) -> list[dict]:
    return [{"arm": exp.arm_of(r), "seed": s, "metrics": {"train_seconds_per_epoch": t, "test_error": e,
                                                          "main_path_fraction": 1 - r}}
            for r in times for s, (t, e) in enumerate(zip(times[r], errors[r]))]


def test_claims_compare_the_measured_saving_with_the_prediction():
    config = {"depth": 20}
    f = exp.predicted_time_fraction(20, 0.5)
    on_target = fake({0.0: [100, 110], 0.5: [100 * f, 110 * f]}, {0.0: [10, 12], 0.5: [11, 13]})
    held = {c["id"]: c["holds"] for c in exp.claims(config, on_target)}
    assert held == {"skipping_saves_wall_time": True, "error_cost_at_half": True}
    # saving only 70% of the predicted one, and 2 points more error
    short = 1 - 0.7 * (1 - f)
    held = {c["id"]: c["holds"] for c in exp.claims(config, fake({0.0: [100], 0.5: [100 * short]}, {0.0: [10], 0.5: [12]}))}
    assert held == {"skipping_saves_wall_time": False, "error_cost_at_half": False}


def test_saving_is_paired_by_seed():
    s = exp.summary({"depth": 8}, fake({0.0: [100, 200], 0.5: [50, 100]}, {0.0: [1, 1], 0.5: [1, 1]}))
    assert s.loc[0.5, "measured_saving"] == pytest.approx(50.0)


@pytest.mark.parametrize("key,bad", [("ratios", [0.25, 0.5]), ("ratios", [0.0, 1.0]), ("depth", 18),
                                     ("eval_every", 0), ("test_size", -1)])
def test_bad_config_rejected(key, bad):
    with pytest.raises(ValueError, match=key):
        exp.resolve("cpu", **{key: bad})


def test_smoke_run_skips_main_paths_for_the_right_share_of_images(tmp_path, needs_mirror):
    result = experiments.run("guo2016", "smoke", results_dir=tmp_path, progress=False)
    fractions = {r["arm"]: r["metrics"]["main_path_fraction"] for r in result["runs"]}
    # 256 images x 2 epochs x 3 blocks = 1536 gates per arm: 5 sd of a binomial share is about 0.064
    assert fractions["p=0"] == 1.0
    assert fractions["p=0.25"] == pytest.approx(0.75, abs=0.06) and fractions["p=0.5"] == pytest.approx(0.5, abs=0.07)
    assert {c["id"] for c in result["claims"]} == {"skipping_saves_wall_time", "error_cost_at_half"}

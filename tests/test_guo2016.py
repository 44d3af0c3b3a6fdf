"""The depth-dropout experiment: the multiply-accumulate prediction, the per-image skipping it measures, claims."""

from __future__ import annotations


import pytest

from replib import experiments
from replib.experiments import guo2016 as exp

CONFIG, _ = experiments.resolve(exp, "cpu")
SAVED = exp.predicted_saving(CONFIG, 0.5) / 100  # the predicted share of time saved at p = 0.5


def test_mac_counts_match_a_hand_count_of_resnet8():
    # stem 3->16 (32x32); blocks 16->16 (32x32), 16->32 and 32->64 (stride 2), each with a 1x1 shortcut; head 64->10
    main = 2 * 1024 * 16 * 144 + 256 * 32 * 144 + 256 * 32 * 288 + 64 * 64 * 288 + 64 * 64 * 576
    other = 1024 * 16 * 27 + 1024 * 16 * 16 + 256 * 32 * 16 + 64 * 64 * 32 + 64 * 10
    config = {"net": "resnet", "depth": 8}
    assert exp.mac_counts(config) == {"main": main, "other": other}
    assert exp.predicted_saving(config, 0.5) == pytest.approx(100 * 0.5 * main / (main + other))


def test_mac_counts_match_a_hand_count_of_a_two_stage_residual_fast_net():
    # stem 3->24 (2x2, 31x31); stage 1: 3x3 24->8 at 31x31, pool to 15x15, one block 8->8 (two 3x3, a 1x1 shortcut);
    # stage 2: 3x3 8->16 at 15x15, pool to 7x7, one block 16->16; head 16->10
    main = 2 * 225 * 8 * 72 + 2 * 49 * 16 * 144
    other = 961 * 24 * 12 + 961 * 8 * 216 + 225 * 8 * 8 + 225 * 16 * 72 + 49 * 16 * 16 + 16 * 10
    config = {"net": "fast", "widths": [8, 16], "blocks": 1}
    assert exp.mac_counts(config) == {"main": main, "other": other}
    assert exp.mac_counts({**config, "blocks": 2})["main"] == 2 * main


def test_the_book_runs_the_residual_fast_net_and_the_paper_profile_a_resnet():
    assert CONFIG["net"] == "fast" and 0 < SAVED < 0.5
    assert experiments.resolve(exp, "paper")[0]["net"] == "resnet"


def fake(times: dict[float, list[float]], errors: dict[float, list[float]]) -> list[dict]:
    return [{"arm": exp.arm_of(p), "seed": s, "metrics": {"train_seconds_per_epoch": t, "test_error": e}}
            for p in times for s, (t, e) in enumerate(zip(times[p], errors[p]))]


def outcomes(runs: list[dict]) -> dict[str, str]:
    return {c["id"]: c["outcome"] for c in exp.claims(CONFIG, runs)}


BASE = [100.0, 110.0, 130.0]  # the baseline's seconds per epoch differ between seeds: savings pair by seed
SMALL_COST = {0.0: [10.0, 12.0, 11.0], 0.5: [11.0, 13.1, 11.9]}


def at(share_of_predicted: list[float]) -> list[float]:
    """Seconds per epoch at p = 0.5 that save ``share_of_predicted`` times the predicted saving, per seed."""
    return [b * (1 - k * SAVED) for b, k in zip(BASE, share_of_predicted)]


def test_saving_as_predicted_and_a_small_error_cost_hold():
    assert outcomes(fake({0.0: BASE, 0.5: at([0.95, 1.0, 1.05])}, SMALL_COST)) == {
        "skipping_saves_wall_time": "holds", "error_cost_at_half": "holds"}


def test_saving_far_above_the_prediction_fails_the_two_sided_band():
    assert outcomes(fake({0.0: BASE, 0.5: at([1.55, 1.6, 1.57])}, SMALL_COST))["skipping_saves_wall_time"] == "fails"


def test_saving_far_below_the_prediction_fails():
    assert outcomes(fake({0.0: BASE, 0.5: at([0.3, 0.35, 0.32])}, SMALL_COST))["skipping_saves_wall_time"] == "fails"


def test_saving_that_straddles_the_band_is_inconclusive():
    assert outcomes(fake({0.0: BASE, 0.5: at([0.9, 1.6, 1.1])}, SMALL_COST))["skipping_saves_wall_time"] == "inconclusive"


def test_saving_is_paired_by_seed():
    saved, _ = exp.paired(fake({0.0: [100, 200], 0.5: [50, 100]}, {0.0: [1, 1], 0.5: [1, 1]}))
    assert saved == {0.5: {0: 50.0, 1: 50.0}}


def test_error_cost_fails_far_above_the_papers_and_is_inconclusive_when_seeds_straddle_it():
    times = {0.0: BASE, 0.5: at([1.0, 1.0, 1.0])}
    assert outcomes(fake(times, {0.0: [58.9, 58.2, 59.5], 0.5: [77.7, 79.9, 78.7]}))["error_cost_at_half"] == "fails"
    assert outcomes(fake(times, {0.0: [10.0, 10.0, 10.0], 0.5: [10.5, 12.5, 11.0]}))["error_cost_at_half"] == "inconclusive"


def test_one_seed_decides_nothing():
    assert set(outcomes(fake({0.0: BASE[:1], 0.5: at([1.0])}, {0.0: [10.0], 0.5: [11.0]})).values()) == {"inconclusive"}


def test_no_error_claim_without_the_papers_p():
    runs = fake({0.0: BASE, 0.25: [b * 0.8 for b in BASE]}, {0.0: [10.0] * 3, 0.25: [11.0] * 3})
    assert list(outcomes(runs)) == ["skipping_saves_wall_time"]


@pytest.mark.parametrize("key,bad,match", [
    ("sweep_p", [0.25, 0.5], r"sweep_p must include 0.*got \[0\.25, 0\.5\]"),
    ("sweep_p", [0.0, 1.0], r"sweep_p\.1 = 1\.0: .*less than 1"),
    ("sweep_p", [0.0, 0.0], r"sweep_p = \[0\.0, 0\.0\]: .*must be strictly increasing"),  # else it trains, then fails
    ("depth", 18, r"depth = 18: must be 6k \+ 2"),
    ("net", "vgg", r"net = 'vgg'"),
    ("widths", [8, 8, 8, 8, 8], r"widths must name one to four stages.*got \[8, 8, 8, 8, 8\]"),
    ("blocks", 0, r"blocks = 0: .*greater than or equal to 1"),
    ("eval_every", 0, r"eval_every = 0: .*greater than or equal to 1"),
    ("test_size", -1, r"test_size = -1"),
    ("warmup", 0, r"warmup = 0: .*greater than 0"),
    ("precision", "fp16", r"precision = 'fp16'"),
])
def test_bad_config_rejected_naming_the_value(key, bad, match):
    with pytest.raises(ValueError, match=match):
        experiments.resolve(exp, "cpu", **{key: bad})


def test_smoke_run_skips_main_paths_for_the_right_share_of_images(tmp_path, needs_mirror):
    result = experiments.run("guo2016", "smoke", results_dir=tmp_path, progress=False)
    fractions = {r["arm"]: r["metrics"]["main_path_fraction"] for r in result["runs"]}
    # 256 images x 2 epochs x 3 blocks = 1536 gates per arm: 5 sd of a binomial share is about 0.064
    assert fractions["p=0"] == 1.0
    assert fractions["p=0.25"] == pytest.approx(0.75, abs=0.06) and fractions["p=0.5"] == pytest.approx(0.5, abs=0.07)
    assert {c["id"] for c in result["claims"]} == {"skipping_saves_wall_time", "error_cost_at_half"}
    assert all(r["precision"]["precision"] == "fp32" for r in result["runs"])


def test_baseline_error_at_equal_time_is_read_off_its_own_seeds_curve():
    def run(p: float, seed: int, seconds: list[float], errors: list[float]) -> dict:
        return {"arm": exp.arm_of(p), "seed": seed, "curves": {"train_seconds": seconds, "monitor_error": errors}}

    runs = [run(0.0, 0, [60, 60, 60], [50, 30, 20]), run(0.0, 1, [120, 120], [40, 10]),
            run(0.5, 0, [45, 45], [60, 45]), run(0.5, 1, [60, 60, 60], [50, 40, 35])]
    # seed 0: the p=0.5 net ends at 1.5 min, halfway between the baseline's readings at 1 and 2 min;
    # seed 1: it ends at 3 min, between the baseline's 2 and 4 min
    assert exp.baseline_error_at(runs, 0.5) == {0: pytest.approx(40.0), 1: pytest.approx(25.0)}
    assert exp.baseline_error_at(runs[:3], 0.5) == {0: pytest.approx(40.0)}  # no p=0.5 net for seed 1

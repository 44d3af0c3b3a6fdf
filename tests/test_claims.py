"""The one rule that decides every claim, and the verdict vocabulary."""

from __future__ import annotations

import pytest

from replib import claims as rule

T_975_DF2 = 4.3026527297  # Student-t 97.5% quantile, 2 degrees of freedom (printed tables: 4.303)


def test_interval_is_the_student_t_interval_of_the_mean():
    mean, low, high = rule.interval([1.0, 2.0, 3.0])  # mean 2, sd 1, n 3
    half = T_975_DF2 * 1.0 / 3**0.5
    assert mean == 2.0 and low == pytest.approx(2 - half, rel=1e-9) and high == pytest.approx(2 + half, rel=1e-9)


def test_one_seed_gives_no_interval_and_an_inconclusive_claim():
    c = rule.direction("d", "a < b", {0: 1.0}, {0: 5.0})
    assert c["outcome"] == "inconclusive" and "one seed" in c["evidence"]["A − B"]


def test_identical_differences_give_a_point_interval():
    assert rule.interval([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)
    assert rule.direction("d", "a < b", {0: 1.0, 1: 2.0}, {0: 3.0, 1: 4.0})["outcome"] == "holds"


@pytest.mark.parametrize("a,b,claimed,outcome", [
    ({0: 1.0, 1: 1.1, 2: 0.9}, {0: 2.0, 1: 2.2, 2: 1.9}, "less", "holds"),
    ({0: 1.0, 1: 1.1, 2: 0.9}, {0: 2.0, 1: 2.2, 2: 1.9}, "greater", "fails"),
    ({0: 1.0, 1: 3.0, 2: 2.0}, {0: 2.0, 1: 2.0, 2: 2.1}, "less", "inconclusive"),  # the seeds disagree
])
def test_direction_outcomes(a, b, claimed, outcome):
    assert rule.direction("d", "s", a, b, claimed=claimed)["outcome"] == outcome


def test_comparisons_are_paired_by_seed_not_by_position():
    """Seed 0 of a is compared with seed 0 of b whatever order the dicts were built in."""
    a = {0: 10.0, 1: 20.0, 2: 30.0}
    b = {2: 29.0, 0: 9.0, 1: 19.0}  # b is a - 1 on every seed
    assert list(rule.paired(a, b)) == [1.0, 1.0, 1.0]
    assert rule.direction("d", "a > b", a, b, claimed="greater")["outcome"] == "holds"


def test_only_seeds_both_arms_have_are_paired():
    assert list(rule.paired({0: 3.0, 1: 4.0, 2: 5.0}, {1: 1.0, 2: 1.0})) == [3.0, 4.0]


def test_no_common_seed_is_an_error():
    with pytest.raises(ValueError, match=r"no seed in common to pair: \[0\] vs \[1\]"):
        rule.paired({0: 1.0}, {1: 1.0})


def test_a_small_gap_that_every_seed_shows_is_not_equivalence():
    """Worse on every seed by a steady amount just inside the margin: the interval decides, not the mean."""
    a = {0: 1.15, 1: 1.16, 2: 1.14}
    b = {0: 1.0, 1: 1.0, 2: 1.0}
    assert rule.equivalence("e", "a within 0.2 of b", a, b, margin=0.2)["outcome"] == "holds"
    assert rule.equivalence("e", "a within 0.1 of b", a, b, margin=0.1)["outcome"] == "fails"
    noisy = {0: 1.3, 1: 0.9, 2: 1.25}
    assert rule.equivalence("e", "noisy within 0.2", noisy, b, margin=0.2)["outcome"] == "inconclusive"


def test_equivalence_needs_a_positive_margin():
    with pytest.raises(ValueError, match="margin must be > 0, got 0"):
        rule.equivalence("e", "s", {0: 1.0}, {0: 1.0}, margin=0)


@pytest.mark.parametrize("measured,outcome", [
    ({0: 0.47, 1: 0.46, 2: 0.48}, "holds"),   # ratio about 1.0
    ({0: 0.74, 1: 0.73, 2: 0.75}, "fails"),   # ratio about 1.57: a one-sided check would pass it
    ({0: 0.30, 1: 0.60, 2: 0.45}, "inconclusive"),
])
def test_band_is_two_sided(measured, outcome):
    assert rule.band("b", "saving matches", measured, 0.47)["outcome"] == outcome


def test_level_compares_with_the_paper_plus_its_tolerance():
    ours = {0: 140.0, 1: 141.0, 2: 139.0}
    assert rule.level("l", "s", ours, 130, tolerance=13)["outcome"] == "holds"
    assert rule.level("l", "s", ours, 120, tolerance=12)["outcome"] == "fails"
    assert rule.level("l", "s", ours, 130)["aspect"] == "level"


@pytest.mark.parametrize("outcomes,combined", [
    (["holds", "holds"], "holds"), (["holds", "inconclusive"], "inconclusive"), (["inconclusive", "fails"], "fails"),
])
def test_all_of(outcomes, combined):
    parts = [{"statement": str(i), "outcome": o, "evidence": {}, "rule": "r", "aspect": "direction"}
             for i, o in enumerate(outcomes)]
    assert rule.all_of("a", "s", parts)["outcome"] == combined


def claim(outcome: str, aspect: str = "direction", counts: bool = True) -> dict:
    return {"id": "x", "kind": "direction", "aspect": aspect, "outcome": outcome, "counts": counts}


@pytest.mark.parametrize("claims,verdict", [
    ([claim("holds"), claim("holds", "level")], "reproduced"),
    ([claim("holds"), claim("fails", "level")], "reproduced in direction"),
    ([claim("holds"), claim("inconclusive", "level")], "reproduced in direction"),
    ([claim("holds"), claim("fails")], "partly reproduced"),
    ([claim("holds"), claim("inconclusive")], "partly reproduced"),
    ([claim("fails"), claim("inconclusive")], "not reproduced"),
    ([claim("inconclusive"), claim("inconclusive", "level")], "inconclusive"),
    ([claim("fails", "level"), claim("holds", counts=False)], "not reproduced"),
])
def test_verdict_vocabulary(claims, verdict):
    assert rule.verdict(claims) == verdict
    assert verdict in rule.VERDICTS


def test_checks_and_claims_beyond_the_paper_do_not_count():
    check = rule.check("k", "keep rises with input", True, {"spearman": "1.000"}, why="alpha > 0 makes it monotone")
    extra = rule.beyond_paper(rule.direction("e", "s", {0: 1.0, 1: 2.0}, {0: 3.0, 1: 4.0}))
    assert check["counts"] is False and extra["counts"] is False
    assert rule.counted([check, extra, claim("fails")]) == [claim("fails")]
    assert rule.verdict([check, extra, claim("fails")]) == "not reproduced"


def test_a_verdict_needs_a_counted_claim():
    with pytest.raises(ValueError, match="at least one counted claim"):
        rule.verdict([rule.check("k", "s", True, {}, why="w")])


def test_every_claim_records_its_rule_evidence_and_outcome():
    c = rule.direction("d", "a < b", {0: 1.0, 1: 2.0}, {0: 3.0, 1: 5.0}, names=("a", "b"), unit=" %")
    assert set(c) == {"id", "statement", "kind", "aspect", "counts", "outcome", "rule", "evidence"}
    assert "paired by seed" in c["rule"] and "95% t-interval" in c["rule"]
    assert c["evidence"]["a − b per seed"] == "-2.00, -3.00"


@pytest.mark.parametrize("values,text", [
    ([1.0, 2.0, 3.0], "2.00 ± 1.00 % (3 seeds)"),
    ([1.5], "1.50 % (1 seed)"),  # one seed: no "± 0.00" that would read as "no spread"
])
def test_mean_sd_says_how_many_seeds(values, text):
    assert rule.mean_sd(values, 2, " %") == text


def test_by_seed_groups_a_metric_by_arm_and_seed_skipping_runs_without_it():
    runs = [{"arm": "a", "seed": 0, "metrics": {"err": 1.0}}, {"arm": "b", "seed": 0, "metrics": {"err": 2.0}},
            {"arm": "a", "seed": 1, "metrics": {"err": 3.0}}, {"arm": "timing", "seed": 0, "metrics": {}}]
    assert rule.by_seed(runs, "err") == {"a": {0: 1.0, 1: 3.0}, "b": {0: 2.0}}
    assert rule.by_seed(runs, "err", str.upper) == {"A": {0: 1.0, 1: 3.0}, "B": {0: 2.0}}

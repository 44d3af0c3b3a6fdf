"""The Hinton 2012 experiment: its config, its claims decided by the paired rule, and its stored result."""

from __future__ import annotations

import numpy as np
import pytest

from replib import experiments
from replib._validate import ConfigError
from replib.experiments import hinton2012 as exp


def resolve(profile="cpu", **overrides) -> dict:
    return experiments.resolve(exp, profile, **overrides)[0]


def fake_runs(curves_by_arm: dict[str, list[list[int]]]) -> list[dict]:
    return [
        {"arm": arm, "seed": s, "metrics": {"test_errors": c[-1], "seconds_per_epoch": 4.0, "train_loss": 0.01},
         "curves": {"epoch": list(range(1, len(c) + 1)), "monitor_errors": c}}
        for arm, per_seed in curves_by_arm.items() for s, c in enumerate(per_seed)
    ]


def outcomes(runs) -> dict[str, str]:
    return {c["id"]: c["outcome"] for c in exp.claims({}, runs)}


def test_the_cpu_profile_runs_the_papers_schedule_compressed_in_time():
    cfg = resolve("cpu")
    assert cfg["lr_decay"] == "compressed" and cfg["epochs"] == 50
    assert {arm: exp.arm_epochs(cfg, arm) for arm in cfg["arms"]} == {"none": 50, "hidden": 50, "input+hidden": 50}
    assert len({spec["lr"] for spec in cfg["arms"].values()}) == 1  # one learning rate for every arm
    full = exp.schedule(cfg, "hidden")
    assert full(0, 50) == {"lr": 1.0, "momentum": 0.5, "dampening": 0.5}
    assert full(8, 50)["momentum"] == 0.99 and full(7, 50)["momentum"] < 0.99  # ramp over a sixth of 50: 8 epochs
    assert full(50, 50)["lr"] == pytest.approx(0.998**3000)  # where the paper's rate ends after 3000 epochs
    assert full(25, 50)["lr"] == pytest.approx(0.998**1500)
    assert exp.schedule(resolve("cpu", epochs=100), "none")(100, 100)["lr"] == pytest.approx(0.998**3000)


def test_the_paper_profile_runs_the_papers_schedule_epoch_by_epoch():
    paper = exp.schedule(resolve("paper"), "none")
    assert paper(2999, 3000)["lr"] == pytest.approx(0.998**2999)
    assert paper(499, 3000)["momentum"] < 0.99 <= paper(500, 3000)["momentum"]  # the paper's 500 epochs


def test_a_short_arm_runs_the_first_epochs_of_the_same_schedule():
    cfg = resolve("cpu", epochs=150, arms={"none": {"share": 1 / 3}})
    full, early = exp.schedule(cfg, "hidden"), exp.schedule(cfg, "none")
    assert exp.arm_epochs(cfg, "none") == 50
    for epoch in (0, 10, 24, 25, 49):
        assert early(epoch, 50) == full(epoch, 150)


def test_an_arms_share_is_overridden_alone():
    cfg = resolve("cpu", arms={"hidden": {"share": 0.5}})
    assert cfg["arms"]["hidden"] == {**resolve("cpu")["arms"]["hidden"], "share": 0.5}
    assert cfg["arms"]["none"]["share"] == 1.0  # the default, kept
    with pytest.raises(ConfigError, match=r"arms.none.share = 1.5: Input should be less than or equal to 1"):
        resolve(arms={"none": {"share": 1.5}})


def test_unknown_override_is_rejected_with_allowed_keys():
    with pytest.raises(ConfigError, match=r"unknown key 'epoch'; allowed: \['activation', 'arms'"):
        resolve(epoch=3)


@pytest.mark.parametrize("bad,match", [(0, "epochs = 0: Input should be greater than or equal to 1"),
                                       (2.5, "epochs = 2.5: Input should be a valid integer"),
                                       ("10", "epochs = '10': Input should be a valid integer")])
def test_bad_epochs_rejected_naming_the_value(bad, match):
    with pytest.raises(ConfigError, match=match):
        resolve(epochs=bad)


@pytest.mark.parametrize("bad,match", [("[1200, 1200]", "hidden = '\\[1200, 1200\\]': Input should be a valid list"),
                                       ([], "hidden = \\[\\]: List should have at least 1 item"),
                                       ([800, 0], "hidden.1 = 0: Input should be greater than or equal to 1"),
                                       (800, "hidden = 800: Input should be a valid list")])
def test_bad_hidden_sizes_rejected_naming_the_value(bad, match):
    with pytest.raises(ConfigError, match=match):
        resolve(hidden=bad)


def test_plateau_epoch():
    assert exp.plateau_epoch(np.array([300, 200, 150, 149, 148, 150])) == 3
    assert exp.plateau_epoch(np.array([300, 200, 100])) == 3


PAPERS_PATTERN = {  # three seeds that each show the paper's picture, with some spread
    "none": [[300, 170, 160, 160, 161, 160], [300, 175, 162, 163, 162, 162], [290, 168, 158, 158, 158, 159]],
    "hidden": [[400, 250, 180, 150, 140, 130], [400, 240, 175, 148, 137, 128], [410, 255, 185, 155, 141, 133]],
    "input+hidden": [[500, 300, 200, 150, 125, 110], [500, 290, 195, 148, 122, 108], [505, 305, 202, 152, 127, 113]],
}


def test_claims_hold_on_runs_that_show_the_papers_pattern_on_every_seed():
    assert outcomes(fake_runs(PAPERS_PATTERN)) == {
        "final_error_order": "holds", "paper_levels": "holds", "dropout_keeps_improving": "holds"}


def test_claims_fail_when_dropout_is_worse_on_every_seed():
    runs = fake_runs({
        "none": [[300, 120, 110, 110], [300, 121, 112, 111], [300, 119, 109, 109]],
        "hidden": [[300, 200, 150, 150], [300, 200, 152, 152], [300, 200, 149, 149]],
        "input+hidden": [[300, 200, 160, 160], [300, 200, 161, 161], [300, 200, 158, 158]],
    })
    assert outcomes(runs)["final_error_order"] == "fails" and outcomes(runs)["paper_levels"] == "fails"


def test_a_mean_gap_the_seeds_disagree_on_is_inconclusive():
    pattern = {**PAPERS_PATTERN, "input+hidden": [[500, 300, 200, 150, 125, 120], [500, 290, 195, 148, 122, 145],
                                                  [505, 305, 202, 152, 127, 125]]}
    assert outcomes(fake_runs(pattern))["final_error_order"] == "inconclusive"  # hidden vs input+hidden: +10, -17, +8


def test_one_seed_decides_nothing():
    one = {arm: curves[:1] for arm, curves in PAPERS_PATTERN.items()}
    assert set(outcomes(fake_runs(one)).values()) == {"inconclusive"}


def test_facts_quote_the_result():
    result = {"runs": fake_runs(PAPERS_PATTERN), "config": resolve("cpu", epochs=6)}
    facts = exp.facts(result)
    assert facts["final_hidden"] == "130.3 ± 2.5 errors (3 seeds)" and facts["epochs"] == "6"
    assert facts["none_epochs"] == "6" and facts["ramp_epochs"] == "1"
    assert facts["lr_end_factor"] == facts["paper_lr_end_factor"] == "0.0025"  # compressed: it ends where the paper's does
    assert facts["lr_decay"] == f"{0.998 ** 500:.4f}"  # 3000 / 6 of the paper's epochs in each of ours
    assert facts["paper_net_epochs"] == "45,000" and facts["paper_cpu_days"] == "2"  # 45,000 x 4 s
    assert facts["jitter_none"] == "27.7 ± 0.9 errors (3 seeds)"  # all 5 steps of the 6-epoch curves: 142 / 5, ...


def test_epoch_to_epoch_change_is_over_the_last_epochs():
    runs = fake_runs({"none": [[300, 100, 110, 100, 100]]})
    assert exp.epoch_to_epoch(runs, last=3) == {"none": {0: pytest.approx(20 / 3)}}  # 10, 10, 0



# --------------------------------------------------------------------------- stacked seeds


def test_seeds_trained_stacked_give_the_runs_they_give_alone(needs_mnist):
    """Two seeds of every arm at a tiny size, trained one at a time and as stacks: the same units and
    metrics, each stacked member initialised as it is alone, and in distribution the same net."""
    tiny = {"epochs": 3, "train_size": 1000, "test_size": 500, "seeds": 2, "progress": False, "init_std": 0.1,
            "momentum": 0.5, "arms": {arm: {"lr": 0.1, "share": 1.0} for arm in ("none", "hidden", "input+hidden")}}
    alone = experiments.run(exp, "smoke", **tiny)
    stacked = experiments.run(exp, "smoke", stack=True, rerun=True, **tiny)
    assert [(r["arm"], r["seed"]) for r in stacked["runs"]] == [(r["arm"], r["seed"]) for r in alone["runs"]]
    for a, s in zip(alone["runs"], stacked["runs"]):
        assert "stacked_with" not in a and s["stacked_with"] == [0, 1]
        assert set(s["metrics"]) == set(a["metrics"]) and set(s["curves"]) == set(a["curves"])
        assert len(s["curves"]["epoch"]) == len(a["curves"]["epoch"]) == exp.arm_epochs(stacked["config"], a["arm"])
        assert abs(s["metrics"]["test_errors"] - a["metrics"]["test_errors"]) < 40  # of 500: the same nets, other masks
        assert s["metrics"]["test_errors"] < 400  # learnt something: chance is about 450 of 500
        assert abs(s["curves"]["train_loss"][-1] - a["curves"]["train_loss"][-1]) < 0.15  # masks on, as alone
    none = [r for r in stacked["runs"] if r["arm"] == "none"]  # no dropout: the stack is exactly the nets alone
    for a, s in zip([r for r in alone["runs"] if r["arm"] == "none"], none):
        assert np.abs(np.subtract(s["curves"]["monitor_errors"], a["curves"]["monitor_errors"])).max() <= 2  # rounding
        assert s["curves"]["train_loss"] == pytest.approx(a["curves"]["train_loss"], rel=1e-4)


def test_stacking_an_experiment_that_cannot_is_a_clear_error():
    with pytest.raises(ValueError, match=r"stack=True: wan2013 cannot train its seeds stacked; the experiments that "
                                         r"can: \['hinton2012'\]"):
        experiments.run("wan2013", "smoke", stack=True)


def test_a_bad_learning_rate_decay_is_rejected_naming_what_is_allowed():
    with pytest.raises(ConfigError, match=r"lr_decay.*= 'fast'.*Input should be 'compressed'"):
        resolve(lr_decay="fast")

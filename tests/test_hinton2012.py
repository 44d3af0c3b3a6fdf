"""The Hinton 2012 experiment: config resolution and claims computed from runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from replib.experiments import hinton2012 as exp


def fake_runs(curves_by_arm: dict[str, list[list[int]]]) -> list[dict]:
    return [
        {"arm": arm, "seed": s, "metrics": {"test_errors": c[-1]}, "curves": {"epoch": list(range(1, len(c) + 1)), "test_errors": c}}
        for arm, per_seed in curves_by_arm.items() for s, c in enumerate(per_seed)
    ]


def test_schedule_is_compressed_to_the_epoch_budget():
    config = exp.resolve("cpu", epochs=30)
    assert config["lr_decay"] ** 30 == pytest.approx(0.998**3000)
    assert config["momentum_ramp_epochs"] == 5  # 500/3000 of training
    assert exp.resolve("paper")["lr_decay"] == pytest.approx(0.998)


def test_unknown_override_is_rejected_with_allowed_keys():
    with pytest.raises(ValueError, match="'epoch'.*allowed"):
        exp.resolve("cpu", epoch=3)


@pytest.mark.parametrize("bad", [0, 2.5, "10"])
def test_bad_epochs_rejected(bad):
    with pytest.raises(ValueError, match="epochs"):
        exp.resolve("cpu", epochs=bad)


def test_plateau_epoch():
    assert exp.plateau_epoch(np.array([300, 200, 150, 149, 148, 150])) == 3
    assert exp.plateau_epoch(np.array([300, 200, 100])) == 3


def test_claims_hold_on_runs_that_show_the_papers_pattern():
    runs = fake_runs({
        "none": [[300, 170, 160, 160, 161, 160]] * 2,
        "hidden": [[400, 250, 180, 150, 140, 130]] * 2,
        "input+hidden": [[500, 300, 200, 150, 125, 110]] * 2,
    })
    claims = {c["id"]: c for c in exp.claims({"epochs": 6}, runs)}
    assert all(c["holds"] for c in claims.values())
    assert claims["dropout_keeps_improving"]["evidence"]["none_plateau_epoch"] == 3


def test_claims_fail_when_dropout_does_not_help():
    runs = fake_runs({
        "none": [[300, 120, 110, 110]],
        "hidden": [[300, 200, 150, 150]],
        "input+hidden": [[300, 200, 140, 140]],
    })
    claims = {c["id"]: c for c in exp.claims({"epochs": 4}, runs)}
    assert not any(c["holds"] for c in claims.values())


def test_paper_levels_need_both_dropout_arms_near_130_and_110():
    runs = fake_runs({
        "none": [[300, 170, 160, 160]],
        "hidden": [[300, 200, 150, 140]],  # within 10% of 130
        "input+hidden": [[300, 200, 150, 125]],  # more than 10% above 110
    })
    claims = {c["id"]: c for c in exp.claims({"epochs": 4}, runs)}
    assert not claims["paper_levels"]["holds"]
    assert claims["paper_levels"]["evidence"]["ours"] == {"hidden": 140.0, "input+hidden": 125.0}


@pytest.mark.parametrize("bad", ["[1200, 1200]", [], [800, 0], 800])
def test_bad_hidden_sizes_rejected_with_a_hint(bad):
    with pytest.raises(ValueError, match="hidden must be"):
        exp.resolve("cpu", hidden=bad)


@pytest.mark.parametrize("device,match", [("gpu", "'cpu' or 'cuda'"), ("cuda", "CUDA is not available")])
def test_bad_or_unavailable_device_rejected(device, match):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match=match):
        exp.resolve("cpu", device=device)

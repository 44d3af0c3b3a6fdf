"""The DropConnect experiment: arms shared between panels, config validation, claims computed from runs."""

from __future__ import annotations

import pytest
import torch

from replib.experiments import wan2013 as exp
from replib.models import DropConnectMLP


def test_panels_share_the_headline_net_instead_of_training_it_twice():
    config = exp.resolve("cpu")
    names = exp.arms(config)
    assert len(names) == len(set(names))
    assert names.count("dropconnect 400") == 1  # panel (a), panel (b) at p = 0.5 and the mask comparison
    assert "dropconnect 400 per-minibatch" in names and "dropout 400 p=0.2" in names
    assert exp.arm_specs(config)["no-drop 800"] == {"method": "no-drop", "hidden": 800, "p": 0.0, "masks": "per_example"}


@pytest.mark.parametrize("key,bad", [("sizes", [400]), ("sizes", "200,400"), ("sweep_p", [0.2, 0.8, 0.9]),
                                     ("sweep_p", [0.0, 0.5, 1.0]), ("gaussian_samples", 0), ("sweep_hidden", -1)])
def test_bad_config_rejected_quoting_the_value(key, bad):
    with pytest.raises(ValueError, match=key):
        exp.resolve("cpu", **{key: bad})


CONFIG = {"sizes": [200, 800], "sweep_hidden": 200, "sweep_p": [0.2, 0.5, 0.8], "gaussian_samples": 10}


def fake_runs(errors: dict[str, list[float]], gaussian_offset: float = -0.05,
              offsets: dict[str, float] | None = None) -> list[dict]:
    runs = []
    for arm, per_seed in errors.items():
        for seed, err in enumerate(per_seed):
            metrics = {"test_error": err, "seconds_per_epoch": 1.0}
            if arm.startswith("dropconnect"):
                metrics["test_error_gaussian"] = err + (offsets or {}).get(arm, gaussian_offset)
            runs.append({"arm": arm, "seed": seed, "metrics": metrics})
    return runs


def paper_like(**changes) -> dict[str, list[float]]:
    errors = {
        "no-drop 200": [1.6, 1.6], "dropout 200": [1.5, 1.5], "dropconnect 200": [1.5, 1.5],
        "no-drop 800": [1.8, 1.8], "dropout 800": [1.3, 1.3], "dropconnect 800": [1.2, 1.2],
        "dropconnect 200 p=0.2": [1.6, 1.6], "dropout 200 p=0.2": [1.6, 1.6],
        "dropconnect 200 p=0.8": [1.7, 1.7], "dropout 200 p=0.8": [1.9, 1.9],
        "dropconnect 200 per-minibatch": [1.55, 1.55],
    }
    return {**errors, **changes}


def held(errors, **kw) -> dict[str, bool]:
    return {c["id"]: c["holds"] for c in exp.claims(CONFIG, fake_runs(errors, **kw))}


def test_every_claim_holds_on_paper_like_runs():
    assert all(held(paper_like()).values())


def test_claims_fail_when_the_paper_is_contradicted():
    contradicted = paper_like(**{"dropconnect 800": [1.9, 1.9], "dropconnect 200 p=0.2": [1.0, 1.0],
                                 "dropconnect 200 per-minibatch": [1.4, 1.4]})
    assert held(contradicted, gaussian_offset=0.1) == {
        "regularizers_beat_nodrop": False, "gain_grows_with_width": False, "interior_minimum_in_p": False,
        "per_example_masks_at_least_as_good": False, "gaussian_inference_at_least_as_good": False,
    }


def test_gaussian_claim_needs_every_configuration_not_the_average():
    """One drop rate where Gaussian inference helps a lot must not hide two where it hurts."""
    runs = fake_runs(paper_like(), offsets={"dropconnect 200 p=0.8": -0.9, "dropconnect 200": 0.2,
                                            "dropconnect 200 p=0.2": 0.2})
    claim = next(c for c in exp.claims(CONFIG, runs) if c["id"] == "gaussian_inference_at_least_as_good")
    assert not claim["holds"] and claim["evidence"]["gaussian_minus_mean_points"]["dropconnect 200 p=0.8"] == -0.9


def test_gaussian_inference_switches_every_layer_and_rejects_unknown_rules():
    model = DropConnectMLP([6, 5, 4, 3], p=0.5).eval()
    x = torch.rand(7, 6)
    torch.manual_seed(0)
    assert torch.equal(model(x), model(x))  # mean inference is deterministic
    model.set_inference("gaussian", samples=3)
    assert all(layer.inference == "gaussian" and layer.samples == 3 for layer in model.dropconnect)
    assert not torch.equal(model(x), model(x))
    with pytest.raises(ValueError, match="inference"):
        model.set_inference("median")

"""The DropConnect experiment: arms shared between panels, config validation, claims decided by the paired rule."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from replib import experiments
from replib.experiments import wan2013 as exp
from replib.models import DropConnectMLP

COMMITTED = Path(__file__).resolve().parents[1] / "results" / "wan2013" / "cpu.json"


FIGURE2 = {"widths": [200, 400, 800], "sweep_p": [0.2, 0.5, 0.8], "sweep_width": 400}  # every panel


def test_panels_share_the_headline_net_instead_of_training_it_twice():
    config, seeds = experiments.resolve(exp, "cpu", **FIGURE2)
    arms = [arm for arm, seed in exp.units(config, seeds, {}) if seed == seeds[0]]
    assert arms.count("dropconnect 400") == 1  # panel (a), panel (b) at p = 0.5 and the mask comparison
    assert len(arms) == len(set(arms))


def test_every_arm_runs_for_every_seed():
    config, seeds = experiments.resolve(exp, "cpu", **FIGURE2)
    units = exp.units(config, seeds, {})
    assert {seed for _, seed in units} == set(seeds)
    assert len(units) == len(exp.arm_specs(config)) * len(seeds)


@pytest.mark.parametrize("overrides,match", [
    ({"widths": []}, r"widths = \[\]"),
    ({"widths": "200,400"}, r"widths = '200,400'"),
    ({"sweep_p": [0.2, 0.8, 0.9]}, r"increasing drop rates including 0.5.*\[0.2, 0.8, 0.9\]"),
    ({"sweep_p": [0.5, 0.2, 0.8]}, r"increasing drop rates including 0.5.*\[0.5, 0.2, 0.8\]"),
    ({"sweep_p": [0.2, 0.5]}, r"at least 3 increasing drop rates.*\[0.2, 0.5\]"),
    ({"sweep_p": [0.2, 0.5, 1.0]}, r"sweep_p.2 = 1.0: Input should be less than 1"),
    ({"mc_samples": 0}, r"mc_samples = 0: Input should be greater than or equal to 1"),
    ({"sweep_width": -1}, r"sweep_width = -1: Input should be greater than or equal to 1"),
    ({"lr_milestones": [12, 21]}, r"lr_milestones.0 = 12: Input should be less than 1"),
])
def test_bad_config_rejected_quoting_the_value(overrides, match):
    with pytest.raises(ValueError, match=match):
        experiments.resolve(exp, "cpu", **overrides)


def test_old_config_names_are_rejected_naming_the_new_ones():
    with pytest.raises(ValueError, match=r"unknown key 'sizes'; allowed: .*'widths'"):
        experiments.resolve(exp, "cpu", sizes=[200, 400])


CONFIG = experiments.resolve(exp, "cpu", widths=[200, 800], sweep_p=[0.2, 0.5, 0.8], sweep_width=200, mc_samples=10)[0]
NOISE = (0.0, 0.03, -0.02)  # per-seed jitter, scaled differently per arm, so that the intervals have a width
SCALES = (1.0, 2.3, 1.9, 0.6, 2.9, 1.3, 0.8, 2.1, 1.1, 2.6, 0.4)


def paper_like(**changes: float) -> dict[str, float]:
    """Test errors (%) shaped like Figure 2: regularizers win and win more on the wide net, U-shape in p."""
    errors = {
        "no-drop 200": 1.6, "dropout 200": 1.5, "dropconnect 200": 1.5,
        "no-drop 800": 1.8, "dropout 800": 1.3, "dropconnect 800": 1.2,
        "dropconnect 200 p=0.2": 1.7, "dropout 200 p=0.2": 1.6,
        "dropconnect 200 p=0.8": 1.8, "dropout 200 p=0.8": 1.9,
        "dropconnect 200 per-minibatch": 1.7,
    }
    return {**errors, **changes}


def fake_runs(errors: dict[str, float], seeds=(0, 1, 2), gaussian: float = -0.1,
              gaussian_by_arm: dict[str, float] | None = None) -> list[dict]:
    runs = []
    for i, (arm, error) in enumerate(errors.items()):
        for seed in seeds:
            metrics = {"test_error": error + NOISE[seed] * SCALES[i], "seconds_per_epoch": 1.0}
            if arm.startswith("dropconnect"):
                metrics["test_error_gaussian"] = metrics["test_error"] + (gaussian_by_arm or {}).get(arm, gaussian) + NOISE[seed] / 2
            runs.append({"arm": arm, "seed": seed, "metrics": metrics})
    return runs


def outcomes(runs) -> dict[str, str]:
    return {c["id"]: c["outcome"] for c in exp.claims(CONFIG, runs)}


def test_every_claim_holds_on_paper_like_runs():
    assert set(outcomes(fake_runs(paper_like())).values()) == {"holds"}


def test_claims_fail_when_every_seed_contradicts_the_paper():
    contradicted = paper_like(**{"dropconnect 800": 1.9, "dropout 800": 1.9, "dropconnect 200 p=0.2": 1.0,
                                 "dropconnect 200 per-minibatch": 1.3})
    assert outcomes(fake_runs(contradicted, gaussian=0.1)) == {
        "regularizers_beat_nodrop": "fails", "gain_grows_with_width": "fails", "interior_minimum_in_p": "fails",
        "per_example_masks_at_least_as_good": "fails", "gaussian_inference_at_least_as_good": "fails",
    }


def test_one_seed_decides_no_claim():
    assert set(outcomes(fake_runs(paper_like(), seeds=(0,))).values()) == {"inconclusive"}


def test_a_gap_within_the_seed_spread_is_inconclusive():
    runs = fake_runs(paper_like(**{"dropconnect 200 per-minibatch": 1.51}))
    assert outcomes(runs)["per_example_masks_at_least_as_good"] == "inconclusive"


def test_gaussian_claim_needs_every_configuration_not_the_average():
    """One drop rate where Gaussian inference helps a lot must not hide two where it hurts."""
    runs = fake_runs(paper_like(), gaussian_by_arm={"dropconnect 200 p=0.8": -0.9, "dropconnect 200": 0.2,
                                                    "dropconnect 200 p=0.2": 0.2})
    assert outcomes(runs)["gaussian_inference_at_least_as_good"] == "fails"


def test_comparisons_are_paired_by_seed():
    """A seed effect shared by both arms cancels: the per-seed differences are what the rule sees."""
    runs = fake_runs(paper_like())
    for r in runs:
        r["metrics"]["test_error"] += 0.5 * r["seed"]  # a large seed effect, common to every arm
    assert outcomes(runs)["regularizers_beat_nodrop"] == "holds"


def test_gaussian_inference_switches_every_layer_and_rejects_unknown_rules():
    model = DropConnectMLP([6, 5, 4, 3], p=0.5).eval()
    x = torch.rand(7, 6)
    torch.manual_seed(0)
    assert torch.equal(model(x), model(x))  # mean inference is deterministic
    model.set_inference("gaussian", samples=3)
    assert all(layer.inference == "gaussian" and layer.samples == 3 for layer in model.dropconnect)
    assert not torch.equal(model(x), model(x))
    with pytest.raises(ValueError, match=r"inference must be one of \['mean', 'gaussian'\], got 'median'"):
        model.set_inference("median")


ROW = experiments.resolve(exp, "cpu", mc_samples=10)[0]  # the cpu profile: Table 2's row alone


def test_the_table2_row_alone_trains_the_three_methods_at_one_width():
    assert list(exp.arm_specs(ROW)) == ["no-drop 800", "dropout 800", "dropconnect 800"]


def test_the_table2_row_alone_is_decided_on_its_own_claims_only():
    runs = fake_runs({arm: paper_like()[arm] for arm in ("no-drop 800", "dropout 800", "dropconnect 800")})
    claims = {c["id"]: c["outcome"] for c in exp.claims(ROW, runs)}
    assert claims == {"regularizers_beat_nodrop": "holds", "gaussian_inference_at_least_as_good": "holds"}


def test_the_table2_row_alone_has_its_facts_and_a_two_panel_figure():
    import matplotlib.pyplot as plt

    runs = fake_runs({arm: paper_like()[arm] for arm in ("no-drop 800", "dropout 800", "dropconnect 800")})
    for r in runs:
        r["curves"] = {"train_loss": [0.3, 0.1], "monitor_loss": [0.2, 0.1]}
    result = {"config": ROW, "runs": runs, "seeds": [0, 1, 2], "profile": "cpu", "paper_values": exp.PAPER_VALUES}
    facts = exp.facts(result)
    assert facts["error_dropconnect_large"].startswith("1.2") and "p_low" not in facts
    fig = exp.figure(result)
    assert len(fig.axes) == 2
    plt.close(fig)

"""The atlas: its two rounds (every grid value, then the chosen ones), its claims, its config and the nets it builds."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from replib import experiments, models
from replib._validate import ConfigError
from replib.experiments import atlas as exp
from replib.methods import GaussianDropout, MaxDrop, MaxPoolDropout

GRIDS = {"mlp": {"none": [0.0], "dropout": [0.25, 0.5], "gaussian": [0.5], "dropconnect": [0.5], "standout": [1.0],
                 "sparse_vd": [0.1, 1.0]},
         "conv": {"none": [0.0], "dropout": [0.1, 0.2], "spatial": [0.1], "gaussian": [0.1], "maxpool": [0.1],
                  "maxdrop": [0.5], "cutout": [8.0]},
         "rnn": {"none": [0.0], "naive": [0.2], "variational": [0.2], "rnndrop": [0.2], "semeniuta": [0.2]}}
CONFIG = {"tasks": ["mlp", "conv", "rnn"], "grids": GRIDS, "select_seeds": 1}


def net(arm: str, seed: int, val: float, test: float, **extra) -> dict:
    task = exp.parse(arm)[0]
    m = exp.METRIC[task]
    return {"arm": arm, "seed": seed, "metrics": {f"val_{m}": val, f"test_{m}": test, f"train_{m}": val / 3,
                                                  "train_seconds": 60.0, **extra}}


def runs_where(test: dict[str, dict[str, list[float]]], val: dict[str, float] | None = None, pruned=(95.0, 96.0, 97.0)):
    """Every unit of CONFIG on seeds 0-2: grid values on seed 0 (validation from ``val``, else 50), then the chosen
    (the first grid value unless ``val`` says otherwise) on seeds 1-2, with test scores ``test[task][method][seed]``."""
    val = val or {}
    done = {}
    for arm, seed in exp.units(CONFIG, [0, 1, 2], {}):
        task, method, _ = exp.parse(arm)
        done[(arm, seed)] = net(arm, seed, val.get(arm, 50.0), test[task][method][seed], pruned_share=pruned[seed])
    for arm, seed in exp.units(CONFIG, [0, 1, 2], done):
        if (arm, seed) not in done:
            task, method, _ = exp.parse(arm)
            done[(arm, seed)] = net(arm, seed, 50.0, test[task][method][seed], pruned_share=pruned[seed])
    return list(done.values())


HELPS = {  # every method below no dropout on every seed; spatial below dropout; recurrent below naive
    "mlp": {"none": [2.0, 2.1, 1.9], **{m: [1.5, 1.6, 1.4] for m in ("dropout", "gaussian", "dropconnect", "standout",
                                                                      "sparse_vd")}},
    "conv": {"none": [20.0, 21.0, 19.0], "dropout": [18.0, 18.5, 17.5], "spatial": [17.0, 17.4, 16.4],
             "gaussian": [18.0, 18.6, 17.6], "maxpool": [18.2, 18.4, 17.7], "maxdrop": [18.4, 18.9, 17.9],
             "cutout": [17.5, 18.1, 17.0]},
    "rnn": {"none": [200.0, 201.0, 199.0], "naive": [180.0, 181.0, 179.0], **{m: [170.0, 171.5, 169.2] for m in
                                                                               ("variational", "rnndrop", "semeniuta")}},
}


def outcomes(runs, config=CONFIG) -> dict[str, str]:
    return {c["id"]: c["outcome"] for c in exp.claims(config, runs)}


def test_arm_names_round_trip():
    assert exp.parse(exp.arm_of("mlp", "dropout", 0.5)) == ("mlp", "dropout", 0.5)
    assert exp.arm_of("conv", "none", 0.0) == "conv/none" and exp.parse("conv/none") == ("conv", "none", 0.0)
    assert exp.arm_of("conv", "cutout", 16.0) == "conv/cutout@16"


def test_selection_round_runs_every_grid_value_on_the_selection_seeds_only():
    first = exp.units(CONFIG, [0, 1, 2], {})
    assert {seed for _, seed in first} == {0}
    assert len(first) == sum(len(v) for grid in GRIDS.values() for v in grid.values())
    assert ("mlp/dropout@0.25", 0) in first and ("mlp/dropout@0.5", 0) in first


def test_test_round_runs_no_dropout_and_each_method_at_its_best_validation_value():
    done = {(r["arm"], r["seed"]): r for r in runs_where(HELPS, val={"mlp/dropout@0.25": 3.0, "mlp/dropout@0.5": 2.0,
                                                                      "conv/dropout@0.1": 30.0, "conv/dropout@0.2": 31.0})
            if r["seed"] == 0}
    later = exp.units(CONFIG, [0, 1, 2], done)[len(done):]
    assert ("mlp/dropout@0.5", 1) in later and ("mlp/dropout@0.25", 1) not in later
    assert ("conv/dropout@0.1", 2) in later and ("conv/none", 2) in later
    assert len(later) == 2 * sum(len(grid) for grid in GRIDS.values())


def test_chosen_value_breaks_ties_by_grid_order():
    runs = [net("mlp/dropout@0.25", 0, 2.0, 0.0), net("mlp/dropout@0.5", 0, 2.0, 0.0)]
    assert exp.chosen({**CONFIG, "tasks": ["mlp"], "grids": {"mlp": {"dropout": [0.5, 0.25]}}}, runs, "mlp") == {"dropout": 0.5}


def test_every_claim_holds_where_every_method_helps_as_claimed():
    assert set(outcomes(runs_where(HELPS)).values()) == {"holds"}


def test_a_method_that_hurts_fails_its_tasks_claim():
    hurt = {**HELPS, "conv": {**HELPS["conv"], "maxpool": [22.0, 23.0, 21.5]}}
    got = outcomes(runs_where(hurt))
    assert got["conv_regularisers_beat_none"] == "fails" and got["mlp_regularisers_beat_none"] == "holds"


def test_spatial_claim_fails_when_elementwise_dropout_wins_on_every_seed():
    swapped = {**HELPS, "conv": {**HELPS["conv"], "spatial": [19.0, 19.3, 18.2]}}
    assert outcomes(runs_where(swapped))["spatial_beats_elementwise"] == "fails"


def test_recurrent_claim_is_inconclusive_when_one_method_ties_naive():
    tie = {**HELPS, "rnn": {**HELPS["rnn"], "semeniuta": [179.0, 182.0, 179.5]}}
    assert outcomes(runs_where(tie))["recurrent_beats_naive"] == "inconclusive"


def test_pruning_claim_is_decided_on_the_chosen_sparse_vd_nets():
    assert outcomes(runs_where(HELPS, pruned=(80.0, 82.0, 81.0)))["sparse_vd_prunes"] == "fails"
    assert outcomes(runs_where(HELPS, pruned=(95.0, 96.0, 97.0)))["sparse_vd_prunes"] == "holds"


def test_claims_cover_only_the_tasks_run():
    runs = [r for r in runs_where(HELPS) if r["arm"].startswith("conv/")]
    assert set(outcomes(runs, {**CONFIG, "tasks": ["conv"]})) == {"conv_regularisers_beat_none", "spatial_beats_elementwise"}


def test_every_profile_trains_all_three_tasks_and_the_cpu_profile_fits_its_design():
    config, seeds = experiments.resolve(exp, "cpu")
    assert config["tasks"] == list(exp.TASKS) and len(seeds) >= 3
    assert config["grids"]["mlp"]["dropconnect"] == [0.5]
    assert all(len(v) == 2 for task in ("conv", "rnn") for m, v in config["grids"][task].items() if m != "none")


@pytest.mark.parametrize("grids, named", [
    ({"mlp": {"dropout": [0.5], "shakeout": [0.5]}}, "exactly the methods"),
    ({"mlp": {"dropout": [1.5]}}, "out of range"),
    ({"conv": {"cutout": [7.5]}}, "out of range"),
    ({"conv": {"cutout": [100.0]}}, "[100.0] out of range .a whole number of pixels from 1 to 32"),
    ({"mlp": {"none": [0.5]}}, "must be [0]"),
    ({"rnn": {"naive": [0.2, 0.2]}}, "distinct"),
    ({"mpl": {"dropout": [0.9]}}, "grids: unknown task 'mpl'; the tasks: mlp, conv, rnn"),  # not ignored
])
def test_bad_grids_are_refused_naming_the_grid(grids, named):
    with pytest.raises(ConfigError, match=named.replace("[", r"\[").replace("]", r"\]")):
        experiments.resolve(exp, "smoke", grids=grids)


def test_a_grid_of_a_task_not_run_is_checked_too_and_no_task_runs_twice():
    with pytest.raises(ConfigError, match="out of range"):
        experiments.resolve(exp, "smoke", tasks=["mlp"], grids={"conv": {"dropout": [7.0]}})
    with pytest.raises(ConfigError, match=re.escape("tasks must name each task once, got ['mlp', 'mlp']")):
        experiments.resolve(exp, "smoke", tasks=["mlp", "mlp"])


def test_mlp_nets_put_each_methods_noise_on_the_hidden_layers():
    cfg = {"hidden": [16, 16]}
    gaussian = exp.mlp_net(cfg, "gaussian", 0.3)
    assert sum(isinstance(m, GaussianDropout) for m in gaussian.modules()) == 2
    assert isinstance(exp.mlp_net(cfg, "sparse_vd", 1.0), models.SparseVDMLP)
    assert isinstance(exp.mlp_net(cfg, "dropconnect", 0.5), models.DropConnectMLP)
    x = torch.randn(8, 784)
    gaussian.eval()
    assert torch.equal(gaussian(x), gaussian(x)), "Gaussian dropout is the identity in eval"


def test_sparse_vd_mlp_prunes_in_eval_exactly_as_the_masked_dense_net():
    torch.manual_seed(0)
    model = models.SparseVDMLP([20, 30, 5]).eval()
    with torch.no_grad():
        for layer in model.layers:
            layer.log_sigma2.uniform_(-12.0, 2.0)  # some weights above log alpha = 3, some below
    x = torch.randn(6, 20)
    h = x
    for i, layer in enumerate(model.layers):
        keep = (layer.log_alpha <= 3.0).float()
        h = h @ (layer.theta * keep).T + layer.bias
        h = torch.relu(h) if i == 0 else h
    assert torch.allclose(model(x), h, atol=1e-6)
    share = float(sum(float((layer.log_alpha > 3.0).sum()) for layer in model.layers)) / (20 * 30 + 30 * 5)
    assert 0.0 < model.sparsity() == pytest.approx(share)
    assert model.set_threshold(float("inf")).sparsity() == 0.0


def test_elbo_adds_no_kl_at_the_first_step_and_the_full_weight_after_the_warm_up():
    torch.manual_seed(0)
    model, batch = models.SparseVDMLP([4, 3]), (torch.randn(5, 4), torch.randint(0, 3, (5,)))
    elbo = exp.ELBO(weight=0.5, n_train=100, warmup_steps=4)
    torch.manual_seed(1)
    first = elbo(model, batch)
    torch.manual_seed(1)
    assert torch.allclose(first, torch.nn.functional.cross_entropy(model(batch[0]), batch[1]))
    for _ in range(3):
        elbo(model, batch)
    torch.manual_seed(2)
    later = elbo(model, batch)
    torch.manual_seed(2)
    assert torch.allclose(later, torch.nn.functional.cross_entropy(model(batch[0]), batch[1]) + 0.5 * model.kl() / 100)


def test_pool_dropout_fast_net_drops_inside_every_pooling_and_is_deterministic_in_eval():
    model = models.FastCifarNet([8, 16], pool_dropout=0.2)
    assert sum(isinstance(m, MaxPoolDropout) for m in model.modules()) == 2
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in model.modules())
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    assert torch.equal(model(x), model(x))
    plain = models.FastCifarNet([8, 16])
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in plain.modules()) == 2


def test_max_drop_fast_net_drops_each_blocks_feature_map_maxima():
    model = exp.conv_net({"widths": [8, 16], "depth": 2}, "maxdrop", 0.25)
    layers = [m for m in model.modules() if isinstance(m, MaxDrop)]
    assert len(layers) == 2 and all(m.p == 0.25 and m.mode == "feature" for m in layers)
    assert not any(isinstance(m, MaxDrop) for m in exp.conv_net({"widths": [8, 16], "depth": 2}, "dropout", 0.1).modules())


def test_recurrent_variants_differ_only_in_what_they_drop_inside_the_recurrence():
    cfg = {"hidden": 8, "init_scale": 0.1}
    nets = {m: exp.rnn_net(cfg, m, 0.3, 50) for m in ("naive", "variational", "rnndrop", "semeniuta")}
    assert {m: n.mode for m, n in nets.items()} == {m: m for m in nets}
    assert all(n.p_input == n.p_output == 0.3 for n in nets.values())
    assert nets["naive"].p_recurrent == 0.0 and all(nets[m].p_recurrent == 0.3 for m in ("variational", "rnndrop", "semeniuta"))


def test_facts_table_and_figure_read_a_result():
    runs = runs_where(HELPS)
    for r in runs:
        r["wall_seconds"] = 60.0
        if r["arm"].startswith("mlp/sparse_vd"):
            r["metrics"]["test_error_unpruned"] = 1.4
            r["curves"] = {"thresholds": list(exp.THRESHOLDS), "pruned_share": list(np.linspace(60, 99, 6)),
                           "test_error_pruned": list(np.linspace(1.4, 3.0, 6))}
    config, _ = experiments.resolve(exp, "smoke", grids=GRIDS)
    result = {"config": config, "runs": runs, "seeds": [0, 1, 2], "profile": "cpu", "paper_values": exp.PAPER_VALUES,
              "provenance": {"wall_seconds": 3600.0}}
    facts = exp.facts(result)
    assert facts["mlp_best"] in exp.METHOD_NAMES.values() and facts["pruned_share"].startswith("96.0")
    assert facts["conv_spatial_chosen"] == "0.1" and facts["run_minutes"] == "60 min"
    table = exp.table(result)
    assert len(table) == sum(len(grid) for grid in GRIDS.values())
    assert "the reference" in set(table["minus plain dropout (paired)"])
    assert len(exp.compression_table(result)) == 5
    import matplotlib.pyplot as plt

    plt.close(exp.figure(result))


def test_a_diverged_net_is_scored_as_a_uniform_guess_marked_and_never_chosen():
    out = exp.scored({"metrics": {"val_perplexity": float("nan"), "test_perplexity": float("nan"),
                                  "train_perplexity": float("inf"), "train_seconds": 30.0},
                      "curves": {"train_loss": [5.0, float("nan")]}}, "rnn")
    assert out["metrics"]["diverged"] == 1.0 and out["metrics"]["test_perplexity"] == exp.CHANCE["perplexity"]
    assert out["curves"]["train_loss"] == [5.0, None] and out["metrics"]["train_seconds"] == 30.0
    fine = exp.scored({"metrics": {"val_error": 2.0, "test_error": 2.1, "train_error": 0.0}, "curves": {}}, "mlp")
    assert fine["metrics"] == {"val_error": 2.0, "test_error": 2.1, "train_error": 0.0, "diverged": 0.0}
    runs = [net("rnn/naive@0.2", 0, 600.0, 0.0), {**net("rnn/naive@0.4", 0, 0.0, 0.0), **{"metrics": out["metrics"]}}]
    assert exp.chosen({**CONFIG, "tasks": ["rnn"], "grids": {"rnn": {"naive": [0.2, 0.4]}}}, runs, "rnn") == {"naive": 0.2}


def test_the_lstm_task_shares_the_language_models_checks_of_its_split_sizes():
    with pytest.raises(ConfigError, match="train_size must be 88 to 929,589 tokens"):
        experiments.resolve(exp, "smoke", rnn={"train_size": 10})

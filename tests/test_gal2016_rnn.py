"""The variational RNN dropout experiment: batching, perplexity, the config spec, training through fit, claims, upgrade."""

from __future__ import annotations

import math
import re

import pytest
import torch

from replib import experiments, seeding
from replib import results as store
from replib.experiments import gal2016_rnn as exp
from replib.methods import VariationalLSTM
from replib.train import decay_after

COMMITTED = store.REPO_ROOT / "results" / exp.PAPER / "cpu.json"


def test_batchify_lays_contiguous_text_in_columns():
    stream = exp.batchify(torch.arange(10), 3)
    assert stream.shape == (3, 3) and stream[:, 1].tolist() == [3, 4, 5]


def test_segments_cover_the_stream_with_next_word_targets():
    stream = torch.arange(11).view(11, 1)
    pairs = list(exp.segments(stream, 4))
    assert [len(x) for x, _ in pairs] == [4, 4, 2]
    assert all(torch.equal(y, x + 1) for x, y in pairs)


def test_perplexity_of_a_uniform_model_is_the_vocabulary_size():
    model = VariationalLSTM(7, 4, 1, mode="none")
    with torch.no_grad():
        model.decoder.weight.zero_()
        model.decoder.bias.zero_()
    assert math.isclose(exp.perplexity(model, torch.randint(0, 7, (9, 2)), 4), 7.0, rel_tol=1e-6)


def test_sequence_loss_sums_over_time_and_averages_over_sequences():
    """Zaremba et al.'s convention: with the mean over every token, lr = 1 takes steps 35x too small."""
    torch.manual_seed(0)
    logits, targets = torch.randn(35, 4, 9), torch.randint(0, 9, (35, 4))
    per_token = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
    assert torch.allclose(exp.sequence_loss(logits, targets), per_token.view(35, 4).sum(0).mean())


@pytest.mark.parametrize("override,match", [
    ({"hidden": [200, 100]}, re.escape("hidden must be one width for every layer (VariationalLSTM), got [200, 100]")),
    ({"hidden": 200}, r"hidden = 200: Input should be a valid list"),
    ({"p": 1.0}, r"p = 1\.0: Input should be less than 1"),
    ({"p_embedding": -0.1}, r"p_embedding = -0\.1: Input should be greater than or equal to 0"),
    ({"bptt": 2.5}, r"bptt = 2\.5: Input should be a valid integer"),
    ({"lr_decay_start": 5}, r"lr_decay_start = 5: Input should be less than 1"),
    ({"val_size": 10}, r"val_size must be at least 20 tokens here \(None: the whole split\), got 10"),
    ({"train_size": 100}, r"train_size must be at least 720 tokens here .*got 100"),
    ({"mc_passes": 5}, r"unknown key 'mc_passes'; allowed: \[.*'mc_samples'"),
])
def test_bad_config_rejected_naming_the_key_and_value(override, match):
    with pytest.raises(ValueError, match=match):
        experiments.resolve(exp, "cpu", **override)


@pytest.mark.parametrize("profile,decay_start", [("cpu", 5), ("paper", 6)])
def test_decay_start_as_a_fraction_gives_zarembas_epoch_rule(profile, decay_start):
    """The rule the results were trained with: lr * lr_decay ** max(0, epoch + 1 - decay_start)."""
    c = experiments.resolve(exp, profile)[0]
    schedule = decay_after(c["lr"], c["lr_decay_start"], c["lr_decay"])
    assert [schedule(e, c["epochs"]) for e in range(c["epochs"])] == [
        c["lr"] * c["lr_decay"] ** max(0, e + 1 - decay_start) for e in range(c["epochs"])]


def test_training_goes_through_fit_with_the_state_carried_and_train_perplexity_per_token(needs_mirror):
    """With every segment of the same length T, fit's train_loss (segment losses weighted by length) is T times the
    mean cross-entropy per token, so the train perplexity the loss accumulates must be exp(train_loss / T)."""
    config = experiments.resolve(exp, "smoke", hidden=[8, 8], batch_size=4, bptt=5, train_size=104, val_size=100,
                                 test_size=100, epochs=2, mc_samples=2)[0]  # 26 rows: 5 segments of 5 steps
    seeding.seed_everything(0)
    out = exp.run_one(config, "variational", 0, progress=False)
    curves = out["curves"]
    assert curves["lr"] == [1.0, 0.5] and len(curves["monitor_perplexity"]) == 2
    for ppl, loss in zip(curves["train_perplexity"], curves["train_loss"]):
        assert math.isclose(ppl, math.exp(loss / 5), rel_tol=1e-5)
    assert {"test_perplexity", "test_perplexity_mc", "valid_perplexity"} <= set(out["metrics"])


# --------------------------------------------------------------------------- claims on fake runs


def fake(ppl: dict[str, list[float]], mc: list[float]) -> list[dict]:
    return [{"arm": arm, "seed": s, "curves": {}, "metrics": {
        "test_perplexity": v, **({"test_perplexity_mc": mc[s]} if arm == "variational" else {})}}
        for arm, values in ppl.items() for s, v in enumerate(values)]


def outcomes(ppl: dict[str, list[float]], mc: list[float]) -> dict[str, str]:
    return {c["id"]: c["outcome"] for c in exp.claims({"mc_samples": 5}, fake(ppl, mc))}


def test_claims_hold_when_both_seeds_show_the_papers_order():
    assert outcomes({"none": [150, 152], "naive": [120, 121], "variational": [110, 112]}, [108, 110]) == {
        "variational_beats_naive_beats_none": "holds", "mc_averaging_does_not_hurt": "holds"}


def test_claims_fail_when_both_seeds_contradict_the_paper():
    assert outcomes({"none": [150, 152], "naive": [120, 121], "variational": [130, 131]}, [134, 135]) == {
        "variational_beats_naive_beats_none": "fails", "mc_averaging_does_not_hurt": "fails"}


def test_variational_against_naive_is_inconclusive_when_the_seeds_disagree():
    """The committed run: a 0.2 mean lead for variational, but naive is lower on seed 1."""
    ppl = {"none": [217.5, 219.5], "naive": [179.06, 176.20], "variational": [177.54, 177.32]}
    assert outcomes(ppl, [181.85, 181.66])["variational_beats_naive_beats_none"] == "inconclusive"

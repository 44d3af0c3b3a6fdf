"""The variational RNN dropout experiment: batching, perplexity, MC averaging, the config spec, training through fit, claims."""

from __future__ import annotations

import math
import re

import pytest
import torch

from replib import data, experiments, seeding
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
    ({"val_size": 10}, r"val_size must be 20 to 73,760 tokens here \(None: the whole split\), got 10"),
    ({"train_size": 100}, r"train_size must be 720 to 929,589 tokens here .*got 100"),
    ({"train_size": 1_000_000}, r"train_size must be 720 to 929,589 tokens here .*got 1000000"),  # not cut silently
    ({"test_size": 90_000}, r"test_size must be 20 to 82,430 tokens here .*got 90000"),
    ({"mc_passes": 5}, r"unknown key 'mc_passes'; allowed: \[.*'mc_samples'"),
    ({"mc_tokens": 1}, r"mc_tokens must be 2 to 82,430 tokens, the test text's \(None: all of it\), got 1"),
    ({"mc_tokens": 600, "test_size": 500}, r"mc_tokens must be 2 to 500 tokens, the test text's .*got 600"),
    ({"arms": ["variational"]}, re.escape("arms must name naive and variational (the claims compare them) and optionally "
                                          "none, each once, got ['variational']")),
    ({"arms": ["naive", "variational", "naive"]}, r"arms must name naive and variational .*got \['naive', 'variational', 'naive'\]"),
    ({"arms": ["naive", "variational", "zoneout"]}, r"arms\.2 = 'zoneout': Input should be 'none', 'naive' or 'variational'"),
])
def test_bad_config_rejected_naming_the_key_and_value(override, match):
    with pytest.raises(ValueError, match=match):
        experiments.resolve(exp, "cpu", **override)


@pytest.mark.parametrize("profile,decay_start", [("cpu", 4), ("paper", 6)])
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
    assert {"test_perplexity", "subset_perplexity", "subset_perplexity_mc", "valid_perplexity"} <= set(out["metrics"])
    assert curves["mc_passes"] == [1, 2] and curves["mc_perplexity"][-1] == out["metrics"]["subset_perplexity_mc"]


def test_the_split_sizes_the_module_states_are_the_corpus(needs_mirror):
    corpus = data.load_ptb()
    assert (len(corpus.vocab), len(corpus.train), len(corpus.test)) == (exp.VOCAB_SIZE, exp.TRAIN_TOKENS, exp.TEST_TOKENS)


def test_paper_cost_scales_this_runs_seconds_per_token_by_the_multiply_adds():
    """2x200: 2 * 4 * 200 * 400 + 200 * 10,000 = 2.64M per token; 2x650: 6.76M + 6.5M = 13.26M."""
    config = experiments.resolve(exp, "cpu")[0]
    assert exp.multiply_adds_per_token(config) == 2_640_000
    assert exp.multiply_adds_per_token({"hidden": [650, 650]}) == 13_260_000
    runs = [{"metrics": {"seconds_per_epoch": 25.0}}, {"metrics": {"seconds_per_epoch": 35.0}}]  # 30 s per 250,000 tokens
    cost = exp.paper_cost({"config": config, "runs": runs})
    token_epochs = 2 * 5 * 39 * 929_589
    assert cost["paper_token_epochs"] == f"{token_epochs / 1e6:,.0f} million"
    assert cost["paper_cpu_days"] == f"{token_epochs * 30 / 250_000 * 13.26 / 2.64 / 86_400:.0f}"


def test_units_are_the_configured_arms_per_seed():
    config = experiments.resolve(exp, "cpu")[0]
    assert exp.units(config, [0, 1], {}) == [("naive", 0), ("variational", 0), ("naive", 1), ("variational", 1)]
    config["arms"] = ["variational", "none", "naive"]
    assert exp.units(config, [0], {}) == [("none", 0), ("naive", 0), ("variational", 0)]


# --------------------------------------------------------------------------- MC averaging


def variational_net(p: float = 0.5) -> VariationalLSTM:
    torch.manual_seed(0)
    model = VariationalLSTM(11, 6, 2, mode="variational", p_input=p, p_output=p, p_recurrent=p, p_embedding=0.2 * p)
    model.reset_parameters(1.0)  # weights large enough for the masks to move the predictions
    return model


def ppl_of(probs: torch.Tensor) -> float:
    return float(torch.exp(-probs.log().mean()))


def test_mc_perplexities_average_the_probabilities_of_the_passes_in_order():
    """Against the passes drawn directly: the k-th checkpoint is the perplexity of the mean probability over the first
    n columns, and chunks carry the running sum across (chunk 2 of 5 passes: 2 + 2 + 1)."""
    model, tokens = variational_net(), torch.randint(0, 11, (23,))
    torch.manual_seed(1)
    got = exp.mc_perplexities(model, tokens, 4, passes=5, at=[1, 2, 5], chunk=5)
    torch.manual_seed(1)
    model.train()
    probs = exp.target_probabilities(model, tokens.view(-1, 1).expand(-1, 5), 4)
    assert got == pytest.approx([ppl_of(probs[:, :n].mean(1)) for n in (1, 2, 5)], rel=1e-12)
    chunked = exp.mc_perplexities(model, tokens, 4, passes=5, at=[1, 2, 5], chunk=2)
    assert chunked != got and all(math.isfinite(v) for v in chunked)  # other masks, same procedure


def test_mc_passes_draw_their_own_masks_and_converge_to_the_expectation():
    """Each column of a chunk is a pass with masks of its own (no two columns alike), and the average over many passes
    settles: the perplexity after 200 passes is within 1% of that after 400, while single passes spread far wider."""
    model, tokens = variational_net(), torch.randint(0, 11, (40,))
    torch.manual_seed(2)
    model.train()
    probs = exp.target_probabilities(model, tokens.view(-1, 1).expand(-1, 8), 5)
    assert len({tuple(c.tolist()) for c in probs.t()}) == 8
    single = [ppl_of(probs[:, j]) for j in range(8)]
    at200, at400 = exp.mc_perplexities(model, tokens, 5, passes=400, at=[200, 400], chunk=100)
    assert abs(at200 / at400 - 1) < 0.01 < (max(single) - min(single)) / at400


def test_mc_averaging_of_a_net_without_dropout_is_weight_averaging():
    torch.manual_seed(0)
    model, tokens = VariationalLSTM(11, 6, 2, mode="none"), torch.randint(0, 11, (30,))
    wa = exp.perplexity(model, tokens.view(-1, 1), 4)
    assert exp.mc_perplexities(model, tokens, 4, passes=3, at=[1, 3]) == pytest.approx([wa, wa], rel=1e-12)
    assert model.training is True  # as it was: mc_perplexities and perplexity restore the mode
    with torch.no_grad():  # a dense reference: the whole text in one call, so no state to carry between segments
        logits, _ = model(tokens[:-1].view(-1, 1))
    log_probs = logits[:, 0].double().log_softmax(-1).gather(1, tokens[1:].view(-1, 1))
    assert wa == pytest.approx(math.exp(-float(log_probs.mean())), rel=1e-6)


@pytest.mark.parametrize("at", [[], [0, 2], [3, 2], [2, 2], [1, 6]])
def test_mc_checkpoints_must_be_increasing_pass_counts(at):
    with pytest.raises(ValueError, match=re.escape(f"at must be increasing pass counts from 1 to passes = 5, got {at!r}")):
        exp.mc_perplexities(VariationalLSTM(5, 3, 1, mode="none"), torch.randint(0, 5, (9,)), 4, passes=5, at=at)


def test_mc_checkpoints_end_at_the_number_of_passes():
    assert exp.mc_checkpoints(1000) == [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
    assert exp.mc_checkpoints(30) == [1, 2, 5, 10, 20, 30] and exp.mc_checkpoints(1) == [1]


# --------------------------------------------------------------------------- claims on fake runs


def fake(ppl: dict[str, list[float]], mc: list[float], subset: list[float] | None = None) -> list[dict]:
    """Runs with these test perplexities; the variational arm's MC and weight-averaged perplexity on the MC tokens."""
    subset = subset or ppl["variational"]
    return [{"arm": arm, "seed": s, "curves": {}, "metrics": {
        "test_perplexity": v, "subset_perplexity": subset[s] if arm == "variational" else v + 1,
        **({"subset_perplexity_mc": mc[s]} if arm == "variational" else {})}}
        for arm, values in ppl.items() for s, v in enumerate(values)]


def outcomes(ppl: dict[str, list[float]], mc: list[float], subset: list[float] | None = None) -> dict[str, str]:
    config = {"mc_samples": 5, "mc_tokens": 100, "arms": list(ppl)}
    return {c["id"]: c["outcome"] for c in exp.claims(config, fake(ppl, mc, subset))}


def test_claims_hold_when_every_seed_shows_the_papers_order():
    assert outcomes({"naive": [120, 121, 119], "variational": [110, 112, 111]}, [108, 110, 109]) == {
        "variational_beats_naive": "holds", "mc_averaging_beats_weight_averaging": "holds"}


def test_claims_fail_when_every_seed_contradicts_the_paper():
    assert outcomes({"naive": [120, 121, 119], "variational": [130, 131, 129]}, [134, 135, 133]) == {
        "variational_beats_naive": "fails", "mc_averaging_beats_weight_averaging": "fails"}


def test_mc_claim_compares_on_the_mc_tokens_not_the_whole_split():
    """MC 1 below weight averaging on the same tokens holds, though it is above the whole split's perplexity."""
    got = outcomes({"naive": [120, 121, 119], "variational": [110, 112, 111]}, [140, 141, 142], subset=[141, 142, 143])
    assert got["mc_averaging_beats_weight_averaging"] == "holds"


def test_variational_against_naive_is_inconclusive_when_the_seeds_disagree():
    ppl = {"naive": [179.06, 176.20, 178.0], "variational": [177.54, 177.32, 177.9]}
    assert outcomes(ppl, [181.85, 181.66, 181.0])["variational_beats_naive"] == "inconclusive"


def test_no_dropout_arm_is_shown_apart_and_not_counted():
    runs = fake({"none": [150, 152, 151], "naive": [120, 121, 119], "variational": [110, 112, 111]}, [108, 110, 109])
    claims = exp.claims({"mc_samples": 5, "mc_tokens": None, "arms": ["none", "naive", "variational"]}, runs)
    apart = [c for c in claims if c["id"] == "naive_beats_none"]
    assert len(apart) == 1 and apart[0]["outcome"] == "holds" and not apart[0]["counts"]
    assert "whole test split" in claims[1]["statement"]

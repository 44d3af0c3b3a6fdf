"""The variational RNN dropout experiment (a draft chapter): batching, perplexity, claims."""

from __future__ import annotations

import math

import pytest
import torch

from replib.experiments import gal2016_rnn as exp
from replib.methods import VariationalLSTM


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
    assert torch.allclose(exp.sequence_loss(logits, targets), 35 * per_token.mean())


def fake(ppl: dict[str, float], mc: float) -> list[dict]:
    return [{"arm": a, "seed": 0, "metrics": {"test_perplexity": v, **({"test_perplexity_mc": mc} if a == "variational" else {})}}
            for a, v in ppl.items()]


def test_claims_follow_the_perplexities():
    held = {c["id"]: c["holds"] for c in exp.claims({"mc_passes": 5}, fake({"none": 150, "naive": 120, "variational": 110}, 108))}
    assert held == {"variational_beats_naive_beats_none": True, "mc_averaging_does_not_hurt": True}
    held = {c["id"]: c["holds"] for c in exp.claims({"mc_passes": 5}, fake({"none": 150, "naive": 100, "variational": 110}, 112))}
    assert held == {"variational_beats_naive_beats_none": False, "mc_averaging_does_not_hurt": False}


@pytest.mark.parametrize("key,bad", [("hidden", 0), ("p", 1.0), ("p_embedding", -0.1), ("bptt", 2.5)])
def test_bad_config_rejected(key, bad):
    with pytest.raises(ValueError, match=key):
        exp.resolve("cpu", **{key: bad})

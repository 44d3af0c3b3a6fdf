"""Variational and naive RNN dropout (Gal & Ghahramani 2016; Zaremba et al. 2014): where and how masks are drawn."""

from __future__ import annotations

import math
import re

import pytest
import torch

from replib.methods import VariationalLSTM, mc_predict
from replib.methods.rnn_dropout import _lstm_recurrence

V, H = 50, 8


def lm(**kwargs) -> VariationalLSTM:
    torch.manual_seed(0)
    return VariationalLSTM(V, H, 2, **kwargs)


def test_no_dropout_equals_torch_lstm():
    model = lm(mode="none").eval()
    ref = torch.nn.LSTM(H, H, 2)
    with torch.no_grad():
        for layer in range(2):
            getattr(ref, f"weight_ih_l{layer}").copy_(model.weight_ih[layer])
            getattr(ref, f"weight_hh_l{layer}").copy_(model.weight_hh[layer])
            getattr(ref, f"bias_ih_l{layer}").copy_(model.bias[layer])
            getattr(ref, f"bias_hh_l{layer}").zero_()
    tokens = torch.randint(0, V, (7, 3))
    logits, (h, c) = model(tokens)
    out, (h_ref, c_ref) = ref(model.embedding(tokens))
    torch.testing.assert_close(logits, model.decoder(out))
    torch.testing.assert_close(h, h_ref)
    torch.testing.assert_close(c, c_ref)


@pytest.mark.parametrize("mode", ["variational", "naive"])
def test_input_masks_are_per_sequence_only_in_variational_mode(mode):
    model = lm(mode=mode, p_input=0.5).train()
    torch.manual_seed(1)
    dropped = model._drop(torch.ones(6, 16, H), 0.5) == 0  # (T, B, H)
    same_over_time = all(torch.equal(dropped[0], dropped[t]) for t in range(6))
    assert same_over_time == (mode == "variational")
    assert not all(torch.equal(dropped[:, 0], dropped[:, b]) for b in range(16))  # sequences differ


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_mask_rate_binomial(p):
    model = lm(mode="variational", p_input=p).train()
    torch.manual_seed(2)
    dropped = int((model._drop(torch.ones(1, 200, 40), p) == 0).sum())
    n = 200 * 40
    assert abs(dropped - n * p) < 5 * math.sqrt(n * p * (1 - p))  # 5 standard errors of a Binomial(8,000, p)


def test_recurrent_mask_acts_inside_the_recurrence():
    """h_0 = 0, so the first step cannot see the recurrent mask; every later step does."""
    model = lm(mode="variational", p_recurrent=0.5)
    tokens = torch.randint(0, V, (5, 4))
    torch.manual_seed(3)
    train_logits, _ = model.train()(tokens)
    eval_logits, _ = model.eval()(tokens)
    torch.testing.assert_close(train_logits[0], eval_logits[0])
    assert not torch.allclose(train_logits[1:], eval_logits[1:])


def test_per_gate_recurrence_with_equal_gate_masks_equals_the_shared_mask():
    torch.manual_seed(4)
    xproj, h, c = torch.randn(5, 3, 4 * H), torch.randn(3, H), torch.randn(3, H)
    w = torch.randn(4 * H, H)
    mask = (torch.rand(3, H) < 0.5).float() * 2
    shared = _lstm_recurrence(xproj, h, c, w, mask)
    per_gate = _lstm_recurrence(xproj, h, c, w, mask.unsqueeze(1).expand(3, 4, H).contiguous())
    for a, b in zip(shared, per_gate):
        torch.testing.assert_close(a, b)


def test_embedding_dropout_drops_word_types_per_sequence():
    model = lm(mode="variational", p_embedding=0.5).train()
    tokens = torch.tensor([[1, 2], [1, 3], [1, 2], [4, 2]])  # word 1 thrice in sequence 0, word 2 thrice in 1
    torch.manual_seed(5)
    for _ in range(20):
        zero = (model._embed(tokens) == 0).all(2)  # (T, B)
        assert zero[0, 0] == zero[1, 0] == zero[2, 0]
        assert zero[0, 1] == zero[2, 1] == zero[3, 1]
    # 4,000 sequences "1 2 1": each drops word 1 at rate p, on its own, independently of word 2; kept ones scaled
    n = 4000
    tokens = torch.tensor([[1], [2], [1]]).expand(3, n)
    emb = model._embed(tokens)
    zero = (emb == 0).all(2)  # (T, B)
    assert torch.equal(zero[0], zero[2])
    for k in (int(zero[0].sum()), int((zero[0] == zero[1]).sum())):
        assert abs(k - n * 0.5) < 5 * math.sqrt(n * 0.25)  # 5 standard errors of a Binomial(4,000, 1/2)
    torch.testing.assert_close(emb[0, ~zero[0]], 2 * model.embedding(tokens)[0, ~zero[0]])


def test_eval_is_deterministic_and_mc_passes_differ():
    model = lm(mode="variational", p_input=0.5, p_recurrent=0.5, p_output=0.5, p_embedding=0.2).eval()
    tokens = torch.randint(0, V, (4, 2))  # lm() seeded torch with 0
    assert torch.equal(model(tokens)[0], model(tokens)[0])
    pred = mc_predict(model, tokens, samples=5, transform=lambda out: out[0].softmax(-1))
    assert (pred.std > 0).any() and not model.training


def test_per_gate_masks_train_and_backpropagate():
    model = lm(mode="variational", p_input=0.3, p_recurrent=0.3, per_gate=True).train()
    logits, _ = model(torch.randint(0, V, (4, 3)))
    logits.sum().backward()
    assert model.weight_hh[0].grad.abs().sum() > 0 and model.weight_ih[1].grad.abs().sum() > 0


@pytest.mark.parametrize("kwargs,match", [
    ({"mode": "naive", "p_recurrent": 0.3}, r"^mode='naive' drops nothing inside the recurrence: p_recurrent \(0\.3\)"),
    ({"mode": "none", "p_embedding": 0.1}, r"^mode='none' drops no embedding .*p_embedding \(0\.1\)"),
    ({"mode": "rnndrop", "per_gate": True}, r"^mode='rnndrop' drops no embedding and has no per-gate masks"),
    ({"mode": "naive", "semeniuta_per_sequence": True}, r"semeniuta_per_sequence=True is a choice of mode='semeniuta'"),
    ({"mode": "zoneout"}, re.escape("mode must be one of ['variational', 'naive', 'rnndrop', 'semeniuta', 'none'], "
                                    "got 'zoneout'")),
    ({"p_input": 1.0}, r"^drop probabilities must be < 1: .*p_input=1\.0"),
    ({"p_output": -0.1}, re.escape("p_output must be a probability in [0, 1], got -0.1")),
    ({"num_layers": 0}, re.escape("num_layers must be an int >= 1, got 0")),
])
def test_bad_arguments_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VariationalLSTM(V, H, **kwargs)


def test_bad_tokens_rejected():
    with pytest.raises(ValueError, match=re.escape("tokens must be int64 (T, B), got torch.float32 (3, 2)")):
        lm()(torch.zeros(3, 2))

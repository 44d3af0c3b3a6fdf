"""Dropout inside the LSTM cell: RNNDrop (Moon et al. 2015) erases a dropped memory cell at every step with one
mask per sequence; Semeniuta et al. (2016) drop only the update candidate, so the memory is never erased."""

from __future__ import annotations

import math

import pytest
import torch

from replib.methods import RNNDropLSTM, SemeniutaLSTM, mc_predict
from replib.methods.rnn_dropout import _lstm_recurrence

Z = 5.0  # |deviation| < 5 standard errors: a false failure has probability < 1e-6 per check
T, B, H = 6, 400, 32


def _reference(xproj, h, c, weight_hh, mask_c=None, mask_g=None):
    """The LSTM equations step by step, in the most literal form, with the masks where the papers put them."""
    out = []
    for t in range(xproj.shape[0]):
        i, f, g, o = (xproj[t] + h @ weight_hh.t()).chunk(4, 1)
        g = torch.tanh(g)
        if mask_g is not None:
            g = g * (mask_g[t] if mask_g.dim() == 3 else mask_g)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * g
        if mask_c is not None:
            c = mask_c * c
        h = torch.sigmoid(o) * torch.tanh(c)
        out.append(h)
    return torch.stack(out), h, c


@pytest.mark.parametrize("which", ["cell", "update per step", "update per sequence"])
def test_the_recurrence_matches_the_literal_equations(which):
    torch.manual_seed(0)
    xproj, h0, c0 = torch.randn(T, 3, 4 * H), torch.randn(3, H), torch.randn(3, H)
    weight = torch.randn(4 * H, H) * 0.3
    mask = (torch.rand((T, 3, H) if which == "update per step" else (3, H)) < 0.6).float() / 0.6
    masks = {"mask_c": mask} if which == "cell" else {"mask_g": mask}
    for got, want in zip(_lstm_recurrence(xproj, h0, c0, weight, None, **masks),
                         _reference(xproj, h0, c0, weight, **masks)):
        torch.testing.assert_close(got, want)


def _hidden(model, tokens, state):
    """The last layer's outputs h_t (T, B, H), through the model's own recurrence."""
    import replib.methods.rnn_dropout as module

    captured, real = {}, module._lstm_recurrence

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        captured["h"] = out[0]
        return out

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "_lstm_recurrence", spy)
        model(tokens, state)
    return captured["h"]


@pytest.mark.parametrize("p", [0.25, 0.5])
def test_rnndrop_erases_the_same_cells_at_every_step_at_rate_p(p):
    torch.manual_seed(1)
    model = RNNDropLSTM(20, H, 1, p_cell=p).train()
    tokens = torch.randint(0, 20, (T, B))
    state = (torch.zeros(1, B, H), torch.ones(1, B, H))  # a full memory to erase
    h = _hidden(model, tokens, state)
    zero = h == 0
    assert torch.equal(zero, zero[:1].expand_as(zero)), "a cell erased at one step and not another: not per sequence"
    n = zero[0].numel()
    assert abs(int(zero[0].sum()) - n * p) < Z * math.sqrt(n * p * (1 - p))


def test_semeniuta_never_erases_the_memory_even_when_almost_every_update_is_dropped():
    torch.manual_seed(2)
    tokens = torch.randint(0, 20, (T, B))
    state = (torch.zeros(1, B, H), torch.ones(1, B, H))
    kept = _hidden(SemeniutaLSTM(20, H, 1, p_update=0.95).train(), tokens, state)
    assert int((kept == 0).sum()) == 0, "a memory cell was erased"
    erased = _hidden(RNNDropLSTM(20, H, 1, p_cell=0.95).train(), tokens, state)
    assert float((erased == 0).float().mean()) > 0.9  # the same rate on the cell itself erases it


@pytest.mark.parametrize("per_sequence", [False, True])
def test_semeniutas_update_mask_is_per_step_or_per_sequence_at_rate_p(per_sequence):
    torch.manual_seed(3)
    model = SemeniutaLSTM(20, H, 1, p_update=0.3, per_sequence=per_sequence).train()
    mask_c, mask_g = model._cell_masks(T, B, torch.zeros(1))
    assert mask_c is None and mask_g.shape == ((B, H) if per_sequence else (T, B, H))
    dropped = int((mask_g == 0).sum())
    assert abs(dropped - mask_g.numel() * 0.3) < Z * math.sqrt(mask_g.numel() * 0.3 * 0.7)
    assert torch.unique(mask_g).tolist() == pytest.approx([0.0, 1 / 0.7])  # kept updates scaled by 1/(1-p)
    if not per_sequence:
        assert not torch.equal(mask_g[0], mask_g[1])


@pytest.mark.parametrize("model", [RNNDropLSTM(20, H, 2, p_cell=0.5, p_input=0.2),
                                   SemeniutaLSTM(20, H, 2, p_update=0.5, p_output=0.2)])
def test_identity_in_eval_and_a_sample_under_mc_predict(model):
    torch.manual_seed(4)
    tokens = torch.randint(0, 20, (T, 3))
    plain = SemeniutaLSTM(20, H, 2)  # no dropout anywhere
    plain.load_state_dict(model.state_dict())
    torch.testing.assert_close(model.eval()(tokens)[0], plain.eval()(tokens)[0])
    passes = mc_predict(model, tokens, samples=2, transform=lambda out: out[0], return_samples=True).samples
    assert not torch.equal(passes[0], passes[1])

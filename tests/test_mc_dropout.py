"""MC dropout (Gal & Ghahramani 2016): dropout on at test time, batch norm untouched."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from replib.methods import Dropout, mc_predict


def net(dropout: nn.Module | None = None) -> nn.Sequential:
    torch.manual_seed(0)
    layers = [nn.Linear(5, 16), nn.BatchNorm1d(16), nn.ReLU()]
    layers += [dropout] if dropout is not None else []
    return nn.Sequential(*layers, nn.Linear(16, 3))


@pytest.mark.parametrize("dropout", [Dropout(0.5), nn.Dropout(0.5)], ids=["replib", "torch"])
def test_passes_differ_but_batch_norm_stays_in_eval(dropout):
    model = net(dropout).eval()
    bn = model[1]
    stats = (bn.running_mean.clone(), bn.running_var.clone(), int(bn.num_batches_tracked))
    seen = []
    bn.register_forward_hook(lambda m, i, o: seen.append(m.training))
    pred = mc_predict(model, torch.randn(4, 5), samples=50, return_samples=True)
    assert pred.samples.shape == (50, 4, 3) and pred.mean.shape == pred.std.shape == (4, 3)
    assert (pred.std > 0).all()
    assert not any(seen), "batch norm ran in training mode"
    assert torch.equal(bn.running_mean, stats[0]) and torch.equal(bn.running_var, stats[1])
    assert int(bn.num_batches_tracked) == stats[2]


def test_every_module_mode_is_restored():
    model = net(Dropout(0.5)).train()
    model[1].eval()  # a mixed state must come back exactly
    before = [m.training for m in model.modules()]
    mc_predict(model, torch.randn(4, 5), samples=3)
    assert [m.training for m in model.modules()] == before


def test_mean_approaches_the_expectation_of_the_passes():
    torch.manual_seed(0)
    model = nn.Sequential(Dropout(0.5), nn.Linear(1, 1, bias=False))
    nn.init.ones_(model[1].weight)
    pred = mc_predict(model, torch.ones(1, 1), samples=4000)
    # Each pass outputs 0 or 2 with probability 1/2: mean 1, sd 1.
    assert abs(float(pred.mean) - 1.0) < 5 * 1.0 / 4000**0.5
    assert abs(float(pred.std) - 1.0) < 0.05


def test_transform_averages_probabilities():
    pred = mc_predict(net(Dropout(0.5)), torch.randn(4, 5), samples=20, transform=lambda z: z.softmax(-1))
    torch.testing.assert_close(pred.mean.sum(-1), torch.ones(4))


def test_works_for_any_input_shape():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Dropout2d(0.5), nn.Flatten())
    assert mc_predict(model, torch.randn(2, 3, 5, 5), samples=4).mean.shape == (2, 36)


def test_model_without_dropout_rejected():
    with pytest.raises(ValueError, match="no dropout layer"):
        mc_predict(net(), torch.randn(4, 5), samples=3)


@pytest.mark.parametrize("samples", [0, 2.5, True])
def test_bad_samples_rejected(samples):
    with pytest.raises(ValueError, match="samples must be"):
        mc_predict(net(Dropout(0.5)), torch.randn(4, 5), samples=samples)

"""MC dropout (Gal & Ghahramani 2016): dropout on at test time, batch norm untouched."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from replib.methods import DropConnectLinear, Dropout, SpatialDropout, StandoutLinear, VariationalLSTM, mc_predict


def net(dropout: nn.Module | None = None) -> nn.Sequential:
    torch.manual_seed(0)
    layers = [nn.Linear(5, 16), nn.BatchNorm1d(16), nn.ReLU()]
    layers += [dropout] if dropout is not None else []
    return nn.Sequential(*layers, nn.Linear(16, 3))


@pytest.mark.parametrize("dropout", [Dropout(0.5), nn.Dropout(0.5)], ids=["replib", "torch"])
def test_passes_differ_but_batch_norm_stays_in_eval(dropout):
    model = net(dropout).eval()
    torch.manual_seed(1)
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
    # Each pass outputs 0 or 2 with probability 1/2: mean 1, sd 1. Tolerances: the mean within
    # 5 standard errors (1/sqrt(4000)); the sd within 0.05, about 3 standard errors of a sample sd here.
    assert abs(float(pred.mean) - 1.0) < 5 * 1.0 / 4000**0.5
    assert abs(float(pred.std) - 1.0) < 0.05


def test_transform_is_applied_to_each_pass_before_averaging():
    """mean = average of the per-pass softmaxes (not the softmax of the average logits); std is theirs too."""
    model, x, samples = net(Dropout(0.5)), torch.randn(4, 5), 20
    torch.manual_seed(7)
    pred = mc_predict(model, x, samples=samples, transform=lambda z: z.softmax(-1))
    # The same passes by hand, from the same seed: batch norm in eval, the dropout layer sampling.
    model.eval()
    model[3].train()
    torch.manual_seed(7)
    with torch.no_grad():
        logits = torch.stack([model(x) for _ in range(samples)])
    probabilities = logits.softmax(-1)
    torch.testing.assert_close(pred.mean, probabilities.mean(0))
    torch.testing.assert_close(pred.std, probabilities.std(0, correction=0))
    assert not torch.allclose(pred.mean, logits.mean(0).softmax(-1)), "averaged the logits, not the probabilities"


def test_works_for_any_input_shape():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Dropout2d(0.5), nn.Flatten())
    assert mc_predict(model, torch.randn(2, 3, 5, 5), samples=4).mean.shape == (2, 36)


class ModeRecorder(nn.Module):
    """Holds a layer and a batch norm; its forward records their modes and computes nothing else."""

    def __init__(self, stochastic: nn.Module) -> None:
        super().__init__()
        self.stochastic, self.bn, self.seen = stochastic, nn.BatchNorm1d(3), {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen = {"stochastic": self.stochastic.training, "bn": self.bn.training}
        return x


@pytest.mark.parametrize("layer", [
    lambda: Dropout(0.5), lambda: nn.Dropout(0.5), lambda: nn.AlphaDropout(0.5), lambda: SpatialDropout(0.5),
    lambda: DropConnectLinear(3, 3, 0.5), lambda: StandoutLinear(3, 3), lambda: VariationalLSTM(5, 3, p_input=0.5),
], ids=["Dropout", "nn.Dropout", "nn.AlphaDropout", "SpatialDropout", "DropConnectLinear", "StandoutLinear",
        "VariationalLSTM"])
def test_every_stochastic_layer_and_only_those_is_switched_to_training(layer):
    """The layers mc_predict sampled before it stopped importing the methods; a batch-norm sibling stays in eval."""
    model = ModeRecorder(layer())
    mc_predict(model, torch.zeros(1), samples=1)
    assert model.seen == {"stochastic": True, "bn": False}


def test_model_without_dropout_rejected():
    with pytest.raises(ValueError, match=r"^Sequential has no dropout layer .*every pass would be identical$"):
        mc_predict(net(), torch.randn(4, 5), samples=3)


@pytest.mark.parametrize("samples", [0, 2.5, True])
def test_bad_samples_rejected(samples):
    with pytest.raises(ValueError, match=re.escape(f"samples must be an int >= 1, got {samples!r}")):
        mc_predict(net(Dropout(0.5)), torch.randn(4, 5), samples=samples)

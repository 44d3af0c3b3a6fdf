"""Gal & Ghahramani (2016), NIPS: variational dropout in an LSTM language model on Penn Treebank.

"A Theoretically Grounded Application of Dropout in Recurrent Neural Networks", NIPS 2016
(arXiv 1512.05287). Arms, the same LSTM on the same budget: ``none``, ``naive`` (Zaremba et
al. 2014: a fresh mask at every step on the non-recurrent connections) and ``variational``
(one mask per sequence on the embedding, inputs, recurrent state and outputs). Every arm is
evaluated with weight averaging; the variational arm also with MC averaging of the probabilities.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from pydantic import Field, model_validator

from .. import claims as rule
from .. import data, plotting, seeding
from .._validate import DropProbability, Fraction, PositiveFloat, PositiveInt, Spec, Widths
from ..methods import VariationalLSTM
from ..train import clip_grad_norm, decay_after, fit, sgd_schedule

PAPER = "gal2016_rnn"
TITLE = "Gal & Ghahramani 2016: variational dropout in LSTMs"
ARMS = ("none", "naive", "variational")
EVAL_STREAMS = 10  # validation and test text is laid out in 10 parallel streams


class Config(Spec):
    hidden: Widths = Field([200, 200], description="LSTM units per layer, one width for all (and the embedding size)")
    batch_size: PositiveInt = Field(20, description="sequences per minibatch (Zaremba et al. and the paper: 20)")
    bptt: PositiveInt = Field(35, description="steps per truncated back-propagation segment (Zaremba et al., medium)")
    lr: PositiveFloat = Field(1.0, description="plain SGD, as Zaremba et al. and Gal's code")
    lr_decay: PositiveFloat = Field(0.5, description="learning-rate factor per epoch once the decay has started")
    lr_decay_start: Fraction = Field(0.625, description="share of the run at full rate before the decay")
    clip: PositiveFloat = Field(5.0, description="bound on the global gradient norm")
    init_scale: PositiveFloat = Field(0.1, description="weights ~ uniform(-init_scale, init_scale) (Zaremba et al., small)")
    p: DropProbability = Field(0.3, description="dropout on inputs, outputs and (variational only) the recurrent state")
    p_embedding: DropProbability = Field(0.1, description="word-type dropout, variational only")
    mc_samples: PositiveInt = Field(20, description="stochastic passes over the test set for MC averaging (the paper: 1000)")
    train_size: PositiveInt | None = Field(250_000, description="first tokens of the training split; None: all 929,589")
    val_size: PositiveInt | None = Field(None, description="first tokens of the validation split; None: all 73,760")
    test_size: PositiveInt | None = Field(None, description="first tokens of the test split; None: all 82,430")
    epochs: PositiveInt = Field(8, description="passes over the training tokens")

    @model_validator(mode="after")
    def _sizes(self):
        if len(set(self.hidden)) != 1:
            raise ValueError(f"hidden must be one width for every layer (VariationalLSTM), got {self.hidden!r}")
        for name, least in (("train_size", self.batch_size * (self.bptt + 1)), ("val_size", 2 * EVAL_STREAMS),
                            ("test_size", 2 * EVAL_STREAMS)):
            if (size := getattr(self, name)) is not None and size < least:
                raise ValueError(f"{name} must be at least {least} tokens here (None: the whole split), got {size!r}")
        return self


# The whole training split costs 4.6 min per epoch per arm at 1 thread (the 10k-word softmax dominates), so the cpu
# profile trains on its first 250,000 tokens for 8 epochs: long enough for the undropped net to overfit.
PROFILES = {
    "smoke": {"hidden": [16, 16], "bptt": 10, "batch_size": 8, "epochs": 1, "mc_samples": 2, "train_size": 4000,
              "val_size": 1000, "test_size": 1000, "seeds": 1},
    "cpu": {"seeds": 2},
    "paper": {"hidden": [650, 650], "epochs": 39, "lr_decay_start": 6 / 39, "lr_decay": 1 / 1.2, "init_scale": 0.05,
              "p": 0.5, "p_embedding": 0.2, "mc_samples": 1000, "train_size": None, "seeds": 5},
}

PAPER_VALUES = [
    {"id": f"{model}_{arm}", "model": model, "arm": arm, "value": value, "unit": "test perplexity",
     "what": f"{model} model ({'2x650' if model == 'medium' else '2x1500'} LSTM), {label}",
     "where": "Gal & Ghahramani 2016 (NIPS), PTB table, via a third-party extraction (shared/PAPERS.md)",
     "confirmed": False}
    for model, arm, label, value in (
        ("medium", "naive", "Zaremba et al. (2014)", 82.7), ("large", "naive", "Zaremba et al. (2014)", 78.4),
        ("medium", "variational", "variational, tied weights, weight averaging", 79.7),
        ("large", "variational", "variational, tied weights, weight averaging", 75.0),
        ("medium", "variational_mc", "variational, tied weights, MC averaging", 79.0),
        ("large", "variational_mc", "variational, tied weights, MC averaging", 74.1),
    )
]


def units(config: dict, seeds: list[int], done: dict) -> list[tuple[str, int]]:
    return [(arm, seed) for seed in seeds for arm in ARMS]


def batchify(tokens: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``(N,)`` -> ``(N // batch_size, batch_size)``: column b is the b-th contiguous stretch of text."""
    n = len(tokens) // batch_size
    return tokens[: n * batch_size].view(batch_size, n).t().contiguous()


def segments(stream: torch.Tensor, bptt: int):
    """(input, target) pairs of at most ``bptt`` steps covering ``stream`` ``(T, B)``."""
    for start in range(0, stream.shape[0] - 1, bptt):
        length = min(bptt, stream.shape[0] - 1 - start)
        yield stream[start : start + length], stream[start + 1 : start + 1 + length]


def sequence_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``logits`` ``(T, B, V)`` for ``targets`` ``(T, B)``, summed over time, averaged over sequences:
    Zaremba et al.'s loss, which their rate of 1 and clipping at 5 are tuned for (a mean over tokens: steps T x smaller)."""
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum") / targets.shape[1]


@torch.no_grad()
def perplexity(model: VariationalLSTM, stream: torch.Tensor, bptt: int, mc_samples: int = 0) -> float:
    """Perplexity on ``stream``: weight averaging (``mc_samples = 0``, dropout off) or MC averaging: each target
    word's probability averaged over ``mc_samples`` passes with dropout on (fresh masks per segment, as in training)."""
    was_training, passes = model.training, max(1, mc_samples)
    prob_sum = torch.zeros(stream.shape[0] - 1, stream.shape[1], device=stream.device, dtype=torch.float64)
    model.train(mc_samples > 0)
    for _ in range(passes):
        state, row = None, 0
        for x, y in segments(stream, bptt):
            logits, state = model(x, state)
            prob_sum[row : row + len(x)] += logits.log_softmax(-1).gather(2, y.unsqueeze(2)).squeeze(2).exp().double()
            row += len(x)
    model.train(was_training)
    return float(torch.exp(-(prob_sum / passes).log().mean()))


class TruncatedBPTT:
    """Training on consecutive segments of a ``(T, B)`` stream: the LSTM state is carried across segments
    (detached: truncated back-propagation) and reset at every epoch, which reads the text from its start.
    ``batches`` and ``loss`` are what :func:`replib.train.fit` takes."""

    def __init__(self, stream: torch.Tensor, bptt: int):
        self.stream, self.bptt, self.state, self.summed = stream, bptt, None, []

    def batches(self, epoch: int):
        self.state = None
        self.summed.append(torch.zeros((), device=self.stream.device))  # the epoch's cross-entropy over every token
        return segments(self.stream, self.bptt)

    def loss(self, model: VariationalLSTM, batch) -> torch.Tensor:
        logits, state = model(batch[0], self.state)
        self.state = tuple(s.detach() for s in state)
        value = sequence_loss(logits, batch[1])
        self.summed[-1] += value.detach() * batch[1].shape[1]
        return value

    def train_perplexity(self) -> list[float]:
        """Per epoch: exp of the mean cross-entropy per training token, masks on."""
        return [float(np.exp(float(total) / self.stream[1:].numel())) for total in self.summed]


def run_one(config: dict, arm: str, seed: int, progress: bool = True) -> dict:
    """Train one arm on consecutive segments, the LSTM state carried across them and reset every epoch.

    Curves: fit's (``train_loss``: :func:`sequence_loss` weighted by segment length; ``monitor_perplexity``:
    validation) and ``train_perplexity``: exp of the epoch's mean cross-entropy per training token, masks on."""
    corpus, device, p = data.load_ptb(), config["device"], config["p"]
    train = batchify(corpus.train[: config["train_size"]], config["batch_size"]).to(device)
    valid, test = (batchify(tokens[:n], EVAL_STREAMS).to(device)
                   for tokens, n in ((corpus.valid, config["val_size"]), (corpus.test, config["test_size"])))
    drops = {"none": {}, "naive": {"p_input": p, "p_output": p},  # the arm's name is the LSTM's mode
             "variational": {"p_input": p, "p_output": p, "p_recurrent": p, "p_embedding": config["p_embedding"]}}
    model = VariationalLSTM(len(corpus.vocab), config["hidden"][0], len(config["hidden"]), mode=arm, **drops[arm])
    model.reset_parameters(config["init_scale"])
    model.to(device)
    bptt = TruncatedBPTT(train, config["bptt"])
    curves = fit(model, bptt.batches, epochs=config["epochs"], optimizer=torch.optim.SGD(model.parameters(), lr=config["lr"]),
                 schedule=sgd_schedule(decay_after(config["lr"], config["lr_decay_start"], config["lr_decay"])),
                 loss=bptt.loss, before_step=clip_grad_norm(model.parameters(), config["clip"]),
                 monitor=lambda m: {"perplexity": perplexity(m, valid, config["bptt"])}, progress=progress,
                 desc=f"{arm} seed {seed}")
    curves["train_perplexity"] = bptt.train_perplexity()
    metrics = {"test_perplexity": perplexity(model, test, config["bptt"]), "valid_perplexity": curves["monitor_perplexity"][-1],
               "seconds_per_epoch": float(np.mean(curves["seconds"]))}
    if arm == "variational":
        with seeding.evaluation(seed):
            metrics["test_perplexity_mc"] = perplexity(model, test, config["bptt"], config["mc_samples"])
    return {"metrics": metrics, "curves": curves}


# --------------------------------------------------------------------------- analysis


def final_perplexities(runs: list[dict]) -> dict[str, dict[int, float]]:
    """arm -> seed -> test perplexity; ``variational_mc``: the variational arm with MC averaging."""
    return {**rule.by_seed(runs, "test_perplexity"),
            **rule.by_seed(runs, "test_perplexity_mc", lambda arm: "variational_mc")}


def mean_curve(result: dict, arm: str, key: str) -> np.ndarray:
    """Per-epoch mean over seeds of curve ``key`` of ``arm``."""
    return np.mean([r["curves"][key] for r in result["runs"] if r["arm"] == arm], axis=0)


def ordering(ppl: dict[str, dict[int, float]]) -> list[dict]:
    """The parts of the ordering variational < naive < none, each paired by seed."""
    return [rule.direction(f"{a}_below_{b}", f"{a} < {b}", ppl[a], ppl[b], names=(a, b), digits=1)
            for a, b in (("variational", "naive"), ("naive", "none"))]


def claims(config: dict, runs: list[dict]) -> list[dict]:
    """The chapter's claims, each decided by :mod:`replib.claims`' rule over seeds."""
    ppl, mc = final_perplexities(runs), config["mc_samples"]
    return [rule.all_of("variational_beats_naive_beats_none", "At equal size and budget, test perplexity (weight "
                        "averaging) orders variational < naive < none.", ordering(ppl)),
            rule.direction("mc_averaging_does_not_hurt", f"For the variational arm, MC averaging over {mc} passes gives a "
                           "test perplexity no higher than weight averaging (decided as: lower, as the paper reports).",
                           ppl["variational_mc"], ppl["variational"], names=("MC averaging", "weight averaging"), digits=1)]


def facts(result: dict) -> dict[str, str]:
    """The numbers the chapter's prose quotes, formatted from the result."""
    ppl, valid = final_perplexities(result["runs"]), mean_curve(result, "none", "monitor_perplexity")
    paper = {v["arm"]: v["value"] for v in result["paper_values"] if v["model"] == "medium"}
    out = {f"part_{p['id']}": p["outcome"] for p in ordering(ppl)}
    out.update({f"test_{arm}": rule.mean_sd(v.values(), 1) for arm, v in ppl.items()})
    out.update({f"test_{arm}_per_seed": rule.per_seed(v, 1) for arm, v in ppl.items()})
    out.update({f"train_final_{arm}": rule.fmt(mean_curve(result, arm, "train_perplexity")[-1], 0) for arm in ARMS})
    return {**out, "mc_minus_weight_averaging_per_seed": rule.per_seed(rule.paired(ppl["variational_mc"], ppl["variational"]), 1),
            "variational_lead_over_naive": rule.fmt(rule.paired(ppl["naive"], ppl["variational"]).mean(), 1),
            "valid_best_none": rule.fmt(valid.min(), 0), "valid_best_epoch_none": str(int(valid.argmin()) + 1),
            "paper_mc_gain": rule.fmt(paper["variational"] - paper["variational_mc"], 1),
            "paper_mc_samples": str(PROFILES["paper"]["mc_samples"]), "mc_samples": str(result["config"]["mc_samples"]),
            "ours_over_paper": rule.fmt(np.mean(list(ppl["variational"].values())) / paper["variational"], 1)}


# --------------------------------------------------------------------------- presentation

ARM_LABELS = {"none": "no dropout", "naive": "naive (Zaremba et al.)", "variational": "variational"}


def figure(result: dict):
    """Validation perplexity against epoch per arm (mean over seeds); dotted: the paper's 2x650 test perplexities."""
    import matplotlib.pyplot as plt

    colors = dict(zip(ARMS, plotting.palette(len(ARMS))))
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for arm in ARMS:
        valid = mean_curve(result, arm, "monitor_perplexity")
        ax.plot(np.arange(1, len(valid) + 1), valid, marker="o", color=colors[arm], label=f"ours: {ARM_LABELS[arm]} (validation)")
    for v in (v for v in result["paper_values"] if v["model"] == "medium" and v["arm"] in ARMS):
        ax.axhline(v["value"], color=colors[v["arm"]], linestyle=":", linewidth=1.2,
                   label=f"paper, 2x650, test: {ARM_LABELS[v['arm']]} {v['value']}")
    ax.set(xlabel="epoch", ylabel="perplexity", yscale="log")
    ax.set_title(f"Penn Treebank, {len(hidden := result['config']['hidden'])}x{hidden[0]} LSTM, {len(result['seeds'])} seed(s) "
                 f"({result['profile']} profile)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def table(result: dict) -> pd.DataFrame:
    """Paper vs ours: test perplexity per arm; ours is mean ± sd over seeds."""
    ppl = final_perplexities(result["runs"])
    paper = {(v["model"], v["arm"]): v["value"] for v in result["paper_values"]}
    labels = {**ARM_LABELS, "variational_mc": "variational, MC averaging"}
    rows = [{"arm": label, "paper 2x650 (unconfirmed)": paper.get(("medium", arm), ""),
             "paper 2x1500 (unconfirmed)": paper.get(("large", arm), ""),
             "ours: test perplexity": rule.mean_sd(ppl[arm].values(), 1)} for arm, label in labels.items()]
    return pd.DataFrame(rows).set_index("arm")


FIGURES = {"figure": figure}
TABLES = {"paper_vs_ours": table}

"""Gal & Ghahramani (2016), NIPS: variational dropout in an LSTM language model on Penn Treebank.

"A Theoretically Grounded Application of Dropout in Recurrent Neural Networks", NIPS 2016
(arXiv 1512.05287). Arms, the same LSTM on the same budget: ``none``, ``naive`` (Zaremba et
al. 2014: a fresh mask at every step on the non-recurrent connections) and ``variational``
(one mask per sequence on the embedding, inputs, recurrent state and outputs); ``none`` is
optional context, not in the paper's table. Every arm is evaluated with weight averaging; the
variational arm also with MC averaging of the probabilities over ``mc_samples`` stochastic
passes (the paper: 1000), recorded after every checkpoint number of passes (:data:`MC_CHECKPOINTS`)
on the test split's first ``mc_tokens`` tokens, where weight averaging is measured too.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, model_validator

from .. import claims as rule
from .. import data, plotting, seeding, timing
from .._validate import DropProbability, Fraction, PositiveFloat, PositiveInt, Spec, SubSpec, Widths
from ..methods import VariationalLSTM
from ..train import at_epoch, clip_grad_norm, decay_after, fit, sgd_schedule

PAPER = "gal2016_rnn"
TITLE = "Gal & Ghahramani 2016: variational dropout in LSTMs"
CITE = "gal2016rnn"  # its key in book/references.bib
HEADLINE = "Variational (per-sequence) dropout beats per-step dropout in an LSTM on Penn Treebank; MC averaging helps further."  # the claim tested, in a line
DATASETS = ("ptb",)  # the data mirror's folders its units read
ARMS = ("none", "naive", "variational")
PAPER_ARMS = ("naive", "variational")  # the pair of the paper's table; "none" is optional context
EVAL_STREAMS = 10  # validation and test text is laid out in 10 parallel streams
TRAIN_TOKENS, VALID_TOKENS, TEST_TOKENS = 929_589, 73_760, 82_430  # the sizes of Mikolov's three splits
VOCAB_SIZE = 10_000  # Mikolov's vocabulary, <unk> and <eos> included
MC_CHECKPOINTS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)  # passes after which MC perplexity is recorded
PAPER_MC_SAMPLES = 1000  # section 5.1: the "MC" rows of Table 1 average 1000 stochastic passes
MC_CHUNK = 100  # MC passes run side by side as columns of one batch (each column draws its own masks)


class LanguageModelTraining(SubSpec):
    """Zaremba et al.'s training of a PTB LSTM language model (:func:`streams`, :func:`train_language_model`): the
    settings this chapter and the atlas share; each sets its own defaults with ``with_defaults``."""

    batch_size: PositiveInt = Field(20, description="sequences per minibatch (Zaremba et al. and the paper: 20)")
    bptt: PositiveInt = Field(35, description="steps per truncated back-propagation segment (Zaremba et al., medium)")
    lr: PositiveFloat = Field(1.0, description="plain SGD, as Zaremba et al. and Gal's code")
    lr_decay: PositiveFloat = Field(0.5, description="learning-rate factor per epoch once the decay has started")
    lr_decay_start: Fraction = Field(0.625, description="share of the run at full rate before the decay")
    clip: PositiveFloat = Field(5.0, description="bound on the global gradient norm")
    init_scale: PositiveFloat = Field(0.1, description="weights ~ uniform(-init_scale, init_scale) (Zaremba et al., small)")
    train_size: PositiveInt | None = Field(250_000, description=f"first tokens of the training split; None: all {TRAIN_TOKENS:,}")
    val_size: PositiveInt | None = Field(None, description=f"first tokens of the validation split; None: all {VALID_TOKENS:,}")
    test_size: PositiveInt | None = Field(None, description=f"first tokens of the test split; None: all {TEST_TOKENS:,}")
    epochs: PositiveInt = Field(10, description="passes over the training tokens")

    @model_validator(mode="after")
    def _split_sizes(self):
        for name, least, most in (("train_size", self.batch_size * (self.bptt + 1), TRAIN_TOKENS),
                                  ("val_size", 2 * EVAL_STREAMS, VALID_TOKENS), ("test_size", 2 * EVAL_STREAMS, TEST_TOKENS)):
            if (size := getattr(self, name)) is not None and not least <= size <= most:
                raise ValueError(f"{name} must be {least} to {most:,} tokens here (None: the whole split), got {size!r}")
        return self


class Config(LanguageModelTraining, Spec):
    arms: list[Literal["none", "naive", "variational"]] = Field(
        list(PAPER_ARMS), description="arms to train: the paper's naive and variational, optionally none (no dropout)")
    hidden: Widths = Field([200, 200], description="LSTM units per layer, one width for all (and the embedding size)")
    p: DropProbability = Field(0.3, description="dropout on inputs, outputs and (variational only) the recurrent state")
    p_embedding: DropProbability = Field(0.1, description="word-type dropout, variational only")
    mc_samples: PositiveInt = Field(PAPER_MC_SAMPLES, description="stochastic passes for MC averaging (the paper: 1000)")
    mc_tokens: PositiveInt | None = Field(2000, description="MC averaging on the test split's first tokens, read as one "
                                          f"text; None: all {TEST_TOKENS:,}")

    @model_validator(mode="after")
    def _arms_and_widths(self):
        if len(set(self.arms)) != len(self.arms) or not set(PAPER_ARMS) <= set(self.arms):
            raise ValueError(f"arms must name naive and variational (the claims compare them) and optionally none, each "
                             f"once, got {self.arms!r}")
        if len(set(self.hidden)) != 1:
            raise ValueError(f"hidden must be one width for every layer (VariationalLSTM), got {self.hidden!r}")
        if self.mc_tokens is not None and not 2 <= self.mc_tokens <= (self.test_size or TEST_TOKENS):
            raise ValueError(f"mc_tokens must be 2 to {self.test_size or TEST_TOKENS:,} tokens, the test text's "
                             f"(None: all of it), got {self.mc_tokens!r}")
        return self


# One 2x200 epoch over 250,000 tokens costs 33 s on 2 AVX-512 threads (92 ms per step, a third of it the 10,000-word
# softmax) and validation 3 s; the whole split would be 3.7 times that. So the cpu profile trains the paper's pair on
# the first 250,000 tokens for 10 epochs, 3 seeds (about 36 min), and MC-averages 1000 passes over the test split's
# first 2,000 tokens (40 us per token and pass: about 80 s per variational net).
PROFILES = {
    "smoke": {"hidden": [16, 16], "bptt": 10, "batch_size": 8, "epochs": 1, "mc_samples": 3, "mc_tokens": 50,
              "train_size": 4000, "val_size": 1000, "test_size": 1000, "seeds": 1},
    # 7 epochs: sized for 2 cores of a CPU with AVX2 only. The archived 10-epoch run took 41 minutes on an
    # AVX-512 session whose MLP benchmark trained about 2.9 times as fast as such a CPU (16.7k examples/s against
    # 5.8k); if the LSTM slows down as much (not timed there), 7 epochs x 3 seeds x 2 arms take about 87 minutes.
    # The instructions alone cost the two alike: with AVX2 kernels on an AVX-512 CPU an LSTM epoch took 1.15x its
    # time and an MLP epoch 1.23x (results/benchmarks/avx2_kernels_sequence.json, avx2_kernels.json).
    # The 7-epoch run took 36 minutes on a slower AVX-512 session (epochs 1.25x as long: 30 at the first one's
    # speed), which agrees: the AVX2 estimate scales the faster session's time, the one the 2.9x was measured at.
    "cpu": {"epochs": 7, "seeds": 3},
    "paper": {"hidden": [650, 650], "epochs": 39, "lr_decay_start": 6 / 39, "lr_decay": 1 / 1.2, "init_scale": 0.05,
              "p": 0.5, "p_embedding": 0.2, "mc_tokens": None, "train_size": None, "seeds": 5},
}

PAPER_VALUES = [
    {"id": f"{model}_{arm}", "model": model, "arm": arm, "value": value, "unit": "test perplexity",
     "what": f"{model} model ({'2x650' if model == 'medium' else '2x1500'} LSTM), {label}",
     "where": "Gal & Ghahramani 2016 (NIPS), Table 1 (test perplexity, single models)", "confirmed": True}
    for model, arm, label, value in (
        ("medium", "naive", "Zaremba et al. (2014)", 82.7), ("large", "naive", "Zaremba et al. (2014)", 78.4),
        ("medium", "variational", "variational, tied weights, weight averaging", 79.7),
        ("large", "variational", "variational, tied weights, weight averaging", 75.0),
        ("medium", "variational_mc", "variational, tied weights, MC averaging", 79.0),
        ("large", "variational_mc", "variational, tied weights, MC averaging", 74.1),
    )
]


def units(config: dict, seeds: list[int], done: dict) -> list[tuple[str, int]]:
    return [(arm, seed) for seed in seeds for arm in ARMS if arm in config["arms"]]


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
def target_probabilities(model: VariationalLSTM, stream: torch.Tensor, bptt: int) -> torch.Tensor:
    """Each next word's probability, ``(T - 1, B)`` float64, for ``stream`` ``(T, B)`` read in segments of ``bptt``
    with the state carried across them. Dropout as the model's mode says: in training mode each call draws fresh
    masks, per segment and per column, as in training."""
    probs, state = [], None
    for x, y in segments(stream, bptt):
        logits, state = model(x, state)
        probs.append(logits.log_softmax(-1).gather(2, y.unsqueeze(2)).squeeze(2).double().exp())
    return torch.cat(probs)


def _perplexity(mean_probs: torch.Tensor) -> float:
    return float(torch.exp(-mean_probs.log().mean()))


@torch.no_grad()
def perplexity(model: VariationalLSTM, stream: torch.Tensor, bptt: int) -> float:
    """Perplexity on ``stream`` ``(T, B)`` with weight averaging: dropout off, the net as it is."""
    was_training = model.training
    model.eval()
    try:
        return _perplexity(target_probabilities(model, stream, bptt))
    finally:
        model.train(was_training)


@torch.no_grad()
def mc_perplexities(model: VariationalLSTM, tokens: torch.Tensor, bptt: int, passes: int, at: list[int],
                    chunk: int = MC_CHUNK) -> list[float]:
    """MC averaging (Gal & Ghahramani 2016, section 5.1): the perplexity of each next word's probability averaged
    over the first ``n`` stochastic passes (dropout on) through ``tokens`` ``(N,)``, read as one text, for each ``n``
    in ``at`` (increasing, each at most ``passes``). The passes run ``chunk`` at a time as the columns of one batch:
    every column draws its own masks, so column j is pass j, exactly as if the passes ran one after another."""
    if list(at) != sorted(set(at)) or not at or at[0] < 1 or at[-1] > passes:
        raise ValueError(f"at must be increasing pass counts from 1 to passes = {passes}, got {at!r}")
    was_training, out = model.training, []
    model.train()
    try:
        total, done = torch.zeros(len(tokens) - 1, dtype=torch.float64, device=tokens.device), 0
        while done < passes:
            k = min(chunk, passes - done)
            running = total.unsqueeze(1) + target_probabilities(model, tokens.view(-1, 1).expand(-1, k), bptt).cumsum(1)
            out += [_perplexity(running[:, n - done - 1] / n) for n in at if done < n <= done + k]
            total, done = running[:, -1], done + k
    finally:
        model.train(was_training)
    return out


def mc_checkpoints(passes: int) -> list[int]:
    """The pass counts at which MC perplexity is recorded: :data:`MC_CHECKPOINTS` up to ``passes``, and ``passes``."""
    return sorted({n for n in MC_CHECKPOINTS if n < passes} | {passes})


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


def streams(corpus: data.Corpus, config: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The training, validation and test text of ``config`` (``train_size``, ``val_size``, ``test_size``: first tokens;
    ``batch_size``, ``device``) as streams: the training text in ``batch_size`` columns, the others in
    :data:`EVAL_STREAMS`."""
    train = batchify(corpus.train[: config["train_size"]], config["batch_size"]).to(config["device"])
    valid, test = (batchify(tokens[:n], EVAL_STREAMS).to(config["device"])
                   for tokens, n in ((corpus.valid, config["val_size"]), (corpus.test, config["test_size"])))
    return train, valid, test


def train_language_model(model: VariationalLSTM, config: dict, train: torch.Tensor, valid: torch.Tensor,
                         progress: bool = True, desc: str = "") -> dict[str, list]:
    """Zaremba et al.'s training through :func:`replib.train.fit`: plain SGD on consecutive ``bptt`` segments of
    ``train`` (the state carried across them, reset every epoch), the rate multiplied by ``lr_decay`` every epoch
    after ``lr_decay_start`` of the run, the gradient norm clipped at ``clip``, the perplexity of ``valid`` after every
    epoch. Returns fit's curves with ``train_perplexity``: exp of each epoch's mean cross-entropy per training token,
    masks on."""
    bptt = TruncatedBPTT(train, config["bptt"])
    curves = fit(model, bptt.batches, epochs=config["epochs"], optimizer=torch.optim.SGD(model.parameters(), lr=config["lr"]),
                 schedule=sgd_schedule(decay_after(config["lr"], config["lr_decay_start"], config["lr_decay"])),
                 loss=bptt.loss, before_step=clip_grad_norm(model.parameters(), config["clip"]),
                 monitor=lambda m: {"perplexity": perplexity(m, valid, config["bptt"])}, progress=progress, desc=desc)
    curves["train_perplexity"] = bptt.train_perplexity()
    return curves


def run_one(config: dict, arm: str, seed: int, progress: bool = True) -> dict:
    """Train one arm on consecutive segments, the LSTM state carried across them and reset every epoch.

    Curves: fit's (``train_loss``: :func:`sequence_loss` weighted by segment length; ``monitor_perplexity``:
    validation) and ``train_perplexity``: exp of the epoch's mean cross-entropy per training token, masks on; for the
    variational arm also ``mc_perplexity`` after each of ``mc_passes`` passes on the MC tokens.
    Metrics: test perplexity on the whole split and on the MC tokens (``subset_``) with weight averaging, and for the
    variational arm with MC averaging, with the seconds the MC passes took."""
    corpus, device, p = data.load_ptb(), config["device"], config["p"]
    train, valid, test = streams(corpus, config)
    drops = {"none": {}, "naive": {"p_input": p, "p_output": p},  # the arm's name is the LSTM's mode
             "variational": {"p_input": p, "p_output": p, "p_recurrent": p, "p_embedding": config["p_embedding"]}}
    model = VariationalLSTM(len(corpus.vocab), config["hidden"][0], len(config["hidden"]), mode=arm, **drops[arm])
    model.reset_parameters(config["init_scale"])
    model.to(device)
    curves = train_language_model(model, config, train, valid, progress, f"{arm} seed {seed}")
    subset = corpus.test[: config["mc_tokens"]].to(device)
    metrics = {"test_perplexity": perplexity(model, test, config["bptt"]), "valid_perplexity": curves["monitor_perplexity"][-1],
               "subset_perplexity": perplexity(model, subset.view(-1, 1), config["bptt"]),
               "seconds_per_epoch": float(np.mean(curves["seconds"]))}
    if arm == "variational":
        curves["mc_passes"] = mc_checkpoints(config["mc_samples"])
        with seeding.evaluation(seed), timing.stopwatch(device) as clock:
            curves["mc_perplexity"] = mc_perplexities(model, subset, config["bptt"], config["mc_samples"], curves["mc_passes"])
        metrics.update(subset_perplexity_mc=curves["mc_perplexity"][-1], mc_seconds=clock["seconds"])
    return {"metrics": metrics, "curves": curves}


# --------------------------------------------------------------------------- analysis


def final_perplexities(runs: list[dict]) -> dict[str, dict[int, float]]:
    """arm -> seed -> test perplexity (weight averaging, the whole test split)."""
    return rule.by_seed(runs, "test_perplexity")


def subset_perplexities(runs: list[dict]) -> dict[str, dict[int, float]]:
    """arm -> seed -> perplexity on the MC tokens with weight averaging; ``variational_mc``: MC averaging."""
    return {**rule.by_seed(runs, "subset_perplexity"),
            **rule.by_seed(runs, "subset_perplexity_mc", lambda arm: "variational_mc")}


def mean_curve(result: dict, arm: str, key: str) -> np.ndarray:
    """Per-epoch mean over seeds of curve ``key`` of ``arm``."""
    return np.mean([r["curves"][key] for r in result["runs"] if r["arm"] == arm], axis=0)


def mc_gain_curves(result: dict) -> dict[int, tuple[list[int], np.ndarray]]:
    """seed -> (pass counts, MC minus weight-averaging perplexity on the MC tokens after that many passes)."""
    return {r["seed"]: (r["curves"]["mc_passes"], np.array(r["curves"]["mc_perplexity"]) - r["metrics"]["subset_perplexity"])
            for r in result["runs"] if r["arm"] == "variational"}


def _tokens(config: dict) -> str:
    return "the whole test split" if config["mc_tokens"] is None else f"the test split's first {config['mc_tokens']:,} tokens"


def multiply_adds_per_token(config: dict) -> int:
    """Weights a token meets in a forward pass (LSTM input and recurrent products, softmax), so the multiply-adds;
    the embedding is a look-up. Scales the measured cost of one net to another's."""
    h, layers = config["hidden"][0], len(config["hidden"])
    return layers * 4 * h * 2 * h + h * VOCAB_SIZE


def claims(config: dict, runs: list[dict]) -> list[dict]:
    """The chapter's claims, each decided by :mod:`replib.claims`' rule over seeds; ``none`` below naive, when the
    optional arm ran, is Zaremba et al.'s finding, not this paper's: shown apart."""
    ppl, sub, mc = final_perplexities(runs), subset_perplexities(runs), config["mc_samples"]
    out = [rule.direction("variational_beats_naive", "At equal size and budget, variational dropout ends with a lower "
                          "test perplexity (weight averaging) than naive dropout.", ppl["variational"], ppl["naive"],
                          names=("variational", "naive"), digits=1),
           rule.direction("mc_averaging_beats_weight_averaging", f"For the variational arm, averaging each word's "
                          f"probability over {mc} stochastic passes (MC averaging) gives a lower perplexity than weight "
                          f"averaging, on {_tokens(config)}.", sub["variational_mc"], sub["variational"],
                          names=("MC averaging", "weight averaging"), digits=1)]
    if "none" in config["arms"]:
        out.append(rule.beyond_paper(rule.direction("naive_beats_none", "Naive dropout ends with a lower test perplexity "
                                                    "than no dropout (Zaremba et al. 2014).", ppl["naive"], ppl["none"],
                                                    names=("naive", "none"), digits=1)))
    return out


def facts(result: dict) -> dict[str, str]:
    """The numbers the chapter's prose quotes, formatted from the result."""
    config, runs = result["config"], result["runs"]
    ppl, sub = final_perplexities(runs), subset_perplexities(runs)
    paper = {v["arm"]: v["value"] for v in result["paper_values"] if v["model"] == "medium"}
    outcome = {c["id"]: c["outcome"] for c in result["claims"]}
    valid = {arm: mean_curve(result, arm, "monitor_perplexity") for arm in config["arms"]}
    gains = mc_gain_curves(result)
    at = gains[min(gains)][0]
    n_mc = config["mc_tokens"] or TEST_TOKENS
    mc_minutes = np.mean([r["metrics"]["mc_seconds"] for r in runs if r["arm"] == "variational"]) / 60
    out = {f"outcome_{k}": v for k, v in outcome.items()}
    out.update({f"test_{arm}": rule.mean_sd(v.values(), 1) for arm, v in ppl.items()})
    out.update({f"test_{arm}_per_seed": rule.per_seed(v, 1) for arm, v in ppl.items()})
    out.update({f"subset_{arm}": rule.mean_sd(v.values(), 1) for arm, v in sub.items()})
    out.update({f"train_final_{arm}": rule.fmt(mean_curve(result, arm, "train_perplexity")[-1], 0) for arm in config["arms"]})
    out.update({f"valid_best_epoch_{arm}": str(int(v.argmin()) + 1) for arm, v in valid.items()})
    out.update({f"valid_last_gain_{arm}": rule.fmt(v[-2] - v[-1], 1) if len(v) > 1 else "not measured (one epoch)"
                for arm, v in valid.items()})
    gain_at = {n: rule.per_seed({s: g[i] for s, (_, g) in gains.items()}, 1) for i, n in enumerate(at)}
    lead, mc_gain = rule.paired(ppl["variational"], ppl["naive"]), rule.paired(sub["variational_mc"], sub["variational"])
    out.update({f"{name}_lower_seeds": f"{int((d < 0).sum())} of {len(d)}" for name, d in (("variational", lead), ("mc", mc_gain))})
    out.update({f"{name}_interval": rule.fmt_interval(*rule.interval(d), digits=1) for name, d in
                (("variational_minus_naive", lead), ("mc_minus_weight_averaging", mc_gain))})
    if len(at) > 1:
        out["mc_last_change_per_seed"] = rule.per_seed({s: g[-1] - g[-2] for s, (_, g) in gains.items()}, 2)
        out["mc_second_last_passes"] = str(at[-2])
    return {**out, "epochs": str(config["epochs"]), "seeds": str(len(result["seeds"])),
            "last_lr": rule.fmt(runs[0]["curves"]["lr"][-1], 4),
            "first_decayed_epoch": next((str(i) for i, lr in enumerate(runs[0]["curves"]["lr"], 1) if lr < config["lr"]),
                                        "none (the run ends first)"),
            "naive_minus_variational_per_seed": rule.per_seed(rule.paired(ppl["naive"], ppl["variational"]), 1),
            "mc_minus_weight_averaging_per_seed": rule.per_seed(rule.paired(sub["variational_mc"], sub["variational"]), 1),
            "mc_gain_first_pass_per_seed": gain_at[at[0]], "mc_gain_20_per_seed": gain_at.get(20, "not measured"),
            "mc_gain_100_per_seed": gain_at.get(100, "not measured"),
            "mc_tokens": _tokens(config), "mc_samples": str(config["mc_samples"]),
            "seconds_per_epoch": rule.fmt(np.mean([r["metrics"]["seconds_per_epoch"] for r in runs]), 0),
            "mc_minutes_per_net": rule.fmt(mc_minutes, 1),
            "mc_whole_split_minutes": rule.fmt(mc_minutes * (TEST_TOKENS - 1) / (n_mc - 1), 0),
            "whole_train_split_factor": rule.fmt(TRAIN_TOKENS / (config["train_size"] or TRAIN_TOKENS), 1),
            **paper_cost(result),
            "paper_mc_gain": rule.fmt(paper["variational"] - paper["variational_mc"], 1),
            "paper_mc_samples": str(PAPER_MC_SAMPLES),
            "paper_variational_lead": rule.fmt(paper["naive"] - paper["variational"], 1),
            "ours_over_paper": rule.fmt(np.mean(list(ppl["variational"].values())) / paper["variational"], 1)}


def paper_cost(result: dict) -> dict[str, str]:
    """What the ``paper`` profile's training would cost on this run's machine: its token-epochs at this run's seconds
    per training token, scaled by the ratio of multiply-adds per token of the two nets (MC passes not included)."""
    from . import get, resolve  # the runner's resolution of a profile, the one every run uses

    config, (paper, seeds) = result["config"], resolve(get(PAPER), "paper")
    token_epochs = len(PAPER_ARMS) * len(seeds) * paper["epochs"] * TRAIN_TOKENS
    per_token = np.mean([r["metrics"]["seconds_per_epoch"] for r in result["runs"]]) / (config["train_size"] or TRAIN_TOKENS)
    ratio = multiply_adds_per_token(paper) / multiply_adds_per_token(config)
    return {"paper_token_epochs": f"{token_epochs / 1e6:,.0f} million", "paper_macs_ratio": rule.fmt(ratio, 1),
            "paper_cpu_days": rule.fmt(token_epochs * per_token * ratio / 86_400, 0)}


# --------------------------------------------------------------------------- presentation

ARM_LABELS = {"none": "no dropout", "naive": "naive (Zaremba et al.)", "variational": "variational"}


def figure(result: dict):
    """(a) Validation perplexity against epoch per arm: mean over seeds, each seed faint; (b) MC minus weight-averaging
    perplexity of each variational net on the MC tokens against the number of passes averaged."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator

    config = result["config"]
    colors = dict(zip(ARMS, plotting.palette(len(ARMS))))
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.4))
    for arm in (a for a in ARMS if a in config["arms"]):
        for r in (r for r in result["runs"] if r["arm"] == arm):
            valid = r["curves"]["monitor_perplexity"]
            ax.plot(np.arange(1, len(valid) + 1), valid, color=colors[arm], alpha=0.3, linewidth=0.8)
        valid = mean_curve(result, arm, "monitor_perplexity")
        ax.plot(np.arange(1, len(valid) + 1), valid, marker="o", markersize=4, color=colors[arm],
                label=f"{ARM_LABELS[arm]}: mean (faint: each seed)")
    if (decay := at_epoch(config["lr_decay_start"], config["epochs"])) < config["epochs"]:
        ax.axvline(decay + 0.5, color="0.6", linestyle="--", linewidth=0.8, label="learning rate decays from here")
    ax.set(xlabel="epoch", ylabel="validation perplexity (weight averaging)", yscale="log")
    for axis in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
        axis(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"(a) Penn Treebank, {len(hidden := config['hidden'])}x{hidden[0]} LSTM, {len(result['seeds'])} seed(s)",
                 fontsize=10)
    ax.legend(fontsize=8)
    for i, (seed, (passes, gain)) in enumerate(sorted(mc_gain_curves(result).items())):
        bx.plot(passes, gain, marker="o", markersize=3, color=plotting.palette(len(result["seeds"]))[i],
                label=f"ours, seed {seed}")
    bx.axhline(0.0, color="0.3", linewidth=0.8)
    paper = {v["arm"]: v["value"] for v in result["paper_values"] if v["model"] == "medium"}
    bx.plot([PAPER_MC_SAMPLES],
            [paper["variational_mc"] - paper["variational"]], marker="*", markersize=11, color="black", linestyle="none",
            label="paper, 2x650, whole test split")
    bx.set(xscale="log", xlabel="stochastic passes averaged", ylabel="MC minus weight averaging (perplexity)")
    bx.set_yscale("symlog", linthresh=5)  # linear within ±5, where the curves settle; logarithmic beyond
    bx.yaxis.set_major_locator(FixedLocator([-20, -10, -5, -2, 0, 2, 5, 10, 20, 50, 100, 200]))
    bx.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    bx.set_title(f"(b) MC averaging, variational nets, {_tokens(config)}", fontsize=10)
    bx.legend(fontsize=8)
    fig.suptitle(f"Variational against naive dropout ({result['profile']} profile)", fontsize=11)
    fig.tight_layout()
    return fig


def table(result: dict) -> pd.DataFrame:
    """Paper vs ours: test perplexity per arm (mean ± sd over seeds), on the whole test split and on the MC tokens."""
    ppl, sub = final_perplexities(result["runs"]), subset_perplexities(result["runs"])
    paper = {(v["model"], v["arm"]): v["value"] for v in result["paper_values"]}
    labels = {**{a: ARM_LABELS[a] for a in ARMS if a in result["config"]["arms"]},
              "variational_mc": f"variational, MC averaging (paper: {PAPER_MC_SAMPLES} passes, ours: {result['config']['mc_samples']})"}
    printed = {key: rule.fmt(value, 1) for key, value in paper.items()}  # as Table 1 prints them, to one decimal
    rows = [{"arm": label, "paper 2x650": printed.get(("medium", arm), ""), "paper 2x1500": printed.get(("large", arm), ""),
             "ours: whole test split": rule.mean_sd(ppl[arm].values(), 1) if arm in ppl else "not measured",
             f"ours: {_tokens(result['config']).removeprefix('the ')}": rule.mean_sd(sub[arm].values(), 1)}
            for arm, label in labels.items()]
    return pd.DataFrame(rows).set_index("arm")


FIGURES = {"figure": figure}
TABLES = {"paper_vs_ours": table}

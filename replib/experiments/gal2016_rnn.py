"""Gal & Ghahramani (2016), NIPS: variational dropout in an LSTM language model on Penn Treebank.

"A Theoretically Grounded Application of Dropout in Recurrent Neural Networks", NIPS 2016
(arXiv 1512.05287). Arms, all the same 2-layer LSTM trained on the same budget:
``none`` (no dropout), ``naive`` (Zaremba et al. 2014: a fresh mask at every step on the
non-recurrent connections) and ``variational`` (one mask per sequence on the embedding,
inputs, recurrent state and outputs). Every arm is evaluated with weight averaging
(dropout off); the variational arm also with MC averaging of the predicted probabilities.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .. import data
from ..methods import VariationalLSTM
from ..train import seed_everything
from ._config import apply_overrides, check_drop_probability, check_int

PAPER = "gal2016_rnn"
TITLE = "Gal & Ghahramani 2016: variational dropout in LSTMs"
ARMS = ("none", "naive", "variational")

_COMMON = {
    "hidden": 200,  # units per layer (and embedding size); the paper's medium model has 650
    "layers": 2,
    "batch_size": 32,  # sequences per minibatch (Zaremba et al. and the paper: 20)
    "bptt": 35,  # steps per truncated back-propagation segment (Zaremba et al., medium)
    "lr": 1.0,  # plain SGD, as Zaremba et al. and Gal's code
    "lr_decay": 0.5,  # per epoch once decay starts
    "decay_start": 4,  # epochs at full rate before the decay
    "clip": 5.0,  # gradient norm clipping
    "init_scale": 0.1,  # uniform(-0.1, 0.1) initialisation (Zaremba et al., small)
    "p": 0.3,  # dropout on inputs, outputs and (variational only) the recurrent state
    "p_embedding": 0.1,  # word-type dropout, variational only
    "mc_passes": 20,  # MC averaging passes on the test set (the paper: 1000)
    "train_tokens": None,  # None: the whole training split (929,589 tokens); else its first n tokens
    "eval_tokens": None,  # None: the whole validation and test splits; else their first n tokens (smoke)
    "device": "cpu",
}
PROFILES = {
    "smoke": {**_COMMON, "hidden": 16, "bptt": 10, "batch_size": 8, "epochs": 1, "decay_start": 0, "mc_passes": 2,
              "train_tokens": 4000, "eval_tokens": 1000, "seeds": 1},
    # The whole training split costs 4.6 min per epoch per arm at 1 thread here (the 10k-word
    # softmax dominates), so the cpu profile trains on its first 250,000 tokens for 8 epochs:
    # long enough for the undropped net to overfit, which is what dropout is tested against.
    "cpu": {**_COMMON, "batch_size": 20, "epochs": 8, "decay_start": 5, "train_tokens": 250_000, "seeds": 2},
    "paper": {**_COMMON, "hidden": 650, "batch_size": 20, "epochs": 39, "decay_start": 6, "lr_decay": 1 / 1.2,
              "init_scale": 0.05, "p": 0.5, "p_embedding": 0.2, "mc_passes": 1000, "seeds": 5},
}

# Test perplexity, single models; from a third-party extraction of the paper's table (shared/PAPERS.md).
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


def resolve(profile: str, **overrides) -> dict:
    config = apply_overrides(PAPER, PROFILES, profile, overrides)
    for key in ("hidden", "layers", "batch_size", "bptt", "mc_passes"):
        check_int(config, key)
    for key in ("p", "p_embedding"):
        check_drop_probability(config, key)
    for key, least in (("train_tokens", config["batch_size"] * (config["bptt"] + 1)), ("eval_tokens", 20)):
        check_int(config, key, least, allow_none=True)  # None: the whole split
    return config


def arms(config: dict) -> list[str]:
    return list(ARMS)


def build(arm: str, config: dict, vocab_size: int) -> VariationalLSTM:
    p, h, layers = config["p"], config["hidden"], config["layers"]
    if arm == "none":
        model = VariationalLSTM(vocab_size, h, layers, mode="none")
    elif arm == "naive":
        model = VariationalLSTM(vocab_size, h, layers, mode="naive", p_input=p, p_output=p)
    else:
        model = VariationalLSTM(vocab_size, h, layers, mode="variational", p_input=p, p_output=p, p_recurrent=p,
                                p_embedding=config["p_embedding"])
    model.reset_parameters(config["init_scale"])
    return model.to(config["device"])


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
    """Cross-entropy of ``logits`` ``(T, B, V)`` for ``targets`` ``(T, B)``: summed over time, averaged over sequences.

    Zaremba et al.'s loss, which their learning rate of 1 and clipping at 5 are tuned for;
    the mean over every token would shrink each step by a factor of T.
    """
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum") / targets.shape[1]


@torch.no_grad()
def perplexity(model: VariationalLSTM, stream: torch.Tensor, bptt: int, mc_passes: int = 0) -> float:
    """Perplexity on ``stream``: weight averaging (``mc_passes = 0``, dropout off) or MC averaging of probabilities.

    MC averaging runs the whole stream ``mc_passes`` times with dropout on (fresh masks per
    segment, as in training) and averages each target word's probability over the passes.
    """
    was_training = model.training
    passes = max(1, mc_passes)
    prob_sum = torch.zeros(stream.shape[0] - 1, stream.shape[1], device=stream.device, dtype=torch.float64)
    model.train(mc_passes > 0)
    for _ in range(passes):
        state, row = None, 0
        for x, y in segments(stream, bptt):
            logits, state = model(x, state)
            prob_sum[row : row + len(x)] += logits.log_softmax(-1).gather(2, y.unsqueeze(2)).squeeze(2).exp().double()
            row += len(x)
    model.train(was_training)
    return float(torch.exp(-(prob_sum / passes).log().mean()))


def run_one(config: dict, arm: str, seed: int, progress: bool = True) -> dict:
    corpus = data.load_ptb()
    device = config["device"]
    train_tokens = corpus.train if config["train_tokens"] is None else corpus.train[: config["train_tokens"]]
    train = batchify(train_tokens, config["batch_size"]).to(device)
    valid, test = batchify(corpus.valid, 10).to(device), batchify(corpus.test, 10).to(device)
    if config["eval_tokens"] is not None:  # rows of 10 streams
        valid, test = valid[: config["eval_tokens"] // 10], test[: config["eval_tokens"] // 10]
    seed_everything(seed)
    model = build(arm, config, len(corpus.vocab))
    optimizer = torch.optim.SGD(model.parameters(), lr=config["lr"])
    curves: dict[str, list] = {"epoch": [], "lr": [], "train_perplexity": [], "valid_perplexity": [], "seconds": []}

    from tqdm.auto import tqdm

    for epoch in range(config["epochs"]):
        tic = time.perf_counter()
        lr = config["lr"] * config["lr_decay"] ** max(0, epoch + 1 - config["decay_start"])
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        state, loss_sum, count = None, 0.0, 0
        n_segments = math.ceil((train.shape[0] - 1) / config["bptt"])
        for x, y in tqdm(segments(train, config["bptt"]), total=n_segments, desc=f"{arm} seed {seed} epoch {epoch + 1}",
                         disable=not progress, leave=False, mininterval=1.0):
            state = tuple(s.detach() for s in state) if state is not None else None
            logits, state = model(x, state)
            loss = sequence_loss(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config["clip"])
            optimizer.step()
            loss_sum += float(loss.detach()) * y.shape[1]
            count += y.numel()
        curves["epoch"].append(epoch + 1)
        curves["lr"].append(lr)
        curves["train_perplexity"].append(math.exp(loss_sum / count))
        curves["valid_perplexity"].append(perplexity(model, valid, config["bptt"]))
        curves["seconds"].append(time.perf_counter() - tic)
    metrics = {"test_perplexity": perplexity(model, test, config["bptt"]),
               "valid_perplexity": curves["valid_perplexity"][-1],
               "seconds_per_epoch": float(np.mean(curves["seconds"]))}
    if arm == "variational":
        torch.manual_seed(10_000 + seed)
        metrics["test_perplexity_mc"] = perplexity(model, test, config["bptt"], config["mc_passes"])
    return {"metrics": metrics, "curves": curves}


# --------------------------------------------------------------------------- analysis


def final_perplexities(runs: list[dict]) -> pd.DataFrame:
    rows = [{"arm": r["arm"], "seed": r["seed"], "weight averaging": r["metrics"]["test_perplexity"],
             "MC averaging": r["metrics"].get("test_perplexity_mc", np.nan)} for r in runs]
    return pd.DataFrame(rows).groupby("arm", sort=False)[["weight averaging", "MC averaging"]].agg(["mean", "std"])


def claims(config: dict, runs: list[dict]) -> list[dict]:
    ppl = final_perplexities(runs)[("weight averaging", "mean")]
    mc = float(final_perplexities(runs).loc["variational", ("MC averaging", "mean")])
    return [
        {
            "id": "variational_beats_naive_beats_none",
            "statement": "At equal size and budget, test perplexity orders variational < naive < none "
                         "(weight averaging, mean over seeds).",
            "holds": bool(ppl["variational"] < ppl["naive"] < ppl["none"]),
            "evidence": {"test_perplexity": {a: round(float(v), 2) for a, v in ppl.items()}},
        },
        {
            "id": "mc_averaging_does_not_hurt",
            "statement": f"For the variational arm, MC averaging over {config['mc_passes']} passes gives a test "
                         "perplexity no higher than weight averaging.",
            "holds": bool(mc <= ppl["variational"]),
            "evidence": {"weight_averaging": round(float(ppl["variational"]), 2), "mc_averaging": round(mc, 2)},
        },
    ]


# --------------------------------------------------------------------------- presentation

ARM_LABELS = {"none": "no dropout", "naive": "naive (Zaremba et al.)", "variational": "variational"}


def figure(result: dict):
    """Validation perplexity against epoch per arm (mean over seeds)."""
    import matplotlib.pyplot as plt

    from .. import plotting

    plotting.use_house_style()
    colors = dict(zip(ARMS, plotting.palette(len(ARMS))))
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for arm in ARMS:
        per_seed = np.array([r["curves"]["valid_perplexity"] for r in result["runs"] if r["arm"] == arm])
        epochs = np.arange(1, per_seed.shape[1] + 1)
        ax.plot(epochs, per_seed.mean(0), marker="o", color=colors[arm], label=f"ours: {ARM_LABELS[arm]} (validation)")
    for value in result["paper_values"]:
        if value["model"] == "medium" and value["arm"] in ("naive", "variational"):
            ax.axhline(value["value"], color=colors[value["arm"]], linestyle=":", linewidth=1.2,
                       label=f"paper, 2x650, test: {ARM_LABELS[value['arm']]} {value['value']}")
    cfg = result["config"]
    ax.set_xlabel("epoch")
    ax.set_ylabel("perplexity")
    ax.set_yscale("log")
    ax.set_title(f"Penn Treebank, {cfg['layers']}x{cfg['hidden']} LSTM, {len(result['seeds'])} seed(s) "
                 f"({result['profile']} profile)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def table(result: dict) -> pd.DataFrame:
    ppl = final_perplexities(result["runs"])
    paper = {(v["model"], v["arm"]): v["value"] for v in result["paper_values"]}
    rows = []
    for arm, label in (("none", "no dropout"), ("naive", "naive"), ("variational", "variational"),
                       ("variational_mc", "variational, MC averaging")):
        base, col = (arm.replace("_mc", ""), "MC averaging" if arm.endswith("_mc") else "weight averaging")
        mean, sd = ppl.loc[base, (col, "mean")], ppl.loc[base, (col, "std")]
        rows.append({"arm": label, "paper 2x650 (unconfirmed)": paper.get(("medium", arm), ""),
                     "paper 2x1500 (unconfirmed)": paper.get(("large", arm), ""),
                     "ours: test perplexity": f"{mean:.1f}" + ("" if np.isnan(sd) else f" ± {sd:.1f}")})
    return pd.DataFrame(rows).set_index("arm")

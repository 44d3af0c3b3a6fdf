"""The atlas: every applicable dropout method of the book on one task and one budget each; our comparison, not a paper's.

Three tasks, each one net trained the same way for every method:

- ``mlp``: MNIST, a 784-800-800-10 ReLU net, Adam; the methods ``none``, ``dropout`` (Bernoulli masks on the
  hidden units), ``gaussian`` (multiplicative Gaussian noise of the same variance, Srivastava et al. 2014),
  ``dropconnect`` (per-example masks on the weights of both hidden layers, Wan et al. 2013), ``standout``
  (keep probabilities from the unit's own pre-activation, Ba & Frey 2013) and ``sparse_vd`` (a dropout rate
  learned for every weight, the weights it drops pruned, Molchanov et al. 2017);
- ``conv``: CIFAR-10, the fast net of the Cutout chapter by the fast recipe; ``none``, ``dropout`` (per element),
  ``spatial`` (per feature map, Tompson et al. 2015), ``gaussian``, ``maxpool`` (max-pooling dropout, Wu & Gu
  2015), ``maxdrop`` (each feature map's largest activation dropped, Park & Kwak 2016) and ``cutout`` (DeVries &
  Taylor 2017);
- ``rnn``: Penn Treebank, the 2 x 200 LSTM language model of the variational RNN chapter; ``none``, ``naive``
  (Zaremba et al. 2014), ``variational`` (Gal & Ghahramani 2016), ``rnndrop`` (Moon et al. 2015) and
  ``semeniuta`` (Semeniuta et al. 2016).

Each method has one hyperparameter (a drop probability; standout's alpha; sparse VD's weight of the KL term;
cutout's patch length), chosen from a small stated grid (``grids``) on a validation split. Two rounds
(:func:`units`): **selection**, seeds ``0 .. select_seeds - 1`` train every grid value of every method; **test**, the
other seeds train ``none`` and every method at the value with the best mean validation score. Every net is scored on
the test split, and the claims compare methods seed by seed on it. Sparse VD's nets also record the share of weights
they prune and the test error at several pruning thresholds (the compression section).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, model_validator

from .. import claims as rule
from .. import data, models, plotting
from .. import results as store
from .._validate import PositiveFloat, PositiveInt, Share, Spec, SubSpec, Widths
from ..methods import VariationalLSTM
from ..train import adam_schedule, classification_monitor, cross_entropy, evaluate, fit, minibatches, step_decay
from . import _cifar, gal2016_rnn

PAPER = "atlas"
TITLE = "Atlas: every method on one budget"
CITE = "labach2019"  # the survey of dropout methods whose list the atlas covers
HEADLINE = "Our comparison, not a paper's: which dropout method helps an MLP, a conv net and an LSTM, at one budget each, and at what cost."
DATASETS = ("mnist", "cifar10", "ptb")

TASKS = ("mlp", "conv", "rnn")
METHODS = {  # task -> method -> (its hyperparameter, the method's source in book/references.bib)
    "mlp": {"none": ("", ""), "dropout": ("p", "srivastava2014"), "gaussian": ("p", "srivastava2014"),
            "dropconnect": ("p", "wan2013"), "standout": ("alpha", "ba2013"), "sparse_vd": ("KL weight", "molchanov2017")},
    "conv": {"none": ("", ""), "dropout": ("p", "srivastava2014"), "spatial": ("p", "tompson2015"),
             "gaussian": ("p", "srivastava2014"), "maxpool": ("p", "wu2015"), "maxdrop": ("p", "park2016"),
             "cutout": ("length", "devries2017")},
    "rnn": {"none": ("", ""), "naive": ("p", "zaremba2014"), "variational": ("p", "gal2016rnn"),
            "rnndrop": ("p", "moon2015"), "semeniuta": ("p", "semeniuta2016")},
}
REFERENCE = {"mlp": "dropout", "conv": "dropout", "rnn": "naive"}  # "plain dropout" of each task
METRIC = {"mlp": "error", "conv": "error", "rnn": "perplexity"}  # lower is better; runs store val_<m> and test_<m>
UNIT = {"error": " %", "perplexity": ""}
TASK_NAMES = {"mlp": "MNIST MLP", "conv": "CIFAR-10 conv net", "rnn": "PTB LSTM"}
METHOD_NAMES = {"none": "no dropout", "dropout": "dropout", "gaussian": "Gaussian dropout", "dropconnect": "DropConnect",
                "standout": "standout", "sparse_vd": "sparse variational dropout", "spatial": "SpatialDropout",
                "maxpool": "max-pooling dropout", "maxdrop": "Max-Drop", "cutout": "Cutout", "naive": "naive dropout",
                "variational": "variational dropout", "rnndrop": "RNNDrop", "semeniuta": "recurrent dropout (Semeniuta)"}
THRESHOLDS = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)  # log-alpha pruning thresholds of the compression curve (3: the paper's)
CHANCE = {"error": 90.0, "perplexity": float(gal2016_rnn.VOCAB_SIZE)}  # the score of a uniform guess
MNIST_TRAIN = 60_000  # MNIST's training images, validation included
PRUNED_AIM = 90.0  # % of the MLP's weights sparse VD is claimed to prune (an order of magnitude), fixed before any run


class MLPTask(SubSpec):
    hidden: Widths = Field([800, 800], description="units per hidden layer (ReLU)")
    epochs: PositiveInt = Field(10, description="passes over the training images")
    batch_size: PositiveInt = Field(128, description="images per minibatch")
    lr: PositiveFloat = Field(1e-3, description="Adam's learning rate, times 0.2 after half and after three quarters of the run")
    train_size: PositiveInt | None = Field(None, description="training images, the first of the 60,000 after the validation images; None: all 50,000")
    val_size: PositiveInt = Field(10_000, description="validation images: the last of the 60,000 training images")
    test_size: PositiveInt | None = Field(None, description="test images; None: all 10,000")
    kl_warmup: Share = Field(0.5, description="sparse VD: share of the steps over which the KL weight rises linearly from 0")


class ConvTask(_cifar.FastTraining.with_defaults(train_size=10_000, val_size=5000)):
    widths: list[PositiveInt] = Field([32, 64, 64], min_length=1, max_length=4, description="channels of the fast net's blocks")
    depth: PositiveInt = Field(2, description="3x3 convolutions per block")
    epochs: PositiveInt = Field(10, description="passes over the training images; the one-cycle schedule spans them")


class RNNTask(gal2016_rnn.LanguageModelTraining.with_defaults(lr_decay_start=0.5, train_size=150_000, val_size=20_000,
                                                             epochs=4)):
    hidden: PositiveInt = Field(200, description="LSTM units per layer (2 layers) and embedding size")


GRIDS = {
    "mlp": {"none": [0.0], "dropout": [0.25, 0.5], "gaussian": [0.25, 0.5], "dropconnect": [0.25, 0.5],
            "standout": [0.5, 1.0], "sparse_vd": [0.1, 1.0]},
    "conv": {"none": [0.0], "dropout": [0.1, 0.2], "spatial": [0.1, 0.2], "gaussian": [0.1, 0.2], "maxpool": [0.1, 0.2],
             "maxdrop": [0.25, 0.5], "cutout": [8.0, 16.0]},
    "rnn": {"none": [0.0], "naive": [0.2, 0.4], "variational": [0.2, 0.4], "rnndrop": [0.2, 0.4], "semeniuta": [0.2, 0.4]},
}


class Config(Spec):
    tasks: list[Literal["mlp", "conv", "rnn"]] = Field(list(TASKS), min_length=1, description="the tasks to run")
    grids: dict[str, dict[str, list[float]]] = Field(
        GRIDS, description="task -> method -> the values of its one hyperparameter tried on validation (none: [0])")
    select_seeds: PositiveInt = Field(1, description="seeds 0..select_seeds-1 try every grid value; the rest run the chosen ones")
    mlp: MLPTask = Field(MLPTask(), description="the MNIST MLP task")
    conv: ConvTask = Field(ConvTask(), description="the CIFAR-10 conv-net task (the fast recipe)")
    rnn: RNNTask = Field(RNNTask(), description="the Penn Treebank LSTM task")

    @model_validator(mode="after")
    def _grids(self):
        if len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"tasks must name each task once, got {self.tasks!r}")
        unknown = sorted(set(self.grids) - set(TASKS))
        if unknown:
            raise ValueError(f"grids: unknown task {unknown[0]!r}; the tasks: {', '.join(TASKS)}")
        for task in self.grids:  # every grid, run or not: a value typed for a task is checked where it is typed
            grid = self.grids.get(task)
            if grid is None or set(grid) != set(METHODS[task]):
                raise ValueError(f"grids[{task!r}] must give values for exactly the methods {list(METHODS[task])}, "
                                 f"got {None if grid is None else list(grid)}")
            for method, values in grid.items():
                if method == "none" and values != [0.0]:
                    raise ValueError(f"grids[{task!r}]['none'] must be [0] (no hyperparameter), got {values!r}")
                if not values or len(set(values)) != len(values):
                    raise ValueError(f"grids[{task!r}][{method!r}] must be distinct values, at least one, got {values!r}")
                bad = [v for v in values if not _valid_value(task, method, v)]
                if bad:
                    raise ValueError(f"grids[{task!r}][{method!r}]: {bad} out of range ({_range(task, method)})")
        return self


def _range(task: str, method: str) -> str:
    name = METHODS[task][method][0]
    return {"p": "a drop probability in (0, 1)", "alpha": "alpha > 0", "KL weight": "a weight in (0, 1]",
            "length": f"a whole number of pixels from 1 to {data.CIFAR10_SIDE}"}.get(name, "0")


def _valid_value(task: str, method: str, v: float) -> bool:
    name = METHODS[task][method][0]
    if method == "none":
        return v == 0.0
    return {"p": 0 < v < 1, "alpha": v > 0, "KL weight": 0 < v <= 1, "length": 1 <= v <= data.CIFAR10_SIDE and float(v).is_integer()}[name]


PROFILES = {
    "smoke": {"seeds": 2, "select_seeds": 1,
              "grids": {"mlp": {m: [v[-1]] for m, v in GRIDS["mlp"].items()} | {"dropout": [0.25, 0.5]},
                        "conv": {m: [v[-1]] for m, v in GRIDS["conv"].items()},
                        "rnn": {m: [v[-1]] for m, v in GRIDS["rnn"].items()}},
              "mlp": {"hidden": [32, 32], "epochs": 1, "train_size": 2000, "val_size": 500, "test_size": 500},
              "conv": {"widths": [8, 16], "epochs": 1, "train_size": 256, "val_size": 128, "test_size": 256,
                       "precision": "fp32"},
              "rnn": {"hidden": 16, "bptt": 10, "batch_size": 8, "epochs": 1, "train_size": 4000, "val_size": 1000,
                      "test_size": 1000}},
    # cpu: small training sets, so that every net without dropout over-fits within the budget (probes of no dropout
    # alone, on 2 AVX-512 threads: the MLP on 5,000 images for 20 epochs fits them exactly, 0 % training error against
    # 4.5 % held out; the conv net on 2,500 images for 20 epochs reaches 1.5 % against 32.5 %, where 4,000 images for
    # 10 epochs still left 18 % on its own training images; the LSTM on 20,000 tokens for 7 epochs reaches a training
    # perplexity of 203 against 721 on validation). Sized for the slower CPUs: AVX2-only CPUs train the MLP and the
    # LSTM in fp32 about 2.9x slower than the fastest session of the AVX-512 Xeon of these runs (MLP 16.7k examples/s,
    # results/benchmarks/train_loop.json, against 5.8k measured on AVX2), and the conv net in fp32 (not bf16, emulated
    # there) 2.2-3.0x slower than that Xeon does in fp32, which is about 1.9x its bf16 time. A first run at 40, 15 and
    # 10 epochs took 47 minutes on the Xeon; a second, with the conv net on 2,500 images (kept in results/atlas/archive),
    # 27 minutes (MLP 6.9, conv net 11.6 in bf16 of which 3.2 evaluating, LSTM 8.5), some 93-111 minutes on AVX2. On
    # 1,250 images, with the validation split scored once, at the end, the conv net's part should fall to about 6.6
    # minutes: about 22 minutes on that Xeon, some 72-82 on AVX2. (The run took 31.5 minutes on a Xeon of the same
    # model that trained the unchanged MLP and LSTM nets, bit for bit the same, 1.3x and 1.6x slower.) DropConnect's
    # per-example masks cost 7x dropout, so its grid is its paper's p alone.
    "cpu": {"seeds": 3, "grids": {"mlp": {"dropconnect": [0.5]}},
            "mlp": {"train_size": 5000, "val_size": 5000, "epochs": 20},
            "conv": {"train_size": 1250, "epochs": 20, "eval_every": 20},
            "rnn": {"train_size": 20_000, "val_size": 10_000, "batch_size": 10, "epochs": 7}},
    "paper": {"seeds": 5, "select_seeds": 2, "mlp": {"epochs": 100}, "conv": {"train_size": None, "epochs": 50},
              "rnn": {"hidden": 650, "train_size": None, "val_size": None, "epochs": 39, "lr_decay_start": 6 / 39,
                      "lr_decay": 1 / 1.2, "init_scale": 0.05}},
}

PAPER_VALUES = [
    {"id": "sparse_vd_lenet_up_to", "value": 280, "unit": "x fewer weights", "what": "sparse VD, 'up to 280 times' fewer "
     "parameters on LeNet architectures (MNIST) with a negligible loss of accuracy", "where": "Molchanov et al. 2017, "
     "abstract (arXiv 1701.05369)", "confirmed": True},
    {"id": "sparse_vd_lenet300_compression", "value": 68, "unit": "x fewer weights", "what": "sparse VD on LeNet-300-100 "
     "(MNIST), compression |W| / |W != 0|", "where": "Molchanov et al. 2017, Table 1, as commonly quoted; not read in the "
     "paper here", "confirmed": False},
    {"id": "sparse_vd_lenet300_error", "value": 1.92, "unit": "test error %", "what": "sparse VD on LeNet-300-100 (MNIST), "
     "the pruned net", "where": "Molchanov et al. 2017, Table 1, as commonly quoted; not read in the paper here",
     "confirmed": False},
]


# --------------------------------------------------------------------------- units


def arm_of(task: str, method: str, value: float) -> str:
    return f"{task}/none" if method == "none" else f"{task}/{method}@{value:g}"


def parse(arm: str) -> tuple[str, str, float]:
    """``"mlp/dropout@0.5"`` -> ("mlp", "dropout", 0.5); ``"mlp/none"`` -> ("mlp", "none", 0.0)."""
    task, rest = arm.split("/", 1)
    method, _, value = rest.partition("@")
    return task, method, float(value or 0.0)


def val_scores(config: dict, runs, task: str) -> dict[str, dict[float, float]]:
    """method -> grid value -> mean validation score over the selection seeds (lower is better)."""
    out: dict[str, dict[float, list[float]]] = {}
    for r in runs:
        t, method, value = parse(r["arm"])
        if t == task and r["seed"] < config["select_seeds"]:
            out.setdefault(method, {}).setdefault(value, []).append(r["metrics"][f"val_{METRIC[task]}"])
    return {m: {v: float(np.mean(s)) for v, s in per.items()} for m, per in out.items()}


def chosen(config: dict, runs, task: str) -> dict[str, float]:
    """method -> the grid value with the best (lowest) mean validation score; ties go to the first in the grid."""
    scores = val_scores(config, runs, task)
    return {m: min(config["grids"][task][m], key=lambda v: scores[m][v]) for m in config["grids"][task]}


def units(config: dict, seeds: list[int], done: dict) -> list[tuple[str, int]]:
    select, more = seeds[: config["select_seeds"]], seeds[config["select_seeds"]:]
    out = [(arm_of(task, m, v), s) for s in select for task in config["tasks"] for m, vs in config["grids"][task].items()
           for v in vs]
    if not more or not all(u in done for u in out):
        return out  # the test round is decided once every selection net has finished
    runs = [done[u] for u in out]
    for task in config["tasks"]:
        best = chosen(config, runs, task)
        out += [(arm_of(task, m, best[m]), s) for s in more for m in config["grids"][task]]
    return out


def final_runs(config: dict, runs, task: str) -> dict[str, list[dict]]:
    """method -> the runs of its chosen value (every seed that ran it), in seed order."""
    best = chosen(config, runs, task)
    return {m: sorted((r for r in runs if r["arm"] == arm_of(task, m, best[m])), key=lambda r: r["seed"])
            for m in config["grids"][task]}


def test_scores(config: dict, runs, task: str) -> dict[str, dict[int, float]]:
    """method -> seed -> test score of its chosen value."""
    return {m: {r["seed"]: r["metrics"][f"test_{METRIC[task]}"] for r in rs} for m, rs in final_runs(config, runs, task).items()}


# --------------------------------------------------------------------------- training


def run_one(config: dict, arm: str, seed: int, progress: bool = True) -> dict:
    task, method, value = parse(arm)
    train = {"mlp": _run_mlp, "conv": _run_conv, "rnn": _run_rnn}[task]
    return scored(train({**config[task], "device": config["device"]}, method, value, seed, progress, arm), task)


def _finite(value):
    """``value`` with every NaN or infinite float (nested in dicts and lists) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def scored(out: dict, task: str) -> dict:
    """A net whose training left the finite numbers (a loss or score of NaN or inf anywhere) is marked
    ``diverged`` and scored as a uniform guess on every split (:data:`CHANCE`: 90 % error, perplexity 10,000), so
    the selection never chooses its value and a method that diverges on a test seed loses that seed; the numbers
    that were not finite are kept as None."""
    diverged = bool(store.non_finite({"metrics": out["metrics"], "curves": out["curves"]}))
    out = {**out, "metrics": _finite(out["metrics"]), "curves": _finite(out["curves"])}
    out["metrics"]["diverged"] = float(diverged)
    if diverged:
        out["metrics"].update({f"{split}_{METRIC[task]}": CHANCE[METRIC[task]] for split in ("val", "test", "train")})
    return out


def mnist_splits(cfg: dict):
    """(train, val, test) MNIST tensors: validation is the last ``val_size`` of the 60,000 training images."""
    (x, y), test = data.mnist_tensors(None, cfg["test_size"], cfg["device"])
    cut = len(y) - cfg["val_size"]
    n = cut if cfg["train_size"] is None else min(cfg["train_size"], cut)
    return (x[:n], y[:n]), (x[cut:], y[cut:]), test


def mlp_net(cfg: dict, method: str, value: float) -> torch.nn.Module:
    sizes = [784, *cfg["hidden"], 10]
    if method == "dropconnect":
        return models.DropConnectMLP(sizes, value, inference="mean")
    if method == "standout":
        return models.StandoutMLP(sizes, alpha=value, beta=0.0)
    if method == "sparse_vd":
        return models.SparseVDMLP(sizes)
    p = 0.0 if method == "none" else value
    return models.MLP(sizes, p_hidden=p, noise="gaussian" if method == "gaussian" else "dropout")


class ELBO:
    """Sparse VD's loss for :func:`replib.train.fit`: cross-entropy plus ``weight`` times the net's KL divided by the
    training-set size (the per-example evidence lower bound), the weight rising linearly from 0 over the first
    ``warmup_steps`` steps (as in the authors' code)."""

    def __init__(self, weight: float, n_train: int, warmup_steps: int) -> None:
        self.weight, self.n_train, self.warmup, self.step = weight, n_train, max(1, warmup_steps), 0

    def __call__(self, model: models.SparseVDMLP, batch) -> torch.Tensor:
        ramp = min(1.0, self.step / self.warmup)
        self.step += 1
        return cross_entropy(model, batch) + self.weight * ramp * model.kl() / self.n_train


def _run_mlp(cfg: dict, method: str, value: float, seed: int, progress: bool, desc: str) -> dict:
    train, val, test = mnist_splits(cfg)
    model = mlp_net(cfg, method, value).to(cfg["device"])
    steps = cfg["epochs"] * math.ceil(len(train[1]) / cfg["batch_size"])
    loss = ELBO(value, len(train[1]), round(cfg["kl_warmup"] * steps)) if method == "sparse_vd" else cross_entropy
    curves = fit(model, minibatches(train, cfg["batch_size"], seed), epochs=cfg["epochs"],
                 optimizer=torch.optim.Adam(model.parameters(), lr=cfg["lr"]),
                 schedule=adam_schedule(step_decay(cfg["lr"], [0.5, 0.75], 0.2)), loss=loss,
                 monitor=classification_monitor(val), progress=progress, desc=desc)
    metrics = {"val_error": curves["monitor_error"][-1], "test_error": _error(model, test),
               "train_error": _error(model, train), "train_seconds": float(np.sum(curves["train_seconds"]))}
    if method == "sparse_vd":
        metrics["pruned_share"] = 100.0 * model.sparsity()
        curves["thresholds"], curves["pruned_share"], curves["test_error_pruned"] = list(THRESHOLDS), [], []
        for threshold in THRESHOLDS:
            model.set_threshold(threshold)
            curves["pruned_share"].append(100.0 * model.sparsity())
            curves["test_error_pruned"].append(_error(model, test))
        model.set_threshold(float("inf"))
        metrics["test_error_unpruned"] = _error(model, test)
        model.set_threshold(3.0)
    return {"metrics": metrics, "curves": curves}


def _error(model: torch.nn.Module, split) -> float:
    return 100.0 * evaluate(model, split)[0] / len(split[1])


def conv_net(cfg: dict, method: str, value: float) -> models.FastCifarNet:
    kind = method if method in models.NOISE_KINDS else "none"  # a noise layer after every block, or none
    return models.FastCifarNet(cfg["widths"], cfg["depth"], dropout=kind, p=value if kind != "none" else 0.0,
                               pool_dropout=value if method == "maxpool" else 0.0)


def _run_conv(cfg: dict, method: str, value: float, seed: int, progress: bool, desc: str) -> dict:
    choice = _cifar.precision_once(lambda: conv_net(cfg, "none", 0.0), ("atlas", tuple(cfg["widths"]), cfg["depth"]), cfg)
    model = conv_net(cfg, method, value)
    curves = _cifar.fast_train(model, cfg, seed, precision=choice["precision"],
                               cutout_length=int(value) if method == "cutout" else 0, monitor="val", progress=progress,
                               desc=desc)
    evaluated = _cifar.Evaluated(model, choice["precision"], cfg["flip_test"], _cifar.layout(cfg))
    metrics = {"val_error": curves["monitor_error"][-1], "test_error": _cifar.error_on(evaluated, cfg, "test"),
               "train_error": _cifar.error_on(evaluated, cfg, "train"), "train_seconds": float(np.sum(curves["train_seconds"]))}
    return {"metrics": metrics, "curves": curves, "precision": choice}


def rnn_net(cfg: dict, method: str, value: float, vocab: int) -> VariationalLSTM:
    """The 2-layer LSTM of ``method``: every variant drops the non-recurrent connections (inputs and outputs) at
    ``value``, per step (naive, RNNDrop, Semeniuta) or per sequence (variational); variational, RNNDrop and
    Semeniuta also drop inside the recurrence at ``value`` (the state, the memory cell, the update candidate)."""
    p = {} if method == "none" else {"p_input": value, "p_output": value}
    if method in ("variational", "rnndrop", "semeniuta"):
        p["p_recurrent"] = value
    model = VariationalLSTM(vocab, cfg["hidden"], 2, mode=method, **p)
    model.reset_parameters(cfg["init_scale"])
    return model


def _run_rnn(cfg: dict, method: str, value: float, seed: int, progress: bool, desc: str) -> dict:
    corpus = data.load_ptb()
    train, valid, test = gal2016_rnn.streams(corpus, cfg)
    model = rnn_net(cfg, method, value, len(corpus.vocab)).to(cfg["device"])
    curves = gal2016_rnn.train_language_model(model, cfg, train, valid, progress, desc)
    metrics = {"val_perplexity": curves["monitor_perplexity"][-1],
               "test_perplexity": gal2016_rnn.perplexity(model, test, cfg["bptt"]),
               "train_perplexity": curves["train_perplexity"][-1], "train_seconds": float(np.sum(curves["train_seconds"]))}
    return {"metrics": metrics, "curves": curves}


# --------------------------------------------------------------------------- analysis


def versus_none(config: dict, runs, task: str) -> dict:
    """Every regulariser of ``task`` against no dropout, paired by seed on the test split."""
    test, unit = test_scores(config, runs, task), UNIT[METRIC[task]]
    parts = [rule.direction(f"{task}_{m}_beats_none", f"{METHOD_NAMES[m]} < no dropout", test[m], test["none"],
                            names=(METHOD_NAMES[m], "no dropout"), unit=unit)
             for m in config["grids"][task] if m != "none"]
    return rule.all_of(f"{task}_regularisers_beat_none", f"On the {TASK_NAMES[task]}, every method, at the value chosen on "
                       f"validation, ends with a lower test {METRIC[task]} than no dropout.", parts)


def claims(config: dict, runs) -> list[dict]:
    out = [versus_none(config, runs, task) for task in config["tasks"]]
    if "conv" in config["tasks"]:
        test = test_scores(config, runs, "conv")
        out.append(rule.direction("spatial_beats_elementwise", "On the conv net, dropping whole feature maps "
                                  "(SpatialDropout) gives a lower test error than dropping single activations (dropout).",
                                  test["spatial"], test["dropout"], names=("SpatialDropout", "dropout"), unit=" %"))
    if "rnn" in config["tasks"]:
        test = test_scores(config, runs, "rnn")
        out.append(rule.all_of("recurrent_beats_naive", "On the LSTM, each method that also drops inside the recurrence "
                               "(variational, RNNDrop, Semeniuta) gives a lower test perplexity than naive dropout.", [
                                   rule.direction(f"{m}_beats_naive", f"{METHOD_NAMES[m]} < naive dropout", test[m],
                                                  test["naive"], names=(METHOD_NAMES[m], "naive dropout"))
                                   for m in ("variational", "rnndrop", "semeniuta")]))
    if "mlp" in config["tasks"]:
        pruned = {r["seed"]: r["metrics"]["pruned_share"] or 0.0 for r in final_runs(config, runs, "mlp")["sparse_vd"]}
        out.append(rule.direction("sparse_vd_prunes", f"Sparse variational dropout prunes more than {PRUNED_AIM:g}% of "
                                  "the MLP's weights (log alpha > 3) at the KL weight chosen on validation.", pruned,
                                  PRUNED_AIM, claimed="greater", names=("share pruned", f"{PRUNED_AIM:g} %"), digits=1,
                                  unit=" %"))
    return out


def paired_to_reference(config: dict, runs, task: str) -> dict[str, tuple[float, float, float] | None]:
    """method -> (mean, low, high) of its test score minus the reference method's, paired by seed (None: itself)."""
    test, ref = test_scores(config, runs, task), REFERENCE[task]
    return {m: None if m == ref else rule.interval(rule.paired(test[m], test[ref])) for m in test}


def cost_minutes(config: dict, runs, task: str) -> dict[str, float]:
    """method -> mean training minutes per net of its chosen value (steps only, evaluation aside)."""
    return {m: float(np.mean([r["metrics"]["train_seconds"] for r in rs])) / 60
            for m, rs in final_runs(config, runs, task).items()}


def facts(result: dict) -> dict[str, str]:
    cfg, runs = result["config"], result["runs"]
    out: dict[str, str] = {"nets": str(len(runs)), "seeds": str(len(result["seeds"])),
                           "select_seeds": str(cfg["select_seeds"]), "run_minutes": f"{result['provenance']['wall_seconds'] / 60:.0f} min"}
    for task in cfg["tasks"]:
        test, best, cost = test_scores(cfg, runs, task), chosen(cfg, runs, task), cost_minutes(cfg, runs, task)
        digits = 2 if METRIC[task] == "error" else 1
        finals = final_runs(cfg, runs, task)
        for m in test:
            out[f"{task}_{m}_test"] = rule.mean_sd(test[m].values(), digits, UNIT[METRIC[task]])
            out[f"{task}_{m}_train"] = rule.mean_sd([r["metrics"][f"train_{METRIC[task]}"] for r in finals[m]], digits,
                                                    UNIT[METRIC[task]])
            out[f"{task}_{m}_chosen"] = f"{best[m]:g}"
            out[f"{task}_{m}_minutes"] = rule.fmt(cost[m], 1, " min")
        ranked = sorted(test, key=lambda m: np.mean(list(test[m].values())))
        out[f"{task}_ranking"] = ", ".join(f"{METHOD_NAMES[m]} ({rule.fmt(np.mean(list(test[m].values())), digits)})" for m in ranked)
        out[f"{task}_best"] = METHOD_NAMES[ranked[0]]
        none = finals["none"]  # the regime: how much better no dropout fits its training data
        for split in ("train", "val"):
            out[f"{task}_none_{split}"] = rule.mean_sd([r["metrics"][f"{split}_{METRIC[task]}"] for r in none], digits,
                                                       UNIT[METRIC[task]])
        out[f"{task}_epochs"] = str(cfg[task]["epochs"])
    out["diverged"] = ", ".join(f"{r['arm']} seed {r['seed']}" for r in runs if r["metrics"].get("diverged")) or "none"
    if "mlp" in cfg["tasks"]:
        sv = final_runs(cfg, runs, "mlp")["sparse_vd"]
        out["pruned_share"] = rule.mean_sd([r["metrics"]["pruned_share"] for r in sv], 1, " %")
        out["compression"] = rule.fmt(float(np.mean([100 / (100 - r["metrics"]["pruned_share"]) for r in sv])), 0, "x")
        out["sparse_vd_unpruned"] = rule.mean_sd([r["metrics"]["test_error_unpruned"] for r in sv], 2, " %")
        out["mlp_val_size"] = f"{cfg['mlp']['val_size']:,}"
        out["mlp_train_size"] = f"{min(cfg['mlp']['train_size'] or MNIST_TRAIN, MNIST_TRAIN - cfg['mlp']['val_size']):,}"
    if "conv" in cfg["tasks"]:
        chosen_precision = _cifar.precision_facts({**result, "runs": [r for r in runs if r["arm"].startswith("conv/")]})
        out.update({k: chosen_precision[k] for k in ("precision", "precision_why")})
        out["conv_train_size"] = f"{cfg['conv']['train_size'] or 50_000 - cfg['conv']['val_size']:,}"
        out["conv_val_size"] = f"{cfg['conv']['val_size']:,}"
    if "rnn" in cfg["tasks"]:
        out["rnn_train_tokens"] = f"{cfg['rnn']['train_size'] or gal2016_rnn.TRAIN_TOKENS:,}"
        out["rnn_batch_size"] = str(cfg["rnn"]["batch_size"])
    return out


# --------------------------------------------------------------------------- presentation


def table(result: dict) -> pd.DataFrame:
    """Per task and method: the grid and its validation scores, the chosen value, the test score (error % or
    perplexity), the paired difference from plain dropout (naive dropout on the LSTM), the training minutes per net."""
    cfg, runs, rows = result["config"], result["runs"], []
    for task in cfg["tasks"]:
        test, best, scores = test_scores(cfg, runs, task), chosen(cfg, runs, task), val_scores(cfg, runs, task)
        diff, cost, unit = paired_to_reference(cfg, runs, task), cost_minutes(cfg, runs, task), UNIT[METRIC[task]]
        diverged = {r["arm"] for r in runs if r["metrics"].get("diverged") and r["seed"] < cfg["select_seeds"]}
        digits = 2 if METRIC[task] == "error" else 1
        for m in test:
            name, _ = METHODS[task][m]
            rows.append({
                "task": TASK_NAMES[task], "method": METHOD_NAMES[m],
                "grid: validation score": "—" if m == "none" else ", ".join(
                    f"{name} {v:g}: {'diverged' if arm_of(task, m, v) in diverged else rule.fmt(scores[m][v], digits)}"
                    for v in cfg["grids"][task][m]),
                "chosen": "—" if m == "none" else f"{best[m]:g}",
                "test score": rule.mean_sd(test[m].values(), digits, unit),
                "minus plain dropout (paired)": "the reference" if diff[m] is None else rule.fmt_interval(*diff[m], digits=digits),
                "train min per net": rule.fmt(cost[m], 1),
            })
    frame = pd.DataFrame(rows)
    return frame.set_index(["task", "method"])


def compression_table(result: dict) -> pd.DataFrame:
    """Sparse VD on the MLP beside the paper's: the share of weights pruned, the compression and the test error."""
    cfg, runs = result["config"], result["runs"]
    sv = final_runs(cfg, runs, "mlp")["sparse_vd"]
    dropout = test_scores(cfg, runs, "mlp")["dropout"]
    paper = {v["id"]: v for v in result["paper_values"]}

    def mark(v, suffix=""):
        return (rule.fmt(v["value"], 2 if v["unit"].startswith("test") else 0) + suffix
                + ("" if v["confirmed"] else " (unconfirmed)"))

    rows = [
        {"net": "paper: LeNet-300-100, sparse VD (Table 1)", "weights pruned": "—",
         "compression": mark(paper["sparse_vd_lenet300_compression"], "x"),
         "test error %": mark(paper["sparse_vd_lenet300_error"])},
        {"net": "paper: LeNet architectures, best (abstract)", "weights pruned": "—",
         "compression": f"up to {mark(paper['sparse_vd_lenet_up_to'], 'x')}", "test error %": "'negligible decrease'"},
        {"net": f"ours: 784-{'-'.join(map(str, cfg['mlp']['hidden']))}-10, sparse VD, pruned at log alpha > 3",
         "weights pruned": rule.mean_sd([r["metrics"]["pruned_share"] for r in sv], 1, " %"),
         "compression": rule.mean_sd([100 / (100 - r["metrics"]["pruned_share"]) for r in sv], 0, "x"),
         "test error %": rule.mean_sd([r["metrics"]["test_error"] for r in sv], 2)},
        {"net": "ours: the same nets unpruned (mean weights)", "weights pruned": "0 %", "compression": "1x",
         "test error %": rule.mean_sd([r["metrics"]["test_error_unpruned"] for r in sv], 2)},
        {"net": "ours: dropout, dense", "weights pruned": "0 %", "compression": "1x",
         "test error %": rule.mean_sd(dropout.values(), 2)},
    ]
    return pd.DataFrame(rows).set_index("net")


def figure(result: dict):
    """One panel per task: each method's test score minus plain dropout's (paired by seed: mean and 95% interval)
    against its training minutes per net; and the compression curve of sparse VD."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    cfg, runs = result["config"], result["runs"]
    tasks = list(cfg["tasks"])
    panels = len(tasks) + ("mlp" in tasks)
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 4.6), squeeze=False)
    names = {}  # axis -> the points to name once the layout is final
    for ax, task in zip(axes[0], tasks):
        diff, cost = paired_to_reference(cfg, runs, task), cost_minutes(cfg, runs, task)
        colors = dict(zip(METHODS[task], plotting.palette(len(METHODS[task]))))
        for m, d in diff.items():
            mean, low, high = d if d is not None else (0.0, 0.0, 0.0)
            ax.errorbar(cost[m], mean, yerr=[[mean - low], [high - mean]] if d is not None else None, fmt="o",
                        color=colors[m], capsize=3)
            names.setdefault(ax, []).append((cost[m], mean, METHOD_NAMES[m], colors[m]))
        if max(cost.values()) > 3 * min(cost.values()):  # costs an order of magnitude apart: a log axis, plain ticks
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        ax.axhline(0.0, color="0.5", linewidth=0.8)
        ax.set(xlabel="training minutes per net", ylabel=f"test {METRIC[task]} minus {METHOD_NAMES[REFERENCE[task]]}"
               f"{' (points)' if METRIC[task] == 'error' else ''}")
        name = TASK_NAMES[task].replace("CIFAR-10", data.CIFAR10_JPEG_NOTE)  # a figure trained on the copy says so
        ax.set_title(f"{name}, {cfg[task]['epochs']} epochs", fontsize=9)
        ax.margins(x=0.35)  # room for the names right of the points
    if "mlp" in tasks:
        ax = axes[0][-1]
        sv = final_runs(cfg, runs, "mlp")["sparse_vd"]
        color = plotting.palette(1)[0]
        for r in sv:
            ax.plot(r["curves"]["pruned_share"], r["curves"]["test_error_pruned"], marker="o", color=color, alpha=0.6,
                    label="sparse VD, one seed" if r is sv[0] else None)
            at3 = THRESHOLDS.index(3.0)
            ax.plot(r["curves"]["pruned_share"][at3], r["curves"]["test_error_pruned"][at3], marker="*", markersize=12,
                    color=color, linestyle="none", label="pruned at log alpha > 3" if r is sv[0] else None)
        dropout = np.mean(list(test_scores(cfg, runs, "mlp")["dropout"].values()))
        ax.axhline(dropout, color="0.4", linestyle="--", linewidth=1, label="dropout, dense (mean)")
        ax.set(xlabel="weights pruned (%)", ylabel="test error (%)")
        ax.set_title(f"Sparse VD on the MLP: pruning thresholds {', '.join(f'{t:g}' for t in THRESHOLDS)}", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(f"Every method at one budget per task, paired by seed over {len(result['seeds'])} seeds "
                 f"({result['profile']} profile)", fontsize=10)
    fig.tight_layout()
    for ax, points in names.items():
        plotting.label_points(ax, points)
    return fig


FIGURES = {"atlas": figure}
TABLES = {"methods": table, "compression": compression_table}

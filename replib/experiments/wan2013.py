"""Wan et al. (2013), Figure 2 and Table 2: DropConnect against dropout and no dropout on MNIST.

Wan, Zeiler, Zhang, LeCun, Fergus, "Regularization of Neural Networks using DropConnect",
ICML 2013. Fully connected ReLU nets with two hidden layers of ``n`` units; DropConnect or
dropout on both hidden layers, a plain softmax layer on top.

Three experiments share one set of trained nets (an arm trained for one panel is reused
by another when its settings coincide):

- panel (a): test error against the hidden width ``n`` (``widths``) for No-Drop, Dropout
  and DropConnect at p = 0.5; its widest net is Table 2's row (one width: the row alone);
- panel (b), unless ``sweep_p`` is empty: test error against the drop rate ``p`` of a net of
  ``sweep_width`` units per layer, for DropConnect (mean and Gaussian inference) and Dropout;
- masks, with panel (b): DropConnect with one mask per example (the paper's) against one
  mask shared by the minibatch, at ``sweep_width`` units and p = 0.5.

Every DropConnect net is evaluated with both inference rules (mean and the paper's
Gaussian moment matching), so "Gaussian vs mean inference" costs no extra training.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, model_validator

from .. import claims as rule
from .. import data, seeding
from .._validate import DropProbability, Fractions, PositiveFloat, PositiveInt, Probability, Spec, Widths
from ..models import MLP, DropConnectMLP
from ..train import classification_monitor, evaluate, fit, minibatches, sgd_schedule, step_decay

PAPER = "wan2013"
TITLE = "Wan et al. 2013: DropConnect"
CITE = "wan2013"  # its key in book/references.bib
HEADLINE = "DropConnect and Dropout both beat No-Drop on the 784-800-800-10 ReLU MNIST net."  # the claim tested, in a line
DATASETS = ("mnist",)  # the data mirror's folders its units read
METHODS = ("no-drop", "dropout", "dropconnect")
P_HEADLINE = 0.5  # Table 2 and Figure 2(a): p = 0.5 (the paper's keep probability 0.5)


class Config(Spec):
    dataset: Literal["mnist"] = Field("mnist", description="the data set")
    activation: Literal["relu", "tanh", "sigmoid"] = Field("relu", description="Table 2's best row; Figure 2 uses ReLU too")
    widths: Widths = Field([200, 400, 800], description="panel (a): units in each of the two hidden layers; the widest is Table 2's row")
    sweep_width: PositiveInt = Field(400, description="panel (b) and the mask comparison: units per layer (784-400-400-10 in Figure 2(b))")
    sweep_p: list[DropProbability] = Field([0.2, 0.5, 0.8], description="panel (b): drop rates, 0.5 among them (the paper's x-axis "
                                           "is keep = 1 - p); empty: no panel (b) and no mask comparison")
    batch_size: PositiveInt = Field(128, description="examples per minibatch (p.4)")
    lr: PositiveFloat = Field(0.1, description="initial learning rate (p.4)")
    momentum: Probability = Field(0.9, description="fixed momentum (p.4)")
    lr_gamma: PositiveFloat = Field(0.316, description="rate factor at each milestone: x0.316 twice, 1 -> 0.1, approximating the paper's 1 / 0.5 / 0.1 stages")
    lr_milestones: Fractions = Field([0.4, 0.7], description="fractions of the run at which the rate drops")
    mc_samples: PositiveInt = Field(200, description="samples per unit for Gaussian inference (the paper: 1000)")
    train_size: PositiveInt | None = Field(None, description="training images (the first n); None: all 60,000")
    test_size: PositiveInt | None = Field(None, description="test images; None: all 10,000")
    epochs: PositiveInt = Field(30, description="passes over the training set; the milestones scale with it")

    @model_validator(mode="after")
    def _headline_in_sweep(self):
        if self.sweep_p and (P_HEADLINE not in self.sweep_p or sorted(set(self.sweep_p)) != self.sweep_p
                             or len(self.sweep_p) < 3):
            raise ValueError(f"sweep_p must be empty (no panel (b)) or at least 3 increasing drop rates including "
                             f"{P_HEADLINE} (shared with panel (a)), got {self.sweep_p!r}")
        return self


PROFILES = {
    "smoke": {"widths": [32, 64], "sweep_width": 32, "epochs": 2, "mc_samples": 20, "train_size": 2000,
              "test_size": 500, "seeds": 1},
    # Table 2's ReLU row alone: 784-800-800-10 on all 60,000 images, No-Drop, Dropout and DropConnect with
    # the paper's per-example masks. Measured at 2 threads (AVX-512): a DropConnect epoch takes about 33 s
    # (69.5 ms a step of 128), a Dropout or No-Drop epoch under 3 s, so 20 epochs x 3 seeds took about
    # 40 minutes. On 2 cores of a CPU with AVX2 only the plain MLP trains about 3 times slower than on
    # this AVX-512 CPU (measured on both); if the masks slow down as much (not timed there), 12 epochs
    # x 3 seeds take about 80 minutes.
    # Shared-per-group masks would not pay: one mask per minibatch already costs 12 ms a step.
    "cpu": {"widths": [800], "sweep_p": [], "epochs": 12, "seeds": 3},
    "paper": {"widths": [200, 400, 800, 1600], "sweep_p": [round(0.1 * k, 1) for k in range(1, 10)],
              "epochs": 1000, "mc_samples": 1000, "seeds": 5},
}

PAPER_VALUES = [
    *(
        {
            "id": f"table2_relu_{method}", "method": method, "hidden": 800, "p": P_HEADLINE, "value": mean,
            "sd": sd, "unit": "% test error",
            "what": f"784-800-800-10 ReLU, {method}: mean ± sd over 5 nets (voting the 5 nets: {vote})",
            "where": "Wan et al. 2013, Table 2 (p.5)", "confirmed": True,
        }
        for method, mean, sd, vote in (("no-drop", 1.62, 0.037, 1.40), ("dropout", 1.28, 0.040, 1.20),
                                       ("dropconnect", 1.20, 0.034, 1.12))
    ),
    *(
        {
            "id": f"fig2a_{method}_{n}", "method": method, "hidden": n, "p": P_HEADLINE, "value": value,
            "unit": "% test error", "what": f"two hidden layers of {n} units, {method}",
            "where": "Wan et al. 2013, Figure 2(a) (p.6), plotted off the vector figure (±0.02 points)",
            "confirmed": True,
        }
        for method, values in (("no-drop", (1.55, 1.55, 1.62, 2.05)), ("dropout", (1.97, 1.40, 1.28, 1.21)),
                               ("dropconnect", (1.25, 1.19, 1.20, 1.15)))
        for n, value in zip((200, 400, 800, 1600), values)
    ),
    *(
        {
            "id": f"fig2b_{method}_{inference}_keep{keep:.1f}", "method": method, "inference": inference,
            "hidden": 400, "p": round(1 - keep, 1), "value": value, "unit": "% test error",
            "what": f"784-400-400-10, {method} with {inference} inference, keep fraction {keep:.1f}",
            "where": "Wan et al. 2013, Figure 2(b) (p.6), plotted off the vector figure (±0.02 points)",
            "confirmed": True,
        }
        for method, inference, values in (
            ("dropconnect", "gaussian", (1.57, 1.31, 1.24, 1.19, 1.21, 1.21, 1.24, 1.39, 1.55)),
            ("dropconnect", "mean", (2.40, 1.61, 1.42, 1.30, 1.24, 1.27, 1.27, None, 1.55)),
            ("dropout", "mean", (2.38, 1.93, 1.61, 1.39, 1.35, 1.27, 1.29, 1.36, 1.55)),
        )
        for keep, value in zip(np.round(np.arange(0.1, 1.0, 0.1), 1), values)
        if value is not None  # one point of the mean-inference curve could not be read
    ),
]


# --------------------------------------------------------------------------- arms


def arm_name(method: str, width: int, p: float = P_HEADLINE, masks: str = "per_example") -> str:
    """Canonical arm name, e.g. ``dropconnect 400``, ``dropout 400 p=0.2``, ``dropconnect 400 per-minibatch``."""
    name = f"{method} {width}"
    if method != "no-drop" and p != P_HEADLINE:
        name += f" p={p:g}"
    if masks != "per_example":
        name += " per-minibatch"
    return name


def arm_specs(config: dict) -> dict[str, dict]:
    """Every arm the config asks for, de-duplicated, in a stable order: name -> settings."""
    specs: dict[str, dict] = {}

    def add(method, width, p=P_HEADLINE, masks="per_example"):
        specs.setdefault(arm_name(method, width, p, masks),
                         {"method": method, "width": width, "p": 0.0 if method == "no-drop" else p, "masks": masks})

    for n in config["widths"]:
        for method in METHODS:
            add(method, n)
    for p in config["sweep_p"]:
        add("dropconnect", config["sweep_width"], p)
        add("dropout", config["sweep_width"], p)
    if config["sweep_p"]:  # the mask comparison sits in panel (b)
        add("dropconnect", config["sweep_width"], P_HEADLINE, "per_minibatch")
    return specs


def units(config: dict, seeds: list[int], done: dict) -> list[tuple[str, int]]:
    return [(arm, seed) for seed in seeds for arm in arm_specs(config)]


def run_one(config: dict, arm: str, seed: int, progress: bool = True) -> dict:
    """Train one net; evaluate it every epoch (mean inference) and, for DropConnect, with Gaussian inference at the end."""
    spec = arm_specs(config)[arm]
    train, test = data.mnist_tensors(config["train_size"], config["test_size"], config["device"])
    sizes = [784, spec["width"], spec["width"], 10]
    if spec["method"] == "dropconnect":
        model = DropConnectMLP(sizes, spec["p"], config["activation"], masks=spec["masks"], inference="mean",
                               samples=config["mc_samples"])
    else:
        model = MLP(sizes, config["activation"], 0.0, spec["p"])
    model = model.to(config["device"])
    curves = fit(
        model, minibatches(train, config["batch_size"], seed), epochs=config["epochs"],
        optimizer=torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=config["momentum"]),
        schedule=sgd_schedule(step_decay(config["lr"], config["lr_milestones"], config["lr_gamma"]), config["momentum"]),
        monitor=classification_monitor(test), progress=progress, desc=f"{arm} seed {seed}",
    )
    metrics = {
        "test_error": curves["monitor_error"][-1],
        "train_loss": curves["train_loss"][-1],
        "test_loss": curves["monitor_loss"][-1],
        "seconds_per_epoch": float(np.mean(curves["seconds"])),
    }
    if spec["method"] == "dropconnect":
        with seeding.evaluation(seed):  # the Gaussian samples: their own stream
            errors, loss = evaluate(model.set_inference("gaussian"), test)
        metrics["test_error_gaussian"] = 100.0 * errors / len(test[1])
        metrics["test_loss_gaussian"] = loss
    return {"metrics": metrics, "curves": curves}


# --------------------------------------------------------------------------- analysis


def per_seed(runs: list[dict], metric: str = "test_error") -> dict[str, dict[int, float]]:
    """arm -> seed -> ``metric`` (arms that have it)."""
    return rule.by_seed(runs, metric)


def summary(config: dict, runs: list[dict]) -> pd.DataFrame:
    """One row per arm: its settings, and mean / sd over seeds of the final metrics."""
    specs = arm_specs(config)
    df = pd.DataFrame([{"arm": r["arm"], **specs[r["arm"]], "seed": r["seed"], "mean_inference": r["metrics"]["test_error"],
                        "gaussian_inference": r["metrics"].get("test_error_gaussian", np.nan),
                        "seconds_per_epoch": r["metrics"]["seconds_per_epoch"]} for r in runs])
    out = df.groupby(["arm", "method", "width", "p", "masks"], sort=False)[
        ["mean_inference", "gaussian_inference", "seconds_per_epoch"]].agg(["mean", "std"])
    out.columns = [f"{a}_{b}" for a, b in out.columns]
    return out.reset_index().set_index("arm")


def gains(config: dict, runs: list[dict]) -> dict[int, dict[str, dict[int, float]]]:
    """width -> method -> seed -> No-Drop's test error minus the method's (points)."""
    e = per_seed(runs)
    nodrop = {n: e[arm_name("no-drop", n)] for n in config["widths"]}
    return {n: {m: {s: nodrop[n][s] - e[arm_name(m, n)][s] for s in nodrop[n]} for m in ("dropout", "dropconnect")}
            for n in config["widths"]}


def claims(config: dict, runs: list[dict]) -> list[dict]:
    """The chapter's claims, each decided by :mod:`replib.claims`' rule over seeds (every arm trains on the same seeds).

    The Table 2 row (the widest net) and Gaussian inference are always tested; the growth of the gain with
    the width needs two widths, and the drop-rate and mask claims need panel (b) (``sweep_p``).
    """
    e, gauss = per_seed(runs), per_seed(runs, "test_error_gaussian")
    small, large, n = min(config["widths"]), max(config["widths"]), config["sweep_width"]
    pts = {"digits": 2, "unit": " points"}
    out = [
        rule.all_of("regularizers_beat_nodrop", f"At the largest width ({large} units), DropConnect and Dropout both "
                    "have a lower test error than No-Drop.", [
            rule.direction(f"{m}_below_nodrop", f"{LABELS[m]} < No-Drop", e[arm_name(m, large)],
                           e[arm_name("no-drop", large)], names=(LABELS[m], "No-Drop"), **pts)
            for m in ("dropconnect", "dropout")]),
    ]
    if small != large:
        gain = gains(config, runs)
        out.append(rule.all_of("gain_grows_with_width", f"The gain of DropConnect and of Dropout over No-Drop is larger at "
                               f"{large} units than at {small} units.", [
            rule.direction(f"{m}_gain_grows", f"{LABELS[m]}: gain at {large} > gain at {small}", gain[large][m],
                           gain[small][m], claimed="greater", names=(f"gain at {large}", f"gain at {small}"), **pts)
            for m in ("dropconnect", "dropout")]))
    if config["sweep_p"]:
        sweep = {p: e[arm_name("dropconnect", n, p)] for p in sorted(config["sweep_p"])}
        ends = (min(sweep), max(sweep))
        best = min(list(sweep)[1:-1], key=lambda p: np.mean(list(sweep[p].values())))
        out += [
            rule.all_of("interior_minimum_in_p", f"DropConnect's test error against the drop rate ({n}-{n} net) is "
                        f"U-shaped: the best interior rate of the sweep (by mean) is lower than both ends (p = {ends[0]:g}, "
                        f"{ends[1]:g}).", [
                rule.direction(f"p{best:g}_below_p{end:g}", f"p = {best:g} < p = {end:g}", sweep[best], sweep[end],
                               names=(f"p={best:g}", f"p={end:g}"), **pts)
                for end in ends]),
            rule.direction("per_example_masks_at_least_as_good", "DropConnect with a mask per example has a lower test "
                           f"error than with one mask per minibatch ({n}-{n} net, p = {P_HEADLINE}).",
                           e[arm_name("dropconnect", n)], e[arm_name("dropconnect", n, masks="per_minibatch")],
                           names=("per example", "per minibatch"), **pts),
        ]
    # As in Figure 2(b): at every keep fraction, not on average (an average lets one drop rate hide the others).
    out.append(rule.all_of("gaussian_inference_at_least_as_good", "For every per-example DropConnect configuration "
                           f"(width and drop rate), Gaussian inference ({config['mc_samples']} samples per unit) has a "
                           "lower test error than mean inference on the same net.", [
        rule.direction(f"gaussian_{arm}", arm, gauss[arm], e[arm], names=("Gaussian", "mean"), **pts)
        for arm, spec in arm_specs(config).items() if spec["method"] == "dropconnect" and spec["masks"] == "per_example"]))
    return out


def facts(result: dict) -> dict[str, str]:
    """The numbers the chapter's prose quotes, formatted from the result."""
    config, runs = result["config"], result["runs"]
    e, gauss, n = per_seed(runs), per_seed(runs, "test_error_gaussian"), config["sweep_width"]
    seconds = summary(config, runs)["seconds_per_epoch_mean"]
    cost = [seconds[arm_name("dropconnect", w)] / seconds[arm_name("dropout", w)] for w in config["widths"]]
    ends = {"small": min(config["widths"]), "large": max(config["widths"])}
    out = {f"gain_{m}_{end}": rule.mean_sd(g.values(), 2, " points") for end, w in ends.items()
           for m, g in gains(config, runs)[w].items()}
    train_loss = per_seed(runs, "train_loss")
    table2 = {v["method"]: v for v in result["paper_values"] if v["id"].startswith("table2_relu")}
    for m in METHODS:  # the Table 2 row: the widest net
        key, arm = m.replace("-", ""), arm_name(m, ends["large"])
        out[f"error_{key}_large"] = rule.mean_sd(e[arm].values(), 2, " %")
        if arm in train_loss:
            out[f"train_loss_{key}_large"] = rule.mean_sd(train_loss[arm].values(), 4)
        out[f"paper_{key}"] = f"{rule.fmt(table2[m]['value'])} ± {rule.fmt(table2[m]['sd'], 3)} %"
    widest = arm_name("dropconnect", ends["large"])
    out["gaussian_minus_mean_large"] = rule.mean_sd([gauss[widest][s] - e[widest][s] for s in e[widest]], 2, " points")
    if config["sweep_p"]:  # panel (b) and the mask comparison
        for name, p in {"low": min(config["sweep_p"]), "headline": P_HEADLINE, "high": max(config["sweep_p"])}.items():
            arm = arm_name("dropconnect", n, p)
            out[f"p_{name}"], out[f"dropconnect_{name}"] = f"{p:g}", rule.mean_sd(e[arm].values(), 2, " %")
            out[f"gaussian_minus_mean_{name}"] = rule.mean_sd([gauss[arm][s] - e[arm][s] for s in e[arm]], 2, " points")
        out["per_minibatch"] = rule.mean_sd(e[arm_name("dropconnect", n, masks="per_minibatch")].values(), 2, " %")
    low, high = rule.fmt(min(cost), 1), rule.fmt(max(cost), 1)
    out["cost_ratio"] = low if low == high else f"{low} to {high}"
    out.update({f"{k}_width": str(w) for k, w in ends.items()}, sweep_width=str(n), epochs=str(config["epochs"]),
               train_size=f"{config['train_size'] or 60_000:,}", mc_samples=str(config["mc_samples"]))
    paper = PROFILES["paper"]  # its Table 2 row alone, at this run's seconds per epoch of the widest net's arms
    row = sum(paper["seeds"] * paper["epochs"] * seconds[arm_name(m, ends["large"])] for m in METHODS)
    out.update(paper_row_cpu_days=rule.fmt(row / 86_400, 0), paper_epochs=f"{paper['epochs']:,}",
               paper_seeds=str(paper["seeds"]))
    return out


# --------------------------------------------------------------------------- presentation

LABELS = {"no-drop": "No-Drop", "dropout": "Dropout", "dropconnect": "DropConnect"}


def table(result: dict) -> pd.DataFrame:
    """Paper vs ours at p = 0.5, every width: test error % (ours mean ± sd over seeds) and cost per epoch."""
    config, runs = result["config"], result["runs"]
    s = summary(config, runs)
    mean, gauss = per_seed(runs), per_seed(runs, "test_error_gaussian")
    paper = {(v["method"], v["hidden"]): v for v in result["paper_values"]
             if v["id"].startswith(("table2", "fig2a")) and not (v["id"].startswith("fig2a") and v["hidden"] == 800)}
    rows = []
    for arm, row in s.iterrows():
        if row["p"] not in (0.0, P_HEADLINE):
            continue
        ref = paper.get((row["method"], row["width"])) if row["masks"] == "per_example" else None
        dropout_seconds = s.loc[arm_name("dropout", row["width"]), "seconds_per_epoch_mean"]
        rows.append({
            "arm": arm,
            "paper: test error %": "" if ref is None else rule.fmt(ref["value"]) + (f" ± {rule.fmt(ref['sd'], 3)}" if "sd" in ref else ""),
            "paper: source": "" if ref is None else ref["where"].split(" (p.")[0].replace("Wan et al. 2013, ", ""),
            "ours: mean inference": rule.mean_sd(mean[arm].values()),
            "ours: Gaussian inference": rule.mean_sd(gauss[arm].values()) if arm in gauss else "",
            "time per epoch vs Dropout": rule.fmt(row["seconds_per_epoch_mean"] / dropout_seconds, 1, "x"),
        })
    return pd.DataFrame(rows).set_index("arm")


def _panel_b(ax_b, result: dict, s: pd.DataFrame, colors: dict) -> None:
    """Figure 2(b), ours: test error against the drop rate, with the per-minibatch mask comparison."""
    n = result["config"]["sweep_width"]
    for method, col, inference, style in (("dropconnect", "mean_inference", "mean", "-"),
                                          ("dropconnect", "gaussian_inference", "gaussian", "--"),
                                          ("dropout", "mean_inference", "mean", "-")):
        rows = s[(s["method"] == method) & (s["width"] == n) & (s["masks"] == "per_example")].sort_values("p")
        label = LABELS[method] + (f" ({inference} inference)" if method == "dropconnect" else "")
        ax_b.errorbar(rows["p"], rows[f"{col}_mean"], yerr=rows[f"{col}_std"].fillna(0), color=colors[method],
                      linestyle=style, marker="o", capsize=3, label=f"ours: {label}")
        paper = sorted((v["p"], v["value"]) for v in result["paper_values"]
                       if v["id"].startswith("fig2b") and v["method"] == method and v["inference"] == inference)
        ax_b.plot(*zip(*paper), color=colors[method], linestyle=style, marker="x", alpha=0.45, label=f"paper: {label}")
    per_batch = s.loc[arm_name("dropconnect", n, masks="per_minibatch")]
    ax_b.errorbar([P_HEADLINE], [per_batch["mean_inference_mean"]], yerr=[np.nan_to_num(per_batch["mean_inference_std"])],
                  color="black", marker="s", capsize=3, linestyle="none", label="ours: DropConnect, one mask per minibatch")
    ax_b.set_xlabel("drop rate p (the paper plots the keep fraction 1 - p)")
    ax_b.set_ylabel("test error (%)")
    ax_b.set_title(f"(b) drop rate, 784-{n}-{n}-10", fontsize=10)
    ax_b.legend(fontsize=6.5)


def figure(result: dict):
    """Figure 2, ours: (a) error vs width, (b) error vs drop rate (with a sweep), then train / test loss against epoch."""
    import matplotlib.pyplot as plt

    from .. import plotting

    config, runs = result["config"], result["runs"]
    s = summary(config, runs)
    colors = dict(zip(METHODS, plotting.palette(len(METHODS))))
    sweep = bool(config["sweep_p"])
    fig, axes = plt.subplots(1, 3 if sweep else 2, figsize=(15 if sweep else 10.5, 4.3))
    ax_a, ax_b, ax_c = axes if sweep else (axes[0], None, axes[1])

    # (a) error against width, p = 0.5, per-example masks
    for method in METHODS:
        rows = s[(s["method"] == method) & (s["p"].isin([0.0, P_HEADLINE])) & (s["masks"] == "per_example")]
        rows = rows[rows["width"].isin(config["widths"])].sort_values("width")
        ax_a.errorbar(rows["width"], rows["mean_inference_mean"], yerr=rows["mean_inference_std"].fillna(0),
                      color=colors[method], marker="o", capsize=3, label=f"ours: {LABELS[method]}")
        paper = sorted((v["hidden"], v["value"]) for v in result["paper_values"]
                       if v["id"].startswith("fig2a") and v["method"] == method)
        ax_a.plot(*zip(*paper), color=colors[method], linestyle=":", marker="x", label=f"paper: {LABELS[method]}")
    ticks = sorted({*config["widths"], *(v["hidden"] for v in result["paper_values"] if v["id"].startswith("fig2a"))})
    ax_a.set_xscale("log", base=2)
    ax_a.set_xticks(ticks, [str(n) for n in ticks])
    ax_a.set_xticks([], minor=True)
    ax_a.set_xlabel("units in each of the two hidden layers")
    ax_a.set_ylabel("test error (%)")
    ax_a.set_title("(a) width, p = 0.5", fontsize=10)
    ax_a.legend(fontsize=7)

    # (b) error against drop rate
    if sweep:
        _panel_b(ax_b, result, s, colors)

    # (c) convergence of the widest nets
    large = max(config["widths"])
    for method in METHODS:
        arm = arm_name(method, large)
        for key, style, what in (("train_loss", "--", "train"), ("monitor_loss", "-", "test")):
            curves = np.array([r["curves"][key] for r in runs if r["arm"] == arm])
            ax_c.plot(np.arange(1, curves.shape[1] + 1), curves.mean(0), color=colors[method], linestyle=style,
                      label=f"{LABELS[method]} {what}")
    ax_c.set_yscale("log")
    ax_c.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax_c.set_xlabel("epoch")
    ax_c.set_ylabel("cross-entropy (train: with masks on)")
    ax_c.set_title(f"({'c' if sweep else 'b'}) convergence, 784-{large}-{large}-10", fontsize=10)
    ax_c.legend(fontsize=7)
    images = f"first {config['train_size']:,}" if config["train_size"] else "all 60,000"
    fig.suptitle(f"MNIST ({images} training images), {config['epochs']} epochs, mean ± sd over {len(result['seeds'])} seeds "
                 f"({result['profile']} profile); paper's values dotted / faded", fontsize=10)
    fig.tight_layout()
    return fig


FIGURES = {"figure2": figure}
TABLES = {"paper_vs_ours": table}

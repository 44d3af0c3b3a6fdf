"""Wan et al. (2013), Figure 2 and Table 2: DropConnect against dropout and no dropout on MNIST.

Wan, Zeiler, Zhang, LeCun, Fergus, "Regularization of Neural Networks using DropConnect",
ICML 2013. Fully connected ReLU nets with two hidden layers of ``n`` units; DropConnect or
dropout on both hidden layers, a plain softmax layer on top.

Three experiments share one set of trained nets (an arm trained for one panel is reused
by another when its settings coincide):

- panel (a): test error against the hidden width ``n`` (``sizes``) for No-Drop, Dropout
  and DropConnect at p = 0.5;
- panel (b): test error against the drop rate ``p`` (``sweep_p``) of a ``sweep_hidden`` net,
  for DropConnect (mean and Gaussian inference) and Dropout;
- masks: DropConnect with one mask per example (the paper's) against one mask shared by
  the minibatch, at ``sweep_hidden`` units and p = 0.5.

Every DropConnect net is evaluated with both inference rules (mean and the paper's
Gaussian moment matching), so "Gaussian vs mean inference" costs no extra training.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .. import data
from ..models import MLP, DropConnectMLP
from ..train import evaluate, fit, seed_everything
from ._config import apply_overrides

PAPER = "wan2013"
TITLE = "Wan et al. 2013: DropConnect"
METHODS = ("no-drop", "dropout", "dropconnect")
P_HEADLINE = 0.5  # Table 2 and Figure 2(a): p = 0.5 (the paper's keep probability 0.5)

_COMMON = {
    "dataset": "mnist",
    "activation": "relu",  # Table 2's best row; Figure 2 uses ReLU too
    "sizes": [200, 400, 800],  # panel (a): units in each of the two hidden layers
    "sweep_hidden": 400,  # panel (b) and the mask comparison: the 784-400-400-10 net of Figure 2(b)
    "sweep_p": [0.2, 0.5, 0.8],  # panel (b): drop rates (the paper's x-axis is keep = 1 - p)
    "batch_size": 128,  # p.4
    "lr": 0.1,  # initial rate, p.4
    "momentum": 0.9,  # fixed, p.4
    "lr_gamma": 0.316,  # x0.316 twice: 1 -> 0.1, approximating the paper's 1 / 0.5 / 0.1 stages
    "lr_milestones": [0.4, 0.7],  # fractions of training at which the rate drops
    "gaussian_samples": 200,  # samples per unit for Gaussian inference (the paper: 1000)
    "train_subset": None,  # None: all 60,000 training images
    "test_subset": None,  # None: all 10,000 test images
    "device": "cpu",
}
PROFILES = {
    "smoke": {**_COMMON, "sizes": [32, 64], "sweep_hidden": 32, "sweep_p": [0.2, 0.5, 0.8], "epochs": 2,
              "gaussian_samples": 20, "train_subset": 2000, "test_subset": 500, "seeds": 1},
    # The paper's regime is a net trained until it overfits. On all 60,000 images this CPU affords
    # 6 epochs, where every regularized net is still undertrained (the first design, one seed, in
    # results/wan2013/archive/); on 10,000 images it affords 30, time for an unregularized net to overfit.
    "cpu": {**_COMMON, "epochs": 30, "train_subset": 10_000, "seeds": 3},
    "paper": {**_COMMON, "sizes": [200, 400, 800, 1600], "sweep_p": [round(0.1 * k, 1) for k in range(1, 10)],
              "epochs": 1000, "gaussian_samples": 1000, "seeds": 5},
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


def arm_name(method: str, hidden: int, p: float = P_HEADLINE, masks: str = "per_example") -> str:
    """Canonical arm name, e.g. ``dropconnect 400``, ``dropout 400 p=0.2``, ``dropconnect 400 per-minibatch``."""
    name = f"{method} {hidden}"
    if method != "no-drop" and p != P_HEADLINE:
        name += f" p={p:g}"
    if masks != "per_example":
        name += " per-minibatch"
    return name


def arm_specs(config: dict) -> dict[str, dict]:
    """Every arm the config asks for, de-duplicated, in a stable order: name -> settings."""
    specs: dict[str, dict] = {}

    def add(method, hidden, p=P_HEADLINE, masks="per_example"):
        specs.setdefault(arm_name(method, hidden, p, masks),
                         {"method": method, "hidden": hidden, "p": 0.0 if method == "no-drop" else p, "masks": masks})

    for n in config["sizes"]:
        for method in METHODS:
            add(method, n)
    for p in config["sweep_p"]:
        add("dropconnect", config["sweep_hidden"], p)
        add("dropout", config["sweep_hidden"], p)
    add("dropconnect", config["sweep_hidden"], P_HEADLINE, "per_minibatch")
    return specs


def resolve(profile: str, **overrides) -> dict:
    config = apply_overrides(PAPER, PROFILES, profile, overrides)
    sizes = config["sizes"]
    if not isinstance(sizes, list) or len(sizes) < 2 or not all(isinstance(n, int) and n > 0 for n in sizes):
        raise ValueError(f"sizes must be a list of at least two positive ints, e.g. [200, 400, 800], got {sizes!r}")
    if not isinstance(config["sweep_hidden"], int) or config["sweep_hidden"] < 1:
        raise ValueError(f"sweep_hidden must be a positive int, got {config['sweep_hidden']!r}")
    sweep = config["sweep_p"]
    if (not isinstance(sweep, list) or len(sweep) < 3 or P_HEADLINE not in sweep
            or not all(isinstance(p, float) and 0.0 < p < 1.0 for p in sweep)):
        raise ValueError(f"sweep_p must be a list of at least three drop rates in (0, 1) including "
                         f"{P_HEADLINE}, e.g. [0.2, 0.5, 0.8], got {sweep!r}")
    samples = config["gaussian_samples"]
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"gaussian_samples must be an int >= 1, got {samples!r}")
    return config


def arms(config: dict) -> list[str]:
    return list(arm_specs(config))


def build(spec: dict, config: dict) -> torch.nn.Module:
    sizes = [784, spec["hidden"], spec["hidden"], 10]
    if spec["method"] == "dropconnect":
        return DropConnectMLP(sizes, spec["p"], config["activation"], masks=spec["masks"], inference="mean",
                              samples=config["gaussian_samples"])
    return MLP(sizes, config["activation"], 0.0, spec["p"])


def run_one(config: dict, arm: str, seed: int, progress: bool = True) -> dict:
    """Train one net; evaluate it every epoch (mean inference) and, for DropConnect, with Gaussian inference at the end."""
    spec = arm_specs(config)[arm]
    train, test = data.mnist_tensors(config["train_subset"], config["test_subset"], config["device"])
    seed_everything(seed)
    model = build(spec, config).to(config["device"])
    epochs = config["epochs"]
    curves = fit(
        model, train, test, epochs=epochs, batch_size=config["batch_size"], lr=config["lr"],
        lr_milestones=[round(f * epochs) for f in config["lr_milestones"]], lr_gamma=config["lr_gamma"],
        momentum=config["momentum"], seed=seed, progress=progress, desc=f"{arm} seed {seed}",
    )
    n_test = len(test[1])
    metrics = {
        "test_error": curves["test_error"][-1],
        "train_loss": curves["train_loss"][-1],
        "test_loss": curves["test_loss"][-1],
        "seconds_per_epoch": float(np.mean(curves["seconds"])),
    }
    if spec["method"] == "dropconnect":
        torch.manual_seed(10_000 + seed)  # Gaussian inference samples: reproducible, not shared with training
        errors, loss = evaluate(model.set_inference("gaussian"), test)
        metrics["test_error_gaussian"] = 100.0 * errors / n_test
        metrics["test_loss_gaussian"] = loss
        model.set_inference("mean")
    return {"metrics": metrics, "curves": curves}


# --------------------------------------------------------------------------- analysis


def summary(config: dict, runs: list[dict]) -> pd.DataFrame:
    """One row per arm: its settings, and mean / sd / count over seeds of the final metrics."""
    specs = arm_specs(config)
    rows = []
    for r in runs:
        m = r["metrics"]
        rows.append({"arm": r["arm"], **specs[r["arm"]], "seed": r["seed"], "error_mean_inference": m["test_error"],
                     "error_gaussian_inference": m.get("test_error_gaussian", np.nan),
                     "seconds_per_epoch": m["seconds_per_epoch"]})
    df = pd.DataFrame(rows)
    keys = ["arm", "method", "hidden", "p", "masks"]
    stats = df.groupby(keys, sort=False)[["error_mean_inference", "error_gaussian_inference", "seconds_per_epoch"]]
    out = stats.agg(["mean", "std"])
    out.columns = [f"{a}_{b}" for a, b in out.columns]
    out["seeds"] = df.groupby(keys, sort=False).size()
    return out.reset_index().set_index("arm")


def _r(value: float) -> float | None:
    """Rounded for the result file; None where undefined (the sd of a single seed)."""
    return None if np.isnan(value) else round(float(value), 3)


def _rounded(series: pd.Series) -> dict:
    return {k: _r(v) for k, v in series.items()}


def claims(config: dict, runs: list[dict]) -> list[dict]:
    """The chapter's claims, each decided on means over seeds (sd given as evidence)."""
    s = summary(config, runs)
    err = s["error_mean_inference_mean"]
    small, large = min(config["sizes"]), max(config["sizes"])
    sweep_n = config["sweep_hidden"]

    def e(method, n, p=P_HEADLINE, masks="per_example", col="error_mean_inference_mean"):
        return float(s.loc[arm_name(method, n, p, masks), col])

    gap = {n: {m: e("no-drop", n) - e(m, n) for m in ("dropout", "dropconnect")} for n in config["sizes"]}
    beat = all(g > 0 for g in gap[large].values())
    grows = all(gap[large][m] > gap[small][m] for m in ("dropout", "dropconnect"))
    sweep = pd.Series({p: e("dropconnect", sweep_n, p) for p in config["sweep_p"]})
    best_p = float(sweep.idxmin())
    interior = min(config["sweep_p"]) < best_p < max(config["sweep_p"])
    per_example, per_batch = e("dropconnect", sweep_n), e("dropconnect", sweep_n, masks="per_minibatch")
    dc = s[(s["method"] == "dropconnect") & (s["masks"] == "per_example")]
    gauss_minus_mean = dc["error_gaussian_inference_mean"] - dc["error_mean_inference_mean"]
    return [
        {
            "id": "regularizers_beat_nodrop",
            "statement": f"At the largest width ({large} units), DropConnect and Dropout both have a lower mean test "
                         "error than No-Drop.",
            "holds": bool(beat),
            "evidence": {"mean_test_error_%": {m: round(e(m, large), 3) for m in METHODS}},
        },
        {
            "id": "gain_grows_with_width",
            "statement": f"The gain of DropConnect and of Dropout over No-Drop is larger at {large} units than at "
                         f"{small} units.",
            "holds": bool(grows),
            "evidence": {f"gain_over_nodrop_points_at_{n}": _rounded(pd.Series(g)) for n, g in gap.items()},
        },
        {
            "id": "interior_minimum_in_p",
            "statement": f"DropConnect's mean test error against the drop rate ({sweep_n}-{sweep_n} net) is lowest "
                         "strictly inside the swept range (a U-shape).",
            "holds": bool(interior),
            "evidence": {"best_p": best_p, "mean_test_error_%_by_p": _rounded(sweep)},
        },
        {
            "id": "per_example_masks_at_least_as_good",
            "statement": f"DropConnect with a mask per example has a mean test error no higher than with one mask per "
                         f"minibatch ({sweep_n}-{sweep_n} net, p = 0.5).",
            "holds": bool(per_example <= per_batch),
            "evidence": {"per_example_%": round(per_example, 3), "per_minibatch_%": round(per_batch, 3),
                         "sd_per_example": _r(e("dropconnect", sweep_n, col="error_mean_inference_std")),
                         "sd_per_minibatch": _r(e("dropconnect", sweep_n, masks="per_minibatch",
                                                  col="error_mean_inference_std"))},
        },
        {
            # As in Figure 2(b), where sampling inference is at least as good at every keep fraction. (A first
            # version averaged over all nets, which let one drop rate hide the others; see the chapter.)
            "id": "gaussian_inference_at_least_as_good",
            "statement": "For every per-example DropConnect configuration (width and drop rate), Gaussian "
                         "(moment-matching) inference has a mean test error no higher than mean inference.",
            "holds": bool((gauss_minus_mean <= 0).all()),
            "evidence": {"gaussian_minus_mean_points": _rounded(gauss_minus_mean),
                         "samples_per_unit": config["gaussian_samples"]},
        },
    ]


# --------------------------------------------------------------------------- presentation

METHOD_LABELS = {"no-drop": "No-Drop", "dropout": "Dropout", "dropconnect": "DropConnect"}


def _pm(mean: float, sd: float) -> str:
    return f"{mean:.2f} ± {0.0 if np.isnan(sd) else sd:.2f}"


def table(result: dict) -> pd.DataFrame:
    """Paper vs ours at p = 0.5, every width: test error % (ours mean ± sd over seeds) and cost per epoch."""
    s = summary(result["config"], result["runs"])
    paper = {(v["method"], v["hidden"]): v for v in result["paper_values"]
             if v["id"].startswith(("table2", "fig2a")) and not (v["id"].startswith("fig2a") and v["hidden"] == 800)}
    dropout_seconds = {n: s.loc[arm_name("dropout", n), "seconds_per_epoch_mean"] for n in result["config"]["sizes"]}
    rows = []
    for arm, row in s.iterrows():
        if row["p"] not in (0.0, P_HEADLINE):
            continue
        ref = paper.get((row["method"], row["hidden"])) if row["masks"] == "per_example" else None
        rows.append({
            "arm": arm,
            "paper: test error %": "" if ref is None else (f"{ref['value']:.2f}" + (f" ± {ref['sd']:.3f}" if "sd" in ref else "")),
            "paper: source": "" if ref is None else ref["where"].split(" (p.")[0].replace("Wan et al. 2013, ", ""),
            "ours: mean inference": _pm(row["error_mean_inference_mean"], row["error_mean_inference_std"]),
            "ours: Gaussian inference": "" if np.isnan(row["error_gaussian_inference_mean"])
            else _pm(row["error_gaussian_inference_mean"], row["error_gaussian_inference_std"]),
            "time per epoch vs Dropout": f"{row['seconds_per_epoch_mean'] / dropout_seconds[row['hidden']]:.1f}x",
            "seeds": int(row["seeds"]),
        })
    return pd.DataFrame(rows).set_index("arm")


def figure(result: dict):
    """Figure 2, ours: (a) error vs width, (b) error vs drop rate, (c) train / test loss against epoch."""
    import matplotlib.pyplot as plt

    from .. import plotting

    plotting.use_house_style()
    config, runs = result["config"], result["runs"]
    s = summary(config, runs)
    colors = dict(zip(METHODS, plotting.palette(len(METHODS))))
    fig, (ax_a, ax_b, ax_c) = plt.subplots(1, 3, figsize=(15, 4.3))

    # (a) error against width, p = 0.5, per-example masks
    for method in METHODS:
        rows = s[(s["method"] == method) & (s["p"].isin([0.0, P_HEADLINE])) & (s["masks"] == "per_example")]
        rows = rows[rows["hidden"].isin(config["sizes"])].sort_values("hidden")
        ax_a.errorbar(rows["hidden"], rows["error_mean_inference_mean"], yerr=rows["error_mean_inference_std"].fillna(0),
                      color=colors[method], marker="o", capsize=3, label=f"ours: {METHOD_LABELS[method]}")
        paper = sorted((v["hidden"], v["value"]) for v in result["paper_values"]
                       if v["id"].startswith("fig2a") and v["method"] == method)
        ax_a.plot(*zip(*paper), color=colors[method], linestyle=":", marker="x", label=f"paper: {METHOD_LABELS[method]}")
    ax_a.set_xscale("log", base=2)
    ax_a.set_xticks(sorted({*config["sizes"], 1600}), [str(n) for n in sorted({*config["sizes"], 1600})])
    ax_a.set_xticks([], minor=True)
    ax_a.set_xlabel("units in each of the two hidden layers")
    ax_a.set_ylabel("test error (%)")
    ax_a.set_title("(a) width, p = 0.5", fontsize=10)
    ax_a.legend(fontsize=7)

    # (b) error against drop rate
    n = config["sweep_hidden"]
    curves = [("dropconnect", "error_mean_inference", "mean", "-"), ("dropconnect", "error_gaussian_inference", "gaussian", "--"),
              ("dropout", "error_mean_inference", "mean", "-")]
    for method, col, inference, style in curves:
        rows = s[(s["method"] == method) & (s["hidden"] == n) & (s["masks"] == "per_example")].sort_values("p")
        label = METHOD_LABELS[method] + (f" ({inference} inference)" if method == "dropconnect" else "")
        ax_b.errorbar(rows["p"], rows[f"{col}_mean"], yerr=rows[f"{col}_std"].fillna(0), color=colors[method],
                      linestyle=style, marker="o", capsize=3, label=f"ours: {label}")
        paper = sorted((v["p"], v["value"]) for v in result["paper_values"]
                       if v["id"].startswith("fig2b") and v["method"] == method and v["inference"] == inference)
        ax_b.plot(*zip(*paper), color=colors[method], linestyle=style, marker="x", alpha=0.45, label=f"paper: {label}")
    per_batch = s.loc[arm_name("dropconnect", n, masks="per_minibatch")]
    ax_b.errorbar([P_HEADLINE], [per_batch["error_mean_inference_mean"]], yerr=[np.nan_to_num(per_batch["error_mean_inference_std"])],
                  color="black", marker="s", capsize=3, linestyle="none", label="ours: DropConnect, one mask per minibatch")
    ax_b.set_xlabel("drop rate p (the paper plots the keep fraction 1 - p)")
    ax_b.set_ylabel("test error (%)")
    ax_b.set_title(f"(b) drop rate, 784-{n}-{n}-10", fontsize=10)
    ax_b.legend(fontsize=6.5)

    # (c) convergence of the widest nets
    large = max(config["sizes"])
    for method in METHODS:
        arm = arm_name(method, large)
        for key, style, what in (("train_loss", "--", "train"), ("test_loss", "-", "test")):
            per_seed = np.array([r["curves"][key] for r in runs if r["arm"] == arm])
            epochs = np.arange(1, per_seed.shape[1] + 1)
            ax_c.plot(epochs, per_seed.mean(0), color=colors[method], linestyle=style,
                      label=f"{METHOD_LABELS[method]} {what}")
    ax_c.set_yscale("log")
    ax_c.set_xlabel("epoch")
    ax_c.set_ylabel("cross-entropy (train: with masks on)")
    ax_c.set_title(f"(c) convergence, 784-{large}-{large}-10", fontsize=10)
    ax_c.legend(fontsize=7)
    images = f"first {config['train_subset']:,}" if config["train_subset"] else "all 60,000"
    fig.suptitle(f"MNIST ({images} training images), {config['epochs']} epochs, mean ± sd over {len(result['seeds'])} seeds "
                 f"({result['profile']} profile); paper's values dotted / faded", fontsize=10)
    fig.tight_layout()
    return fig

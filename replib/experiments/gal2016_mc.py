"""Gal & Ghahramani (2016), Figures 2 and 4: what MC dropout's uncertainty looks like.

"Dropout as a Bayesian Approximation: Representing Model Uncertainty in Deep Learning",
ICML 2016 (arXiv 1506.02142).

Two parts, one set of seeds:

- ``co2 relu`` / ``co2 tanh``: a fully connected net with dropout trained on the authors'
  272 detrended, standardised monthly Mauna Loa CO2 values (1958-03 to 1981-03), then asked
  to extrapolate over their 1000-point grid. Each net is read twice: with dropout off (the
  standard, weight-averaged prediction: panel (a) for ReLU) and with MC dropout (panels (c)
  ReLU and (d) TanH). ``gp``: a Gaussian process with a squared-exponential covariance,
  panel (b); it also maps the real CO2 series beyond 1981 into the same scale.
- ``lenet``: a LeNet with dropout before its last layer trained on MNIST; a test "1" is
  rotated in 12 steps and classified with MC dropout (Figure 4).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from .. import data
from ..methods import mc_predict
from ..models import MLP, LeNet
from ..train import fit, fit_regression, seed_everything
from ._config import apply_overrides, check_int

PAPER = "gal2016_mc"
TITLE = "Gal & Ghahramani 2016: MC dropout uncertainty"
CO2_ARMS = ("co2 relu", "co2 tanh")
TAIL = 0.1  # "far from the data": the last tenth of the extrapolation grid; "near": its first tenth

_COMMON = {
    "co2_hidden": [512, 512, 512, 512],  # units per hidden layer
    "co2_p": 0.1,  # dropout before every weight layer but the first
    "co2_iterations": 10_000,  # full-batch Adam steps
    "co2_lr": 1e-3,
    "co2_weight_decay": 1e-6,  # L2 on every weight: the prior of the Bayesian reading
    "mc_samples": 500,  # stochastic passes T for every MC prediction on the CO2 grid
    "gp_steps": 300,  # Adam steps on the GP's log marginal likelihood (lengthscale, signal, noise)
    "gp_init_lengthscales": [0.05, 0.2, 1.0],  # starting points; the best optimum is kept (the yearly cycle is ~0.15)
    "lenet_p": 0.5,  # dropout before LeNet's last layer
    "lenet_epochs": 3,
    "lenet_lr": 0.05,
    "rotations": 12,  # rotated copies of the digit, as in Figure 4
    "max_angle": 88.0,  # degrees (counter-clockwise) of the last copy; the first is upright
    "digit_samples": 100,  # stochastic passes per rotated digit, as in Figure 4
    "train_subset": None,  # None: all 60,000 MNIST training images
    "device": "cpu",
}
PROFILES = {
    "smoke": {**_COMMON, "co2_hidden": [32, 32], "co2_iterations": 200, "mc_samples": 20, "gp_steps": 20,
              "lenet_epochs": 1, "digit_samples": 20, "train_subset": 2000, "seeds": 1},
    "cpu": {**_COMMON, "seeds": 3},
    "paper": {**_COMMON, "co2_hidden": [1024] * 5, "co2_iterations": 1_000_000, "mc_samples": 1000,
              "lenet_epochs": 20, "seeds": 5},
}

PAPER_VALUES = [
    {
        "id": "co2_data", "value": 272, "unit": "training points",
        "what": "detrended, standardised monthly CO2, 1958-03 to 1981-03; test grid of 1000 points to x = 3.72",
        "where": "the authors' released data (shared/data/co2/co2_gal2016.npz)", "confirmed": True,
    },
    {
        "id": "co2_net", "value": "4-5 hidden layers of 1024 units, dropout p 0.1 or 0.2, 10^6 iterations",
        "unit": "setup", "what": "networks of Figure 2",
        "where": "Gal & Ghahramani 2016 (ICML), Figure 2 setup, as quoted by the issue (shared/PAPERS.md)",
        "confirmed": False,
    },
    {
        "id": "fig4_class_sequence", "value": "1 -> 5 -> 7", "unit": "predicted class as the digit rotates",
        "what": "the class with the largest MC-averaged probability moves from 1 through 5 to 7, with very large "
                "uncertainty where it is 5",
        "where": "Gal & Ghahramani 2016 (ICML), Figure 4, as quoted by the issue (shared/PAPERS.md)",
        "confirmed": False,
    },
]


def resolve(profile: str, **overrides) -> dict:
    config = apply_overrides(PAPER, PROFILES, profile, overrides)
    hidden = config["co2_hidden"]
    if not isinstance(hidden, list) or not hidden or not all(isinstance(h, int) and h > 0 for h in hidden):
        raise ValueError(f"co2_hidden must be a non-empty list of positive ints, e.g. [512, 512], got {hidden!r}")
    for key in ("co2_iterations", "mc_samples", "gp_steps", "lenet_epochs", "rotations", "digit_samples"):
        check_int(config, key)
    starts = config["gp_init_lengthscales"]
    if not isinstance(starts, list) or not starts or not all(isinstance(v, float) and v > 0 for v in starts):
        raise ValueError(f"gp_init_lengthscales must be a non-empty list of positive floats, got {starts!r}")
    if config["rotations"] < 2:
        raise ValueError(f"rotations must be at least 2 (upright and rotated), got {config['rotations']!r}")
    return config


def arms(config: dict) -> list[str]:
    return ["gp", *CO2_ARMS, "lenet"]


def units(config: dict, seeds: list[int], done: dict) -> list[tuple[str, int]]:
    """The GP is deterministic: once (first seed). The nets: every seed."""
    return [("gp", seeds[0])] + [(arm, s) for s in seeds for arm in (*CO2_ARMS, "lenet")]


def _col(a: np.ndarray, device: str) -> torch.Tensor:
    """A float32 column ``(N, 1)`` on ``device``."""
    return torch.as_tensor(a, dtype=torch.float32, device=device).reshape(-1, 1)


def _r(values, digits: int = 5) -> list[float]:
    return [round(float(v), digits) for v in np.asarray(values).reshape(-1)]


def run_one(config: dict, arm: str, seed: int, progress: bool = True) -> dict:
    if arm == "gp":
        return _run_gp(config)
    if arm == "lenet":
        return _run_lenet(config, seed, progress)
    return _run_co2_net(config, arm.split()[1], seed, progress)


# --------------------------------------------------------------------------- CO2


def real_continuation(co2: dict, raw: pd.DataFrame) -> dict:
    """The real CO2 series after the training window, in the training data's (x, y) scale.

    The authors' data are the first 272 rows of the monthly series (rows, not calendar
    months: the few missing months are skipped), with x linear in the row and y linear in
    CO2 and the row (a linear detrend, then standardisation). Both maps are recovered by
    least squares on the 272 training rows and applied to the later rows; ``max_residual``
    says how exactly they reproduce the training data.
    """
    rows = np.arange(len(raw), dtype=float)
    n = len(co2["x_train"])
    ax = np.polyfit(rows[:n], co2["x_train"], 1)
    design = np.column_stack([raw["CO2"].to_numpy(float), rows, np.ones_like(rows)])
    coef, *_ = np.linalg.lstsq(design[:n], co2["y_train"], rcond=None)
    x, y = np.polyval(ax, rows), design @ coef
    later = (rows >= n) & (x <= co2["x_test"].max())
    return {
        "x": x[later], "y": y[later], "dates": raw["Date"].dt.strftime("%Y-%m").to_numpy()[later],
        "max_residual_x": float(np.abs(x[:n] - co2["x_train"]).max()),
        "max_residual_y": float(np.abs(y[:n] - co2["y_train"]).max()),
    }


def _se_kernel(a: torch.Tensor, b: torch.Tensor, ell: torch.Tensor, sf: torch.Tensor) -> torch.Tensor:
    return sf**2 * torch.exp(-0.5 * (a[:, None] - b[None, :]) ** 2 / ell**2)


def _gp_nll(log_params: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Negative log marginal likelihood of a zero-mean GP; ``log_params`` = log (lengthscale, signal sd, noise sd)."""
    ell, sf, sn = log_params.exp()
    k = _se_kernel(x, x, ell, sf) + (sn**2 + 1e-8) * torch.eye(len(x), dtype=x.dtype)
    chol = torch.linalg.cholesky(k)
    alpha = torch.cholesky_solve(y[:, None], chol)
    return 0.5 * (y[:, None] * alpha).sum() + chol.diagonal().log().sum() + 0.5 * len(x) * math.log(2 * math.pi)


def _run_gp(config: dict) -> dict:
    """Panel (b): GP regression, squared-exponential covariance, hyper-parameters by marginal likelihood.

    The likelihood has local optima (one treats the yearly cycle as noise), so the
    optimisation starts from each of ``gp_init_lengthscales`` and keeps the best.
    """
    co2 = data.load_co2_gal2016()
    real = real_continuation(co2, data.load_co2_raw())
    x, y = torch.as_tensor(co2["x_train"], dtype=torch.float64), torch.as_tensor(co2["y_train"], dtype=torch.float64)
    xs = torch.as_tensor(co2["x_test"], dtype=torch.float64)
    fits = []
    for ell0 in config["gp_init_lengthscales"]:
        log_params = torch.tensor([math.log(ell0), 0.0, math.log(0.1)], dtype=torch.float64, requires_grad=True)
        opt = torch.optim.Adam([log_params], lr=0.05)
        for _ in range(config["gp_steps"]):
            opt.zero_grad()
            loss = _gp_nll(log_params, x, y)
            loss.backward()
            opt.step()
        with torch.no_grad():
            fits.append((float(_gp_nll(log_params, x, y)), ell0, log_params.detach().clone()))
    best_nll, best_start, log_params = min(fits, key=lambda f: f[0])
    with torch.no_grad():
        ell, sf, sn = log_params.exp()
        k = _se_kernel(x, x, ell, sf) + (sn**2 + 1e-8) * torch.eye(len(x), dtype=x.dtype)
        chol = torch.linalg.cholesky(k)
        ks = _se_kernel(xs, x, ell, sf)
        mean = ks @ torch.cholesky_solve(y[:, None], chol)
        v = torch.cholesky_solve(ks.T, chol)
        var = (sf**2 - (ks * v.T).sum(1)).clamp_min(0.0)
    metrics = {"lengthscale": float(ell), "signal_sd": float(sf), "noise_sd": float(sn),
               "neg_log_marginal_likelihood": best_nll, "best_start_lengthscale": best_start,
               "neg_log_marginal_likelihood_by_start": {str(f[1]): round(f[0], 3) for f in fits},
               "real_map_max_residual_x": real["max_residual_x"], "real_map_max_residual_y": real["max_residual_y"]}
    curves = {"x_test": _r(xs), "mean": _r(mean), "std": _r(var.sqrt()), "x_train": _r(x), "y_train": _r(y),
              "real_x": _r(real["x"]), "real_y": _r(real["y"]), "real_dates": real["dates"].tolist()}
    return {"metrics": metrics, "curves": curves}


def _run_co2_net(config: dict, activation: str, seed: int, progress: bool) -> dict:
    co2 = data.load_co2_gal2016()
    device = config["device"]
    seed_everything(seed)
    model = MLP([1, *config["co2_hidden"], 1], activation, 0.0, config["co2_p"]).to(device)
    x, y, xs = (_col(co2[k], device) for k in ("x_train", "y_train", "x_test"))
    curves = fit_regression(model, x, y, iterations=config["co2_iterations"], lr=config["co2_lr"],
                            weight_decay=config["co2_weight_decay"], progress=progress, desc=f"co2 {activation} seed {seed}")
    model.eval()
    with torch.no_grad():
        standard = model(xs).squeeze(1)
        train_fit = model(x).squeeze(1)
    torch.manual_seed(10_000 + seed)  # MC passes: reproducible, independent of training
    grid = mc_predict(model, xs, config["mc_samples"])
    on_train = mc_predict(model, x, config["mc_samples"])
    sd = grid.std.squeeze(1).cpu().numpy()
    tail = max(1, int(TAIL * len(sd)))
    metrics = {
        "train_rmse_standard": float((train_fit - y.squeeze(1)).pow(2).mean().sqrt()),
        "mc_sd_on_training_inputs": float(on_train.std.mean()),
        "mc_sd_near": float(sd[:tail].mean()),  # first tenth of the grid, just after the data
        "mc_sd_far": float(sd[-tail:].mean()),  # last tenth of the grid
    }
    curves.update({"mc_mean": _r(grid.mean), "mc_std": _r(grid.std), "standard": _r(standard)})
    return {"metrics": metrics, "curves": curves}


# --------------------------------------------------------------------------- MNIST rotations


def rotated_digit(config: dict) -> tuple[torch.Tensor, list[float]]:
    """The first "1" of the MNIST test set, rotated counter-clockwise in ``rotations`` equal steps to ``max_angle``."""
    from torchvision.transforms.functional import InterpolationMode, rotate

    test = data.load_mnist("test")
    index = int((test.labels == 1).nonzero()[0])
    image = test.images[index].float().div(255.0).unsqueeze(0)  # (1, 28, 28)
    angles = np.linspace(0.0, config["max_angle"], config["rotations"]).tolist()
    batch = torch.stack([rotate(image, a, InterpolationMode.BILINEAR) for a in angles])  # (R, 1, 28, 28)
    return batch.to(config["device"]), angles


def _run_lenet(config: dict, seed: int, progress: bool) -> dict:
    train, test = data.mnist_tensors(config["train_subset"], None, config["device"])
    seed_everything(seed)
    model = LeNet(config["lenet_p"]).to(config["device"])
    curves = fit(model, train, test, epochs=config["lenet_epochs"], batch_size=128, lr=config["lenet_lr"],
                 momentum=0.9, seed=seed, progress=progress, desc=f"lenet seed {seed}")
    digits, angles = rotated_digit(config)
    torch.manual_seed(10_000 + seed)
    logits = mc_predict(model, digits, config["digit_samples"], return_samples=True).samples  # (T, R, 10)
    probs = logits.softmax(-1)
    mean_probs = probs.mean(0)  # (R, 10)
    predicted = mean_probs.argmax(1)
    sd_of_predicted = probs.std(0, correction=0).gather(1, predicted[:, None]).squeeze(1)
    top = mean_probs.max(0).values.argsort(descending=True)[:3].tolist()  # the classes that ever win most clearly
    metrics = {
        "test_error": curves["test_error"][-1],
        "predicted_class_by_angle": predicted.tolist(),
        "sd_of_predicted_probability_by_angle": _r(sd_of_predicted, 4),
        "top_classes": top,
    }
    curves.update({
        "angles": angles,
        "softmax_input_samples": {str(c): [_r(logits[:, r, c], 3) for r in range(len(angles))] for c in top},
        "softmax_output_samples": {str(c): [_r(probs[:, r, c], 4) for r in range(len(angles))] for c in top},
    })
    return {"metrics": metrics, "curves": curves}


# --------------------------------------------------------------------------- analysis


def _by_arm(runs: list[dict], arm: str) -> list[dict]:
    return [r for r in runs if r["arm"] == arm]


def _growth(run: dict) -> float:
    return run["metrics"]["mc_sd_far"] / run["metrics"]["mc_sd_near"]


def claims(config: dict, runs: list[dict]) -> list[dict]:
    gp = _by_arm(runs, "gp")[0]
    relu, tanh = _by_arm(runs, "co2 relu"), _by_arm(runs, "co2 tanh")
    lenet = _by_arm(runs, "lenet")
    real_x, real_y = np.array(gp["curves"]["real_x"]), np.array(gp["curves"]["real_y"])
    x_test = np.array(gp["curves"]["x_test"])
    end = int(np.abs(x_test - real_x.max()).argmin())  # grid point nearest the last real month inside the grid

    relu_ratio = {r["seed"]: round(r["metrics"]["mc_sd_far"] / r["metrics"]["mc_sd_on_training_inputs"], 2) for r in relu}
    growth = {"relu": {r["seed"]: round(_growth(r), 2) for r in relu}, "tanh": {r["seed"]: round(_growth(r), 2) for r in tanh}}
    bounded = all(growth["tanh"][s] < min(1.5, growth["relu"][s]) for s in growth["tanh"])
    miss = {r["seed"]: round(abs(r["curves"]["standard"][end] - float(real_y[-1])), 2) for r in relu}

    upright_sd = [r["metrics"]["sd_of_predicted_probability_by_angle"][0] for r in lenet]
    peak_sd = [max(r["metrics"]["sd_of_predicted_probability_by_angle"]) for r in lenet]
    flips = [any(c != 1 for c in r["metrics"]["predicted_class_by_angle"]) for r in lenet]
    return [
        {
            "id": "standard_dropout_misses_far_from_data",
            "statement": "Standard dropout (weight averaging, ReLU) gives one value with no uncertainty, and at the last "
                         "real month inside the grid it misses the real CO2 value by more than one standard deviation "
                         "of the training targets, in every seed.",
            "holds": bool(all(m > 1.0 for m in miss.values())),
            "evidence": {"abs_error_at_last_real_month": miss, "last_real_month": gp["curves"]["real_dates"][-1]},
        },
        {
            "id": "relu_uncertainty_grows",
            "statement": "With ReLU, the MC dropout standard deviation over the last tenth of the grid is at least twice "
                         "its value on the training inputs, in every seed.",
            "holds": bool(all(v >= 2.0 for v in relu_ratio.values())),
            "evidence": {"far_over_training_sd": relu_ratio},
        },
        {
            "id": "tanh_uncertainty_bounded",
            "statement": "With TanH, the MC standard deviation levels off: from the first to the last tenth of the grid it "
                         "grows by less than 1.5x and less than ReLU's does, in every seed.",
            "holds": bool(bounded),
            "evidence": {"far_over_near_sd": growth},
        },
        {
            "id": "rotation_uncertainty",
            "statement": "For the rotated 1, MC dropout is confident upright (sd of the winning class's probability < 0.1) "
                         "and very uncertain somewhere along the rotation (sd > 0.2) where the predicted class changes, "
                         "on average over seeds; the prediction leaves class 1 in every seed.",
            "holds": bool(np.mean(upright_sd) < 0.1 and np.mean(peak_sd) > 0.2 and all(flips)),
            "evidence": {"upright_sd": _r(upright_sd, 3), "peak_sd": _r(peak_sd, 3),
                         "predicted_class_by_angle": {r["seed"]: r["metrics"]["predicted_class_by_angle"] for r in lenet}},
        },
    ]


# --------------------------------------------------------------------------- presentation


def figure_co2(result: dict):
    """Figure 2, ours: (a) standard dropout, (b) GP, (c) MC dropout ReLU, (d) MC dropout TanH; seed 0, ±2 sd."""
    import matplotlib.pyplot as plt

    from .. import plotting

    plotting.use_house_style()
    gp = _by_arm(result["runs"], "gp")[0]["curves"]
    seed = result["seeds"][0]
    relu = next(r for r in _by_arm(result["runs"], "co2 relu") if r["seed"] == seed)["curves"]
    tanh = next(r for r in _by_arm(result["runs"], "co2 tanh") if r["seed"] == seed)["curves"]
    x = np.array(gp["x_test"])
    panels = [
        ("(a) standard dropout (ReLU), weight averaging", relu["standard"], None),
        ("(b) Gaussian process, SE covariance", gp["mean"], gp["std"]),
        ("(c) MC dropout, ReLU", relu["mc_mean"], relu["mc_std"]),
        ("(d) MC dropout, TanH", tanh["mc_mean"], tanh["mc_std"]),
    ]
    color = plotting.palette(3)
    fig, axes = plt.subplots(2, 2, figsize=(12, 7), sharex=True, sharey=True)
    for ax, (title, mean, sd) in zip(axes.flat, panels):
        ax.plot(gp["x_train"], gp["y_train"], color="black", linewidth=1, label="training data (to 1981-03)")
        ax.plot(gp["real_x"], gp["real_y"], color="grey", linewidth=0.8, alpha=0.7, label="real CO2 after 1981 (same scale)")
        ax.plot(x, mean, color=color[0], label="prediction")
        if sd is not None:
            m, s = np.array(mean), np.array(sd)
            ax.fill_between(x, m - 2 * s, m + 2 * s, color=color[0], alpha=0.25, linewidth=0, label="±2 sd")
        ax.axvline(max(gp["x_train"]), color="black", linestyle="--", linewidth=1)
        ax.set_title(title, fontsize=10)
    for ax in axes[1]:
        ax.set_xlabel("x (standardised time)")
    for ax in axes[:, 0]:
        ax.set_ylabel("y (detrended, standardised CO2)")
    axes[0, 0].legend(fontsize=7, loc="upper left")
    axes[0, 0].set_ylim(-4, 8)
    fig.suptitle(f"Mauna Loa CO2 extrapolation, seed {seed} ({result['profile']} profile, "
                 f"{len(result['config']['co2_hidden'])}x{result['config']['co2_hidden'][0]} units, "
                 f"p = {result['config']['co2_p']}, T = {result['config']['mc_samples']} passes)", fontsize=10)
    fig.tight_layout()
    return fig


def figure_rotation(result: dict):
    """Figure 4, ours: softmax input and output samples of the top classes for the rotated 1 (seed 0)."""
    import matplotlib.pyplot as plt

    from .. import plotting

    plotting.use_house_style()
    seed = result["seeds"][0]
    run = next(r for r in _by_arm(result["runs"], "lenet") if r["seed"] == seed)
    angles = run["curves"]["angles"]
    colors = dict(zip(run["metrics"]["top_classes"], plotting.palette(3)))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, key, label in ((axes[0], "softmax_input_samples", "softmax input (logit)"),
                           (axes[1], "softmax_output_samples", "softmax output (probability)")):
        for cls, per_angle in run["curves"][key].items():
            for i, (angle, values) in enumerate(zip(angles, per_angle)):
                ax.scatter(np.full(len(values), angle) + (int(cls) % 3 - 1) * 1.2, values, s=3, alpha=0.35,
                           color=colors[int(cls)], label=f"class {cls}" if i == 0 else None)
        ax.set_xlabel("rotation of the digit (degrees)")
        ax.set_ylabel(label)
        ax.legend(fontsize=8, markerscale=3)
    fig.suptitle(f"MNIST: a test '1' rotated in {len(angles)} steps; {result['config']['digit_samples']} MC dropout "
                 f"passes each (seed {seed}); predicted classes: {run['metrics']['predicted_class_by_angle']}", fontsize=10)
    fig.tight_layout()
    return fig


def coverage(result: dict, run: dict) -> float:
    """Share of the real months after the training window whose CO2 lies inside the run's MC mean ± 2 sd."""
    gp = _by_arm(result["runs"], "gp")[0]["curves"]
    x, real_x, real_y = np.array(gp["x_test"]), np.array(gp["real_x"]), np.array(gp["real_y"])
    mean, sd = (np.interp(real_x, x, run["curves"][k]) for k in ("mc_mean", "mc_std"))
    return float((np.abs(real_y - mean) <= 2 * sd).mean())


def table(result: dict) -> pd.DataFrame:
    """Our numbers behind the claims, mean ± sd over seeds."""
    rows = []

    def add(what, values, paper=""):
        v = np.array(values, dtype=float)
        sd = v.std(ddof=1) if len(v) > 1 else 0.0
        rows.append({"quantity": what, "paper": paper, "ours (mean ± sd)": f"{v.mean():.3f} ± {sd:.3f}",
                     "seeds": len(v)})

    runs = result["runs"]
    for arm in CO2_ARMS:
        act = arm.split()[1]
        add(f"{act}: MC sd on the training inputs", [r["metrics"]["mc_sd_on_training_inputs"] for r in _by_arm(runs, arm)])
        add(f"{act}: MC sd, first tenth of the grid", [r["metrics"]["mc_sd_near"] for r in _by_arm(runs, arm)])
        add(f"{act}: MC sd, last tenth of the grid", [r["metrics"]["mc_sd_far"] for r in _by_arm(runs, arm)],
            "grows (ReLU)" if act == "relu" else "bounded (TanH)")
        add(f"{act}: share of real months after 1981 inside ±2 sd", [coverage(result, r) for r in _by_arm(runs, arm)])
    lenet = _by_arm(runs, "lenet")
    add("LeNet: MNIST test error %", [r["metrics"]["test_error"] for r in lenet])
    add("rotated 1: sd of winning probability, upright", [r["metrics"]["sd_of_predicted_probability_by_angle"][0] for r in lenet],
        "small")
    add("rotated 1: largest sd along the rotation", [max(r["metrics"]["sd_of_predicted_probability_by_angle"]) for r in lenet],
        "very large where the class is 5")
    return pd.DataFrame(rows).set_index("quantity")

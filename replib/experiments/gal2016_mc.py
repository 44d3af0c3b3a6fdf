"""Gal & Ghahramani (2016), Figures 2 and 4: what MC dropout's uncertainty looks like.

"Dropout as a Bayesian Approximation: Representing Model Uncertainty in Deep Learning",
ICML 2016 (arXiv 1506.02142).

Two parts, one set of seeds:
- ``co2 relu`` / ``co2 tanh``: a fully connected net with dropout trained on the authors' 272
  detrended, standardised monthly Mauna Loa CO2 values (1958-03 to 1981-03), asked to extrapolate
  over their 1000-point grid, read with dropout off (standard dropout: panel (a), ReLU) and with
  MC dropout (panels (c) ReLU, (d) TanH). ``gp``: a Gaussian process (squared-exponential
  covariance), panel (b); it also maps the real CO2 series beyond 1981 into the same scale.
- ``lenet``: a LeNet with dropout before its last layer trained on MNIST; a test "1" is rotated
  in 12 steps and classified with MC dropout (Figure 4).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from pydantic import Field

from .. import claims as rule
from .. import data, plotting, seeding
from .._validate import DropProbability, NonNegativeFloat, PositiveFloat, PositiveInt, Probability, Spec, SubSpec, Widths
from ..methods import mc_predict
from ..models import MLP, LeNet
from ..train import classification_monitor, fit, fit_regression, minibatches, sgd_schedule

PAPER = "gal2016_mc"
TITLE = "Gal & Ghahramani 2016: MC dropout uncertainty"
CITE = "gal2016bayesian"  # its key in book/references.bib
HEADLINE = "MC dropout's spread grows away from the data for ReLU nets, stays bounded for TanH, and flags a rotated digit."  # the claim tested, in a line
DATASETS = ("co2", "mnist")  # the data mirror's folders its units read
CO2_ARMS = ("co2 relu", "co2 tanh")
TAIL = 0.1  # "far from the data": the last tenth of the extrapolation grid; "near": its first tenth


class Co2Config(SubSpec):
    hidden: Widths = Field([512] * 4, description="units per hidden layer of the CO2 nets")
    p: DropProbability = Field(0.1, description="dropout before every weight layer but the first")
    iterations: PositiveInt = Field(40_000, description="full-batch Adam steps: the most a net may take when "
                                    "target_rmse is set, otherwise all it takes")
    target_rmse: PositiveFloat | None = Field(None, description="stop once the training RMSE with dropout off (in sd of "
                                              "the targets) is below this; None: train for all iterations")
    check_every: PositiveInt = Field(1000, description="Adam steps between readings of the training RMSE")
    lr: PositiveFloat = Field(1e-3, description="Adam's learning rate")
    weight_decay: NonNegativeFloat = Field(1e-6, description="L2 on every weight: the prior of the Bayesian reading")
    mc_samples: PositiveInt = Field(500, description="stochastic passes T for every MC prediction on the CO2 grid")


class GpConfig(SubSpec):
    steps: PositiveInt = Field(300, description="Adam steps on the log marginal likelihood (lengthscale, signal, noise)")
    init_lengthscales: list[PositiveFloat] = Field([0.05, 0.2, 1.0], min_length=1,
                                                   description="starting points, the best optimum kept (yearly cycle ~0.15)")


class DigitsConfig(SubSpec):
    p: DropProbability = Field(0.5, description="dropout before LeNet's last layer")
    epochs: PositiveInt = Field(3, description="passes over the MNIST training images")
    lr: PositiveFloat = Field(0.05, description="SGD learning rate")
    momentum: Probability = Field(0.9, description="SGD momentum")
    batch_size: PositiveInt = Field(128, description="images per minibatch")
    train_size: PositiveInt | None = Field(None, description="MNIST training images; None: all 60,000")
    rotations: int = Field(12, ge=2, description="rotated copies of the digit, as in Figure 4")
    max_angle: PositiveFloat = Field(88.0, description="degrees (counter-clockwise) of the last copy; the first is upright")
    mc_samples: PositiveInt = Field(100, description="stochastic passes per rotated digit, as in Figure 4")


class Config(Spec):
    co2: Co2Config = Field(default_factory=Co2Config, description="the CO2 nets of Figure 2 (a), (c), (d)")
    gp: GpConfig = Field(default_factory=GpConfig, description="the Gaussian process of Figure 2 (b)")
    digits: DigitsConfig = Field(default_factory=DigitsConfig, description="the LeNet and rotated digit of Figure 4")


PROFILES = {
    "smoke": {"co2": {"hidden": [32, 32], "iterations": 200, "mc_samples": 20}, "gp": {"steps": 20},
              "digits": {"epochs": 1, "mc_samples": 20, "train_size": 2000}, "seeds": 1},
    # Sized for 2 cores of a CPU with AVX2 only. The time is the CO2 nets' full-batch steps: a step of the 4x512 net
    # took 10.5 ms on an AVX-512 session whose MLP epoch trained 13.7k examples/s in the same run
    # (results/benchmarks/regression_loop.json), so about 25 ms where that epoch trains 5.8k (measured on AVX2).
    # This profile's run took 152,000 steps, some 63 minutes at 25 ms, and its 3 LeNets about 5 more; with every
    # TanH net at the 50,000-step cap, some 86. (It took 32.5 minutes on an AVX-512 session, 11.9 ms a step.)
    "cpu": {"co2": {"iterations": 50_000, "target_rmse": 0.3, "lr": 3e-4}, "seeds": 3},
    "paper": {"co2": {"hidden": [1024] * 5, "iterations": 1_000_000, "mc_samples": 1000}, "digits": {"epochs": 20},
              "seeds": 5},
}

PAPER_VALUES = [
    {"id": "co2_data", "value": 272, "unit": "training points",
     "what": "detrended, standardised monthly CO2, 1958-03 to 1981-03; test grid of 1000 points to x = 3.72",
     "where": "the authors' released data (shared/data/co2/co2_gal2016.npz)", "confirmed": True},
    {"id": "co2_net", "value": "4-5 hidden layers of 1024 units, dropout p 0.1 or 0.2, 10^6 iterations",
     "unit": "setup", "what": "networks of Figure 2",
     "where": "Gal & Ghahramani 2016 (ICML), Figure 2 setup; not read in the paper's text here", "confirmed": False},
    {"id": "fig4_class_sequence", "value": "1 -> 5 -> 7", "unit": "predicted class as the digit rotates",
     "what": "the class with the largest MC-averaged probability moves from 1 through 5 to 7, with very large "
             "uncertainty where it is 5",
     "where": "Gal & Ghahramani 2016 (ICML), Figure 4; not read in the paper's text here", "confirmed": False},
]

# The claims' thresholds, fixed before the first cpu run: a miss of more than one sd of the training targets; a ReLU
# spread far from the data at least twice that on the data; a TanH spread growing less than 1.5x across the grid;
# "confident" below 0.1, "very uncertain" above 0.2 (sd of the winning probability); "leaves 1": a count above 0.5.
MISS_SD, RELU_GROWTH, TANH_GROWTH, UPRIGHT_SD, PEAK_SD = 1.0, 2.0, 1.5, 0.1, 0.2
PAPER_CLASS_SEQUENCE = (1, 5, 7)  # Figure 4: the winning class as the 1 rotates


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
        return _run_gp(config["gp"])
    if arm == "lenet":
        return _run_lenet(config["digits"], config["device"], seed, progress)
    return _run_co2_net(config["co2"], config["device"], arm.split()[1], seed, progress)


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
    optimisation starts from each of ``init_lengthscales`` and keeps the best.
    """
    co2 = data.load_co2_gal2016()
    real = real_continuation(co2, data.load_co2_raw())
    x, y = torch.as_tensor(co2["x_train"], dtype=torch.float64), torch.as_tensor(co2["y_train"], dtype=torch.float64)
    xs = torch.as_tensor(co2["x_test"], dtype=torch.float64)
    fits = []
    for ell0 in config["init_lengthscales"]:
        log_params = torch.tensor([math.log(ell0), 0.0, math.log(0.1)], dtype=torch.float64, requires_grad=True)
        opt = torch.optim.Adam([log_params], lr=0.05)
        for _ in range(config["steps"]):
            opt.zero_grad()
            _gp_nll(log_params, x, y).backward()
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


def _run_co2_net(config: dict, device: str, activation: str, seed: int, progress: bool) -> dict:
    co2 = data.load_co2_gal2016()
    model = MLP([1, *config["hidden"], 1], activation, 0.0, config["p"]).to(device)
    x, y, xs = (_col(co2[k], device) for k in ("x_train", "y_train", "x_test"))
    curves = fit_regression(model, x, y, iterations=config["iterations"], lr=config["lr"],
                            weight_decay=config["weight_decay"], target_rmse=config["target_rmse"],
                            check_every=config["check_every"], progress=progress, desc=f"co2 {activation} seed {seed}")
    model.eval()
    with torch.no_grad():
        standard = model(xs).squeeze(1)
    with seeding.evaluation(seed):
        grid = mc_predict(model, xs, config["mc_samples"])
        on_train = mc_predict(model, x, config["mc_samples"])
    sd = grid.std.squeeze(1).cpu().numpy()
    tail = max(1, int(TAIL * len(sd)))
    metrics = {"train_rmse_standard": curves["train_rmse"][-1],  # fit_regression's last reading, dropout off
               "iterations_run": curves["check_iteration"][-1],
               "mc_sd_on_training_inputs": float(on_train.std.mean()),
               "mc_sd_near": float(sd[:tail].mean()), "mc_sd_far": float(sd[-tail:].mean())}  # first / last tenth
    curves.update({"mc_mean": _r(grid.mean), "mc_std": _r(grid.std), "standard": _r(standard)})
    return {"metrics": metrics, "curves": curves}


# --------------------------------------------------------------------------- MNIST rotations


def rotated_digit(config: dict, device: str = "cpu") -> tuple[torch.Tensor, list[float]]:
    """The first "1" of the MNIST test set, rotated counter-clockwise in ``rotations`` equal steps to ``max_angle``."""
    from torchvision.transforms.functional import InterpolationMode, rotate

    test = data.load_mnist("test")
    index = int((test.labels == 1).nonzero()[0])
    image = test.images[index].float().div(255.0).unsqueeze(0)  # (1, 28, 28)
    angles = np.linspace(0.0, config["max_angle"], config["rotations"]).tolist()
    batch = torch.stack([rotate(image, a, InterpolationMode.BILINEAR) for a in angles])  # (R, 1, 28, 28)
    return batch.to(device), angles


def _run_lenet(config: dict, device: str, seed: int, progress: bool) -> dict:
    train, test = data.mnist_tensors(config["train_size"], None, device)
    model = LeNet(config["p"]).to(device)
    curves = fit(model, minibatches(train, config["batch_size"], seed), epochs=config["epochs"],
                 optimizer=torch.optim.SGD(model.parameters(), lr=config["lr"]),
                 schedule=sgd_schedule(config["lr"], config["momentum"]), monitor=classification_monitor(test),
                 progress=progress, desc=f"lenet seed {seed}")
    digits, angles = rotated_digit(config, device)
    with seeding.evaluation(seed):
        logits = mc_predict(model, digits, config["mc_samples"], return_samples=True).samples  # (T, R, 10)
    probs = logits.softmax(-1)
    mean_probs = probs.mean(0)  # (R, 10)
    predicted = mean_probs.argmax(1)
    sd_of_predicted = probs.std(0, correction=0).gather(1, predicted[:, None]).squeeze(1)
    top = mean_probs.max(0).values.argsort(descending=True)[:3].tolist()  # the classes that ever win most clearly
    metrics = {"test_error": curves["monitor_error"][-1], "predicted_class_by_angle": predicted.tolist(),
               "sd_of_predicted_probability_by_angle": _r(sd_of_predicted, 4), "top_classes": top}
    curves.update({"angles": angles,
                   "softmax_input_samples": {str(c): [_r(logits[:, r, c], 3) for r in range(len(angles))] for c in top},
                   "softmax_output_samples": {str(c): [_r(probs[:, r, c], 4) for r in range(len(angles))] for c in top}})
    return {"metrics": metrics, "curves": curves}


# --------------------------------------------------------------------------- analysis


def visits_in_order(classes: list[int], sequence=PAPER_CLASS_SEQUENCE) -> bool:
    """Whether the predicted ``classes`` (one per rotation) start at ``sequence[0]``, end at ``sequence[-1]`` and
    pass through every class of ``sequence`` in its order; other classes may win in between.

    ``[1, 1, 5, 5, 3, 7]`` visits 1 -> 5 -> 7; ``[1, 7, 7]`` (no 5), ``[1, 7, 5]`` (out of order) and
    ``[1, 5, 7, 3]`` (ends elsewhere) do not.
    """
    if not classes or classes[0] != sequence[0] or classes[-1] != sequence[-1]:
        return False
    rest = iter(classes)
    return all(any(c == wanted for c in rest) for wanted in sequence)


def _by_arm(runs: list[dict], arm: str) -> list[dict]:
    return [r for r in runs if r["arm"] == arm]


def claim_values(runs: list[dict]) -> dict[str, dict[int, float]]:
    """The per-seed numbers the claims are decided on, each seed -> value."""
    gp = _by_arm(runs, "gp")[0]["curves"]
    end = int(np.abs(np.array(gp["x_test"]) - max(gp["real_x"])).argmin())  # grid point of the last real month
    m = {a: {r["seed"]: r["metrics"] for r in _by_arm(runs, a)} for a in (*CO2_ARMS, "lenet")}
    standard = {r["seed"]: r["curves"]["standard"][end] for r in _by_arm(runs, "co2 relu")}
    return {
        "standard_at_end": standard, "miss": {s: abs(v - gp["real_y"][-1]) for s, v in standard.items()},
        "relu_far_over_training": {s: v["mc_sd_far"] / v["mc_sd_on_training_inputs"] for s, v in m["co2 relu"].items()},
        "relu_growth": {s: v["mc_sd_far"] / v["mc_sd_near"] for s, v in m["co2 relu"].items()},
        "tanh_growth": {s: v["mc_sd_far"] / v["mc_sd_near"] for s, v in m["co2 tanh"].items()},
        "upright_sd": {s: v["sd_of_predicted_probability_by_angle"][0] for s, v in m["lenet"].items()},
        "peak_sd": {s: max(v["sd_of_predicted_probability_by_angle"]) for s, v in m["lenet"].items()},
        "rotations_not_1": {s: sum(c != 1 for c in v["predicted_class_by_angle"]) for s, v in m["lenet"].items()},
        "paper_sequence": {s: float(visits_in_order(v["predicted_class_by_angle"])) for s, v in m["lenet"].items()},
    }


def claims(config: dict, runs: list[dict]) -> list[dict]:
    """The chapter's claims, each decided by :mod:`replib.claims`' rule over seeds, and one check."""
    v, gp = claim_values(runs), _by_arm(runs, "gp")[0]["curves"]
    return [
        rule.check("standard_dropout_gives_one_value", "Standard dropout (weight averaging) gives one value per input, "
                   "with no uncertainty attached.", True,
                   {"its prediction at the last real month, per seed": rule.per_seed(v["standard_at_end"])},
                   why="with dropout off the net is a deterministic function: one pass, one value, no spread"),
        rule.direction("standard_dropout_misses_far_from_data", (
            f"At the last real month inside the grid ({gp['real_dates'][-1]}), standard dropout (ReLU) misses the real "
            f"CO2 value by more than {MISS_SD:g} standard deviation of the training targets."),
            v["miss"], MISS_SD, claimed="greater", names=("miss", f"{MISS_SD:g} sd")),
        rule.direction("relu_uncertainty_grows", (
            f"With ReLU, the MC dropout standard deviation over the last tenth of the grid is at least {RELU_GROWTH:g}x "
            "its value on the training inputs."),
            v["relu_far_over_training"], RELU_GROWTH, claimed="greater", names=("far / training sd", f"{RELU_GROWTH:g}")),
        rule.all_of("tanh_uncertainty_bounded", (
            f"With TanH, the MC standard deviation levels off: from the first to the last tenth of the grid it grows "
            f"by less than {TANH_GROWTH:g}x, and by less than ReLU's does."), [
            rule.direction("tanh_growth_small", f"TanH growth < {TANH_GROWTH:g}x", v["tanh_growth"], TANH_GROWTH,
                           names=("TanH far / near sd", f"{TANH_GROWTH:g}")),
            rule.direction("tanh_below_relu", "TanH growth < ReLU growth", v["tanh_growth"], v["relu_growth"],
                           names=("TanH far / near sd", "ReLU far / near sd")),
        ]),
        rule.all_of("rotation_uncertainty", (
            f"For the rotated 1, MC dropout is confident upright (sd of the winning class's probability < {UPRIGHT_SD:g}), "
            f"very uncertain somewhere along the rotation (sd > {PEAK_SD:g}), and its prediction leaves class 1."), [
            rule.direction("upright_confident", f"upright sd < {UPRIGHT_SD:g}", v["upright_sd"], UPRIGHT_SD,
                           names=("upright sd", f"{UPRIGHT_SD:g}"), digits=3),
            rule.direction("peak_uncertain", f"largest sd > {PEAK_SD:g}", v["peak_sd"], PEAK_SD, claimed="greater",
                           names=("largest sd", f"{PEAK_SD:g}"), digits=3),
            rule.direction("leaves_class_1", "at least one rotation not classified 1", v["rotations_not_1"], 0.5,
                           claimed="greater", names=("rotations not classified 1", "0.5"), digits=1),
        ]),
        rule.direction("paper_class_sequence", (
            "As the 1 rotates, the MC-averaged prediction moves from 1 through 5 to 7, the paper's sequence: on each "
            "seed it starts at 1, ends at 7 and is 5 somewhere in between (other classes may win on the way)."),
            v["paper_sequence"], 0.5, claimed="greater", names=("follows 1 → 5 → 7 (1 yes, 0 no)", "0.5"), digits=1),
    ]


def facts(result: dict) -> dict[str, str]:
    """The numbers the chapter's prose quotes, formatted from the result."""
    runs, v = result["runs"], claim_values(result["runs"])
    gp, lenet = _by_arm(runs, "gp")[0], _by_arm(runs, "lenet")
    out = {k: rule.per_seed(values, 0 if k in ("rotations_not_1", "paper_sequence") else 3 if "sd" in k else 2)
           for k, values in v.items()}
    out.update({f"coverage_{arm.split()[1]}": rule.per_seed({r["seed"]: 100 * coverage(result, r) for r in _by_arm(runs, arm)}, 0)
                for arm in CO2_ARMS})
    co2 = result["config"]["co2"]
    for arm in CO2_ARMS:
        act, these = arm.split()[1], _by_arm(runs, arm)
        out[f"train_rmse_{act}"] = rule.per_seed({r["seed"]: r["metrics"]["train_rmse_standard"] for r in these}, 2)
        out[f"steps_{act}"] = rule.per_seed({r["seed"]: r["metrics"]["iterations_run"] for r in these}, 0)
    co2_runs = [r for arm in CO2_ARMS for r in _by_arm(runs, arm)]
    reached = (f"{sum(r['metrics']['train_rmse_standard'] < co2['target_rmse'] for r in co2_runs)} of {len(co2_runs)}"
               if co2["target_rmse"] is not None else "no aim was set, so none")
    ms_per_step = [1000 * r["wall_seconds"] / r["metrics"]["iterations_run"] for r in co2_runs if "wall_seconds" in r]
    hardware = result["provenance"]["hardware"]
    return {**out, "last_real_month": gp["curves"]["real_dates"][-1],
            "co2_ms_per_step": rule.fmt(float(np.mean(ms_per_step)), 1) if ms_per_step else "not recorded",
            "wall_minutes": rule.fmt(result["provenance"]["wall_seconds"] / 60, 0),
            "machine": f"{hardware['cpu']}, {hardware.get('cpu_capability', '?')}, {hardware['torch_threads']} threads",
            "target_rmse": "none" if co2["target_rmse"] is None else rule.fmt(co2["target_rmse"], 2),
            "max_iterations": f"{co2['iterations']:,}", "co2_lr": f"{co2['lr']:g}", "fit_reached": reached,
            "real_map_residual_y": rule.fmt(gp["metrics"]["real_map_max_residual_y"], 3),
            "lenet_test_error": rule.mean_sd([r["metrics"]["test_error"] for r in lenet], 2, " %"),
            "classes_by_angle": "; ".join(f"seed {r['seed']}: " + " ".join(map(str, r["metrics"]["predicted_class_by_angle"]))
                                          for r in lenet), **paper_cost(result)}


def _co2_multiply_adds(hidden: list[int]) -> int:
    """Multiply-adds of one CO2 net per point: scalar in, scalar out."""
    sizes = [1, *hidden, 1]
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def paper_cost(result: dict) -> dict[str, str]:
    """What the ``paper`` profile would cost on this run's machine: its CO2 steps at this run's seconds per step,
    scaled by the ratio of multiply-adds of the two nets, and its digit epochs at this run's seconds per epoch."""
    runs, config, paper = result["runs"], result["config"], PROFILES["paper"]
    co2 = [r for arm in CO2_ARMS for r in _by_arm(runs, arm)]
    per_step = np.mean([r["wall_seconds"] / r["metrics"]["iterations_run"] for r in co2])
    ratio = _co2_multiply_adds(paper["co2"]["hidden"]) / _co2_multiply_adds(config["co2"]["hidden"])
    per_epoch = np.mean([r["wall_seconds"] for r in _by_arm(runs, "lenet")]) / config["digits"]["epochs"]
    seconds = paper["seeds"] * (len(CO2_ARMS) * paper["co2"]["iterations"] * per_step * ratio
                                + paper["digits"]["epochs"] * per_epoch)
    return {"paper_cpu_days": rule.fmt(seconds / 86_400, 0), "paper_macs_ratio": rule.fmt(ratio, 1)}


# --------------------------------------------------------------------------- presentation


def figure_co2(result: dict):
    """Figure 2, ours: (a) standard dropout, (b) GP, (c) MC dropout ReLU, (d) MC dropout TanH; seed 0, ±2 sd."""
    import matplotlib.pyplot as plt

    gp = _by_arm(result["runs"], "gp")[0]["curves"]
    seed = result["seeds"][0]
    relu, tanh = (next(r for r in _by_arm(result["runs"], arm) if r["seed"] == seed)["curves"] for arm in CO2_ARMS)
    x = np.array(gp["x_test"])
    panels = [("(a) standard dropout (ReLU), weight averaging", relu["standard"], None),
              ("(b) Gaussian process, SE covariance", gp["mean"], gp["std"]),
              ("(c) MC dropout, ReLU", relu["mc_mean"], relu["mc_std"]),
              ("(d) MC dropout, TanH", tanh["mc_mean"], tanh["mc_std"])]
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
    fig.supxlabel("x (standardised time)")
    fig.supylabel("y (detrended, standardised CO2)")
    axes[0, 0].legend(fontsize=7, loc="upper left")
    axes[0, 0].set_ylim(-4, 8)
    co2 = result["config"]["co2"]
    fig.suptitle(f"Mauna Loa CO2 extrapolation, seed {seed} ({result['profile']} profile, "
                 f"{len(co2['hidden'])}x{co2['hidden'][0]} units, p = {co2['p']}, T = {co2['mc_samples']} passes)", fontsize=10)
    fig.tight_layout()
    return fig


def figure_rotation(result: dict):
    """Figure 4, ours: softmax input and output samples of the top classes for the rotated 1 (seed 0)."""
    import matplotlib.pyplot as plt

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
        ax.set(xlabel="rotation of the digit (degrees)", ylabel=label)
        ax.legend(fontsize=8, markerscale=3)
    fig.suptitle(f"MNIST: a test '1' rotated in {len(angles)} steps; {result['config']['digits']['mc_samples']} MC dropout "
                 f"passes each (seed {seed}); predicted classes: {run['metrics']['predicted_class_by_angle']}", fontsize=10)
    fig.tight_layout()
    return fig


def figure_fit(result: dict):
    """How well the CO2 nets fit their training data: training RMSE with dropout off against Adam steps."""
    import matplotlib.pyplot as plt

    co2 = result["config"]["co2"]
    fig, axes = plt.subplots(1, len(CO2_ARMS), figsize=(12, 3.6), sharey=True)
    for ax, arm in zip(axes, CO2_ARMS):
        for color, run in zip(plotting.palette(len(result["seeds"])), _by_arm(result["runs"], arm)):
            c = run["curves"]
            ax.plot(c["check_iteration"], c["train_rmse"], color=color, linewidth=1.2, label=f"seed {run['seed']}")
        if co2["target_rmse"] is not None:
            ax.axhline(co2["target_rmse"], color="black", linestyle="--", linewidth=1,
                       label=f"target {co2['target_rmse']:g}")
        ax.set(title=f"{arm.split()[1]} nets", xlabel="Adam steps", ylim=(0, None))
        ax.legend(fontsize=8)
    axes[0].set_ylabel("training RMSE, dropout off\n(sd of the targets)")
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
    runs, v, rows = result["runs"], claim_values(result["runs"]), []

    def add(what: str, values, paper: str = "", digits: int = 3) -> None:
        rows.append({"quantity": what, "paper": paper, "ours": rule.mean_sd(list(values), digits)})

    co2 = result["config"]["co2"]
    for arm in CO2_ARMS:
        act, these = arm.split()[1], _by_arm(runs, arm)
        add(f"{act}: training RMSE, dropout off (sd of the targets)", [r["metrics"]["train_rmse_standard"] for r in these],
            "" if co2["target_rmse"] is None else f"(our target: below {co2['target_rmse']:g})")
        add(f"{act}: Adam steps taken", [r["metrics"]["iterations_run"] for r in these], "10^6 (SGD; unconfirmed)", digits=0)
        for key, where in (("mc_sd_on_training_inputs", "on the training inputs"), ("mc_sd_near", "first tenth of the grid"),
                           ("mc_sd_far", "last tenth of the grid")):
            add(f"{act}: MC sd, {where}", [r["metrics"][key] for r in these],
                ("grows (ReLU)" if act == "relu" else "bounded (TanH)") if key == "mc_sd_far" else "")
        add(f"{act}: % of real months after 1981 inside ±2 sd", [100 * coverage(result, r) for r in these], digits=0)
    add("LeNet: MNIST test error %", [r["metrics"]["test_error"] for r in _by_arm(runs, "lenet")], digits=2)
    add("rotated 1: sd of winning probability, upright", v["upright_sd"].values(), "small")
    add("rotated 1: largest sd along the rotation", v["peak_sd"].values(), "very large where the class is 5")
    return pd.DataFrame(rows).set_index("quantity")


FIGURES = {"figure2": figure_co2, "fit": figure_fit, "figure4": figure_rotation}
TABLES = {"paper_vs_ours": table}

"""The SpatialDropout experiment (a draft chapter): the FLIC substitute, its metric, the diagnostic, the claims."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from replib import data, experiments
from replib import keypoints as kp
from replib.experiments import tompson2015 as exp
from replib.methods import Dropout, SpatialDropout

from conftest import require


@pytest.fixture
def needs_digits_and_clutter():
    require("mnist/t10k-labels-idx1-ubyte.gz")
    require("cifar10/cifar10_test_jpeg.npz")


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize("key,bad", [
    ("p", 1.0), ("p", -0.1), ("p", True), ("cifar_p", 1.5), ("lr", 0), ("cifar_lr", -1.0),
    ("train_images", 0), ("test_images", 2.5), ("cifar_test", 0), ("cifar_val", 0), ("data_seed", -1),
    ("channels", [16, 32, 32]), ("channels", "[16, 32, 32, 64]"), ("cifar_channels", [32, 0, 128]),
    ("image_size", 60), ("image_size", 32), ("sigma", 0), ("cifar_lr_gamma", 1.5), ("cifar_lr_fractions", [0.5, 1.0]),
    ("cifar_weight_decay", -1e-4),
])
def test_bad_config_rejected_naming_the_key(key, bad):
    with pytest.raises(ValueError, match=key):
        exp.resolve("cpu", **{key: bad})


def test_unknown_override_is_rejected_with_allowed_keys():
    with pytest.raises(ValueError, match="'dropout_p'.*allowed"):
        exp.resolve("cpu", dropout_p=0.3)


def test_subsets_for_curves_and_correlations_must_fit_the_test_set():
    with pytest.raises(ValueError, match="curve_images"):
        exp.resolve("cpu", test_images=100)
    with pytest.raises(ValueError, match="corr_images"):
        exp.resolve("cpu", cifar_test=100)


def test_cifar_task_reads_its_prefixed_keys_without_augmentation():
    from replib.experiments import _cifar

    task = exp.cifar_config(exp.resolve("cpu", cifar_epochs=12, cifar_train=2000))
    assert task["epochs"] == 12 and task["train_size"] == 2000 and task["crop_flip"] is False
    assert _cifar.milestones(12, task["lr_fractions"]) == [6, 9] and task["lr_gamma"] ** 2 == pytest.approx(0.01)


def test_every_profile_resolves_and_cpu_has_three_seeds():
    for profile in experiments.PROFILES:
        exp.resolve(profile)
    assert exp.PROFILES["cpu"]["seeds"] >= 3


def test_arms_are_both_tasks_times_three_dropout_kinds():
    assert exp.arms(exp.resolve("smoke")) == [f"{t}/{k}" for t in ("keypoints", "cifar")
                                               for k in ("none", "dropout", "spatial")]
    with pytest.raises(ValueError, match="arm must be one of"):
        exp.run_one(exp.resolve("smoke"), "keypoints/cutout", 0, progress=False)


def test_paper_values_are_figure_14b_with_their_source():
    values = {(v["arm"], v["threshold"]): v["value"] for v in exp.PAPER_VALUES}
    assert len(values) == 18 and values[("spatial", 0.2)] == 90.1 and values[("none", 0.2)] == 85.8
    assert all("Figure 14(b)" in v["where"] and v["confirmed"] for v in exp.PAPER_VALUES)
    assert exp.PAPER_MEAN_GAIN == pytest.approx(28.3 / 9)


# --------------------------------------------------------------------------- the FLIC substitute


def test_ink_keypoints_are_the_extreme_ink_points():
    digit = torch.zeros(1, 28, 28, dtype=torch.uint8)
    digit[0, 5, 10:13] = 255  # top row: columns 10-12, mean 11
    digit[0, 6:20, 8] = 200  # a vertical bar: leftmost column 8, rows 6-19
    digit[0, 20, 14:17] = 255  # bottom row 20, columns 14-16
    digit[0, 12, 22] = 255  # rightmost column 22, row 12
    digit[0, 3, 3] = 100  # faint: below the ink threshold, ignored
    top, bottom, left, right = kp.ink_keypoints(digit)[0].tolist()
    assert top == [11.0, 5.0] and bottom == [15.0, 20.0]
    assert left == [8.0, 12.5] and right == [22.0, 12.0]


def test_a_digit_without_ink_is_rejected():
    with pytest.raises(ValueError, match="ink"):
        kp.ink_keypoints(torch.full((1, 28, 28), 50, dtype=torch.uint8))


def test_keypoints_move_with_the_drawn_digit():
    """Pixels and keypoints go through the same transform: just inside each keypoint is ink, just outside is not."""
    square = torch.zeros(64, 28, 28, dtype=torch.uint8)
    square[:, 8:20, 8:20] = 255
    coverage, a, centre = kp._draw_digits(square, 64, torch.Generator().manual_seed(0), (1.4, 2.2), 20.0)
    points = centre.unsqueeze(1) + torch.einsum("nij,nkj->nki", a, kp.ink_keypoints(square) - 13.5)  # (N, 4, 2)
    middle = centre.unsqueeze(1)  # the square's centre
    direction = (points - middle) / (points - middle).norm(dim=-1, keepdim=True)

    def sample(xy):  # bilinear read of coverage at image-pixel (x, y)
        grid = (xy + 0.5) / 32 - 1  # align_corners=False
        return torch.nn.functional.grid_sample(coverage, grid.unsqueeze(1), align_corners=False)[:, 0, 0]

    assert bool((sample(points - 2.5 * direction) > 0.95).all())
    assert bool((sample(points + 3.5 * direction) < 0.05).all())  # ink ends <= 2.2 px out; bilinear reads 1 px more
    assert bool((sample(middle) > 0.99).all())


def test_generated_set_shapes_ranges_and_keypoints_inside(needs_digits_and_clutter):
    d = kp.generate(40, "test", seed=3)
    assert d.images.shape == (40, 1, 64, 64) and d.images.dtype == torch.float32
    assert d.keypoints.shape == (40, 4, 2) and d.heatmaps.shape == (40, 4, 16, 16) and d.size.shape == (40,)
    assert float(d.images.min()) >= 0.0 and float(d.images.max()) <= 1.0
    assert bool(((d.keypoints >= 0) & (d.keypoints <= 63)).all())
    assert bool((d.size > 15).all())  # ink at least ~20 MNIST px tall, scaled by >= 1.4, rotated: never tiny
    assert "test" in d.source and "MNIST" in d.source


def test_heatmap_peak_is_at_the_keypoint(needs_digits_and_clutter):
    d = kp.generate(40, "test", seed=3)
    assert torch.allclose(d.heatmaps.amax((2, 3)), torch.ones(40, 4), atol=0.2)  # peak ~1 (the keypoint is off-grid)
    nearest = kp.to_output_coords(d.keypoints, 4).round().clamp(0, 15).long()
    argmax = d.heatmaps.flatten(2).argmax(-1)
    assert torch.equal(argmax, nearest[..., 1] * 16 + nearest[..., 0])
    assert torch.allclose(kp.heatmap_peaks(d.heatmaps, 4), d.keypoints, atol=1e-3)


def test_generation_is_deterministic_in_the_seed(needs_digits_and_clutter):
    a, b, c = kp.generate(16, "test", seed=5), kp.generate(16, "test", seed=5), kp.generate(16, "test", seed=6)
    assert torch.equal(a.images, b.images) and torch.equal(a.keypoints, b.keypoints) and torch.equal(a.heatmaps, b.heatmaps)
    assert not torch.equal(a.images, c.images)


@pytest.mark.parametrize("kwargs,match", [({"n": 0}, "n must be"), ({"split": "val"}, "split"),
                                          ({"stride": 3}, "stride must divide"), ({"sigma": -1.0}, "sigma")])
def test_bad_generation_arguments_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kp.generate(**{"n": 4, **kwargs})


# --------------------------------------------------------------------------- read-out and metric


def test_heatmap_pixel_centres_are_the_centres_of_the_image_blocks_they_pool():
    """Heat-map pixel u covers image pixels 4u .. 4u+3, so a keypoint at image x = 5.5 sits on heat-map pixel 1."""
    maps = kp.heatmaps(torch.tensor([[[5.5, 9.5]]]), 64, stride=4, sigma=1.5)
    assert maps.shape == (1, 1, 16, 16) and maps[0, 0, 2, 1] == 1.0
    assert maps[0, 0, 2, 2] == pytest.approx(math.exp(-1 / (2 * 1.5**2)))


def test_peak_readout_recovers_sub_pixel_gaussian_centres_even_on_the_border():
    g = torch.Generator().manual_seed(0)
    truth = torch.rand(50, 3, 2, generator=g) * 63  # image pixels, corners and borders included
    truth[0, 0] = torch.tensor([0.0, 63.0])
    maps = kp.heatmaps(truth, 64, stride=4, sigma=1.5)
    assert torch.allclose(kp.heatmap_peaks(maps, 4), truth, atol=1e-3)


def test_peak_readout_of_a_flat_or_negative_map_is_the_argmax_pixel():
    maps = torch.full((1, 2, 8, 8), -1.0)
    maps[0, 0, 3, 5] = -0.5  # a single raised pixel: log-parabola through floored values; stays within half a pixel
    maps[0, 1] = 0.0
    maps[0, 1, 6, 2] = 2.0
    peaks = kp.heatmap_peaks(maps)
    assert (peaks[0, 0] - torch.tensor([5.0, 3.0])).abs().max() <= 0.5
    assert torch.allclose(peaks[0, 1], torch.tensor([2.0, 6.0]))


def test_perfect_prediction_detects_everything_at_every_threshold():
    truth = torch.rand(10, 4, 2) * 60
    rate = kp.detection_rate(truth.clone(), truth, torch.full((10,), 30.0))
    assert rate.shape == (len(kp.THRESHOLDS), 4) and bool((rate == 100.0).all())


def test_known_offsets_give_the_expected_detection_rate():
    truth = torch.zeros(4, 2, 2)
    size = torch.tensor([100.0, 100.0, 50.0, 50.0])
    pred = truth.clone()
    pred[:2, :, 0] += 3.0  # 0.03 of the size in x, for images 0 and 1
    pred[2:, 1, 1] += 5.0  # 0.1 of the size in y, keypoint 1 of images 2 and 3
    rate = kp.detection_rate(pred, truth, size, (0.025, 0.03, 0.05, 0.1))
    assert rate[:, 0].tolist() == [50.0, 100.0, 100.0, 100.0]  # keypoint 0: two of four images off by 0.03
    assert rate[:, 1].tolist() == [0.0, 50.0, 50.0, 100.0]  # keypoint 1: 0.03 twice, 0.1 twice; exactly t counts


def test_metric_rejects_mismatched_shapes_and_nonpositive_sizes():
    with pytest.raises(ValueError, match="pred and truth"):
        kp.detection_rate(torch.zeros(2, 4, 2), torch.zeros(2, 3, 2), torch.ones(2))
    with pytest.raises(ValueError, match="size"):
        kp.detection_rate(torch.zeros(2, 4, 2), torch.zeros(2, 4, 2), torch.tensor([1.0, 0.0]))


# --------------------------------------------------------------------------- models and diagnostic


def test_heatmap_net_maps_images_to_quarter_resolution_with_dropout_before_the_1x1_convolution():
    for kind, cls in (("none", torch.nn.Identity), ("dropout", Dropout), ("spatial", SpatialDropout)):
        model = exp.HeatmapNet((4, 8, 8, 8), 8, 4, kind, 0.5)
        assert isinstance(model.drop, cls) and model.head[0].kernel_size == (1, 1)
        assert model(torch.randn(2, 1, 64, 64)).shape == (2, 4, 16, 16)


def test_spatial_arm_drops_whole_maps_and_element_wise_arm_single_activations():
    torch.manual_seed(0)
    x = torch.ones(8, 16, 16, 16)
    for kind in ("dropout", "spatial"):
        model = exp.HeatmapNet((4, 8, 8, 16), 8, 4, kind, 0.5).train()
        out = model.drop(x)
        per_map = (out == 0).flatten(2).float().mean(-1)  # share of zeros in each (example, map)
        whole = bool(((per_map == 0) | (per_map == 1)).all())
        assert whole == (kind == "spatial")


def test_conv_net_gives_logits_and_has_dropout_after_every_block():
    model = exp.ConvNet((4, 8, 8), "spatial", 0.2)
    assert model(torch.randn(3, 3, 32, 32)).shape == (3, 10)
    assert len(model.drops) == 3 and all(isinstance(d, SpatialDropout) for d in model.drops)


def test_neighbour_correlation_of_known_maps():
    smooth = torch.arange(16.0).repeat(2, 3, 16, 1)  # constant down columns, linear across: r = 1 either way
    assert exp.neighbour_correlation(smooth, (1, 2)) == pytest.approx([1.0, 1.0])
    checker = (torch.arange(16).view(1, -1) + torch.arange(16).view(-1, 1)) % 2
    r1, r2 = exp.neighbour_correlation(checker.float().expand(2, 3, 16, 16), (1, 2))
    assert r1 == pytest.approx(-1.0) and r2 == pytest.approx(1.0)
    noise = torch.randn(20, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    assert abs(exp.neighbour_correlation(noise, (1,))[0]) < 0.05
    dead = torch.zeros(2, 3, 8, 8)
    assert math.isnan(exp.neighbour_correlation(dead, (1,))[0])


def test_inputs_of_reads_what_the_dropout_layer_receives_in_eval_mode():
    model = exp.HeatmapNet((4, 8, 8, 8), 8, 4, "spatial", 0.9).train()
    x = torch.randn(2, 1, 64, 64)
    seen = exp.inputs_of(model, model.drop, x)
    assert torch.equal(seen, model.features(x)) and model.training


# --------------------------------------------------------------------------- claims


def fake_runs(rates: dict[str, list[float]], errors: dict[str, float] | None = None, r1: float = 0.8) -> list[dict]:
    runs = [{"arm": f"keypoints/{k}", "seed": s,
             "metrics": {"mean_detection_rate": v, "neighbour_correlation": [r1, 0.5, 0.3, 0.2]}}
            for k, values in rates.items() for s, v in enumerate(values)]
    errors = errors or {"none": 45.0, "dropout": 43.0, "spatial": 42.0}
    runs += [{"arm": f"cifar/{k}", "seed": 0, "metrics": {"test_error": e}} for k, e in errors.items()]
    return runs


def held(runs) -> dict[str, bool]:
    return {c["id"]: c["holds"] for c in exp.claims({}, runs)}


def test_claims_hold_on_runs_that_show_the_papers_pattern():
    runs = fake_runs({"none": [40.0, 41.0, 39.0], "dropout": [40.5, 40.0, 39.5], "spatial": [44.0, 45.0, 43.0]})
    assert held(runs) == {"spatial_beats_none": True, "spatial_beats_dropout": True, "dropout_close_to_none": True,
                          "neighbours_correlated": True, "cifar_spatial_beats_dropout": True}


def test_a_mean_gain_carried_by_one_seed_is_not_a_win():
    runs = fake_runs({"none": [40.0, 41.0, 39.0], "dropout": [40.0, 41.0, 39.0], "spatial": [52.0, 40.5, 38.0]})
    result = held(runs)
    assert not result["spatial_beats_none"] and not result["spatial_beats_dropout"]


def test_dropout_far_from_none_is_not_close_either_way():
    tolerance = exp.CLOSE_POINTS
    for shift in (tolerance + 0.1, -(tolerance + 0.1)):
        runs = fake_runs({"none": [40.0] * 3, "dropout": [40.0 + shift] * 3, "spatial": [45.0] * 3})
        assert not held(runs)["dropout_close_to_none"]
    runs = fake_runs({"none": [40.0] * 3, "dropout": [40.0 + tolerance - 0.01] * 3, "spatial": [45.0] * 3})
    assert held(runs)["dropout_close_to_none"]


def test_weakly_correlated_neighbours_fail_the_premise_and_cifar_claim_follows_errors():
    runs = fake_runs({"none": [40.0], "dropout": [40.0], "spatial": [45.0]},
                     errors={"none": 45.0, "dropout": 42.0, "spatial": 43.0}, r1=0.4)
    result = held(runs)
    assert not result["neighbours_correlated"] and not result["cifar_spatial_beats_dropout"]


def test_the_premise_needs_every_net_not_just_the_mean():
    runs = fake_runs({"none": [40.0, 40.0, 40.0], "dropout": [40.0] * 3, "spatial": [45.0] * 3}, r1=0.9)
    runs[0]["metrics"]["neighbour_correlation"] = [0.4, 0.3, 0.2, 0.1]  # one net of three; the mean is still 0.73
    assert not held(runs)["neighbours_correlated"]


# --------------------------------------------------------------------------- end to end


def test_smoke_run_writes_a_result_with_claims_figures_and_tables(tmp_path, needs_digits_and_clutter):
    require("cifar10/cifar10_train_jpeg.npz")
    result = experiments.run(exp, "smoke", results_dir=tmp_path, progress=False)
    assert (tmp_path / "tompson2015" / "smoke.json").is_file()
    assert [r["arm"] for r in result["runs"]] == exp.arms(result["config"])
    assert {c["id"] for c in result["claims"]} == {"spatial_beats_none", "spatial_beats_dropout",
                                                   "dropout_close_to_none", "neighbours_correlated",
                                                   "cifar_spatial_beats_dropout"}
    first = result["runs"][0]["metrics"]
    assert len(first["detection_rate"]) == len(kp.THRESHOLDS) and len(first["examples"]["images"]) == 4
    import matplotlib.pyplot as plt

    for make in (exp.figure, exp.figure_examples, exp.figure_cifar, exp.figure_correlation):
        plt.close(make(result))
    table = exp.table(result)
    assert list(table.index)[-1] == "mean" and table.loc["0.2", "paper: with SpatialDropout"] == 90.1
    if data.mirror_dir() is not None:  # offline the CIFAR-10 copy is lossy JPEG: its tables must say so
        assert any(data.CIFAR10_JPEG_NOTE in c for c in exp.table_cifar(result).columns)
    assert np.isfinite(first["mean_detection_rate"])

"""The SpatialDropout experiment: its config, the FLIC substitute, its metric, the diagnostic, the claims."""

from __future__ import annotations

import math

import pytest
import torch

from replib import experiments
from replib import keypoints as kp
from replib._validate import ConfigError
from replib.experiments import tompson2015 as exp
from replib.methods import Dropout, SpatialDropout

from conftest import require


def resolve(profile="cpu", **overrides) -> dict:
    return experiments.resolve(exp, profile, **overrides)[0]


@pytest.fixture
def needs_digits_and_clutter():
    require("mnist/t10k-labels-idx1-ubyte.gz")
    require("cifar10/cifar10_test_jpeg.npz")


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize("overrides,match", [
    ({"p": 1.0}, r"p = 1\.0: Input should be less than 1"),
    ({"p": True}, r"p = True: Input should be a valid number"),
    ({"lr": 0}, r"lr = 0: Input should be greater than 0"),
    ({"train_sizes": [0, 300]}, r"train_sizes\.0 = 0: .*greater than or equal to 1"),
    ({"train_sizes": [300]}, r"train_sizes = \[300\]: List should have at least 2 items"),
    ({"train_sizes": [300, 600, 1200]}, r"train_sizes = \[300, 600, 1200\]: List should have at most 2 items"),
    ({"train_sizes": [1200, 300]}, r"train_sizes must be \[small, large\] with small < large, got \[1200, 300\]"),
    ({"train_sizes": [300, 300]}, r"train_sizes must be \[small, large\] with small < large, got \[300, 300\]"),
    ({"test_size": 2.5}, r"test_size = 2\.5: Input should be a valid integer"),
    ({"data_seed": -1}, r"data_seed = -1: .*greater than or equal to 0"),
    ({"channels": [16, 32, 32]}, r"channels = \[16, 32, 32\]: List should have at least 4 items"),
    ({"hidden": 64}, r"hidden = 64: Input should be a valid list"),
    ({"hidden": [64, 64]}, r"hidden = \[64, 64\]: List should have at most 1 item"),
    ({"image_size": 60}, r"image_size = 60: .*greater than or equal to 64"),
    ({"image_size": 66}, r"image_size = 66: Input should be a multiple of 4"),
    ({"sigma": 0}, r"sigma = 0: Input should be greater than 0"),
])
def test_bad_config_rejected_naming_the_key_and_value(overrides, match):
    with pytest.raises(ConfigError, match=match):
        resolve(**overrides)


@pytest.mark.parametrize("overrides,match", [
    ({"dropout_p": 0.3}, r"unknown key 'dropout_p'; allowed: \[.*'train_sizes'"),
    ({"train_size": 300}, r"unknown key 'train_size'; allowed: \[.*'train_sizes'"),
])
def test_unknown_key_is_rejected_with_the_allowed_keys(overrides, match):
    with pytest.raises(ConfigError, match=match):
        resolve(**overrides)


@pytest.mark.parametrize("overrides,match", [
    ({"test_size": 100}, r"monitor_size \(250\) must not exceed test_size \(100\)"),
    ({"monitor_size": 2000}, r"monitor_size \(2000\) must not exceed test_size \(1000\)"),
    ({"test_size": 200, "monitor_size": 200}, r"correlation_size \(250\) must not exceed test_size \(200\)"),
])
def test_subsets_for_the_monitor_and_correlations_must_fit_the_test_sets(overrides, match):
    with pytest.raises(ConfigError, match=match):
        resolve(**overrides)


def test_every_profile_resolves():
    for profile in experiments.PROFILES:
        experiments.resolve(exp, profile)


def test_units_are_both_training_set_sizes_times_three_dropout_kinds_seed_by_seed():
    config, seeds = experiments.resolve(exp, "cpu", seeds=2)
    kinds = [f"{n}/{k}" for n in (300, 1200) for k in ("none", "dropout", "spatial")]
    assert exp.units(config, seeds, {}) == [(arm, s) for s in (0, 1) for arm in kinds]


def test_both_sizes_see_as_many_training_images():
    config = resolve("cpu")
    assert [exp.epochs_for(config, n) for n in config["train_sizes"]] == [120, 30]
    assert exp.epochs_for({"epochs": 2, "train_sizes": [10, 1000]}, 1000) == 1  # at least one epoch


def test_the_small_training_set_is_the_first_images_of_the_large_one(needs_digits_and_clutter):
    config = resolve("smoke")
    small, large = (exp.training_set(config, n) for n in config["train_sizes"])
    assert len(small) == 48 and len(large) == 96
    assert torch.equal(small.images, large.images[:48]) and torch.equal(small.keypoints, large.keypoints[:48])
    assert small.source == large.source


def test_an_unknown_arm_is_rejected():
    with pytest.raises(ValueError, match=r"arm must be one of .*got 'keypoints/spatial'"):
        exp.run_one(resolve("smoke"), "keypoints/spatial", 0, progress=False)


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
    chain = torch.nn.Sequential(Dropout(0.9), torch.nn.Identity()).train()  # a net whose training mode shows
    assert torch.equal(exp.inputs_of(chain, chain[1], x), x) and chain.training


# --------------------------------------------------------------------------- claims

CONFIG = {"train_sizes": [300, 1200]}


def fake_runs(rates: dict[int, dict[str, list[float]]], r1: float = 0.8) -> list[dict]:
    """Runs with the given mean detection rates: size -> kind -> one value per seed."""
    return [{"arm": f"{n}/{k}", "seed": s, "wall_seconds": 60.0,
             "metrics": {"mean_detection_rate": v, "detection_rate": [v] * len(kp.THRESHOLDS),
                         "train_mean_detection_rate": v + 30, "neighbour_correlation": [r1, 0.5, 0.3, 0.2]}}
            for n, by_kind in rates.items() for k, values in by_kind.items() for s, v in enumerate(values)]


def outcomes(runs) -> dict[str, str]:
    return {c["id"]: c["outcome"] for c in exp.claims(CONFIG, runs)}


SMALL = {"none": [40.0, 41.0, 39.0], "dropout": [40.5, 41.2, 39.1], "spatial": [44.0, 45.5, 43.0]}
LARGE = {"none": [60.0, 61.0, 59.0], "dropout": [60.2, 61.1, 59.3], "spatial": [61.5, 62.3, 60.4]}
PATTERN = {300: SMALL, 1200: LARGE}


def test_claims_hold_on_runs_that_show_the_papers_pattern():
    assert outcomes(fake_runs(PATTERN)) == {
        **{f"{claim}_{tag}": "holds" for tag in ("small", "large")
           for claim in ("spatial_beats_none", "spatial_beats_dropout", "dropout_close_to_none")},
        "gain_larger_on_small_set": "holds", "neighbours_correlated": "holds"}


def test_spatial_claims_fail_when_spatial_is_worse_on_every_seed():
    result = outcomes(fake_runs({300: {**SMALL, "spatial": [36.0, 37.5, 35.0]}, 1200: LARGE}))
    assert result["spatial_beats_none_small"] == "fails" and result["spatial_beats_dropout_small"] == "fails"
    assert result["spatial_beats_none_large"] == "holds" and result["gain_larger_on_small_set"] == "fails"


def test_a_mean_gain_carried_by_one_seed_is_inconclusive():
    result = outcomes(fake_runs({300: {**SMALL, "spatial": [52.0, 40.5, 38.0]}, 1200: LARGE}))
    assert result["spatial_beats_none_small"] == "inconclusive" and result["spatial_beats_dropout_small"] == "inconclusive"


def test_the_gain_on_the_small_set_is_compared_with_the_large_sets_seed_by_seed():
    same = {k: [v + 20.0 for v in values] for k, values in SMALL.items()}  # the same gains, 20 points higher
    claim = next(c for c in exp.claims(CONFIG, fake_runs({300: SMALL, 1200: same})) if c["id"] == "gain_larger_on_small_set")
    assert claim["outcome"] == "fails" or claim["outcome"] == "inconclusive"
    assert claim["evidence"]["gain on 300 − gain on 1,200 per seed"] == "0.00, 0.00, 0.00"


@pytest.mark.parametrize("dropout,outcome", [
    ([43.0, 44.0, 42.0], "fails"),  # 3 points above none on every seed: wholly outside the margin
    ([37.0, 38.0, 36.0], "fails"),  # 3 below, on the other side
    ([38.0, 43.0, 39.5], "inconclusive"),  # the seeds disagree: the interval straddles the margin
])
def test_dropout_far_from_none_or_too_noisy_is_not_close(dropout, outcome):
    assert outcomes(fake_runs({300: {**SMALL, "dropout": dropout}, 1200: LARGE}))["dropout_close_to_none_small"] == outcome


def test_one_seed_decides_nothing():
    one = fake_runs({n: {k: v[:1] for k, v in rates.items()} for n, rates in PATTERN.items()})
    found = {c["id"]: c["outcome"] for c in exp.claims(CONFIG, one) if c["kind"] != "check"}
    assert set(found.values()) == {"inconclusive"}


def test_the_premise_is_a_check_that_needs_every_net_not_just_the_mean():
    runs = fake_runs(PATTERN, r1=0.9)
    runs[0]["metrics"]["neighbour_correlation"] = [0.4, 0.3, 0.2, 0.1]  # one net of eighteen; the mean is still 0.87
    premise = next(c for c in exp.claims(CONFIG, runs) if c["id"] == "neighbours_correlated")
    assert premise["outcome"] == "fails" and premise["kind"] == "check" and not premise["counts"]


def test_facts_quote_the_result():
    facts = exp.facts({"runs": fake_runs(PATTERN), "config": resolve("cpu"), "seeds": [0, 1, 2]})
    assert facts["rate_spatial_small"] == "44.2 ± 1.3 % (3 seeds)" and facts["size_large"] == "1,200"
    assert facts["gain_spatial_none_small_per_seed"] == "4.0, 4.5, 4.0" and facts["r1_lowest"] == "0.80"
    assert facts["gain_difference_per_seed"] == "2.5, 3.2, 2.6" and facts["epochs_large"] == "30"


# --------------------------------------------------------------------------- runs


def test_untrained_nets_already_see_correlated_neighbours(needs_digits_and_clutter):
    """Why the premise is a check: on our smooth images the maps are correlated before any training."""
    d = kp.generate(64, "test", seed=1)
    for seed in range(3):
        torch.manual_seed(seed)
        model = exp.HeatmapNet((16, 32, 32, 64), 64, 4, "none")
        r1 = exp.neighbour_correlation(exp.inputs_of(model, model.drop, (d.images - d.images.mean()) / d.images.std()))[0]
        assert r1 > exp.STRONG_CORRELATION


def test_the_monitor_curve_is_the_held_out_heatmap_loss(needs_digits_and_clutter):
    """With every test image in the monitor, its last value is the final held-out loss."""
    config = resolve("smoke", monitor_size=48)
    out = exp.run_one(config, "48/spatial", 0, progress=False)
    assert len(out["curves"]["monitor_loss"]) == config["epochs"]
    assert out["curves"]["monitor_loss"][-1] == pytest.approx(out["metrics"]["test_loss"], rel=1e-5)


def test_smoke_run_writes_a_result_with_claims_figures_tables_and_facts(tmp_path, needs_digits_and_clutter):
    result = experiments.run(exp, "smoke", results_dir=tmp_path, progress=False)
    assert (tmp_path / "tompson2015" / "smoke.json").is_file()
    assert [(r["arm"], r["seed"]) for r in result["runs"]] == exp.units(result["config"], [0, 1], {})
    first = result["runs"][0]["metrics"]
    assert len(first["detection_rate"]) == len(kp.THRESHOLDS) and len(first["examples"]["images"]) == 4
    import matplotlib.pyplot as plt

    for make in exp.FIGURES.values():
        plt.close(make(result))
    table = exp.table(result)
    assert list(table.index)[-1] == "mean" and table.loc["0.2", "paper: with SpatialDropout"] == "90.1"
    assert len(table.columns) == 2 + 2 * 3 and len(exp.table_sizes(result)) == 2 * 3
    assert [len(r["curves"]["train_loss"]) for r in result["runs"][:6]] == [2, 2, 2, 1, 1, 1]
    assert all(isinstance(v, str) and v for v in exp.facts(result).values())

"""The fast CIFAR-10 recipe: its net, flip averaging, the precision choice, the loss, and a short real run."""

from __future__ import annotations

import pytest
import torch

from replib import precision, results
from replib.augment import cifar_pipeline
from replib.experiments import _cifar
from replib.models import FastCifarNet, FlipAveraged


def test_fast_net_maps_cifar_images_to_logits_at_every_depth_and_width():
    torch.manual_seed(0)
    for widths, depth in (((32, 64, 64), 1), ((16, 32), 2), ((8, 8, 8, 8), 3)):
        net = FastCifarNet(widths, depth)
        assert net(torch.randn(5, 3, 32, 32)).shape == (5, 10)
        convs = [m for m in net.blocks.modules() if isinstance(m, torch.nn.Conv2d)]
        assert len(convs) == len(widths) * depth and [c.out_channels for c in convs][::depth] == list(widths)


@pytest.mark.parametrize("kwargs,match", [
    ({"widths": []}, r"widths must name one to four blocks \(each halves the image\), got \[\]"),
    ({"widths": [8] * 5}, r"widths must name one to four blocks \(each halves the image\), got \[8, 8, 8, 8, 8\]"),
    ({"depth": 0}, r"depth"), ({"widths": [8, 0]}, r"widths"),
])
def test_fast_net_rejects_bad_shapes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FastCifarNet(**kwargs)


def test_flip_averaging_gives_an_image_and_its_mirror_the_same_logits():
    torch.manual_seed(0)
    net = FastCifarNet((8, 8, 8)).eval()
    x = torch.randn(4, 3, 32, 32)
    averaged = FlipAveraged(net)
    torch.testing.assert_close(averaged(x), averaged(x.flip(3)))
    assert not torch.allclose(net(x), net(x.flip(3)))  # the net alone is not symmetric
    torch.testing.assert_close(averaged(x), (net(x) + net(x.flip(3))) / 2)


def test_evaluated_net_is_the_flip_averaged_net_in_fp32_on_either_layout():
    torch.manual_seed(0)
    net = FastCifarNet((8, 8)).eval()
    x = torch.randn(3, 3, 32, 32)
    out = _cifar.Evaluated(net, "fp32", flip=True)(x)
    assert out.dtype == torch.float32 and out.is_contiguous()
    torch.testing.assert_close(out, FlipAveraged(net)(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(_cifar.Evaluated(net, "fp32", flip=False)(x), net(x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"precision must be one of \['fp32', 'bf16'\], got 'fp16'"):
        _cifar.Evaluated(net, "fp16")


def test_smoothed_loss_is_cross_entropy_against_smoothed_targets():
    torch.manual_seed(0)
    net = FastCifarNet((8, 8))
    x, y = torch.randn(6, 3, 32, 32), torch.randint(0, 10, (6,))
    logp = net(x).log_softmax(1)
    target = torch.full((6, 10), 0.2 / 10).scatter_(1, y.unsqueeze(1), 0.8 + 0.2 / 10)
    torch.testing.assert_close(_cifar.smoothed_loss(0.2, "fp32")(net, (x, y)), -(target * logp).sum(1).mean())


def test_bf16_autocast_runs_convolutions_in_bf16_and_fp32_changes_nothing():
    conv, x = torch.nn.Conv2d(3, 4, 3), torch.randn(2, 3, 8, 8)
    with precision.autocast("bf16"):
        assert conv(x).dtype == torch.bfloat16
    with precision.autocast("fp32"):
        assert conv(x).dtype == torch.float32


def test_precision_stays_fp32_without_timing_where_bf16_is_not_native(monkeypatch):
    monkeypatch.setattr(precision, "bf16_native", lambda: False)
    calls = []
    choice = precision.choose(lambda q: calls.append(q) or (lambda: None))
    assert choice["precision"] == "fp32" and choice["speedup"] is None and calls == []
    assert "no native bf16" in choice["why"]


@pytest.mark.parametrize("bf16_seconds,chosen", [(0.001, "bf16"), (0.02, "fp32")])
def test_precision_takes_bf16_only_for_a_measured_speed_up(monkeypatch, bf16_seconds, chosen):
    """fp32 steps sleep 10 ms; bf16 steps 1 ms (10x faster: taken) or 20 ms (slower: not)."""
    import time

    monkeypatch.setattr(precision, "bf16_native", lambda: True)
    step = lambda q: (lambda: time.sleep(0.01 if q == "fp32" else bf16_seconds))  # noqa: E731
    choice = precision.choose(step, repeats=3)
    assert choice["precision"] == chosen and choice["bf16_native"]
    assert (choice["speedup"] > 1.2) == (chosen == "bf16")


def test_bf16_native_reads_the_cpu_flags(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "amx_bf16"}))
    assert precision.bf16_native()
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert not precision.bf16_native()
    assert isinstance(results.cpu_flags(), frozenset)


def test_pipeline_can_translate_without_flipping_and_lays_out_channels_last():
    torch.manual_seed(0)
    x = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8)
    out = cifar_pipeline((0.5,) * 3, (0.25,) * 3, True, padding=0, flip=False, memory_format=torch.channels_last)(x)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, (x.float() / 255 - 0.5) / 0.25)  # no padding, no flip: only normalised
    flipped = cifar_pipeline((0.5,) * 3, (0.25,) * 3, True, padding=0, flip=True)(x)
    mirrored = [not torch.allclose(flipped[i], out[i]) for i in range(64)]
    assert all(torch.allclose(flipped[i], out[i].flip(2)) for i in range(64) if mirrored[i])
    assert 16 < sum(mirrored) < 48  # about half the images mirrored, the others untouched


def test_precision_of_the_config_is_taken_as_set():
    config = {**_cifar.FastTraining().model_dump(), "device": "cpu", "precision": "fp32"}
    assert _cifar.choose_precision(FastCifarNet((4,)), config)["precision"] == "fp32"


def test_fast_recipe_trains_and_reports_per_epoch(needs_mirror):
    """Two epochs on 512 images: the curves fit records, the one-cycle rate per epoch, a falling loss."""
    config = {**_cifar.FastTraining(train_size=512, test_size=256, batch_size=128).model_dump(), "device": "cpu",
              "epochs": 2, "precision": "fp32"}
    torch.manual_seed(0)
    curves = _cifar.fast_train(FastCifarNet((16, 32, 32)), config, 0, progress=False)
    assert curves["epoch"] == [1, 2] and len(curves["monitor_error"]) == 2
    steps = 2 * 4  # one-cycle over 8 steps: step 0 at a tenth of the peak, step 4 on the way down
    assert curves["lr"][0] == pytest.approx(0.1 * config["lr"])
    assert curves["lr"][1] == pytest.approx(_cifar.one_cycle(config["lr"], steps, warmup=config["warmup"])(4)["lr"])
    assert curves["train_loss"][1] < curves["train_loss"][0] and 0 <= curves["monitor_error"][-1] <= 100


def test_benchmark_table_and_figure_show_every_run_and_the_goals(tmp_path, monkeypatch):
    monkeypatch.setenv("REPLIB_FIGURES_DIR", str(tmp_path))
    from replib import report

    run = lambda acc: {"epochs": 2, "train_minutes": 1.5, "test_accuracy": acc,  # noqa: E731
                       "curve": {"train_minutes": [0.7, 1.5], "test_accuracy": [50.0, acc]}}
    record = {"goals": [[12.0, 85.0], [40.0, 90.0]],
              "provenance": {"hardware": {"cpu": "Test CPU", "cpu_capability": "AVX2", "torch_threads": 2}},
              "nets": {"fast": {"precision": {"precision": "fp32"}, "budgets": {"12": run(80.0), "40": run(88.5)}},
                       "resnet20": {"precision": {"precision": "bf16"}, "budgets": {"12": run(70.0)}}}}
    record["provenance"]["commit"] = "a" * 40
    table = report.fast_cifar_table(record)
    assert list(table["test accuracy (%)"]) == [80.0, 88.5, 70.0] and list(table["precision"]) == ["fp32", "fp32", "bf16"]
    fig = report.fast_cifar_figure(record)
    ax = fig.axes[0]
    assert len(ax.lines) == 3 + 2 and "Test CPU, AVX2, 2 threads" in ax.get_title()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["benchmarks-fast_cifar.png", "benchmarks-fast_cifar.svg"]
    apart = {**record, "provenance": {**record["provenance"], "commit": "b" * 40},  # a budget run on its own
             "nets": {"fast": {"precision": {"precision": "fp32"}, "budgets": {"20": run(86.0)}}}}
    both = report.fast_cifar_table([record, apart])
    fast = both.xs(("Test CPU, AVX2, 2 threads", "fast net"), level=["machine", "net"])
    assert list(fast["test accuracy (%)"]) == [80.0, 86.0, 88.5]
    assert list(fast["run (commit)"]) == ["aaaaaaa", "bbbbbbb", "aaaaaaa"]
    assert len(report.fast_cifar_figure([record, apart]).axes) == 1  # one machine, one panel
    assert len(report.fast_cifar_figure([record, apart]).axes[0].lines) == 4 + 2


def test_benchmark_runs_of_different_machines_are_kept_apart(tmp_path, monkeypatch):
    monkeypatch.setenv("REPLIB_FIGURES_DIR", str(tmp_path))
    from replib import report

    run = {"epochs": 2, "train_minutes": 1.5, "test_accuracy": 80.0,
           "curve": {"train_minutes": [0.7, 1.5], "test_accuracy": [50.0, 80.0]}}

    def record(bf16: bool, threads: int = 2) -> dict:
        hardware = {"cpu": "Same CPU name", "cpu_capability": "AVX512", "bf16_native": bf16, "torch_threads": threads}
        return {"goals": [[12.0, 85.0]], "provenance": {"hardware": hardware, "commit": "c" * 40},
                "nets": {"fast": {"precision": {"precision": "bf16" if bf16 else "fp32"}, "budgets": {"12": run}}}}

    records = [record(True), record(False), record(False, threads=1)]
    table = report.fast_cifar_table(records)
    assert list(table.index.get_level_values("machine")) == [
        "Same CPU name, AVX512, native bf16, 2 threads", "Same CPU name, AVX512, no native bf16, 2 threads",
        "Same CPU name, AVX512, no native bf16, 1 thread"]
    fig = report.fast_cifar_figure(records)
    assert len(fig.axes) == 3 and [len(ax.lines) for ax in fig.axes] == [1 + 1] * 3  # its run and the goal, per panel
    assert "no native bf16, 1 thread" in fig.axes[2].get_title()


def test_precision_is_measured_once_per_net_and_leaves_the_random_state_alone(monkeypatch):
    calls = []
    monkeypatch.setattr(_cifar, "choose_precision", lambda model, config: calls.append(model) or {"precision": "fp32"})
    monkeypatch.setattr(_cifar, "_chosen", {})
    config = {"batch_size": 8, "device": "cpu", "precision": "auto"}
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    for _ in range(2):
        assert _cifar.precision_once(lambda: FastCifarNet((4,)), ((4,), 2), config) == {"precision": "fp32"}
    assert torch.equal(torch.rand(3), expected) and len(calls) == 1
    _cifar.precision_once(lambda: FastCifarNet((4,)), ((4,), 2), {**config, "batch_size": 16})
    assert len(calls) == 2  # another batch size is another measurement


def test_the_layout_is_channels_last_unless_the_config_turns_it_off():
    config = {**_cifar.FastTraining().model_dump(), "device": "cpu", "precision": "fp32"}
    assert _cifar.layout(config) == torch.channels_last
    assert _cifar.layout({**config, "channels_last": False}) == torch.contiguous_format
    seen = []
    net = FastCifarNet((4,))
    net.register_forward_pre_hook(lambda module, args: seen.append(args[0].is_contiguous()))
    _cifar.Evaluated(net, "fp32", flip=False, memory_format=torch.contiguous_format)(torch.randn(2, 3, 32, 32))
    _cifar.Evaluated(net, "fp32", flip=False)(torch.randn(2, 3, 32, 32))
    assert seen == [True, False]  # the default layout, then channels_last

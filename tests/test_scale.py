"""The ray executor: the same metrics as in process, units in rounds, a dead worker retried, a failed unit named,
and nothing finished lost. Runs on a local Ray of two one-CPU workers; CI installs the ``ray`` extra, elsewhere
the module skips without it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
import torch

from replib import data, experiments, scale
from replib import results as store

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A local Ray with two CPUs for the module; its workers can import ``scale_fake`` and read its control file."""
    if os.environ.get("CI") and not _has_ray():
        pytest.fail("Ray is not installed in CI: .ci/run installs the project's `ray` extra")
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")
    control = tmp_path_factory.mktemp("scale") / "control.json"
    saved = {name: os.environ.get(name) for name in ("PYTHONPATH", "SCALE_FAKE_CONTROL")}
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    os.environ["SCALE_FAKE_CONTROL"] = str(control)
    env = {name: os.environ[name] for name in (*scale.PASSED_ENV, "SCALE_FAKE_CONTROL") if os.environ.get(name)}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    yield control
    ray.shutdown()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _has_ray() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture
def fake(ray_cluster):
    sys.path.insert(0, str(HERE))
    import scale_fake

    sys.path.remove(str(HERE))
    ray_cluster.write_text("{}")
    return scale_fake, ray_cluster


def test_a_smoke_run_on_ray_has_the_metrics_of_the_run_in_process(ray_cluster, tmp_path, needs_mnist):
    threads = torch.get_num_threads()
    try:
        local = experiments.run("hinton2012", "smoke", threads=1, progress=False, results_dir=tmp_path / "local")
    finally:
        torch.set_num_threads(threads)
    remote = experiments.run("hinton2012", "smoke", threads=1, progress=False, executor="ray",
                             results_dir=tmp_path / "ray")
    assert [(r["arm"], r["seed"]) for r in remote["runs"]] == [(r["arm"], r["seed"]) for r in local["runs"]]
    for here, there in zip(local["runs"], remote["runs"]):
        assert _untimed(there["metrics"]) == _untimed(here["metrics"]), (here["arm"], here["seed"])
        assert there["executor"] == "ray" and "executor" not in here
    assert [c["outcome"] for c in remote["claims"]] == [c["outcome"] for c in local["claims"]]


def _untimed(metrics: dict) -> dict:
    """A run's metrics without its timings, which no two runs share."""
    timed = [name for name in metrics if any(word in name for word in ("second", "minute"))]
    assert len(timed) < len(metrics), "nothing left to compare"
    return {name: value for name, value in metrics.items() if name not in timed}


def test_with_ship_data_the_workers_read_only_what_the_driver_sent(ray_cluster, tmp_path, needs_mnist):
    local = experiments.run("hinton2012", "smoke", threads=1, progress=False, executor="ray",
                            results_dir=tmp_path / "own")
    shipped = experiments.run("hinton2012", "smoke", threads=1, progress=False, executor="ray", ship_data=True,
                              results_dir=tmp_path / "shipped")
    for here, there in zip(local["runs"], shipped["runs"]):
        assert _untimed(there["metrics"]) == _untimed(here["metrics"]), (here["arm"], here["seed"])
    files = scale.shipment(experiments.get("hinton2012"))
    assert sorted(files) == sorted(p for p in data.REGISTRY if p.startswith("mnist/"))


def test_a_worker_given_a_shipment_has_no_mirror_and_no_download(tmp_path, monkeypatch):
    monkeypatch.setenv(data.MIRROR_ENV, str(tmp_path / "mirror"))
    monkeypatch.delenv(data.OFFLINE_ENV, raising=False)
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "cache"))
    folder = scale.use_shipment({"mnist/a.gz": b"abc"})
    assert (Path(folder) / "mnist" / "a.gz").read_bytes() == b"abc"
    assert data.mirror_dir() is None and data.offline() and data.cache_dir() == Path(folder)
    assert scale.use_shipment({"mnist/a.gz": b"abc"}) == folder  # once per worker process


def test_nothing_to_ship_is_an_error_naming_the_dataset(monkeypatch, tmp_path):
    monkeypatch.setenv(data.MIRROR_ENV, str(tmp_path))
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path))
    with pytest.raises(data.DataNotFoundError, match="holds no file of 'ptb' to send"):
        scale.shipment(experiments.get("gal2016_rnn"))


def test_units_that_depend_on_earlier_ones_run_in_rounds(fake, tmp_path):
    module, _ = fake
    result = experiments.run(module, "smoke", progress=False, executor="ray", results_dir=tmp_path)
    assert sorted((r["arm"], r["seed"]) for r in result["runs"]) == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    assert result.trained[:2] and {u[0] for u in result.trained[:2]} == {"a"}  # round one: only arm a
    assert store.read_json(result.path) == result


def test_a_unit_whose_worker_dies_is_run_again_and_the_run_completes(fake, tmp_path):
    module, control = fake
    control.write_text(json.dumps({"die_once": ["a", 1]}))
    result = experiments.run(module, "smoke", progress=False, executor="ray", results_dir=tmp_path)
    assert control.with_suffix(".died-a-1").exists(), "the worker was never killed: the test tested nothing"
    assert len(result["runs"]) == 4 and result.written


def test_a_unit_that_fails_for_good_is_named_and_a_rerun_trains_only_what_is_missing(fake, tmp_path):
    module, control = fake
    control.write_text(json.dumps({"fail": ["b", 1]}))
    with pytest.raises(scale.UnitFailedError, match=r"unit \(arm 'b', seed 1\).*fails on purpose"):
        experiments.run(module, "smoke", progress=False, executor="ray", results_dir=tmp_path)
    config, seeds = experiments.resolve(module, "smoke")
    partial = store.read_json(store.partial_path(experiments.path_of(module, "smoke", config, seeds, tmp_path)))
    kept = {(r["arm"], r["seed"]): r for r in partial["runs"]}
    assert {("a", 0), ("a", 1)} <= set(kept) and ("b", 1) not in kept  # every unit finished before it is kept
    control.write_text("{}")
    result = experiments.run(module, "smoke", progress=False, executor="ray", results_dir=tmp_path)
    assert sorted(result.trained) == sorted(set([("b", 0), ("b", 1)]) - set(kept))  # nothing finished is redone
    assert all(r == kept[(r["arm"], r["seed"])] for r in result["runs"] if (r["arm"], r["seed"]) in kept)


def test_killing_the_driver_loses_only_the_unfinished_units_and_the_same_command_resumes(fake, tmp_path):
    module, control = fake
    control.write_text(json.dumps({"sleep": {"b": 600}}))  # round two never ends on its own
    config, seeds = experiments.resolve(module, "smoke")
    partial = store.partial_path(experiments.path_of(module, "smoke", config, seeds, tmp_path))
    driver = subprocess.Popen(
        [sys.executable, "-c", "import pathlib, scale_fake; from replib import experiments; experiments.run(scale_fake, "
         f"'smoke', progress=False, executor='ray', address='local', results_dir=pathlib.Path({str(tmp_path)!r}))"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # its environment names scale_fake's folder
    try:
        deadline = time.monotonic() + 180
        while len((store.read_json(partial) or {}).get("runs", [])) < 2:  # round one done, round two running
            assert driver.poll() is None, "the driver ended before it could be killed"
            assert time.monotonic() < deadline, "round one did not finish in 3 minutes"
            time.sleep(0.5)
    finally:
        driver.kill()  # SIGKILL: no clean-up of any kind
        driver.wait()
    kept = {(r["arm"], r["seed"]): r for r in store.read_json(partial)["runs"]}
    assert set(kept) == {("a", 0), ("a", 1)}
    control.write_text("{}")
    result = experiments.run(module, "smoke", progress=False, executor="ray", results_dir=tmp_path)
    assert sorted(result.trained) == [("b", 0), ("b", 1)]  # nothing finished is trained again
    assert all(r == kept[(r["arm"], r["seed"])] for r in result["runs"] if r["arm"] == "a")
    assert result["provenance"]["resumed"], "the result says it was resumed"


def test_the_executor_and_its_address_are_checked():
    with pytest.raises(ValueError, match=r"executor='dask': must be one of \['local', 'ray'\]"):
        experiments.run("hinton2012", "smoke", executor="dask")
    with pytest.raises(ValueError, match="address='auto' is for the ray executor"):
        experiments.run("hinton2012", "smoke", address="auto")
    with pytest.raises(ValueError, match="cannot be combined with executor='ray'"):
        experiments.run("hinton2012", "smoke", executor="ray", stack=True)
    with pytest.raises(ValueError, match="ship_data=True sends data to Ray's workers"):
        experiments.run("hinton2012", "smoke", ship_data=True)


def test_the_resources_a_unit_asks_for():
    assert scale.resources({"device": "cpu"}, None) == {"num_cpus": 1, "num_gpus": 0}
    assert scale.resources({"device": "cuda:1"}, 4) == {"num_cpus": 4, "num_gpus": 1}


def test_without_ray_the_executor_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as where the extra is not installed
    with pytest.raises(scale.RayMissingError, match=r"needs Ray, an optional dependency: pip install -e '\.\[ray\]'"):
        scale.connect()


@pytest.mark.parametrize("env, given, joins", [(None, None, None), ("10.0.0.1:6379", None, "10.0.0.1:6379"),
                                               ("10.0.0.1:6379", "auto", "auto"), (None, "ray://h:10001", "ray://h:10001")])
def test_ray_address_in_the_environment_joins_that_cluster_as_the_option_does(monkeypatch, env, given, joins):
    """A local Ray gets this machine's cores; joining a cluster (by --address or $RAY_ADDRESS) must not name them,
    which Ray refuses."""
    calls = []
    fake = types.SimpleNamespace(is_initialized=lambda: False, init=lambda **kw: calls.append(kw))
    monkeypatch.setattr(scale, "ray_module", lambda: fake)
    if env is None:
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
    else:
        monkeypatch.setenv("RAY_ADDRESS", env)
    scale.connect(given)
    assert calls[0]["address"] == joins and calls[0]["num_cpus"] == (os.cpu_count() if joins is None else None)

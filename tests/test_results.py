"""The result store and runner: atomic writes, resume after interruption, cache by config."""

from __future__ import annotations

import json
import types

import pytest

from replib import experiments
from replib import results as store


def fake_experiment(fail_on_call: int | None = None) -> types.ModuleType:
    """A tiny experiment module whose run_one counts its calls and can crash on the n-th."""
    module = types.ModuleType("fake")
    module.PAPER = "fake2099"
    module.PAPER_VALUES = [{"id": "x", "value": 1.0, "where": "nowhere", "confirmed": False}]
    module.PROFILES = {p: {"epochs": 2, "seeds": 2, "device": "cpu"} for p in experiments.PROFILES}
    module.calls = []

    def resolve(profile, **overrides):
        return {**module.PROFILES[profile], **overrides}

    def run_one(config, arm, seed, progress=True):
        module.calls.append((arm, seed))
        if fail_on_call is not None and len(module.calls) == fail_on_call:
            raise KeyboardInterrupt("simulated interruption")
        return {"metrics": {"score": 10 * seed + len(arm)}, "curves": {"epoch": [1, 2]}}

    module.resolve = resolve
    module.arms = lambda config: ["a", "bb"]
    module.run_one = run_one
    module.claims = lambda config, runs: [{"id": "c", "statement": "s", "holds": True, "evidence": {"n": len(runs)}}]
    return module


def test_result_file_has_every_documented_field():
    result = experiments.run(fake_experiment(), "smoke", progress=False)
    on_disk = json.loads(store.result_path("fake2099", "smoke").read_text())
    assert on_disk == result
    assert set(result) == {"paper", "profile", "config", "seeds", "provenance", "runs", "claims", "paper_values"}
    assert set(result["provenance"]) >= {"commit", "versions", "hardware", "wall_seconds", "started"}
    assert result["seeds"] == [0, 1]
    assert [(r["arm"], r["seed"]) for r in result["runs"]] == [("a", 0), ("bb", 0), ("a", 1), ("bb", 1)]
    assert all({"arm", "seed", "commit", "metrics", "curves", "wall_seconds"} <= set(r) for r in result["runs"])


def test_interrupted_run_keeps_finished_runs_and_resumes_from_there():
    crashing = fake_experiment(fail_on_call=3)
    with pytest.raises(KeyboardInterrupt):
        experiments.run(crashing, "smoke", progress=False)
    path = store.result_path("fake2099", "smoke")
    assert not path.exists()
    partial = json.loads(store.partial_path(path).read_text())
    assert [(r["arm"], r["seed"]) for r in partial["runs"]] == [("a", 0), ("bb", 0)]
    assert partial["seeds"] == [0, 1] and partial["provenance"]["commit"] and partial["provenance"]["wall_seconds"] >= 0

    resumed = fake_experiment()
    result = experiments.run(resumed, "smoke", progress=False)
    assert resumed.calls == [("a", 1), ("bb", 1)]
    assert len(result["runs"]) == 4 and not store.partial_path(path).exists()


def test_matching_config_is_loaded_not_rerun():
    experiments.run(fake_experiment(), "smoke", progress=False)
    again = fake_experiment()
    experiments.run(again, "smoke", progress=False)
    assert again.calls == []


def test_config_mismatch_triggers_a_run():
    experiments.run(fake_experiment(), "smoke", progress=False)
    changed = fake_experiment()
    result = experiments.run(changed, "smoke", progress=False, epochs=3)
    assert len(changed.calls) == 4 and result["config"]["epochs"] == 3


def test_more_seeds_reuse_finished_runs_of_the_same_config():
    experiments.run(fake_experiment(), "smoke", progress=False)
    more = fake_experiment()
    result = experiments.run(more, "smoke", seeds=3, progress=False)
    assert more.calls == [("a", 2), ("bb", 2)] and result["seeds"] == [0, 1, 2]


def test_rerun_ignores_the_cache():
    experiments.run(fake_experiment(), "smoke", progress=False)
    forced = fake_experiment()
    experiments.run(forced, "smoke", rerun=True, progress=False)
    assert len(forced.calls) == 4


def test_no_train_mode_refuses_to_train(monkeypatch):
    monkeypatch.setenv(experiments.NO_TRAIN_ENV, "1")
    with pytest.raises(experiments.ResultUnavailableError, match="make reproduce PAPER=fake2099"):
        experiments.run(fake_experiment(), "smoke", progress=False)


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "r.json"
    store.write_json_atomic(path, {"ok": 1})
    with pytest.raises(ValueError):
        store.write_json_atomic(path, {"bad": float("nan")})  # not JSON: fails mid-write
    assert json.loads(path.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left behind


@pytest.mark.parametrize("kwargs,match", [
    ({"profile": "gpu"}, "'gpu'"), ({"seeds": 0}, "seeds"), ({"paper": "nope"}, "'nope'"),
])
def test_bad_arguments_are_rejected(kwargs, match):
    args = {"paper": fake_experiment(), "profile": "smoke", **kwargs}
    with pytest.raises(ValueError, match=match):
        experiments.run(args.pop("paper"), args.pop("profile"), progress=False, **args)


def test_verdict_words():
    claim = lambda holds: {"holds": holds}  # noqa: E731
    assert experiments.verdict([claim(True), claim(True)]) == "reproduced"
    assert experiments.verdict([claim(True), claim(False)]) == "partly reproduced"
    assert experiments.verdict([claim(False)]) == "not reproduced"

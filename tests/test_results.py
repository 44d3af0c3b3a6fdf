"""The result store and runner: atomic writes, resume after interruption, cache by config."""

from __future__ import annotations

import json
import re
import types

import pandas as pd
import pytest
import torch
from pydantic import model_validator

from replib import claims as rule
from replib import experiments, report
from replib import results as store
from replib._validate import ConfigError, PositiveInt, Spec, SubSpec, validate_config
from replib.results import REPO_ROOT
from replib.train import flush_denormals


class FakeConfig(Spec):
    epochs: PositiveInt = 2


def fake_experiment(fail_on_call: int | None = None) -> types.ModuleType:
    """A tiny experiment module whose run_one counts its calls and can crash on the n-th."""
    module = types.ModuleType("fake")
    module.PAPER = "fake2099"
    module.TITLE = "Fake 2099"
    module.Config = FakeConfig
    module.PAPER_VALUES = [{"id": "x", "value": 1.0, "where": "nowhere", "confirmed": False}]
    module.PROFILES = {p: {"seeds": 2} for p in experiments.PROFILES}
    module.FIGURES, module.TABLES = {}, {}
    module.calls = []

    def run_one(config, arm, seed, progress=True):
        module.calls.append((arm, seed))
        if fail_on_call is not None and len(module.calls) == fail_on_call:
            raise KeyboardInterrupt("simulated interruption")
        return {"metrics": {"score": 10 * seed + len(arm) + float(torch.rand(()))}, "curves": {"epoch": [1, 2]}}

    def claims(config, runs):
        score = {arm: {r["seed"]: r["metrics"]["score"] for r in runs if r["arm"] == arm} for arm in ("a", "bb")}
        return [rule.direction("c", "a scores below bb", score["a"], score["bb"], names=("a", "bb"))]

    module.units = lambda config, seeds, done: [(arm, seed) for seed in seeds for arm in ("a", "bb")]
    module.run_one = run_one
    module.claims = claims
    module.facts = lambda result: {}
    return module


def test_result_file_has_every_documented_field():
    result = experiments.run(fake_experiment(), "smoke", progress=False)
    on_disk = json.loads(store.result_path("fake2099", "smoke").read_text())
    assert on_disk == result
    assert set(result) == {"paper", "profile", "config", "seeds", "provenance", "runs", "claims", "paper_values"}
    assert set(result["provenance"]) >= {"commit", "versions", "hardware", "wall_seconds", "started", "resumed"}
    assert set(result["provenance"]["load_average_1min"]) == {"start", "end"}  # a reader can see the run was quiet
    assert isinstance(result["provenance"]["hardware"]["bf16_native"], bool)
    flags = result["provenance"]["hardware"]["cpu_flags"]  # the vector flags behind the speed and the precision
    assert flags == sorted(flags) and set(flags) <= store.VECTOR_FLAGS
    assert result["provenance"]["hardware"]["bf16_native"] == bool(set(flags) & store.NATIVE_BF16_FLAGS)
    assert result["provenance"]["hardware"]["denormals_flushed"] is True  # the runner trains with them flushed
    assert result["seeds"] == [0, 1]
    assert [(r["arm"], r["seed"]) for r in result["runs"]] == [("a", 0), ("bb", 0), ("a", 1), ("bb", 1)]
    assert all({"arm", "seed", "commit", "metrics", "curves", "wall_seconds"} <= set(r) for r in result["runs"])


def test_a_limit_on_the_cpus_kernels_is_recorded_and_shown(monkeypatch):
    for name in store.ISA_LIMITS:
        monkeypatch.delenv(name, raising=False)
    assert "isa_limits" not in store.hardware("cpu")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    hw = store.hardware("cpu")
    assert hw["isa_limits"] == {"ONEDNN_MAX_CPU_ISA": "AVX2"}
    assert "kernels limited by ONEDNN_MAX_CPU_ISA=AVX2" in report.machine_of({"provenance": {"hardware": hw}})


def test_a_units_precision_is_kept_with_its_run_and_shown_with_the_load():
    module = fake_experiment()
    plain = module.run_one
    module.run_one = lambda config, arm, seed, progress=True: {
        **plain(config, arm, seed), "precision": {"precision": "bf16", "speedup": 1.9}, "ignored": 1}
    result = experiments.run(module, "smoke", progress=False)
    assert all(r["precision"] == {"precision": "bf16", "speedup": 1.9} and "ignored" not in r for r in result["runs"])
    line = report.run_shown(result)
    load = result["provenance"]["load_average_1min"]
    assert f" in bf16, load {load['start']:g} → {load['end']:g}, torch " in line
    assert " in fp32, " in report.run_shown(experiments.run(fake_experiment(), "cpu", progress=False))
    hw = result["provenance"]["hardware"]
    bf16 = "native bf16" if hw["bf16_native"] else "no native bf16"
    assert f"({hw['cpu_count']} cores, {hw['cpu_capability']}, {bf16}, {hw['torch_threads']} torch thread" in line


def test_interrupted_run_keeps_finished_runs_and_resumes_from_there():
    crashing = fake_experiment(fail_on_call=3)
    with pytest.raises(KeyboardInterrupt, match="^simulated interruption$"):
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


def test_a_unit_that_returns_nan_fails_naming_it_and_keeps_the_units_before_it():
    module = fake_experiment()
    honest = module.run_one

    def run_one(config, arm, seed, progress=True):
        out = honest(config, arm, seed, progress)
        return {**out, "metrics": {"score": float("nan")}} if (arm, seed) == ("a", 1) else out

    module.run_one = run_one
    with pytest.raises(ValueError, match=r"unit \('a', seed 1\) returned numbers a result cannot hold \(NaN or inf\) "
                                         r"at metrics\.score: .* kept in .*smoke\.partial\.json"):
        experiments.run(module, "smoke", progress=False)
    partial = json.loads(store.partial_path(store.result_path("fake2099", "smoke")).read_text())
    assert [(r["arm"], r["seed"]) for r in partial["runs"]] == [("a", 0), ("bb", 0)]


def test_non_finite_names_every_path_that_json_cannot_store():
    assert store.non_finite({"m": {"a": 1.0, "b": float("inf")}, "c": [0.0, [float("nan")]]}) == ["m.b", "c[1][0]"]
    assert store.non_finite({"x": [1, 2.5, None, "nan"]}) == []


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


def test_a_run_says_where_its_result_is_and_whether_it_wrote_it():
    first = experiments.run(fake_experiment(), "smoke", progress=False)
    assert first.path == store.result_path("fake2099", "smoke") and first.written
    assert first.trained == [("a", 0), ("bb", 0), ("a", 1), ("bb", 1)]
    again = experiments.run(fake_experiment(), "smoke", progress=False)
    assert again.path == first.path and not again.written and again.trained == [] and again == first


def test_the_profiles_own_config_is_stored_as_the_profile_and_any_other_apart():
    module = fake_experiment()
    assert experiments.result_path_of(module, "smoke") == store.result_path("fake2099", "smoke")
    assert experiments.result_path_of(module, "smoke", epochs=2, seeds=2) == store.result_path("fake2099", "smoke")
    config, seeds = experiments.resolve(module, "smoke", epochs=3)
    assert experiments.result_path_of(module, "smoke", epochs=3) == store.result_path(
        "fake2099", "smoke", key=store.config_key(config, seeds))
    assert experiments.result_path_of(module, "smoke", seeds=1).name == f"smoke-{store.config_key(config | {'epochs': 2}, [0])}.json"


def test_config_key_is_8_hex_digits_of_the_normalised_config_and_seeds():
    key = store.config_key({"epochs": 3, "device": "cpu"}, [0, 1])
    assert re.fullmatch("[0-9a-f]{8}", key)
    assert key == store.config_key({"device": "cpu", "epochs": 3}, (0, 1))  # key order and tuples do not matter
    assert key != store.config_key({"epochs": 3, "device": "cpu"}, [0])
    assert key == store.config_key({"epochs": 3, "device": "cuda"}, [0, 1])  # where it trains is not the experiment


def test_more_seeds_reuse_finished_runs_of_the_same_config():
    experiments.run(fake_experiment(), "smoke", progress=False)
    more = fake_experiment()
    result = experiments.run(more, "smoke", seeds=3, progress=False)
    assert more.calls == [("a", 2), ("bb", 2)] and result["seeds"] == [0, 1, 2]
    assert result.path.name == f"smoke-{store.config_key(result['config'], [0, 1, 2])}.json"


def test_rerun_ignores_the_cache():
    experiments.run(fake_experiment(), "smoke", progress=False)
    forced = fake_experiment()
    experiments.run(forced, "smoke", rerun=True, progress=False)
    assert len(forced.calls) == 4


def test_no_train_mode_refuses_to_train(monkeypatch):
    monkeypatch.setenv(experiments.NO_TRAIN_ENV, "1")
    with pytest.raises(experiments.ResultUnavailableError, match="make reproduce PAPER=fake2099"):
        experiments.run(fake_experiment(), "smoke", progress=False)
    with pytest.raises(experiments.ResultUnavailableError, match=r"smoke-[0-9a-f]{8}\.json: no result file.*Run this same "
                                                                 r"call \(the same seeds and parameters"):
        experiments.run(fake_experiment(), "smoke", seeds=3, progress=False)  # make reproduce would write smoke.json


def test_a_result_whose_runs_were_edited_says_to_train_it_again_not_to_repeat_the_call():
    written = experiments.run(fake_experiment(), "smoke", progress=False)
    stored = json.loads(written.path.read_text())
    stored["runs"][0]["metrics"] = {k: v + 1 for k, v in stored["runs"][0]["metrics"].items()}
    written.path.write_text(json.dumps(stored))
    with pytest.raises(experiments.StaleResultError, match=r"reproduce fake2099 --profile smoke --rerun` \(a chapter: "
                                                           r"`-p rerun True`\)"):
        experiments.run(fake_experiment(), "smoke", progress=False)


def test_the_published_result_is_read_and_checked_never_trained():
    with pytest.raises(experiments.ResultUnavailableError, match="no result file.*make reproduce PAPER=fake2099"):
        experiments.published(fake_experiment(), "smoke")
    written = experiments.run(fake_experiment(), "smoke", progress=False)
    other = experiments.run(fake_experiment(), "smoke", progress=False, epochs=3)  # stored apart, never shown
    module = fake_experiment()
    shown = experiments.published(module, "smoke")
    assert shown == written and shown.path == written.path != other.path and module.calls == []
    stored = json.loads(written.path.read_text())
    stored["claims"][0]["outcome"] = "holds" if stored["claims"][0]["outcome"] != "holds" else "fails"
    written.path.write_text(json.dumps(stored))
    with pytest.raises(experiments.StaleResultError, match="differ from those the current analysis computes"):
        experiments.published(module, "smoke")


def test_a_result_trained_on_another_device_is_the_same_experiment(monkeypatch):
    """Where a run trains is not part of the experiment: a result trained on a GPU is read, shown and keyed as the
    one trained on a CPU would be, on a machine without a GPU, and nothing trains again."""
    written = experiments.run(fake_experiment(), "smoke", progress=False)
    stored = json.loads(written.path.read_text())
    stored["config"]["device"] = "cuda"  # as a run with --device cuda writes it
    written.path.write_text(json.dumps(stored))
    module = fake_experiment()
    monkeypatch.setenv(experiments.NO_TRAIN_ENV, "1")
    assert experiments.run(module, "smoke", progress=False)["config"]["device"] == "cuda" and module.calls == []
    assert experiments.published(module, "smoke")["config"]["device"] == "cuda"
    config, _ = experiments.resolve(module, "smoke")
    assert (experiments.path_of(module, "smoke", {**config, "device": "cuda"}, [0, 1, 2])
            == experiments.path_of(module, "smoke", config, [0, 1, 2]) != written.path)
    assert not experiments.same_experiment(config, {**config, "epochs": config["epochs"] + 1, "device": "cuda"})


def test_a_partial_result_from_another_device_is_neither_joined_nor_overwritten():
    """Runs do not record their device: units finished on a GPU cannot join a CPU run's, and must not be lost to it."""
    written = experiments.run(fake_experiment(), "smoke", progress=False)
    stored = json.loads(written.path.read_text())
    stored["config"]["device"] = "cuda"  # an interrupted run with --device cuda
    partial = store.partial_path(written.path)
    partial.write_text(json.dumps(stored))
    written.path.unlink()
    module = fake_experiment()
    with pytest.raises(experiments.ResultUnavailableError, match=r"holds 4 finished units of this experiment trained "
                                                                 r"on 'cuda'; a run on 'cpu' cannot add to them"):
        experiments.run(module, "smoke", progress=False)
    assert module.calls == [] and json.loads(partial.read_text()) == stored
    assert experiments.run(module, "smoke", rerun=True, progress=False)["config"]["device"] == "cpu"


def test_the_dashboard_has_one_row_per_chapter_with_its_verdict_and_tally():
    module = fake_experiment()
    module.CITE, module.HEADLINE = "fake2099", "Fakes score lower."
    result = experiments.run(module, "smoke", progress=False)
    gpu = {**result, "provenance": {**result["provenance"], "wall_seconds": 5400.0,
                                    "hardware": {**result["provenance"]["hardware"], "gpu": "Some GPU"}}}
    lines = report.dashboard([(module, result), (module, gpu)]).splitlines()
    assert len(lines) == 2 + 2 and lines[0].count("|") == lines[2].count("|") == 8
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    tally = rule.tally(result["claims"])
    assert cells[:5] == ["{ref}`chapter-fake2099` {cite:p}`fake2099`", "Fakes score lower.",
                         f"**{report.verdict(result)}**",
                         f"{tally['holds']} / {tally['fails']} / {tally['inconclusive']}", "2"]
    threads = result["provenance"]["hardware"]["torch_threads"]
    assert cells[5].endswith(f"min on {threads} CPU thread{'s' if threads != 1 else ''}")
    assert cells[6] == result["provenance"]["started"][:10]
    assert "90 min on Some GPU" in lines[3]


def test_result_files_are_readable_by_everyone(tmp_path):
    path = tmp_path / "r.json"
    store.write_json_atomic(path, {"ok": 1})
    assert path.stat().st_mode & 0o777 == 0o644


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "r.json"
    store.write_json_atomic(path, {"ok": 1})
    with pytest.raises(ValueError, match="not JSON compliant: nan"):
        store.write_json_atomic(path, {"bad": float("nan")})  # not JSON: fails mid-write
    assert json.loads(path.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left behind


@pytest.mark.parametrize("kwargs,match", [
    ({"profile": "gpu"}, re.escape("profile must be one of ['smoke', 'cpu', 'paper'], got 'gpu'")),
    ({"seeds": 0}, r"^seeds is the number of seeds .* must be an int >= 1, got 0$"),
    ({"seeds": "2"}, r"^seeds is the number of seeds .* must be an int >= 1, got '2'$"),
    ({"paper": "nope"}, r"^paper must be one of \['hinton2012', .*\], got 'nope'$"),
    ({"rerun": 1}, r"^rerun must be True or False, got 1 \(int\); in papermill write `-p rerun True`"),
    ({"progress": None}, r"^progress must be True or False, got None \(NoneType\)"),
    ({"threads": 0}, r"^threads is the number of torch CPU threads and must be an int >= 1 or None .*, got 0$"),
    ({"threads": True}, r"^threads is the number of torch CPU threads .*, got True$"),
    ({"threads": "2"}, r"^threads is the number of torch CPU threads .*, got '2'$"),
])
def test_bad_arguments_are_rejected(kwargs, match):
    args = {"paper": fake_experiment(), "profile": "smoke", "progress": False, **kwargs}
    with pytest.raises(ValueError, match=match):
        experiments.run(args.pop("paper"), args.pop("profile"), **args)


def test_unknown_override_is_named_with_the_allowed_keys():
    with pytest.raises(ConfigError, match=r"unknown key 'epoch'; allowed: \['device', 'epochs'\]"):
        experiments.run(fake_experiment(), "smoke", progress=False, epoch=3)


@pytest.mark.parametrize("bad,match", [(0, "epochs = 0: Input should be greater than or equal to 1"),
                                       ("3", "epochs = '3': Input should be a valid integer"),
                                       (True, "epochs = True: Input should be a valid integer")])
def test_override_of_the_wrong_type_or_range_is_named(bad, match):
    with pytest.raises(ConfigError, match=match):
        experiments.run(fake_experiment(), "smoke", progress=False, epochs=bad)


class Part(SubSpec):
    alpha: PositiveInt = 1
    beta: PositiveInt = 2

    @model_validator(mode="after")
    def _order(self):
        if self.alpha > self.beta:
            raise ValueError(f"alpha must not exceed beta, got {self.alpha} > {self.beta}")
        return self


class Nested(Spec):
    parts: list[Part] = [Part()]
    named: dict[str, Part] = {"a": Part()}


@pytest.mark.parametrize("values,message", [
    ({"parts": [{"alpha": 1, "gama": 2}]}, "unknown key 'parts.0.gama'; allowed: ['alpha', 'beta']"),
    ({"named": {"a": {"delta": 1}}}, "unknown key 'named.a.delta'; allowed: ['alpha', 'beta']"),
    ({"parts": [{"alpha": 3}]}, "parts.0: alpha must not exceed beta, got 3 > 2"),  # a check across keys: no dump
    ({"parts": [{"alpha": 0}]}, "parts.0.alpha = 0: Input should be greater than or equal to 1"),
])
def test_a_nested_mistake_is_named_with_what_is_allowed_there(values, message):
    with pytest.raises(ConfigError, match=re.escape(f"bad nested config: {message}")):
        validate_config(Nested, values, what="nested config")


def test_a_gpu_index_the_machine_lacks_is_refused_naming_the_ones_it_has(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert validate_config(Nested, {"device": "cuda:1"}, what="config")["device"] == "cuda:1"
    with pytest.raises(ConfigError, match=re.escape("device = 'cuda:7': 'cuda:7' requested but this machine has 2 GPUs "
                                                    "(cuda:0 to cuda:1)")):
        validate_config(Nested, {"device": "cuda:7"}, what="config")


@pytest.mark.parametrize("value,on", [("1", True), ("yes", True), ("0", False), ("false", False), ("No", False),
                                      ("", False), (None, False)])
def test_an_environment_switch_set_to_0_false_or_no_is_off(monkeypatch, value, on):
    if value is None:
        monkeypatch.delenv(experiments.NO_TRAIN_ENV, raising=False)
    else:
        monkeypatch.setenv(experiments.NO_TRAIN_ENV, value)
    assert store.env_flag(experiments.NO_TRAIN_ENV) is on
    if not on:  # training is allowed
        assert experiments.run(fake_experiment(), "smoke", progress=False).written


def test_runner_seeds_each_unit_with_its_seed():
    """Two runs of one unit draw the same numbers: the runner seeds before run_one, whatever ran before."""
    first = experiments.run(fake_experiment(), "smoke", progress=False)
    torch.rand(7)  # move the global generator on
    again = experiments.run(fake_experiment(), "smoke", rerun=True, progress=False)
    assert [r["metrics"] for r in first["runs"]] == [r["metrics"] for r in again["runs"]]
    assert first["runs"][0]["metrics"] != first["runs"][2]["metrics"]  # seeds 0 and 1 differ


@pytest.mark.parametrize("tamper,match", [
    (lambda r: r["runs"][0]["metrics"].update(score=-1.0), "runs are not those it was written with"),
    (lambda r: r["runs"].pop(), "runs are not those it was written with"),
    (lambda r: r["claims"][0].update(outcome="holds" if r["claims"][0]["outcome"] != "holds" else "fails"),
     "claims .* differ from those the current analysis computes.*reanalyse fake2099"),
    (lambda r: r["paper_values"][0].update(value=2.0), "paper values differ"),
])
def test_an_edited_stored_result_is_refused_with_its_path(tamper, match):
    result = experiments.run(fake_experiment(), "smoke", progress=False)
    path = store.result_path("fake2099", "smoke")
    tamper(result)
    store.write_json_atomic(path, result)
    with pytest.raises(experiments.StaleResultError, match=f"{path}: .*{match}"):
        experiments.run(fake_experiment(), "smoke", progress=False)


@pytest.mark.parametrize("content,message", [
    ('{"paper": 1} trailing', "is not valid JSON \\(Extra data: line 1, column 14\\)"),
    ('{"paper": "fake2099"}', "is not a result: it lacks \\['profile',"),
])
def test_a_result_file_that_cannot_be_read_is_named(content, message):
    path = store.result_path("fake2099", "smoke")
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(store.ResultFileError, match=f"^{re.escape(str(path))} {message}"):
        experiments.run(fake_experiment(), "smoke", progress=False)


def test_a_result_of_another_paper_is_refused():
    result = experiments.run(fake_experiment(), "smoke", progress=False)
    other = fake_experiment()
    other.PAPER = "fake2100"
    path = store.result_path("fake2100", "smoke")
    store.write_json_atomic(path, result)
    with pytest.raises(experiments.StaleResultError, match="it is a result of 'fake2099', not of 'fake2100'"):
        experiments.run(other, "smoke", progress=False)




class Inner(SubSpec):
    p: float = 0.5
    epochs: int = 1


class Outer(Spec):
    inner: Inner = Inner()


def test_a_nested_override_is_merged_into_the_profiles_sub_config():
    module = fake_experiment()
    module.Config = Outer
    module.PROFILES = {p: {"seeds": 1, "inner": {"epochs": 3}} for p in experiments.PROFILES}
    config, _ = experiments.resolve(module, "smoke", inner={"p": 0.2})
    assert config["inner"] == {"p": 0.2, "epochs": 3}


def test_none_inside_a_nested_override_keeps_the_profiles_value():
    module = fake_experiment()
    module.Config = Outer
    module.PROFILES = {p: {"seeds": 1} for p in experiments.PROFILES}
    assert experiments.resolve(module, "smoke", inner={"p": None, "epochs": 4})[0]["inner"] == {"p": 0.5, "epochs": 4}
    assert experiments.resolve(module, "smoke", inner={"p": None})[0]["inner"] == {"p": 0.5, "epochs": 1}


def test_denormals_are_recorded_as_they_are():
    try:
        torch.set_flush_denormal(False)
        tiny = torch.tensor([1e-39])  # a float32 denormal (made while they are kept)
        assert (tiny * 1.0).item() > 0 and store.hardware("cpu")["denormals_flushed"] is False
        assert flush_denormals() is True
        assert (tiny * 1.0).item() == 0.0 and store.hardware("cpu")["denormals_flushed"] is True
    finally:
        flush_denormals()


def test_tables_for_readers_put_index_names_in_the_header_and_format_numbers():
    frame = pd.DataFrame({"arm": ["none", "a|b"], "error": [1.23456, float("nan")], "n": [3, 4]}).set_index("arm")
    lines = report.frame_markdown(frame).splitlines()
    assert lines[0] == "| arm | error | n |" and len(lines) == 2 + 2  # one header row, the index's name in it
    assert lines[2] == "| none | 1.23 | 3 |" and lines[3] == "| a\\|b | — | 4 |"
    assert report.frame_markdown(frame, digits=3).splitlines()[2] == "| none | 1.235 | 3 |"
    plain = pd.DataFrame({"x": [1.0]})  # an unnamed index is not a column
    assert report.frame_markdown(plain).splitlines()[0] == "| x |"


def test_each_figure_has_a_bibtex_entry_naming_its_stable_file_and_the_run(tmp_path):
    module = fake_experiment()
    module.FIGURES = {"figure1": None, "fit": None}
    result = experiments.run(module, "smoke", progress=False)
    text = report.figure_bibtex(module, result)
    entries = text.split("\n\n")
    assert [e.splitlines()[0] for e in entries] == ["@misc{dropoutbook_fake2099_figure1,", "@misc{dropoutbook_fake2099_fit,"]
    commit = result["provenance"]["commit"][:10]
    for entry, name in zip(entries, module.FIGURES):
        assert entry.count("{") == entry.count("}") and f"fake2099-{name}.png" in entry and commit in entry
        assert "results/" in entry or "its result file" in entry
    assert report.result_link(result).endswith("(written by this run)")  # outside the repository: no link
    config = tmp_path / "_config.yml"
    config.write_text("repository:\n  url: https://example.org/r/\nhtml:\n  baseurl: https://example.org/b\n")
    assert report.site_urls(config) == {"repository": "https://example.org/r", "site": "https://example.org/b"}
    linked = report.figure_bibtex(module, result, {"repository": "https://example.org/r", "site": "https://example.org/b"})
    assert "url          = {https://example.org/b/fake2099-figure1.png}" in linked
    assert f"commit {commit} of https://example.org/r" in linked


def test_the_bibliography_is_labelled_by_authors_and_year_with_letters_for_a_clash():
    import importlib.util

    from pybtex.database import Entry, Person

    spec = importlib.util.spec_from_file_location("labels", REPO_ROOT / "book" / "_ext" / "author_year_labels.py")
    labels = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(labels)

    def entry(key, year, *authors):
        e = Entry("article", fields={"year": year, "title": key})
        e.key = key
        for a in authors:
            e.add_person(Person(a), "author")
        return e

    entries = [entry("a", "2012", "Hinton, G.", "Srivastava, N.", "Krizhevsky, A."), entry("b", "2013", "Ba, J."),
               entry("c", "2016", "Gal, Y.", "Ghahramani, Z."), entry("d", "2016", "Gal, Y.", "Ghahramani, Z.")]
    assert list(labels.AuthorYearLabels().format_labels(entries)) == [
        "Hinton et al., 2012", "Ba, 2013", "Gal and Ghahramani, 2016a", "Gal and Ghahramani, 2016b"]
    with pytest.raises(ValueError, match="'x' has no author"):
        list(labels.AuthorYearLabels().format_labels([entry("x", "2020")]))

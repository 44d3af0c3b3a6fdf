"""Every experiment module in PAPERS and DRAFTS implements the contract, and leaves the plumbing to the runner."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from replib import data, experiments
from replib._validate import Spec

MODULES = experiments.PAPERS + experiments.DRAFTS
# What the runner and report own: an experiment module that does it itself is out of contract.
BIB = (Path(__file__).parents[1] / "book" / "references.bib").read_text()
RUNNER_ONLY = ["apply_overrides", "seed_everything", "manual_seed", "use_house_style", "set_num_threads",
               "perf_counter", "write_json"]


@pytest.mark.parametrize("paper", MODULES)
def test_module_implements_the_experiment_protocol(paper):
    module = experiments.get(paper)
    assert isinstance(module, experiments.Experiment), [
        name for name in ("PAPER", "TITLE", "CITE", "HEADLINE", "DATASETS", "Config", "PROFILES", "PAPER_VALUES", "FIGURES",
                          "TABLES", "units", "run_one", "claims", "facts") if not hasattr(module, name)]
    assert module.PAPER == paper
    assert f"@article{{{module.CITE}," in BIB or f"@inproceedings{{{module.CITE}," in BIB, module.CITE
    assert len(module.HEADLINE) <= 150 and module.HEADLINE.endswith("."), "the headline is one line of the landing page"
    folders = {relpath.split("/")[0] for relpath in data.REGISTRY}
    assert isinstance(module.DATASETS, tuple) and set(module.DATASETS) <= folders, (module.DATASETS, folders)
    assert issubclass(module.Config, Spec)
    assert not hasattr(module, "resolve"), "the runner resolves configs"
    has = {name: callable(getattr(module, name, None)) for name in ("build_net", "run_stack")}
    assert len(set(has.values())) == 1, f"stacked training needs both build_net and run_stack: {has}"


@pytest.mark.parametrize("paper", MODULES)
def test_every_profile_resolves_to_a_valid_config(paper):
    module = experiments.get(paper)
    assert set(module.PROFILES) == set(experiments.PROFILES)
    for profile in experiments.PROFILES:
        config, seeds = experiments.resolve(module, profile)
        assert seeds == list(range(module.PROFILES[profile]["seeds"]))
        assert experiments.units_of(module, config, seeds), f"{profile} has no units"


@pytest.mark.parametrize("paper", MODULES)
def test_a_profile_value_of_none_is_kept_and_an_override_of_none_keeps_the_profile(paper):
    """``train_size: None`` in a profile means every image, not the spec's default; ``-p train_size None`` on the
    command line means the profile's value."""
    module = experiments.get(paper)
    for profile in experiments.PROFILES:
        config, _ = experiments.resolve(module, profile)

        def check(layer: dict, resolved: dict, where: str) -> None:
            for key, value in layer.items():
                if key == "seeds":
                    continue
                if isinstance(value, dict) and isinstance(resolved.get(key), dict):
                    check(value, resolved[key], f"{where}{key}.")
                elif value is None:
                    assert resolved[key] is None, f"{profile} sets {where}{key} to None, resolved to {resolved[key]!r}"

        check(module.PROFILES[profile], config, "")
        assert experiments.resolve(module, profile, **{key: None for key in config})[0] == config


def test_a_profile_of_every_image_trains_on_every_image():
    assert experiments.resolve(experiments.get("devries2017"), "paper")[0]["train_size"] is None
    assert experiments.resolve(experiments.get("gal2016_rnn"), "paper")[0]["mc_tokens"] is None
    assert experiments.resolve(experiments.get("atlas"), "paper")[0]["conv"]["train_size"] is None
    assert experiments.resolve(experiments.get("hinton2012"), "smoke")[0]["init_std"] is None


@pytest.mark.parametrize("paper", MODULES)
def test_every_config_key_is_described(paper):
    module = experiments.get(paper)
    missing = [name for name, field in module.Config.model_fields.items() if not field.description]
    assert not missing, f"config keys without a description: {missing}"


@pytest.mark.parametrize("paper", MODULES)
def test_figures_and_tables_are_named_functions_of_the_result(paper):
    module = experiments.get(paper)
    assert module.FIGURES and module.TABLES
    for name, fn in {**module.FIGURES, **module.TABLES}.items():
        assert re.fullmatch(r"[a-z0-9_]+", name) and callable(fn), name


@pytest.mark.parametrize("paper", MODULES)
def test_paper_values_say_where_they_were_read(paper):
    for value in experiments.get(paper).PAPER_VALUES:
        assert {"id", "value", "where", "confirmed"} <= set(value), value


@pytest.mark.parametrize("paper", MODULES)
def test_module_leaves_seeding_overrides_timing_and_style_to_the_runner(paper):
    source = inspect.getsource(experiments.get(paper))
    found = [name for name in RUNNER_ONLY if name in source]
    assert not found, f"{paper} does itself what the runner owns: {found}"

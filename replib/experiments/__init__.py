"""Experiments, one module per paper, and the runner they share.

A paper module *declares*; the runner *does*. Each module implements :class:`Experiment`:
its config spec (a :class:`replib._validate.Spec`), its profiles, its units (arm, seed),
how one unit trains (through :func:`replib.train.fit`), its claims (decided by
:mod:`replib.claims`), and its figures, tables and the facts its prose quotes. The
runner owns everything around that: resolving and validating overrides, seeding (one
rule, :mod:`replib.seeding`), timing, resume, checking a stored result before it is
shown, and writing results. :mod:`replib.report` owns the house style and exports.
"""

from __future__ import annotations

import importlib
import os
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Protocol, runtime_checkable

import torch

from .. import results as store
from .. import seeding
from ..progress import bar as progress_bar
from .._validate import Spec, validate_config
from ..claims import verdict  # noqa: F401  (re-exported: the verdict of a result's claims)

# Published chapters: each has a committed `cpu` result and a page in the book.
PAPERS = ("hinton2012", "wan2013", "ba2013", "graham2015", "tompson2015", "devries2017", "gal2016_mc", "gal2016_rnn", "guo2016")
# Drafts: code, notebook and tests exist and run at every profile, but no `cpu` result has
# been committed yet, so the book does not show them.
DRAFTS = ()
PROFILES = ("smoke", "cpu", "paper")
NO_TRAIN_ENV = "REPLIB_NO_TRAIN"

Unit = tuple[str, int]


@runtime_checkable
class Experiment(Protocol):
    """What every paper module provides (a test holds each module in PAPERS and DRAFTS to it).

    - ``PAPER``, ``TITLE``: its key and the chapter's title.
    - ``Config``: the config spec; ``PROFILES``: for ``smoke``, ``cpu`` and ``paper``, the
      entries that differ from ``Config``'s defaults, plus ``seeds`` (how many).
    - ``PAPER_VALUES``: the paper's numbers, each with ``where`` it was read and whether it is ``confirmed``.
    - ``units(config, seeds, done)``: the (arm, seed) pairs to run, in order; ``done`` maps
      the finished ones to their runs, so later units may depend on earlier runs.
    - ``run_one(config, arm, seed, progress)``: train and evaluate one unit, already seeded
      by the runner; return ``{"metrics": {...}, "curves": {...}}``.
    - ``claims(config, runs)``: the claims, built with :mod:`replib.claims`.
    - ``FIGURES`` / ``TABLES``: stable name -> function of the result returning a figure / DataFrame.
    - ``facts(result)``: name -> formatted text, the numbers the chapter's prose quotes.
    """

    PAPER: str
    TITLE: str
    Config: type[Spec]
    PROFILES: dict[str, dict[str, Any]]
    PAPER_VALUES: list[dict]
    FIGURES: dict[str, Callable[[dict], Any]]
    TABLES: dict[str, Callable[[dict], Any]]

    def units(self, config: dict, seeds: list[int], done: dict[Unit, dict]) -> list[Unit]: ...

    def run_one(self, config: dict, arm: str, seed: int, progress: bool = True) -> dict: ...

    def claims(self, config: dict, runs: list[dict]) -> list[dict]: ...

    def facts(self, result: dict) -> dict[str, str]: ...


class ResultUnavailableError(RuntimeError):
    """Training was needed but forbidden (``$REPLIB_NO_TRAIN``, set by ``make book``)."""


class StaleResultError(RuntimeError):
    """A stored result that does not match its runs, its config's units or the current analysis."""


def get(paper: str) -> ModuleType:
    if paper not in PAPERS + DRAFTS:
        raise ValueError(f"paper must be one of {list(PAPERS + DRAFTS)}, got {paper!r}")
    return importlib.import_module(f"{__name__}.{paper}")


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {list(PROFILES)}, got {profile!r}")
    return profile


def seed_list(seeds: int) -> list[int]:
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds is the number of seeds (0, 1, ..., seeds-1) and must be an int >= 1, got {seeds!r}")
    return list(range(seeds))


def resolve(module: ModuleType, profile: str, seeds: int | None = None, **overrides) -> tuple[dict, list[int]]:
    """The validated config of ``module`` at ``profile`` with ``overrides``, and the seed list.

    An override of ``None`` means "the profile's value"; a dict override of a nested
    sub-config is merged into the profile's (``cifar={"p": 0.3}`` changes only ``p``; an
    entry of ``None`` inside it keeps the profile's too).
    Unknown keys and values of the wrong type or range raise
    :class:`replib._validate.ConfigError` naming them.
    """
    values = {**module.PROFILES[check_profile(profile)]}
    profile_seeds = values.pop("seeds")
    for key, value in overrides.items():
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if v is not None} or None
            if value is not None and isinstance(values.get(key), dict):
                value = {**values[key], **value}
        if value is not None:
            values[key] = value
    config = validate_config(module.Config, values, what=f"{module.PAPER} config")
    return config, seed_list(seeds if seeds is not None else profile_seeds)


def units_of(module: ModuleType, config: dict, seeds: list[int], done: dict | None = None) -> list[Unit]:
    """The (arm, seed) pairs an experiment runs, in order, given the runs ``done`` so far."""
    return [tuple(u) for u in module.units(config, seeds, done or {})]


def verify(module: ModuleType, result: dict, path: Path) -> None:
    """Raise :class:`StaleResultError` unless ``result`` is exactly what its runs and the current code give.

    Its runs must be those written when it was trained (their digest), cover exactly the
    config's units, and its claims and paper values must equal what the current analysis
    computes from them.
    """
    fix = f"rerun with `make reproduce PAPER={module.PAPER} PROFILE={result['profile']}`"
    if store.runs_digest(result["runs"]) != result["provenance"].get("runs_sha256"):
        raise StaleResultError(f"{path}: its runs are not those it was written with (edited, added or deleted "
                               f"after training; their digest differs); {fix}")
    have = [(r["arm"], r["seed"]) for r in result["runs"]]
    runs = {unit: r for unit, r in zip(have, result["runs"])}
    want = units_of(module, result["config"], result["seeds"], runs)
    if have != want:
        raise StaleResultError(f"{path}: its runs {have} are not the units {want} its config and seeds ask for; {fix}")
    analyse = f"`python -m replib reanalyse {module.PAPER} --profile {result['profile']}`"
    computed = store.normalise(module.claims(result["config"], result["runs"]))
    if result["claims"] != computed:
        stored = {c["id"]: c.get("outcome") for c in result["claims"]}
        now = {c["id"]: c["outcome"] for c in computed}
        raise StaleResultError(f"{path}: its claims ({stored}) differ from those the current analysis computes "
                               f"from its runs ({now}); run {analyse}")
    if result["paper_values"] != store.normalise(module.PAPER_VALUES):
        raise StaleResultError(f"{path}: its paper values differ from the module's PAPER_VALUES; run {analyse}")


def run(
    paper: str | ModuleType,
    profile: str = "cpu",
    *,
    seeds: int | None = None,
    rerun: bool = False,
    threads: int | None = None,
    progress: bool = True,
    results_dir: Path | None = None,
    **overrides,
) -> dict:
    """Return the result of ``paper`` at ``profile``: from its file when the config matches, else by running.

    ``paper`` is a key of :data:`PAPERS` or an experiment module. ``overrides`` (e.g.
    ``epochs=5``, ``device="cuda"``) replace entries of the profile's config; ``None``
    means "profile default". A stored result is verified (:func:`verify`) before it is
    returned. Finished (arm, seed) runs of the same config are never repeated: they are
    read back from the result or partial file. With ``$REPLIB_NO_TRAIN`` set, a missing
    or mismatched result raises instead of training.
    """
    module = paper if isinstance(paper, ModuleType) else get(paper)
    paper = module.PAPER
    config, seed_ids = resolve(module, profile, seeds, **overrides)
    path = store.result_path(paper, profile, results_dir)
    cached = store.read_json(path)
    if cached and not rerun and cached["config"] == config and cached["seeds"] == seed_ids:
        verify(module, cached, path)
        return cached
    if os.environ.get(NO_TRAIN_ENV):
        why = "no result file" if cached is None else "its config or seeds differ from the requested ones"
        raise ResultUnavailableError(
            f"{path}: {why}, and ${NO_TRAIN_ENV} forbids training here. "
            f"Run `make reproduce PAPER={paper} PROFILE={profile}` first, or unset {NO_TRAIN_ENV}."
        )

    partial = store.partial_path(path)
    done: dict[Unit, dict] = {}
    for previous in (cached, store.read_json(partial)):
        if previous and previous["config"] == config and not rerun:
            done.update({(r["arm"], r["seed"]): r for r in previous["runs"]})
    if threads is not None:
        torch.set_num_threads(threads)
    started, code = store.now(), store.git_state()  # the code that runs is the code at the start

    def pending() -> list[Unit]:
        return [unit for unit in units_of(module, config, seed_ids, done) if unit not in done]

    def train(arm: str, seed: int) -> None:
        seeding.seed_everything(seed)
        tic = time.perf_counter()
        out = module.run_one(config, arm, seed, progress=progress)
        wall = round(time.perf_counter() - tic, 1)
        done[(arm, seed)] = store.normalise({"arm": arm, "seed": seed, "commit": code["commit"], "wall_seconds": wall,
                                             "metrics": out["metrics"], "curves": out["curves"]})
        finished = list(done.values())
        store.write_json_atomic(partial, {  # an interrupted run keeps what it finished, and where it came from
            "paper": paper, "profile": profile, "config": config, "seeds": seed_ids,
            "provenance": store.provenance(config["device"], started,
                                           sum(r["wall_seconds"] for r in finished), code),
            "runs": finished,
        })

    while todo := pending():  # more than one round only when later units depend on earlier runs
        for arm, seed in progress_bar(todo, desc=f"{paper}/{profile} runs", unit="run", disable=not progress):
            train(arm, seed)

    runs = [done[unit] for unit in units_of(module, config, seed_ids, done)]
    provenance = store.provenance(config["device"], started, sum(r["wall_seconds"] for r in runs), code)
    result = {
        "paper": paper,
        "profile": profile,
        "config": config,
        "seeds": seed_ids,
        "provenance": {**provenance, "runs_sha256": store.runs_digest(runs)},
        "runs": runs,
        "claims": store.normalise(module.claims(config, runs)),
        "paper_values": store.normalise(module.PAPER_VALUES),
    }
    store.write_json_atomic(path, result)
    partial.unlink(missing_ok=True)
    return result


def reanalyse(paper: str, profile: str = "cpu", *, results_dir: Path | None = None) -> dict:
    """Recompute the claims (and refresh the paper values) of a stored result from its runs.

    Claims are analysis: a function of the runs and the config. When the analysis code
    changes, this brings a result file up to date without retraining; the runs, seeds,
    config and training provenance stay exactly as they were, and
    ``provenance["analysis"]`` records the commit whose code computed the claims. A result
    whose runs were changed after training is refused: only a rerun can mend it.
    """
    module = get(paper)
    path = store.result_path(paper, check_profile(profile), results_dir)
    result = store.read_json(path)
    if result is None:
        raise FileNotFoundError(f"{path} does not exist: run `make reproduce PAPER={paper} PROFILE={profile}` first")
    if store.runs_digest(result["runs"]) != result["provenance"].get("runs_sha256"):
        raise StaleResultError(f"{path}: its runs are not those it was written with; reanalysing would bless them. "
                               f"Rerun with `make reproduce PAPER={paper} PROFILE={profile}`")
    result["claims"] = store.normalise(module.claims(result["config"], result["runs"]))
    result["paper_values"] = store.normalise(module.PAPER_VALUES)
    result["provenance"]["analysis"] = {**store.git_state(), "at": store.now().isoformat(timespec="seconds")}
    store.write_json_atomic(path, result)
    return result

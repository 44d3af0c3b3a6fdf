"""Experiments, one module per paper, and the runner they share.

An experiment module defines ``PAPER`` (its key), ``PROFILES`` (``smoke``, ``cpu``,
``paper``), ``PAPER_VALUES``, ``resolve(profile, **overrides) -> config``,
``arms(config)``, ``run_one(config, arm, seed, progress) -> {"metrics", "curves"}``
and ``claims(config, runs) -> [...]``; optionally ``units(config, seeds, done)``, the
(arm, seed) pairs to run when not every arm needs every seed (default: all pairs).
``done`` maps the finished pairs to their runs, so an experiment can choose later runs
from earlier ones (a sweep on a validation split, then the chosen setting on more seeds).
:func:`run` turns these into a result file.
"""

from __future__ import annotations

import importlib
import os
import time
from pathlib import Path
from types import ModuleType

import torch

from .. import results as store

# Published chapters: each has a committed `cpu` result and a page in the book.
PAPERS = ("hinton2012", "wan2013", "ba2013", "graham2015", "tompson2015", "devries2017", "gal2016_mc", "gal2016_rnn", "guo2016")
# Drafts: code, notebook and tests exist and run at every profile, but no `cpu` result has
# been committed yet, so the book does not show them.
DRAFTS = ()
PROFILES = ("smoke", "cpu", "paper")
NO_TRAIN_ENV = "REPLIB_NO_TRAIN"


class ResultUnavailableError(RuntimeError):
    """Training was needed but forbidden (``$REPLIB_NO_TRAIN``, set by ``make book``)."""


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


def verdict(claims: list[dict]) -> str:
    """'reproduced' if every claim holds, 'not reproduced' if none does, else 'partly reproduced'."""
    held = sum(bool(c["holds"]) for c in claims)
    if held == len(claims):
        return "reproduced"
    return "not reproduced" if held == 0 else "partly reproduced"


def units_of(module: ModuleType, config: dict, seeds: list[int], done: dict | None = None) -> list[tuple[str, int]]:
    """The (arm, seed) pairs an experiment runs, in order, given the runs ``done`` so far."""
    if hasattr(module, "units"):
        return [tuple(u) for u in module.units(config, seeds, done or {})]
    return [(arm, seed) for seed in seeds for arm in module.arms(config)]


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

    ``paper`` is a key of :data:`PAPERS` or an experiment module.
    ``overrides`` (e.g. ``epochs=5``, ``device="cuda"``) replace entries of the profile's
    config; ``None`` means "profile default". Finished (arm, seed) runs of the same config
    are never repeated: they are read back from the result or partial file. With
    ``$REPLIB_NO_TRAIN`` set, a missing or mismatched result raises instead of training.
    """
    module = paper if isinstance(paper, ModuleType) else get(paper)
    paper = module.PAPER
    check_profile(profile)
    config = store.normalise(module.resolve(profile, **{k: v for k, v in overrides.items() if v is not None}))
    seed_ids = seed_list(seeds if seeds is not None else config.pop("seeds"))
    config.pop("seeds", None)
    path = store.result_path(paper, profile, results_dir)
    cached = store.read_json(path)
    if cached and not rerun and cached["config"] == config and cached["seeds"] == seed_ids:
        return cached
    if os.environ.get(NO_TRAIN_ENV):
        why = "no result file" if cached is None else "its config or seeds differ from the requested ones"
        raise ResultUnavailableError(
            f"{path}: {why}, and ${NO_TRAIN_ENV} forbids training here. "
            f"Run `make reproduce PAPER={paper} PROFILE={profile}` first, or unset {NO_TRAIN_ENV}."
        )

    partial = store.partial_path(path)
    done = {}
    for previous in (cached, store.read_json(partial)):
        if previous and previous["config"] == config and not rerun:
            done.update({(r["arm"], r["seed"]): r for r in previous["runs"]})
    if threads is not None:
        torch.set_num_threads(threads)
    started, code = store.now(), store.git_state()  # the code that runs is the code at the start

    from tqdm.auto import tqdm

    def pending() -> list[tuple[str, int]]:
        return [unit for unit in units_of(module, config, seed_ids, done) if unit not in done]

    def train(arm: str, seed: int) -> None:
        tic = time.perf_counter()
        out = module.run_one(config, arm, seed, progress=progress)
        done[(arm, seed)] = {
            "arm": arm, "seed": seed, "commit": code["commit"], "wall_seconds": round(time.perf_counter() - tic, 1), **out
        }
        finished = list(done.values())
        store.write_json_atomic(partial, {  # an interrupted run keeps what it finished, and where it came from
            "paper": paper, "profile": profile, "config": config, "seeds": seed_ids,
            "provenance": store.provenance(config.get("device", "cpu"), started,
                                           sum(r["wall_seconds"] for r in finished), code),
            "runs": finished,
        })

    while todo := pending():  # more than one round only when later units depend on earlier runs
        for arm, seed in tqdm(todo, desc=f"{paper}/{profile} runs", unit="run", disable=not progress):
            train(arm, seed)

    runs = [done[unit] for unit in units_of(module, config, seed_ids, done)]
    result = {
        "paper": paper,
        "profile": profile,
        "config": config,
        "seeds": seed_ids,
        "provenance": store.provenance(config.get("device", "cpu"), started, sum(r["wall_seconds"] for r in runs), code),
        "runs": runs,
        "claims": module.claims(config, runs),
        "paper_values": module.PAPER_VALUES,
    }
    store.write_json_atomic(path, result)
    partial.unlink(missing_ok=True)
    return result


def reanalyse(paper: str, profile: str = "cpu", *, results_dir: Path | None = None) -> dict:
    """Recompute the claims (and refresh the paper values) of a stored result from its runs.

    Claims are analysis: a function of the runs and the config. When the analysis code
    changes, this brings a result file up to date without retraining; the runs, seeds,
    config and training provenance stay exactly as they were, and
    ``provenance["analysis"]`` records the commit whose code computed the claims.
    """
    module = get(paper)
    path = store.result_path(paper, check_profile(profile), results_dir)
    result = store.read_json(path)
    if result is None:
        raise FileNotFoundError(f"{path} does not exist: run `make reproduce PAPER={paper} PROFILE={profile}` first")
    result["claims"] = store.normalise(module.claims(result["config"], result["runs"]))
    result["paper_values"] = store.normalise(module.PAPER_VALUES)
    result["provenance"]["analysis"] = {**store.git_state(), "at": store.now().isoformat(timespec="seconds")}
    store.write_json_atomic(path, result)
    return result

"""Result files written before the current config vocabulary, brought up to date without touching a number.

Each upgrade renames keys of a stored ``config`` (and of its runs' curves and metrics)
to the names the current spec uses, or reshapes an entry into its current form (an
int width into a list of widths, a schedule point in epochs into a fraction of the run);
it never changes what ran. :func:`upgrade` checks that the runs carry exactly the same
numbers before and after, records that the file was upgraded and by which commit, and
adds the digest of the runs that later checks compare against. :func:`replib.experiments.reanalyse`
applies it to files that have no digest yet.
"""

from __future__ import annotations

import copy
from types import ModuleType
from typing import Callable

from .. import results as store

UPGRADES: dict[str, Callable[[dict], dict]] = {}


def upgrades(paper: str):
    """Register the upgrade of ``paper``'s stored results (a function of the result, returning it)."""

    def register(fn: Callable[[dict], dict]) -> Callable[[dict], dict]:
        UPGRADES[paper] = fn
        return fn

    return register


def rename(mapping: dict, renames: dict[str, str]) -> dict:
    """``mapping`` with keys renamed by ``renames``, in their original order."""
    return {renames.get(k, k): v for k, v in mapping.items()}


def numbers(value) -> list[float]:
    """Every number in a JSON value, sorted: what an upgrade of the runs must leave unchanged."""
    if isinstance(value, dict):
        return sorted(x for v in value.values() for x in numbers(v))
    if isinstance(value, list):
        return sorted(x for v in value for x in numbers(v))
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return []
    return [float(value)]


def upgrade(module: ModuleType, result: dict) -> dict:
    """``result`` in the current vocabulary, with its runs' digest; unchanged if it already has one."""
    if "runs_sha256" in result["provenance"]:
        return result
    before = numbers(result["runs"])
    fn = UPGRADES.get(module.PAPER)
    result = fn(copy.deepcopy(result)) if fn else copy.deepcopy(result)
    if numbers(result["runs"]) != before:
        raise AssertionError(f"the upgrade of {module.PAPER} changed a number in its runs")
    result["provenance"]["runs_sha256"] = store.runs_digest(result["runs"])
    result["provenance"]["upgraded"] = {
        **store.git_state(), "at": store.now().isoformat(timespec="seconds"),
        "what": "config and curve names brought to the current vocabulary; no run or number changed",
    }
    return result

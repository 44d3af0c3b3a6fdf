"""A tiny experiment for the tests of the ray executor, importable by name on Ray's workers (they run in other
processes, so the tests steer it through a control file named by ``$SCALE_FAKE_CONTROL``, not through Python).

Units come in two rounds, as in a sweep: first arm ``a`` on every seed, then, once every ``a`` is done, arm ``b``.
The control file (JSON) may say ``{"die_once": [arm, seed]}`` (that unit kills its worker the first time it
runs), ``{"fail": [arm, seed]}`` (that unit raises every time) or ``{"sleep": {arm: seconds}}`` (every unit of
that arm sleeps first).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

from replib import claims as rule
from replib._validate import PositiveInt, Spec

PAPER = "scalefake2099"
TITLE = "Scale fake 2099"
PAPER_VALUES = [{"id": "x", "value": 1.0, "where": "nowhere", "confirmed": False}]
PROFILES = {p: {"seeds": 2} for p in ("smoke", "cpu", "paper")}
FIGURES: dict = {}
TABLES: dict = {}


class Config(Spec):
    epochs: PositiveInt = 2


def _control() -> dict:
    path = os.environ.get("SCALE_FAKE_CONTROL")
    return json.loads(Path(path).read_text()) if path and Path(path).is_file() else {}


def units(config, seeds, done):
    first = [("a", seed) for seed in seeds]
    return first + ([("b", seed) for seed in seeds] if all(u in done for u in first) else [])


def run_one(config, arm, seed, progress=True):
    control = _control()
    if control.get("die_once") == [arm, seed]:
        marker = Path(os.environ["SCALE_FAKE_CONTROL"]).with_suffix(f".died-{arm}-{seed}")
        if not marker.exists():
            marker.touch()
            os._exit(1)  # the worker process dies, as on a lost node
    if control.get("fail") == [arm, seed]:
        raise ValueError(f"unit {arm} {seed} fails on purpose")
    time.sleep(control.get("sleep", {}).get(arm, 0))
    return {"metrics": {"score": 10 * seed + len(arm) + float(torch.rand(()))}, "curves": {"epoch": [1, 2]}}


def claims(config, runs):
    score = {arm: {r["seed"]: r["metrics"]["score"] for r in runs if r["arm"] == arm} for arm in ("a", "b")}
    return [rule.direction("c", "a scores below b", score["a"], score["b"], names=("a", "b"))]


def facts(result):
    return {}

"""How every chapter decides its claims and its verdict: one rule, stated once.

**The rule.** A claim compares per-seed numbers: two arms trained with the same seeds
(paired by seed), or one arm against a fixed level (a paper's number, a prediction). Its
evidence is the 95% confidence interval of the mean paired difference, a Student-t
interval over the seeds (``scipy.stats.ttest_1samp``; with ``n`` seeds it has ``n - 1``
degrees of freedom, so two or three seeds give wide intervals, as they should). Then:

- a **direction** claim ("A is lower than B") *holds* when the whole interval lies on the
  claimed side of zero, *fails* when it lies wholly on the other side, and is
  *inconclusive* otherwise (including with a single seed, which gives no interval);
- an **equivalence** claim ("A is within m of B") *holds* when the whole interval lies
  inside ``[-m, m]``, *fails* when it lies wholly outside, and is *inconclusive* otherwise;
- a **band** claim ("the measured saving is 0.8x to 1.25x of the prediction") is an
  equivalence claim on the ratio: it holds when the ratio's interval lies inside the band;
- a claim made of parts (an ordering of three arms) holds when every part holds, fails
  when any part fails, and is inconclusive otherwise.

A property true by construction is a **check**: it is shown, never counted. A claim the
paper does not make records ``counts: False`` and is shown apart from the verdict.

**The verdict** (:data:`VERDICTS`) is a function of the counted claims alone.

Every claim is a JSON-ready dict: ``id``, ``statement``, ``kind`` (``direction``,
``level``, ``equivalence``, ``band``, ``all``, ``check``), ``outcome`` (``holds``,
``fails``, ``inconclusive``), ``counts``, ``rule`` (the decision in words) and
``evidence`` (label -> formatted text a reader can read).
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

import numpy as np

OUTCOMES = ("holds", "fails", "inconclusive")
# An outcome as the predicate of a sentence whose subject is the claim: "the claim holds", "... is inconclusive".
OUTCOME_PREDICATES = {"holds": "holds", "fails": "fails", "inconclusive": "is inconclusive"}
CONFIDENCE = 0.95

VERDICTS = {
    "reproduced": "every counted claim holds, the paper's levels included (within the tolerance each level claim states)",
    "reproduced in direction": "every counted claim about a direction or an ordering holds, but a claim on the "
                               "paper's levels fails or is inconclusive",
    "partly reproduced": "some counted claims hold and others fail or are inconclusive",
    "not reproduced": "no counted claim holds and at least one fails",
    "inconclusive": "no counted claim holds or fails: the seeds cannot separate the arms at this budget",
}

Values = Mapping[int, float] | Sequence[float]


# --------------------------------------------------------------------------- statistics


def _per_seed(values: Values) -> dict[int, float]:
    if isinstance(values, Mapping):
        return {int(k): float(v) for k, v in values.items()}
    return {i: float(v) for i, v in enumerate(values)}


def by_seed(runs: Sequence[dict], metric: str, group=None) -> dict:
    """``metric`` of every run that has it, as ``group(arm) -> seed -> value`` (``group``: the arm itself
    by default), groups in the order the runs first show them: what the claims pair by seed."""
    out: dict = {}
    for r in runs:
        if metric in r["metrics"]:
            out.setdefault(group(r["arm"]) if group else r["arm"], {})[r["seed"]] = r["metrics"][metric]
    return out


def paired(a: Values, b: Values | float) -> np.ndarray:
    """Per-seed differences ``a - b``: over the seeds both have (``b`` may be a constant)."""
    a = _per_seed(a)
    if isinstance(b, (int, float)):
        return np.array([a[s] - float(b) for s in sorted(a)])
    b = _per_seed(b)
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError(f"no seed in common to pair: {sorted(a)} vs {sorted(b)}")
    return np.array([a[s] - b[s] for s in seeds])


def interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(mean, low, high): the Student-t confidence interval of the mean; (mean, nan, nan) for one value."""
    from scipy import stats

    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("interval of no values")
    mean = float(x.mean())
    if x.size == 1:
        return mean, math.nan, math.nan
    if np.ptp(x) <= 1e-12 * max(1.0, float(np.abs(x).max())):  # every replicate agrees (up to rounding):
        return mean, mean, mean  # the interval is the point (scipy would return nan or a spurious width)
    ci = stats.ttest_1samp(x, 0.0).confidence_interval(confidence)
    return mean, float(ci.low), float(ci.high)


def _side(low: float, high: float, claimed: str) -> str:
    """Outcome of 'the difference is below 0' (claimed 'less') or 'above 0' (claimed 'greater')."""
    if math.isnan(low):
        return "inconclusive"
    below, above = high < 0, low > 0
    if claimed == "less":
        return "holds" if below else "fails" if above else "inconclusive"
    return "holds" if above else "fails" if below else "inconclusive"


def _inside(low: float, high: float, lo: float, hi: float) -> str:
    if math.isnan(low):
        return "inconclusive"
    if lo <= low and high <= hi:
        return "holds"
    return "fails" if high < lo or low > hi else "inconclusive"


# --------------------------------------------------------------------------- formatting


def fmt(value: float | None, digits: int = 2, unit: str = "") -> str:
    """A number for prose and tables: fixed digits, a thin unit; '—' for none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}{unit}"


def mean_sd(values: Iterable[float], digits: int = 2, unit: str = "", *, count: bool = True) -> str:
    """'mean ± sd (n seeds)', sd the sample standard deviation; one seed shows no ± at all. ``count=False``
    leaves out the count (for tables whose caption states it once)."""
    x = np.asarray(list(values), dtype=float)
    seeds = f" ({x.size} seed{'s' if x.size > 1 else ''})" if count else ""
    if x.size == 1:
        return f"{fmt(x[0], digits)}{unit}{seeds}"
    return f"{fmt(x.mean(), digits)} ± {fmt(x.std(ddof=1), digits)}{unit}{seeds}"


def fmt_interval(mean: float, low: float, high: float, digits: int = 2, unit: str = "", replicates: str = "seed") -> str:
    if math.isnan(low):
        return f"{fmt(mean, digits)}{unit} (one {replicates}: no interval)"
    return f"{fmt(mean, digits)}{unit}, 95% CI [{fmt(low, digits)}, {fmt(high, digits)}]"


def per_seed(values: Values, digits: int = 2) -> str:
    return ", ".join(fmt(v, digits) for _, v in sorted(_per_seed(values).items()))


# --------------------------------------------------------------------------- claims


def _claim(id: str, statement: str, kind: str, outcome: str, rule: str, evidence: dict, counts: bool,
           aspect: str) -> dict:
    assert outcome in OUTCOMES
    return {"id": id, "statement": statement, "kind": kind, "aspect": aspect, "counts": counts,
            "outcome": outcome, "rule": rule, "evidence": evidence}


def direction(id: str, statement: str, a: Values, b: Values | float, *, claimed: str = "less",
              names: tuple[str, str] = ("A", "B"), digits: int = 2, unit: str = "", counts: bool = True,
              aspect: str = "direction", replicates: str = "seed") -> dict:
    """'a is lower (``claimed='less'``) or higher (``'greater'``) than b', paired by seed.

    ``b`` may be a constant (a paper's level, a threshold): then the claim is one-sample.
    ``replicates`` names what the keys of ``a`` and ``b`` are when they are not seeds
    (e.g. ``"timed step"``), for the rule and evidence in words.
    """
    if claimed not in ("less", "greater"):
        raise ValueError(f"claimed must be 'less' or 'greater', got {claimed!r}")
    d = paired(a, b)
    mean, low, high = interval(d)
    word = "below" if claimed == "less" else "above"
    how = f"per {replicates}, against {fmt(float(b), digits)}" if isinstance(b, (int, float)) else f"paired by {replicates}"
    rule = (f"{names[0]} − {names[1]}, {how}: holds if the 95% t-interval of the mean difference "
            f"lies wholly {word} 0, fails if wholly on the other side, else inconclusive")
    evidence = {
        f"{names[0]} − {names[1]}": fmt_interval(mean, low, high, digits, unit, replicates),
        f"{names[0]} − {names[1]} per {replicates}": per_seed(d, digits),
    }
    return _claim(id, statement, "direction", _side(low, high, claimed), rule, evidence, counts, aspect)


def level(id: str, statement: str, ours: Values, paper: float, *, claimed: str = "less", tolerance: float = 0.0,
          name: str = "ours", digits: int = 2, unit: str = "", counts: bool = True) -> dict:
    """'ours reaches the paper's level': ours below (``claimed='less'``) ``paper + tolerance``, or above
    (``'greater'``) ``paper - tolerance``; decided like :func:`direction` against that constant."""
    bound = paper + tolerance if claimed == "less" else paper - tolerance
    c = direction(id, statement, ours, bound, claimed=claimed, names=(name, f"{fmt(bound, digits)}"),
                  digits=digits, unit=unit, counts=counts, aspect="level")
    c["evidence"] = {f"paper{' (tolerance ' + fmt(tolerance, digits) + ')' if tolerance else ''}": fmt(paper, digits, unit),
                     f"{name}": mean_sd(_per_seed(ours).values(), digits, unit), **c["evidence"]}
    return c


def equivalence(id: str, statement: str, a: Values, b: Values, *, margin: float, names: tuple[str, str] = ("A", "B"),
                digits: int = 2, unit: str = "", counts: bool = True, replicates: str = "seed") -> dict:
    """'a is within ``margin`` of b', paired by seed: the whole interval must lie inside [-margin, margin]."""
    if not margin > 0:
        raise ValueError(f"margin must be > 0, got {margin!r}")
    d = paired(a, b)
    mean, low, high = interval(d)
    rule = (f"{names[0]} − {names[1]}, paired by {replicates}: holds if the 95% t-interval of the mean difference "
            f"lies wholly inside ±{fmt(margin, digits)}{unit}, fails if wholly outside it, else inconclusive")
    evidence = {
        f"{names[0]} − {names[1]}": fmt_interval(mean, low, high, digits, unit, replicates),
        f"{names[0]} − {names[1]} per {replicates}": per_seed(d, digits),
        "margin": f"±{fmt(margin, digits)}{unit}",
    }
    return _claim(id, statement, "equivalence", _inside(low, high, -margin, margin), rule, evidence, counts,
                  "direction")


def band(id: str, statement: str, measured: Values, predicted: Values | float, *, low: float = 0.8,
         high: float = 1.25, name: str = "measured / predicted", digits: int = 2, counts: bool = True,
         aspect: str = "level", replicates: str = "seed") -> dict:
    """'measured matches predicted': the ratio's 95% t-interval over seeds lies inside [low, high]."""
    m = _per_seed(measured)
    p = _per_seed(predicted) if not isinstance(predicted, (int, float)) else {s: float(predicted) for s in m}
    ratios = {s: m[s] / p[s] for s in sorted(set(m) & set(p))}
    mean, lo, hi = interval(list(ratios.values()))
    rule = (f"{name}, per {replicates}: holds if the 95% t-interval of the mean ratio lies wholly inside "
            f"[{fmt(low, 2)}, {fmt(high, 2)}], fails if wholly outside, else inconclusive")
    evidence = {name: fmt_interval(mean, lo, hi, digits, "", replicates),
                f"{name} per {replicates}": per_seed(ratios, digits)}
    return _claim(id, statement, "band", _inside(lo, hi, low, high), rule, evidence, counts, aspect)


def all_of(id: str, statement: str, parts: Sequence[dict], *, counts: bool = True) -> dict:
    """A claim made of parts: holds if every part holds, fails if any fails, else inconclusive."""
    outcomes = [p["outcome"] for p in parts]
    outcome = "holds" if all(o == "holds" for o in outcomes) else "fails" if "fails" in outcomes else "inconclusive"
    evidence = {f"{p['statement']}": f"{p['outcome']}: " + "; ".join(f"{k}: {v}" for k, v in p["evidence"].items())
                for p in parts}
    rule = "holds if every part holds, fails if any part fails, else inconclusive; each part: " + parts[0]["rule"]
    aspect = "level" if any(p["aspect"] == "level" for p in parts) else "direction"
    return _claim(id, statement, "all", outcome, rule, evidence, counts, aspect)


def check(id: str, statement: str, holds: bool, evidence: dict, *, why: str) -> dict:
    """A property true by construction (``why``): shown with the claims, never counted in the verdict."""
    return _claim(id, statement, "check", "holds" if holds else "fails", f"check, not a claim: {why}",
                  evidence, False, "check")


def beyond_paper(claim: dict) -> dict:
    """The same claim marked as one the paper does not make: shown apart, not counted."""
    return {**claim, "counts": False}


# --------------------------------------------------------------------------- verdict


def counted(claims: Sequence[dict]) -> list[dict]:
    return [c for c in claims if c["counts"] and c["kind"] != "check"]


def verdict(claims: Sequence[dict]) -> str:
    """The chapter's verdict from its counted claims, by the definitions in :data:`VERDICTS`."""
    counts = counted(claims)
    if not counts:
        raise ValueError("a verdict needs at least one counted claim")
    outcomes = [c["outcome"] for c in counts]
    if all(o == "holds" for o in outcomes):
        return "reproduced"
    directional = [c["outcome"] for c in counts if c["aspect"] != "level"]
    if directional and all(o == "holds" for o in directional):
        return "reproduced in direction"
    if "holds" not in outcomes:
        return "not reproduced" if "fails" in outcomes else "inconclusive"
    return "partly reproduced"


def tally(claims: Sequence[dict]) -> dict[str, int]:
    """How many counted claims hold, fail and are inconclusive."""
    outcomes = [c["outcome"] for c in counted(claims)]
    return {o: outcomes.count(o) for o in OUTCOMES}

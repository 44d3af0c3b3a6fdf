"""What every chapter shows about a result: the header facts, the claims and checks, the verdict,
the figures in the house style, and the numbers its prose quotes.

In the book, the header block at the top of a chapter and the numbers in its prose pull
these in with MyST-NB's ``glue``; under plain papermill they are displayed in place.
This module knows results and experiment modules only through what they hold; it
imports no experiment.
"""

from __future__ import annotations

from types import ModuleType

import pandas as pd

from . import claims as rule
from .plotting import save_figure, use_house_style
from .results import REPO_ROOT


def run_shown(result: dict) -> str:
    """One line: profile, seeds, hardware, training time, commit and date of the run."""
    prov = result["provenance"]
    hw = prov["hardware"]
    threads = hw["torch_threads"]
    device = hw.get("gpu") or f"{hw['cpu']} ({hw['cpu_count']} cores, {threads} torch thread{'s' if threads != 1 else ''})"
    minutes = prov["wall_seconds"] / 60
    dirty = " with uncommitted changes" if prov.get("dirty") else ""
    seeds = result["seeds"]
    path = getattr(result, "path", None)
    apart = (f" with overrides (stored apart, as `{path.name}`)"
             if path is not None and path.name != f"{result['profile']}.json" else "")
    load = prov.get("load_average_1min") or {}
    quiet = (f", load {load['start']:g} → {load['end']:g}" if load.get("start") is not None
             and load.get("end") is not None else "")
    return (
        f"`{result['profile']}` profile{apart}, {len(seeds)} seed{'s' if len(seeds) > 1 else ''} "
        f"({', '.join(map(str, seeds))}), "
        f"{minutes:.1f} min of training on {device} in {precision_used(result)}{quiet}, torch {prov['versions']['torch']}, "
        f"commit `{prov['commit'][:10]}`{dirty}, started {prov['started']}"
    )


def precision_used(result: dict) -> str:
    """The arithmetic the runs trained in: as each run recorded it (:func:`replib.precision.choose`), else fp32,
    the only precision of experiments that do not choose."""
    chosen = sorted({r["precision"]["precision"] for r in result["runs"] if "precision" in r})
    return " and ".join(chosen) or "fp32"


def result_file(result: dict) -> str | None:
    """One line: the file a result was read from or written to, and whether it is the profile's own.

    None for a result that does not know its file (a dict read by hand rather than
    returned by :func:`replib.experiments.run`).
    """
    path = getattr(result, "path", None)
    if path is None:
        return None
    shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
    how = "written by this run" if result.written else "stored result, no training"
    profile = result["profile"]
    apart = ("" if path.name == f"{profile}.json" else
             f"; its config or seeds differ from the `{profile}` profile's, so it is stored apart from "
             f"`{profile}.json`, the file the book shows")
    return f"`{shown}` ({how}{apart})"


def verdict(result: dict) -> str:
    return rule.verdict(result["claims"])


def verdict_line(result: dict) -> str:
    """The verdict in bold and the tally of counted claims it was decided on."""
    tally = rule.tally(result["claims"])
    total = sum(tally.values())
    parts = [f"{n} {o}" for o, n in tally.items() if n and o != "holds"]
    rest = f" ({', '.join(parts)})" if parts else ""
    verb = "holds" if total == 1 else "hold"
    return (f"**{verdict(result)}**: {tally['holds']} of {total} counted claim{'s' if total != 1 else ''} "
            f"{verb}{rest} in the `{result['profile']}` run shown")


def _rows(claims: list[dict]) -> pd.DataFrame:
    rows = [{"claim": c["statement"], "outcome": c["outcome"],
             "evidence": "; ".join(f"{k}: {v}" for k, v in c["evidence"].items()), "rule": c["rule"]}
            for c in claims]
    return pd.DataFrame(rows, columns=["claim", "outcome", "evidence", "rule"]).set_index("claim")


def claims_table(result: dict) -> pd.DataFrame:
    """The counted claims: each with its outcome, the numbers it was decided on and the rule that decided it."""
    return _rows(rule.counted(result["claims"]))


def apart_table(result: dict) -> pd.DataFrame | None:
    """Checks (true by construction) and claims beyond the paper: shown, not counted. None if there are none."""
    apart = [c for c in result["claims"] if c not in rule.counted(result["claims"])]
    if not apart:
        return None
    table = _rows(apart)
    table.insert(0, "kind", ["check" if c["kind"] == "check" else "beyond the paper" for c in apart])
    return table


def figure(module: ModuleType, result: dict, name: str):
    """Figure ``name`` of ``module`` in the house style, exported as ``<paper>-<name>.png`` / ``.svg``."""
    use_house_style()
    fig = module.FIGURES[name](result)
    save_figure(fig, module.PAPER, name)
    return fig


def table(module: ModuleType, result: dict, name: str = "paper_vs_ours") -> pd.DataFrame:
    return module.TABLES[name](result)


def glue_header(result: dict) -> None:
    """Glue ``verdict`` and ``run_shown`` for the chapter's header block, and display them with the result file."""
    from IPython.display import Markdown, display
    from myst_nb import glue

    glue("verdict", Markdown(verdict_line(result)), display=False)
    glue("run_shown", Markdown(run_shown(result)), display=False)
    where = result_file(result)
    display(Markdown(f"**Verdict:** {verdict_line(result)}  \n**Run shown:** {run_shown(result)}"
                     + (f"  \n**Result file:** {where}" if where else "")))


def glue_facts(module: ModuleType, result: dict) -> dict[str, str]:
    """Glue every fact the chapter's prose quotes (``{glue:md}`name```), each computed from the result.

    Every claim's outcome is glued too, as ``outcome_<claim id>``.
    """
    from IPython.display import Markdown
    from myst_nb import glue

    facts = {**module.facts(result), **{f"outcome_{c['id']}": c["outcome"] for c in result["claims"]}}
    for name, text in facts.items():
        glue(name, Markdown(text), display=False)
    return facts


# --------------------------------------------------------------------------- benchmarks of accuracy against time

NET_LABELS = {"fast": "fast net", "resnet20": "ResNet-20"}


def _as_list(records: dict | list[dict]) -> list[dict]:
    return [records] if isinstance(records, dict) else list(records)


def fast_cifar_table(records: dict | list[dict]) -> pd.DataFrame:
    """One row per net and budget of ``results/benchmarks/fast_cifar*.json`` (one record or several runs): epochs,
    minutes, test accuracy, precision, and the run's commit."""
    rows = [{"net": NET_LABELS.get(name, name), "budget (min)": float(budget), "epochs": run["epochs"],
             "training minutes": round(run["train_minutes"], 1), "test accuracy (%)": run["test_accuracy"],
             "precision": net["precision"]["precision"], "run (commit)": record["provenance"]["commit"][:7]}
            for record in _as_list(records) for name, net in record["nets"].items()
            for budget, run in net["budgets"].items()]
    order = list(dict.fromkeys(row["net"] for row in rows))  # nets as the records list them, budgets rising
    rows.sort(key=lambda row: (order.index(row["net"]), row["budget (min)"]))
    return pd.DataFrame(rows).set_index(["net", "budget (min)"])


def fast_cifar_figure(records: dict | list[dict]):
    """Test accuracy after every epoch against cumulative training minutes, one line per run; the goals as marks;
    the machine in the title (of the first record: runs on other machines are not mixed here).
    Exported as ``benchmarks-fast_cifar.png`` / ``.svg``."""
    import matplotlib.pyplot as plt

    from .plotting import palette

    use_house_style()
    records = _as_list(records)
    record = records[0]
    machines = {(r["provenance"]["hardware"]["cpu"], r["provenance"]["hardware"]["torch_threads"]) for r in records}
    if len(machines) > 1:
        raise ValueError(f"fast_cifar_figure draws runs of one machine and thread count, got {sorted(machines)}")
    fig, ax = plt.subplots(figsize=(8, 4.6))
    names = list(dict.fromkeys(name for r in records for name in r["nets"]))
    colors = dict(zip(names, palette(len(names))))
    runs = sorted(((name, float(budget), run, net["precision"]["precision"]) for r in records
                   for name, net in r["nets"].items() for budget, run in net["budgets"].items()),
                  key=lambda t: (names.index(t[0]), t[1]))
    for name, budget, run, precision in runs:
        i = [b for n, b, _, _ in runs if n == name].index(budget)
        curve = run["curve"]
        ax.plot(curve["train_minutes"], curve["test_accuracy"], marker="o", markersize=3, color=colors[name],
                linestyle=("-", "--", ":")[i % 3], label=f"{NET_LABELS.get(name, name)}, {budget:g}-min run ({precision})")
    goals = record.get("goals", [])
    for minutes, accuracy in goals:  # labels to the right of the star, but of the last one to its left
        right = minutes == max(m for m, _ in goals)
        ax.plot([minutes], [accuracy], marker="*", markersize=12, color="black", linestyle="none")
        ax.annotate(f"goal on an AVX2-only CPU, fp32:\n{accuracy:g}% in {minutes:g} min", (minutes, accuracy),
                    textcoords="offset points", xytext=(-8 if right else 8, -30), ha="right" if right else "left",
                    fontsize=8)
    hardware = record["provenance"]["hardware"]
    ax.set(xlabel="minutes of training (cumulative; evaluation not counted)", ylabel="test accuracy (%)")
    ax.set_title(f"CIFAR-10, all 50,000 training images: {hardware['cpu']}, {hardware['cpu_capability']}, "
                 f"{hardware['torch_threads']} threads", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    save_figure(fig, "benchmarks", "fast_cifar")
    return fig

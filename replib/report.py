"""What every chapter shows about a result: the header facts, the claims and checks, the verdict,
the figures in the house style, and the numbers its prose quotes.

In the book, the header block at the top of a chapter and the numbers in its prose pull
these in with MyST-NB's ``glue``; under plain papermill they are displayed in place.
This module knows results and experiment modules only through what they hold; it
imports no experiment.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pandas as pd

from . import claims as rule
from .plotting import save_figure, use_house_style
from .results import REPO_ROOT


def cpu_kernels(hw: dict) -> str:
    """", AVX512, native bf16": the vector kernels torch used and whether bf16 is native, which set a CPU's speed
    (each left out where an older result did not record it)."""
    bf16 = {True: "native bf16", False: "no native bf16"}.get(hw.get("bf16_native"))
    return "".join(f", {words}" for words in (hw.get("cpu_capability"), bf16) if words)


def run_shown(result: dict) -> str:
    """One line: profile, seeds, hardware (the CPU's vector kernels and whether bf16 is native, which set its
    speed), training time, commit and date of the run."""
    prov = result["provenance"]
    hw = prov["hardware"]
    threads = hw["torch_threads"]
    device = hw.get("gpu") or (f"{hw['cpu']} ({hw['cpu_count']} cores{cpu_kernels(hw)}, "
                               f"{threads} torch thread{'s' if threads != 1 else ''})")
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


def result_path(result: dict) -> str | None:
    """The result's file relative to the repository root (``results/<paper>/<file>.json``), as the book publishes
    it at the same path under the site's root; None for a result outside the repository or without a file."""
    path = getattr(result, "path", None)
    return path.relative_to(REPO_ROOT).as_posix() if path is not None and path.is_relative_to(REPO_ROOT) else None


def result_link(result: dict) -> str:
    """The result file for a chapter's header in the book: a link to its published copy (chapters live one
    level below the site's root), and whether this build trained or read it."""
    where = result_path(result)
    if where is None:
        return result_file(result) or "not known (a result not returned by the runner)"
    how = "written by this build" if result.written else "stored result, no training"
    return f'<a href="../{where}"><code>{where}</code></a> ({how})'


def site_urls(config_file: Path | None = None) -> dict[str, str]:
    """The book's public addresses from ``_config.yml``, where set: ``repository`` (``repository.url``) and
    ``site`` (``html.baseurl``, the published book's root); the cite boxes name them."""
    import yaml

    book = yaml.safe_load((config_file or REPO_ROOT / "_config.yml").read_text()) or {}
    urls = {"repository": (book.get("repository") or {}).get("url"), "site": (book.get("html") or {}).get("baseurl")}
    return {name: url.rstrip("/") for name, url in urls.items() if url}


def figure_bibtex(module: ModuleType, result: dict, urls: dict[str, str] | None = None) -> str:
    """A BibTeX entry for each of the chapter's figures (``module.FIGURES``): its stable file name, the book's
    version, and the commit and date of the run it was drawn from, so a citation names exactly what was shown;
    the figure's URL and the repository where ``urls`` (default :func:`site_urls`) has them."""
    from importlib.metadata import version

    prov, urls = result["provenance"], site_urls() if urls is None else urls
    where = result_path(result) or "its result file"
    code = f" of {urls['repository']}" if "repository" in urls else ""
    entries = []
    for name in module.FIGURES:
        stable = f"{module.PAPER}-{name}"
        url = f"  url          = {{{urls['site']}/{stable}.png}},\n" if "site" in urls else ""
        entries.append(
            f"@misc{{dropoutbook_{stable.replace('-', '_')},\n"
            f"  title        = {{{{{module.TITLE}}}: figure {stable}}},\n"
            f"  author       = {{{{The dropout-book contributors}}}},\n"
            f"  year         = {{{prov['started'][:4]}}},\n"
            f"  howpublished = {{dropout-book {version('replib')}, {stable}.png and {stable}.svg at the site's root}},\n"
            f"{url}"
            f"  note         = {{The `{result['profile']}' run at commit {prov['commit'][:10]}{code}, started "
            f"{prov['started'][:10]}; its numbers are in {where}}}\n}}")
    return "\n\n".join(entries)


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


OUTCOME_MARKS = {"holds": "✔ holds", "fails": "✘ fails", "inconclusive": "○ inconclusive"}


def _claims_markdown(claims: list[dict], kinds: bool = False) -> str:
    """Each claim in full for a reader: its outcome (marked), its statement, the rule that decided it and every
    number of its evidence; ``kinds``: say whether it is a check or a claim beyond the paper."""
    blocks = []
    for c in claims:
        kind = ("*check*, " if c["kind"] == "check" else "*beyond the paper*, ") if kinds else ""
        evidence = "\n".join(f"  - {name}: {value}" for name, value in c["evidence"].items())
        blocks.append(f"**{OUTCOME_MARKS[c['outcome']]}**: {kind}{c['statement']}\n\n"
                      f"- *rule:* {c['rule']}\n- *evidence:*\n{evidence}")
    return "\n\n".join(blocks)


def claims_view(result: dict):
    """The counted claims, each with its outcome, the rule that decided it and the numbers it was decided on."""
    from IPython.display import Markdown

    return Markdown(_claims_markdown(rule.counted(result["claims"])))


def apart_view(result: dict):
    """Checks (true by construction) and claims beyond the paper: shown, not counted. None if there are none."""
    from IPython.display import Markdown

    apart = [c for c in result["claims"] if c not in rule.counted(result["claims"])]
    return Markdown(_claims_markdown(apart, kinds=True)) if apart else None


def figure(module: ModuleType, result: dict, name: str):
    """Figure ``name`` of ``module`` in the house style, exported as ``<paper>-<name>.png`` / ``.svg``."""
    use_house_style()
    fig = module.FIGURES[name](result)
    save_figure(fig, module.PAPER, name)
    return fig


def glue_figure(module: ModuleType, result: dict, name: str):
    """:func:`figure`, glued as ``<paper>-<name>`` for the chapter's numbered figure (MyST's ``glue:figure``, with
    its caption and the links to the stable exports beside it); returned, so a notebook run by papermill shows it."""
    from myst_nb import glue

    fig = figure(module, result, name)
    glue(f"{module.PAPER}-{name}", fig, display=False)
    return fig


def frame_markdown(frame: pd.DataFrame, digits: int = 2) -> str:
    """A table for a reader, as Markdown: the index levels become the first columns under their own names (no
    separate header row for them), floats get ``digits`` decimals with thousands separators, missing values '—'."""
    flat = frame.reset_index() if any(name is not None for name in frame.index.names) else frame

    def cell(value) -> str:
        if isinstance(value, float) or (hasattr(value, "dtype") and value.dtype.kind == "f"):
            return rule.fmt(float(value), digits)
        return "—" if value is None else str(value).replace("|", "\\|").replace("\n", " ")

    return _markdown_table([str(c) for c in flat.columns], [[cell(v) for v in row] for row in flat.itertuples(index=False)])


def frame_view(frame: pd.DataFrame, digits: int = 2):
    """:func:`frame_markdown`, displayed as Markdown (the book renders it as a table that scrolls in its own box)."""
    from IPython.display import Markdown

    return Markdown(frame_markdown(frame, digits))


def table(module: ModuleType, result: dict, name: str = "paper_vs_ours", digits: int = 2):
    """The experiment's table ``name`` for the page (:func:`frame_view`); the DataFrame itself is
    ``module.TABLES[name](result)``."""
    return frame_view(module.TABLES[name](result), digits)


def glue_header(result: dict) -> None:
    """Glue ``verdict``, ``run_shown`` and ``result_file`` for the chapter's header block, and display them (the
    book shows the header alone; a notebook run by papermill shows this display)."""
    from IPython.display import Markdown, display
    from myst_nb import glue

    where = result_file(result)
    glue("verdict", Markdown(verdict_line(result)), display=False)
    glue("run_shown", Markdown(run_shown(result)), display=False)
    glue("result_file", Markdown(result_link(result)), display=False)
    display(Markdown(f"**Verdict:** {verdict_line(result)}  \n**Run shown:** {run_shown(result)}"
                     + (f"  \n**Result file:** {where}" if where else "")))


def chapter_facts(module: ModuleType, result: dict) -> dict[str, str]:
    """Every fact a chapter's prose may quote, by name, each computed from the result: the module's
    ``facts`` and every claim's outcome, as ``outcome_<claim id>`` (the word: "holds") and as
    ``claim_<claim id>`` (the predicate, for "the claim ...": "holds", "is inconclusive")."""
    return {**module.facts(result), **{f"outcome_{c['id']}": c["outcome"] for c in result["claims"]},
            **{f"claim_{c['id']}": rule.OUTCOME_PREDICATES[c["outcome"]] for c in result["claims"]}}


def glue_facts(module: ModuleType, result: dict) -> dict[str, str]:
    """Glue every fact the chapter's prose quotes (``{glue:md}`name```): :func:`chapter_facts`, and the BibTeX
    of the chapter's figures (:func:`figure_bibtex`) as ``cite_figures``."""
    from IPython.display import Markdown
    from myst_nb import glue

    facts = chapter_facts(module, result)
    for name, text in facts.items():
        glue(name, Markdown(text), display=False)
    glue("cite_figures", Markdown(f"```bibtex\n{figure_bibtex(module, result)}\n```"), display=False)
    return facts


# --------------------------------------------------------------------------- the landing page


def chapter_label(paper: str) -> str:
    """The MyST label of a chapter's title (``(chapter-gal2016-mc)=`` in its notebook)."""
    return "chapter-" + paper.replace("_", "-")


def dashboard(chapters: list[tuple[ModuleType, dict]]) -> str:
    """The verdict of every chapter at a glance, as a MyST table for the landing page: one row per
    ``(experiment module, result)`` with the chapter (linked) and its paper (cited), the claim tested in a line,
    the verdict, its counted claims held / failed / inconclusive, the seeds, the run's wall time and its date."""
    head = ("| chapter | claim tested | verdict | counted claims: held / failed / inconclusive | seeds "
            "| wall time | run on |\n|---|---|---|---|---|---|---|")
    rows = []
    for module, result in chapters:
        tally = rule.tally(result["claims"])
        prov, hw = result["provenance"], result["provenance"]["hardware"]
        where = hw.get("gpu") or f"{hw['torch_threads']} CPU thread{'s' if hw['torch_threads'] != 1 else ''}"
        rows.append(
            f"| {{ref}}`{chapter_label(module.PAPER)}` {{cite:p}}`{module.CITE}` | {module.HEADLINE} "
            f"| **{verdict(result)}** | {tally['holds']} / {tally['fails']} / {tally['inconclusive']} "
            f"| {len(result['seeds'])} | {round(prov['wall_seconds'] / 60):,} min on {where} | {prov['started'][:10]} |")
    return "\n".join([head, *rows])


# --------------------------------------------------------------------------- benchmarks of speed

# the ratio each speed benchmark reports, as a ratio of times (above 1: the second named is faster); a throughput
# ratio is one of times too: fit's throughput / the bare loop's = the bare loop's time / fit's
RATIOS = {"speedup_vs_nn_dropout": "nn.Dropout's time / ours",
          "throughput_ratio_fit_over_bare": "bare loop's time / fit's",
          "speedup_numba_vs_torch_backend": "torch reference's time / numba kernels'",
          "speedup_stacked_over_alone": "time one net at a time / stacked",
          "speedup_p0.5_vs_p0_at_1_thread": "step time at p = 0 / at p = 0.5 (1 thread)",
          "speedup_ray_over_in_process": "a run's time in process / on Ray (2 tasks x 1 thread)",
          "speedup_skip_over_mask_multiply": "drop path's step time, mask multiply / skipping the branch",
          "slowdown_avx2_kernels": "time with AVX2 kernels / with all of the CPU's",
          "speedup_fit_regression_over_bare": "bare loop's time (default Adam) / fit_regression's"}
MEASURES = {"microseconds_per_call": "µs per call", "examples_per_second": "examples per s",
            "tokens_per_second": "tokens per s", "milliseconds_per_step": "ms per step",
            "model_examples_per_second": "model-examples per s", "seconds": "seconds"}


def _ratio_key(record: dict) -> str | None:
    return next((k for k in record if k in RATIOS), None)


def _markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(v) for v in row) + " |" for row in rows])


def benchmark_summary(records: dict[str, dict]):
    """One row per speed benchmark (``results/benchmarks/<name>.json``): what it times, its ratio in words and
    figures, the machine and the commit; as a Markdown table, every cell in full."""
    from IPython.display import Markdown

    rows = [[f"`{name}`", r["what"], RATIOS[key], f"**{r[key]:.2f}**", machine_of(r), r["provenance"]["versions"]["torch"],
             f"`{r['provenance']['commit'][:7]}`"]
            for name, r in records.items() if (key := _ratio_key(r))]
    return Markdown(_markdown_table(["benchmark", "what it times", "ratio", "value", "machine", "torch", "commit"], rows))


def benchmark_timings(records: dict[str, dict]):
    """The measurements behind each ratio, one row per benchmark and what it timed (no empty cells)."""
    from IPython.display import Markdown

    rows = [[f"`{name}`", what, MEASURES[key], f"{value:,.2f}"]
            for name, r in records.items() for key in MEASURES if key in r for what, value in r[key].items()]
    return Markdown(_markdown_table(["benchmark", "timed", "measure", "value"], rows))


def benchmark_figure(records: dict[str, dict]):
    """Every speed benchmark's ratio as a bar, against the line at 1 (no difference); one colour per machine.
    Exported as ``benchmarks-ratios.png`` / ``.svg``."""
    import matplotlib.pyplot as plt

    from .plotting import palette

    use_house_style()
    shown = [(name, r) for name, r in records.items() if _ratio_key(r)]
    machines = list(dict.fromkeys(machine_of(r) for _, r in shown))
    colors = dict(zip(machines, palette(len(machines))))
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(shown) + 1.6))
    for i, (name, r) in enumerate(shown):
        value = r[_ratio_key(r)]
        ax.barh(i, value, color=colors[machine_of(r)], label=machine_of(r))
        ax.annotate(f"{value:.2f}", (value, i), textcoords="offset points", xytext=(4, 0), va="center", fontsize=8)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")  # ratios: 2x faster and 2x slower lie equally far from the line at 1
    ax.set_yticks(range(len(shown)), [f"{name}\n({RATIOS[_ratio_key(r)]})" for name, r in shown], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("ratio of times, log scale (above 1: the second named is faster)")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), fontsize=8, loc="lower left", bbox_to_anchor=(0, 1.01), frameon=False)
    fig.tight_layout()
    save_figure(fig, "benchmarks", "ratios")
    return fig


# --------------------------------------------------------------------------- benchmarks of accuracy against time

NET_LABELS = {"fast": "fast net", "resnet20": "ResNet-20"}


def _as_list(records: dict | list[dict]) -> list[dict]:
    return [records] if isinstance(records, dict) else list(records)


def machine_of(record: dict) -> str:
    """The machine a benchmark or result ran on, in a few words: CPU, its vector kernels, whether bf16 is native,
    and the threads (the CPU's name alone does not tell two generations of one product line apart)."""
    hw = record["provenance"]["hardware"]
    threads = hw["torch_threads"]
    limited = (", kernels limited by " + " ".join(f"{k}={v}" for k, v in hw["isa_limits"].items())
               if hw.get("isa_limits") else "")
    return f"{hw['cpu']}{cpu_kernels(hw)}{limited}, {threads} thread{'s' if threads != 1 else ''}"


def fast_cifar_table(records: dict | list[dict]) -> pd.DataFrame:
    """One row per machine, net and budget of ``results/benchmarks/fast_cifar*.json`` (one record or several runs):
    epochs, minutes, test accuracy, precision, and the run's commit."""
    rows = [{"machine": machine_of(record), "net": NET_LABELS.get(name, name), "budget (min)": float(budget),
             "epochs": run["epochs"], "training minutes": round(run["train_minutes"], 1),
             "test accuracy (%)": run["test_accuracy"], "precision": net["precision"]["precision"],
             "run (commit)": record["provenance"]["commit"][:7]}
            for record in _as_list(records) for name, net in record["nets"].items()
            for budget, run in net["budgets"].items()]
    machines = list(dict.fromkeys(row["machine"] for row in rows))  # as the records list them
    nets = list(dict.fromkeys(row["net"] for row in rows))
    rows.sort(key=lambda row: (machines.index(row["machine"]), nets.index(row["net"]), row["budget (min)"]))
    return pd.DataFrame(rows).set_index(["machine", "net", "budget (min)"])


def fast_cifar_figure(records: dict | list[dict]):
    """Test accuracy after every epoch against cumulative training minutes, one line per run and one panel per
    machine (runs on different machines are not comparable in minutes); the goals as marks in every panel.
    Exported as ``benchmarks-fast_cifar.png`` / ``.svg``."""
    import matplotlib.pyplot as plt

    from .plotting import palette

    use_house_style()
    records = _as_list(records)
    machines = list(dict.fromkeys(machine_of(r) for r in records))
    fig, axes = plt.subplots(len(machines), 1, figsize=(8, 4.6 * len(machines)), squeeze=False, sharex=True)
    names = list(dict.fromkeys(name for r in records for name in r["nets"]))
    colors = dict(zip(names, palette(len(names))))
    for ax, machine in zip(axes[:, 0], machines):
        runs = sorted(((name, float(budget), run, net["precision"]["precision"]) for r in records
                       if machine_of(r) == machine
                       for name, net in r["nets"].items() for budget, run in net["budgets"].items()),
                      key=lambda t: (names.index(t[0]), t[1]))
        for name, budget, run, precision in runs:
            i = [b for n, b, _, _ in runs if n == name].index(budget)
            curve = run["curve"]
            ax.plot(curve["train_minutes"], curve["test_accuracy"], marker="o", markersize=3, color=colors[name],
                    linestyle=("-", "--", ":")[i % 3],
                    label=f"{NET_LABELS.get(name, name)}, {budget:g}-min run ({precision})")
        goals = next(r for r in records if machine_of(r) == machine).get("goals", [])
        for minutes, accuracy in goals:  # labels to the right of the star, but of the last one to its left
            right = minutes == max(m for m, _ in goals)
            ax.plot([minutes], [accuracy], marker="*", markersize=12, color="black", linestyle="none")
            ax.annotate(f"goal on an AVX2-only CPU, fp32:\n{accuracy:g}% in {minutes:g} min", (minutes, accuracy),
                        textcoords="offset points", xytext=(-8 if right else 8, -30), ha="right" if right else "left",
                        fontsize=8)
        ax.set(ylabel="test accuracy (%)")
        ax.set_title(f"CIFAR-10, all 50,000 training images\n{machine}", fontsize=9)
        ax.legend(fontsize=8, loc="lower right")
    axes[-1, 0].set(xlabel="minutes of training (cumulative; evaluation not counted)")
    fig.tight_layout()
    save_figure(fig, "benchmarks", "fast_cifar")
    return fig

"""What every chapter shows about a result: the header facts, the claims, the verdict.

In the book the header block at the top of a chapter pulls these in with MyST-NB's
``glue``; under plain papermill they are displayed in place.
"""

from __future__ import annotations

import pandas as pd

from .experiments import verdict


def run_shown(result: dict) -> str:
    """One line: profile, seeds, hardware, training time, commit and date of the run."""
    prov = result["provenance"]
    hw = prov["hardware"]
    threads = hw["torch_threads"]
    device = hw.get("gpu") or f"{hw['cpu']} ({hw['cpu_count']} cores, {threads} torch thread{'s' if threads != 1 else ''})"
    minutes = prov["wall_seconds"] / 60
    dirty = " with uncommitted changes" if prov.get("dirty") else ""
    return (
        f"`{result['profile']}` profile, {len(result['seeds'])} seed{'s' if len(result['seeds']) > 1 else ''} "
        f"({', '.join(map(str, result['seeds']))}), "
        f"{minutes:.1f} min of training on {device}, torch {prov['versions']['torch']}, "
        f"commit `{prov['commit'][:10]}`{dirty}, started {prov['started']}"
    )


def verdict_line(result: dict) -> str:
    claims = result["claims"]
    held = sum(bool(c["holds"]) for c in claims)
    return f"**{verdict(claims)}** ({held} of {len(claims)} claims hold in the `{result['profile']}` run shown)"


def claims_table(result: dict) -> pd.DataFrame:
    """Each claim with whether it holds and the numbers it was decided on."""
    rows = [
        {"claim": c["statement"], "holds": "yes" if c["holds"] else "no", "evidence": _fmt(c["evidence"])}
        for c in result["claims"]
    ]
    return pd.DataFrame(rows).set_index("claim")


def _fmt(evidence: dict) -> str:
    parts = []
    for key, value in evidence.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items())
        parts.append(f"{key.replace('_', ' ')}: {value}")
    return "; ".join(parts)


def glue_header(result: dict) -> None:
    """Glue ``verdict`` and ``run_shown`` for the chapter's header block, and display them."""
    from IPython.display import Markdown, display
    from myst_nb import glue

    glue("verdict", Markdown(verdict_line(result)), display=False)
    glue("run_shown", Markdown(run_shown(result)), display=False)
    display(Markdown(f"**Verdict:** {verdict_line(result)}  \n**Run shown:** {run_shown(result)}"))

"""Every chapter's committed `cpu` result exists, matches the current config and says how it was made."""

from __future__ import annotations

import pytest

from replib import experiments
from replib import results as store


@pytest.mark.parametrize("paper", experiments.PAPERS)
def test_committed_cpu_result_matches_the_current_cpu_config(paper):
    """Otherwise `make book` refuses to show it, and a reader's rerun would differ from it."""
    module = experiments.get(paper)
    result = store.read_json(store.REPO_ROOT / "results" / paper / "cpu.json")
    assert result is not None, f"results/{paper}/cpu.json is not committed"
    expected = store.normalise(module.resolve("cpu"))
    assert result["seeds"] == list(range(expected.pop("seeds")))
    assert result["config"] == expected
    runs = {(r["arm"], r["seed"]): r for r in result["runs"]}
    assert list(runs) == experiments.units_of(module, expected, result["seeds"], runs)


@pytest.mark.parametrize("paper", experiments.PAPERS)
def test_committed_cpu_result_records_its_provenance(paper):
    result = store.read_json(store.REPO_ROOT / "results" / paper / "cpu.json")
    assert result is not None, f"results/{paper}/cpu.json is not committed"
    prov = result["provenance"]
    assert len(prov["commit"]) == 40 and prov["dirty"] is False
    assert prov["wall_seconds"] > 0 and prov["versions"]["torch"] and prov["hardware"]["cpu"]
    assert all(r["commit"] == prov["commit"] for r in result["runs"])
    assert result["paper_values"] and all("where" in v and "confirmed" in v for v in result["paper_values"])


@pytest.mark.parametrize("paper", experiments.PAPERS)
def test_committed_claims_are_those_the_current_analysis_computes(paper):
    """Stale claims are refreshed with `python -m replib reanalyse <paper>`, never edited by hand."""
    module = experiments.get(paper)
    result = store.read_json(store.REPO_ROOT / "results" / paper / "cpu.json")
    assert result is not None, f"results/{paper}/cpu.json is not committed"
    assert result["claims"] == store.normalise(module.claims(result["config"], result["runs"])), (
        f"run `python -m replib reanalyse {paper}`")
    assert result["paper_values"] == store.normalise(module.PAPER_VALUES)


@pytest.mark.parametrize("path", sorted((store.REPO_ROOT / "results").rglob("*.json")),
                         ids=lambda p: str(p.relative_to(store.REPO_ROOT / "results")))
def test_every_committed_result_file_records_config_seeds_and_provenance(path):
    """Chapters, benchmarks and archived runs alike: a number without its provenance is not a result."""
    result = store.read_json(path)
    assert {"config", "seeds", "provenance"} <= set(result), f"{path.name} lacks {({'config', 'seeds', 'provenance'} - set(result))}"
    prov = result["provenance"]
    assert len(prov["commit"]) == 40 and prov["dirty"] is False and prov["versions"]["torch"] and prov["hardware"]["cpu"]

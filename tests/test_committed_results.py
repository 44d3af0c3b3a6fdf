"""Every chapter's committed `cpu` result exists, matches the current config and says how it was made."""

from __future__ import annotations

import pytest

from replib import claims as rule
from replib import experiments
from replib import results as store


@pytest.mark.parametrize("paper", experiments.PAPERS)
def test_committed_cpu_result_matches_the_current_cpu_config(paper):
    """Otherwise `make book` refuses to show it, and a reader's rerun would differ from it."""
    module = experiments.get(paper)
    result = store.read_json(store.REPO_ROOT / "results" / paper / "cpu.json")
    assert result is not None, f"results/{paper}/cpu.json is not committed"
    config, seeds = experiments.resolve(module, "cpu")
    assert result["seeds"] == seeds
    assert result["config"] == config


@pytest.mark.parametrize("paper", experiments.PAPERS)
def test_committed_cpu_result_records_its_provenance(paper):
    result = store.read_json(store.REPO_ROOT / "results" / paper / "cpu.json")
    assert result is not None, f"results/{paper}/cpu.json is not committed"
    prov = result["provenance"]
    assert len(prov["commit"]) == 40 and prov["dirty"] is False and len(prov["runs_sha256"]) == 64
    assert prov["wall_seconds"] > 0 and prov["versions"]["torch"] and prov["hardware"]["cpu"]
    assert all(r["commit"] == prov["commit"] for r in result["runs"])
    assert result["paper_values"] and all("where" in v and "confirmed" in v for v in result["paper_values"])


@pytest.mark.parametrize("paper", experiments.PAPERS)
def test_committed_result_passes_the_check_the_book_makes(paper):
    """Its runs are those it was written with, cover its units, and its claims are what the current analysis
    computes (stale claims are refreshed with `python -m replib reanalyse <paper>`, never edited by hand)."""
    path = store.REPO_ROOT / "results" / paper / "cpu.json"
    result = store.read_json(path)
    assert result is not None, f"results/{paper}/cpu.json is not committed"
    experiments.verify(experiments.get(paper), result, path)


@pytest.mark.parametrize("paper", experiments.PAPERS)
def test_committed_claims_record_outcome_counts_and_rule(paper):
    result = store.read_json(store.REPO_ROOT / "results" / paper / "cpu.json")
    for claim in result["claims"]:
        assert claim["outcome"] in rule.OUTCOMES and isinstance(claim["counts"], bool) and claim["rule"], claim["id"]
    assert rule.verdict(result["claims"]) in rule.VERDICTS


@pytest.mark.parametrize("path", sorted((store.REPO_ROOT / "results").rglob("*.json")),
                         ids=lambda p: str(p.relative_to(store.REPO_ROOT / "results")))
def test_every_committed_result_file_records_config_seeds_and_provenance(path):
    """Chapters, benchmarks and archived runs alike: a number without its provenance is not a result."""
    result = store.read_json(path)
    assert {"config", "seeds", "provenance"} <= set(result), f"{path.name} lacks {({'config', 'seeds', 'provenance'} - set(result))}"
    prov = result["provenance"]
    assert len(prov["commit"]) == 40 and prov["dirty"] is False and prov["versions"]["torch"] and prov["hardware"]["cpu"]


@pytest.mark.parametrize("paper", experiments.PAPERS)
def test_every_figure_of_the_chapter_is_legible_on_a_phone(paper, tmp_path, monkeypatch):
    """Drawn from the committed result at the page's resolution, no text of any figure is smaller than the house
    minimum, so none is below 9 px on the page (figures are shown at their own size: _static/custom.css)."""
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    from replib import plotting, report

    monkeypatch.setenv(plotting.FIGURES_ENV, str(tmp_path))
    monkeypatch.delenv("REPLIB_RESULTS_DIR")  # the committed results (read, never trained: published() never trains)
    module = experiments.get(paper)
    result = experiments.published(module, "cpu")
    assert plotting.MIN_FONT_PT / 72 * plotting.PAGE_DPI >= 9
    for name in module.FIGURES:
        fig = report.figure(module, result, name)
        assert fig.dpi == plotting.PAGE_DPI, f"{paper}-{name} is drawn at {fig.dpi} dpi"
        small = {t.get_text()[:30]: t.get_fontsize() for t in fig.findobj(Text)
                 if t.get_visible() and t.get_text().strip() and t.get_fontsize() < plotting.MIN_FONT_PT}
        plt.close(fig)
        assert not small, f"{paper}-{name}: text below {plotting.MIN_FONT_PT} pt: {small}"

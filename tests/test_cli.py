"""The command line behind `make reproduce`."""

from __future__ import annotations

import json

import pytest

from replib.__main__ import main
from replib.results import result_path


def test_reproduce_writes_the_result_and_prints_the_verdict(needs_mnist, capsys):
    assert main(["reproduce", "hinton2012", "--profile", "smoke", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "verdict:" in out and "hinton2012/smoke.json" in out
    assert json.loads(result_path("hinton2012", "smoke").read_text())["profile"] == "smoke"


def test_unknown_paper_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        main(["reproduce", "nosuchpaper"])
    assert "invalid choice" in capsys.readouterr().err


def test_reanalyse_recomputes_claims_without_touching_the_runs(needs_mnist, capsys):
    assert main(["reproduce", "hinton2012", "--profile", "smoke", "--threads", "1"]) == 0
    path = result_path("hinton2012", "smoke")
    before = json.loads(path.read_text())
    before["claims"] = []  # as if the analysis code had changed since the run
    path.write_text(json.dumps(before))
    assert main(["reanalyse", "hinton2012", "--profile", "smoke"]) == 0
    after = json.loads(path.read_text())
    assert [c["id"] for c in after["claims"]] == ["final_error_order", "paper_levels", "dropout_keeps_improving"]
    assert after["runs"] == before["runs"] and after["config"] == before["config"]
    assert after["provenance"]["analysis"]["commit"] and "verdict:" in capsys.readouterr().out


def test_reanalyse_without_a_result_says_how_to_make_one():
    with pytest.raises(FileNotFoundError, match="make reproduce PAPER=hinton2012 PROFILE=smoke"):
        main(["reanalyse", "hinton2012", "--profile", "smoke"])


def test_reanalyse_refuses_a_result_whose_runs_were_edited(needs_mnist):
    assert main(["reproduce", "hinton2012", "--profile", "smoke", "--threads", "1"]) == 0
    path = result_path("hinton2012", "smoke")
    result = json.loads(path.read_text())
    result["runs"][0]["metrics"]["test_errors"] -= 10
    path.write_text(json.dumps(result))
    with pytest.raises(RuntimeError, match=f"{path}: its runs are not those it was written with; reanalysing would"):
        main(["reanalyse", "hinton2012", "--profile", "smoke"])


def test_reanalyse_takes_a_paper_or_all_not_both(capsys):
    with pytest.raises(SystemExit):
        main(["reanalyse", "hinton2012", "--all"])
    assert "a paper or --all, not both" in capsys.readouterr().err

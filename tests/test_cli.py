"""The command line behind `make reproduce`: what it prints, and `error: ...` with status 2 for every mistake."""

from __future__ import annotations

import json
import re

import pytest

from replib import experiments
from replib.__main__ import main
from replib.results import result_path
from test_results import fake_experiment


@pytest.fixture
def fake_hinton(monkeypatch):
    """`hinton2012` on the command line runs the fake experiment (seconds, no data)."""
    module = fake_experiment()
    module.PAPER = "hinton2012"
    real = experiments.get
    monkeypatch.setattr(experiments, "get", lambda paper: module if paper == "hinton2012" else real(paper))
    return module


def usage_error(argv: list[str], capsys) -> str:
    """Run ``argv``; it must end with status 2 and one line of stderr starting ``error:``, no traceback."""
    try:
        code = main(argv)
    except SystemExit as exit:  # argparse's own errors
        code = exit.code
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    return err


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


def test_reanalyse_without_a_result_says_how_to_make_one(capsys):
    err = usage_error(["reanalyse", "hinton2012", "--profile", "smoke"], capsys)
    assert err == (f"error: {result_path('hinton2012', 'smoke')} does not exist, and reanalyse never trains: "
                   f"run `make reproduce PAPER=hinton2012 PROFILE=smoke` first\n")


def test_reanalyse_refuses_a_result_whose_runs_were_edited(fake_hinton, capsys):
    assert main(["reproduce", "hinton2012", "--profile", "smoke"]) == 0
    path = result_path("hinton2012", "smoke")
    result = json.loads(path.read_text())
    result["runs"][0]["metrics"]["score"] -= 10
    path.write_text(json.dumps(result))
    capsys.readouterr()
    err = usage_error(["reanalyse", "hinton2012", "--profile", "smoke"], capsys)
    assert err.startswith(f"error: {path}: its runs are not those it was written with; reanalysing would bless them")


@pytest.mark.parametrize("argv,message", [
    (["--threads", "0"], "argument --threads: must be an int >= 1, got '0'"),
    (["--threads", "two"], "argument --threads: must be an int >= 1, got 'two'"),
    (["--seeds", "0"], "argument --seeds: must be an int >= 1, got '0'"),
    (["--device", "cpufoo"], "argument --device: must be 'cpu', 'cuda' or 'cuda:<index>' (e.g. cuda:0), got 'cpufoo'"),
    (["--device", "cuda:x"], "argument --device: must be 'cpu', 'cuda' or 'cuda:<index>' (e.g. cuda:0), got 'cuda:x'"),
    (["--executor", "dask"], "argument --executor: invalid choice: 'dask'"),
    (["--address", "auto"], "--address auto is for Ray's workers: give --executor ray with it"),
    (["--ship-data"], "--ship-data is for Ray's workers: give --executor ray with it"),
    (["--stack", "--executor", "ray"], "--stack trains in this process; it cannot go with --executor ray"),
])
def test_a_bad_option_is_an_error_naming_it(argv, message, capsys):
    err = usage_error(["reproduce", "hinton2012", "--profile", "smoke", *argv], capsys)
    assert f"error: {message}" in err and "shows where" not in err  # the user's mistake, not a place in the code


def test_the_paper_profile_on_the_cpu_says_what_it_costs_before_it_starts(monkeypatch, capsys):
    monkeypatch.setenv(experiments.NO_TRAIN_ENV, "1")  # stops before training: the note comes first
    err = usage_error(["reproduce", "hinton2012", "--profile", "paper"], capsys)
    assert err.startswith("note: the paper profile is sized for a GPU; on the CPU it takes hours") and "\nerror: " in err


def test_stacking_a_chapter_that_cannot_names_those_that_can(capsys):
    err = usage_error(["reproduce", "wan2013", "--profile", "smoke", "--stack"], capsys)
    assert err == "error: --stack: wan2013 cannot train its seeds stacked; the chapters that can: hinton2012\n"


def test_a_bad_config_is_one_line_of_error(fake_hinton, monkeypatch, capsys):
    monkeypatch.setitem(fake_hinton.PROFILES, "smoke", {"seeds": 2, "epochs": 0})
    err = usage_error(["reproduce", "hinton2012", "--profile", "smoke"], capsys)
    assert err == "error: bad hinton2012 config: epochs = 0: Input should be greater than or equal to 1\n"


def test_an_unreadable_result_is_one_line_of_error(fake_hinton, capsys):
    path = result_path("hinton2012", "smoke")
    path.parent.mkdir(parents=True)
    path.write_text('{"paper": "hinton2012", "runs": [')
    err = usage_error(["reproduce", "hinton2012", "--profile", "smoke"], capsys)
    assert err.startswith(f"error: {path} is truncated: the JSON stops before it is complete")


def test_debug_shows_the_traceback(capsys):
    with pytest.raises(experiments.ResultUnavailableError, match="reanalyse never trains"):
        main(["--debug", "reanalyse", "hinton2012", "--profile", "smoke"])
    with pytest.raises(experiments.ResultUnavailableError, match="reanalyse never trains"):
        main(["reanalyse", "hinton2012", "--profile", "smoke", "--debug"])


def test_wrote_is_printed_only_when_a_result_was_written(fake_hinton, capsys):
    path = result_path("hinton2012", "smoke")
    assert main(["reproduce", "hinton2012", "--profile", "smoke"]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {path} (4 of 4 runs trained now; ")
    assert main(["reproduce", "hinton2012", "--profile", "smoke"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"read {path} (stored result, no training)\nverdict: ") and not re.search("^wrote", out, re.M)


def test_a_run_with_other_seeds_names_the_file_it_wrote_apart(fake_hinton, capsys):
    assert main(["reproduce", "hinton2012", "--profile", "smoke", "--seeds", "3"]) == 0
    out = capsys.readouterr().out
    written = re.match(r"wrote (\S+) ", out).group(1)
    assert re.fullmatch(r".*/hinton2012/smoke-[0-9a-f]{8}\.json", written)
    assert "stored apart from smoke.json (which the book shows)" in out
    assert not result_path("hinton2012", "smoke").exists()


def test_the_users_mistakes_show_in_a_notebook_as_their_message_alone():
    """IPython renders an exception with ``_render_traceback_`` as the lines it returns: one, not the library's stack."""
    from replib import data, results, scale
    from replib._validate import ConfigError, UserError

    errors = (ConfigError, results.ResultFileError, results.ResultLockedError, experiments.ResultUnavailableError,
              experiments.StaleResultError, data.DataNotFoundError, data.DataIntegrityError, scale.RayMissingError)
    assert all(issubclass(e, UserError) for e in errors)
    with pytest.raises(ConfigError) as caught:
        experiments.resolve(experiments.get("hinton2012"), "smoke", epochs=0)
    assert caught.value._render_traceback_() == [f"ConfigError: {caught.value}"] and "epochs = 0" in str(caught.value)


def test_a_config_value_on_the_command_line_says_where_config_values_go(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["reproduce", "hinton2012", "--profile", "smoke", "--epochs", "3"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "unrecognized arguments: --epochs 3" in err and "-p epochs 3" in err


def test_reanalyse_takes_a_paper_or_all_not_both(capsys):
    with pytest.raises(SystemExit):
        main(["reanalyse", "hinton2012", "--all"])
    assert "a paper or --all, not both" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["reanalyse"])
    assert "reanalyse needs a paper, or --all" in capsys.readouterr().err


def test_reanalyse_all_skips_the_chapters_without_that_profiles_result(capsys):
    assert main(["reanalyse", "--all", "--profile", "smoke"]) == 0  # the test's results folder holds none
    out = capsys.readouterr().out
    assert out.count("skipped ") == len(experiments.PAPERS) and "skipped hinton2012: no smoke.json to reanalyse" in out

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

"""Every chapter notebook: stripped, parameterised, documented, and runs end to end at profile=smoke."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import nbformat
import pytest

from conftest import require
from replib import experiments, report
from replib.results import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
NOTEBOOKS_BY_NAME = {p.stem: p for p in NOTEBOOKS}
_MNIST, _CIFAR = "mnist/t10k-labels-idx1-ubyte.gz", "cifar10/cifar10_test_jpeg.npz"
DATA_NEEDED = {  # what each chapter reads: its smoke run is skipped (offline) only for these
    "hinton2012": [_MNIST], "wan2013": [_MNIST], "ba2013": [_MNIST], "graham2015": [_MNIST],
    "gal2016_mc": [_MNIST, "co2/co2_gal2016.npz", "co2/co2-concentration_vega-datasets-3.2.1.csv"],
    "gal2016_rnn": ["ptb/ptb.test.txt.gz"], "tompson2015": [_MNIST, _CIFAR], "devries2017": [_CIFAR],
    "guo2016": [_CIFAR], "atlas": [_MNIST, _CIFAR, "ptb/ptb.test.txt.gz"],
}
SOURCES = NOTEBOOKS + sorted((REPO_ROOT / "book").glob("*.ipynb"))
PAPERMILL = [sys.executable, "-m", "papermill"]


def test_every_chapter_says_what_data_its_smoke_run_needs():
    assert set(DATA_NEEDED) == set(NOTEBOOKS_BY_NAME)


def ids(paths):
    return [p.stem for p in paths]


def parameters_cell(nb) -> str:
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "exactly one cell must be tagged 'parameters'"
    return cells[0].source


@pytest.mark.parametrize("path", SOURCES, ids=ids(SOURCES))
def test_source_notebook_carries_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    assert not [c for c in nb.cells if c.cell_type == "code" and (c.outputs or c.execution_count)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_help_notebook_documents_every_parameter(path):
    source = parameters_cell(nbformat.read(path, as_version=4))
    names = [line.split(":")[0] for line in source.splitlines() if line and not line.startswith("#")]
    assert {"profile", "seeds", "device", "rerun"} <= set(names)
    out = subprocess.run([*PAPERMILL, "--help-notebook", str(path)], capture_output=True, text=True, check=True)
    for name in names:
        line = next((ln for ln in out.stdout.splitlines() if ln.strip().startswith(f"{name}:")), None)
        assert line is not None, f"papermill --help-notebook does not list {name!r}"
        assert "(default" in line, f"{name!r} has no type or default in --help-notebook"


def section(nb, heading: str) -> str:
    """The markdown of the level-2 section ``heading``, up to the next level-2 heading."""
    text, inside = [], False
    for cell in nb.cells:
        for line in cell.source.splitlines() if cell.cell_type == "markdown" else []:
            if line.startswith("## "):
                inside = line[3:].strip() == heading
            elif inside:
                text.append(line)
    return "\n".join(text)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_what_the_run_shows_quotes_numbers_only_from_the_result(path):
    """Numbers in that section are glued from the result, so a rerun or reanalysis can never leave them stale."""
    prose = section(nbformat.read(path, as_version=4), "What this run shows")
    assert prose.strip(), "the chapter has no 'What this run shows' section"
    unglued = re.sub(r"\{glue:md\}`[^`]+`|\{[a-z]+\}`[^`]+`|`[^`]+`|\$[^$]+\$", "", prose)
    typed = re.findall(r"\d+\.\d+", unglued)
    assert not typed, f"hand-typed numbers in 'What this run shows': {typed}"


@pytest.mark.parametrize("paper", experiments.PAPERS)
def test_every_number_the_chapter_glues_is_a_fact_of_its_result(paper):
    module = experiments.get(paper)
    result = json.loads((REPO_ROOT / "results" / paper / "cpu.json").read_text())
    facts = {**report.chapter_facts(module, result), "verdict": "", "run_shown": "", "result_file": ""}
    nb = nbformat.read(NOTEBOOKS_BY_NAME[paper], as_version=4)
    glued = {name for c in nb.cells if c.cell_type == "markdown" for name in re.findall(r"\{glue:md\}`([^`]+)`", c.source)}
    assert glued <= set(facts), f"glued but not computed from the result: {sorted(glued - set(facts))}"


@pytest.mark.slow
def test_a_chapter_fails_naming_the_file_when_its_result_was_edited(tmp_path):
    results = tmp_path / "results" / "hinton2012"
    results.mkdir(parents=True)
    stored = json.loads((REPO_ROOT / "results" / "hinton2012" / "cpu.json").read_text())
    stored["runs"][0]["metrics"]["test_errors"] -= 20
    (results / "cpu.json").write_text(json.dumps(stored))
    env = {**os.environ, "REPLIB_RESULTS_DIR": str(tmp_path / "results"), "REPLIB_NO_TRAIN": "1"}
    proc = subprocess.run([*PAPERMILL, str(NOTEBOOKS_BY_NAME["hinton2012"]), str(tmp_path / "out.ipynb"),
                           "--cwd", str(REPO_ROOT)], capture_output=True, text=True, env=env)
    assert proc.returncode != 0
    assert "StaleResultError" in proc.stderr and str(results / "cpu.json") in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_notebook_runs_at_smoke_profile(path, tmp_path):
    for relpath in DATA_NEEDED[path.stem]:
        require(relpath)
    out = tmp_path / path.name
    subprocess.run(
        [*PAPERMILL, str(path), str(out), "-p", "profile", "smoke", "-p", "rerun", "True",
         "-p", "progress", "False", "--cwd", str(REPO_ROOT)],
        check=True, capture_output=True, text=True,
    )
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    paper = path.stem
    assert (tmp_path / "results" / paper / "smoke.json").is_file(), "the smoke run wrote no result file"
    assert list((tmp_path / "figures").glob(f"{paper}-*.png")), "no figure exported under its stable name"
    assert not (REPO_ROOT / "results" / paper / "smoke.json").exists(), "the test wrote into the repository"

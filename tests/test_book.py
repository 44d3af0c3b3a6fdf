"""The book builds from the committed results with every Sphinx warning an error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from replib.results import REPO_ROOT


@pytest.mark.slow
def test_book_builds_with_warnings_as_errors(tmp_path):
    env = {**os.environ, "REPLIB_NO_TRAIN": "1", "REPLIB_FIGURES_DIR": str(tmp_path / "figures")}
    env.pop("REPLIB_RESULTS_DIR", None)  # the committed results, not the test's scratch folder
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run(
        [str(jupyter_book), "build", str(REPO_ROOT), "--path-output", str(tmp_path),
         "--warningiserror", "--nitpick", "--keep-going"],
        env=env, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    html = tmp_path / "_build" / "html"
    chapter = (html / "notebooks" / "hinton2012.html").read_text()
    assert "Deviations from the paper" in chapter and "reproduced" in chapter
    assert "injected-parameters" not in chapter
    for page in (html / "notebooks").glob("*.html"):
        assert 'class="output stderr' not in page.read_text(), f"{page.name} shows output written to stderr"
    assert (html / "book" / "benchmarks.html").is_file()


def test_book_ignores_what_tests_and_ci_leave_in_the_tree():
    """`make test` leaves .pytest_cache/README.md and CI a data cache; Sphinx must not read them (a warning fails the build)."""
    import yaml

    excluded = set(yaml.safe_load((REPO_ROOT / "_config.yml").read_text())["exclude_patterns"])
    assert {".pytest_cache", ".cache", ".venv", "logs", "_build"} <= excluded


def test_the_book_defines_every_verdict_word_as_the_code_does():
    from replib import claims

    intro = (REPO_ROOT / "book" / "intro.md").read_text()
    for word, meaning in claims.VERDICTS.items():
        assert f"| *{word}* | {meaning} |" in intro, word

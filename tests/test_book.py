"""The book builds from the committed results with every Sphinx warning an error."""

from __future__ import annotations

import json
import re

import pytest

from replib.results import REPO_ROOT


@pytest.mark.slow
def test_book_builds_with_warnings_as_errors(built_site):
    html = built_site
    chapter = (html / "notebooks" / "hinton2012.html").read_text()
    assert "Deviations from the paper" in chapter and "reproduced" in chapter
    assert "injected-parameters" not in chapter
    assert "dropout-book 0.1.0, built from" in chapter and "Last updated on" in chapter  # version and build date
    assert "_static/custom.css" in chapter  # wide tables scroll in their own box
    for page in (html / "notebooks").glob("*.html"):
        assert 'class="output stderr' not in page.read_text(), f"{page.name} shows output written to stderr"
    assert (html / "book" / "benchmarks.html").is_file()
    for page in (html / "notebooks").glob("*.html"):  # the page shows results, not the calls that make them
        text = page.read_text()
        assert "experiments.run(" not in text and "report.glue_figure(" not in text, f"{page.name} shows its plumbing"
        figures = (REPO_ROOT / "notebooks" / f"{page.stem}.ipynb").read_text().count("report.glue_figure(")
        numbered = re.findall(r'<span class="caption-number">Fig\. \d+ </span>', text)
        assert len(numbered) == figures > 0, f"{page.name}: {len(numbered)} numbered figures of {figures}"
        for name in re.findall(r'href="\.\./([\w-]+\.(?:png|svg))"', text):  # the stable copies it links exist
            assert (html / name).is_file(), f"{page.name} links {name}, which the site does not hold"
        results = re.findall(r'href="\.\./(results/[\w/-]+\.json)"', text)  # the numbers behind it, published
        assert results and all((html / r).is_file() for r in results), f"{page.name} links no published result"
        executed = json.loads((html / "notebooks" / f"{page.stem}.ipynb").read_text())  # published beside its page
        assert any(cell.get("outputs") for cell in executed["cells"]), f"{page.stem}.ipynb is published unexecuted"
        assert f'href="{page.stem}.ipynb"' in text, f"{page.name} does not link its executed notebook"
        words = re.sub(r"<[^>]+>", "", text)  # the page's text, without the highlighter's markup
        assert "Cite this figure" in words and f"@misc{{dropoutbook_{page.stem}_" in words, f"{page.name}: no cite box"
        assert 'class="dataframe"' not in text, f"{page.name}: a pandas table (with its empty index-name row)"
    loaded = re.compile(r"<(?:script|img|iframe)\b[^>]*\bsrc=[\"']((?:https?:)?//[^\"']+)|"
                        r"<link\b[^>]*\bhref=[\"']((?:https?:)?//[^\"']+)")
    for page in html.rglob("*.html"):  # the site loads nothing from outside it: maths and all, offline
        remote = [a or b for a, b in loaded.findall(page.read_text())]
        assert not remote, f"{page.relative_to(html)} loads {remote}"
        words = re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)\b.*?</\1>", "", page.read_text(), flags=re.S))
        assert not re.search(r"\bissues?\b", words, re.I), f"{page.relative_to(html)} speaks of how the work was organised"
    landing = (html / "book" / "intro.html").read_text()
    from replib import claims, experiments

    rows = re.findall(r"<tr[^>]*>.*?</tr>", landing.split('id="the-verdicts"')[1].split("</table>")[0], re.S)
    assert len(rows) == 1 + len(experiments.PAPERS), "one dashboard row per chapter"
    for paper, row in zip(experiments.PAPERS, rows[1:]):
        assert f'href="../notebooks/{paper}.html' in row, paper
        assert sum(f"<strong>{word}</strong>" in row for word in claims.VERDICTS) == 1, row


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


def test_the_methods_table_lists_every_layer_of_the_methods_package():
    import replib.methods as methods

    intro = (REPO_ROOT / "book" / "intro.md").read_text()
    table = intro.split("## The methods")[1].split("\n## ")[0]
    layers = [name for name in methods.__all__ if name[0].isupper() and name not in ("StochasticLayer",)]
    missing = [name for name in layers if f"`{name}`" not in table]
    assert not missing, f"the intro's methods table does not list {missing}"


def test_the_cite_page_lists_every_figure_of_every_chapter():
    from replib import experiments

    cite = (REPO_ROOT / "book" / "cite.md").read_text()
    for paper in experiments.PAPERS:
        for name in experiments.get(paper).FIGURES:
            for ext in ("png", "svg"):
                assert f'<a href="../{paper}-{name}.{ext}">' in cite, f"{paper}-{name}.{ext}"


def test_the_footer_gives_the_packages_version():
    import tomllib

    import yaml

    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    footer = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())["html"]["extra_footer"]
    assert f"dropout-book {version}," in footer

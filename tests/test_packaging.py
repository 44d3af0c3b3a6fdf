"""Packaging: the conda environment and constraints agree with pyproject.toml."""

from __future__ import annotations

import re
import tomllib

import yaml

from replib.results import REPO_ROOT


def pyproject_deps() -> list[str]:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


def name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower()


def test_environment_yml_lists_exactly_the_pyproject_dependencies():
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert sorted(pip_section) == sorted(pyproject_deps())


def test_constraints_pin_every_dependency_within_its_range():
    from packaging.requirements import Requirement

    pins = {}
    for line in (REPO_ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            pkg, version = line.split("==")
            pins[pkg.lower()] = version
    for dep in pyproject_deps():
        req = Requirement(dep)
        assert req.name.lower() in pins, f"{req.name} is not pinned in constraints.txt"
        assert req.specifier.contains(pins[req.name.lower()], prereleases=True), (dep, pins[req.name.lower()])


def test_torch_range_admits_the_local_build():
    from packaging.requirements import Requirement

    torch_req = next(Requirement(d) for d in pyproject_deps() if name(d) == "torch")
    assert torch_req.specifier.contains("2.14.1")


def test_the_publishing_workflow_tests_as_ci_does_and_publishes_the_built_book():
    workflow = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "book.yml").read_text())
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert on["push"]["branches"] == ["main"]
    build = workflow["jobs"]["build"]["steps"]
    commands = [step["run"] for step in build if "run" in step]
    assert commands == ["bash .ci/run", "make book"], "a thin mirror of CI and `make book`, nothing else"
    upload = next(step for step in build if step.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "_build/html"
    assert workflow["jobs"]["deploy"]["needs"] == "build"
    assert workflow["jobs"]["deploy"]["steps"][0]["uses"].startswith("actions/deploy-pages")

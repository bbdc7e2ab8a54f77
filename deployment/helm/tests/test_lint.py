"""`helm lint --strict --with-subcharts` for the umbrella per environment, and each subchart alone."""

from __future__ import annotations

import pytest

import render
from conftest import ENVS, NAMESPACES, values_files

KUBE_VERSIONS = ("v1.30.0", "v1.37.0")


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("env", ENVS)
def test_umbrella_lints_clean(env: str, kube_version: str) -> None:
    problems = render.lint(render.UMBRELLA, values_files(env), namespace=NAMESPACES[env], kube_version=kube_version)
    assert problems == []


@pytest.mark.parametrize("chart", ["backend-api", "data-api"])
def test_subchart_lints_clean_alone(chart: str) -> None:
    problems = render.lint(render.UMBRELLA.parent / chart, kube_version=KUBE_VERSIONS[0])
    assert problems == []


def test_lint_reports_a_broken_values_file(tmp_path) -> None:
    """The lint wrapper really surfaces findings (guards the tests above against a silent no-op)."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("backend-api:\n  replicaCount: two\n")
    problems = render.lint(render.UMBRELLA, [bad], kube_version=KUBE_VERSIONS[0])
    assert any("replicaCount" in p for p in problems), problems


def test_lint_covers_each_subchart_with_its_own_values(tmp_path) -> None:
    """Subcharts are linted too, each with its own section of the values (and `global`)."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("data-api:\n  persistence:\n    size: lots\n")
    problems = render.lint(render.UMBRELLA, [bad], kube_version=KUBE_VERSIONS[0])
    assert any(p.startswith("data-api: ") and "size" in p for p in problems), problems

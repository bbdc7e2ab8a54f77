"""One source for the values documentation and the shared schema (deployment/helm/tools/
values_docs.py), and the charts' versions: SemVer, each with its changelog entry."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import render

HELM = render.REPO_ROOT / "deployment" / "helm"
TOOL = HELM / "tools" / "values_docs.py"
CHARTS = ("abn-common", "backend-api", "data-api", "abn-stack")
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=60)


def test_the_committed_tables_and_schemas_are_what_the_generator_writes() -> None:
    result = run_tool("--check")
    assert result.returncode == 0, result.stderr


def copy_of_charts(tmp_path: Path) -> Path:
    copy = tmp_path / "helm"
    for chart in CHARTS:
        shutil.copytree(HELM / chart, copy / chart, ignore=shutil.ignore_patterns("charts", "*.tgz"))
    return copy


def test_an_edited_comment_without_regenerating_fails_the_check(tmp_path: Path) -> None:
    copy = copy_of_charts(tmp_path)
    values = copy / "backend-api" / "values.yaml"
    text = values.read_text()
    values.write_text(text.replace("# -- Pods when autoscaling is off.", "# -- Pods when autoscaling is off (edited).", 1))
    assert values.read_text() != text
    result = run_tool("--check", "--helm-dir", str(copy))
    assert result.returncode == 1 and "backend-api/README.md is stale" in result.stderr, result.stderr
    # Regenerating fixes it.
    assert run_tool("--helm-dir", str(copy)).returncode == 0
    assert "(edited)" in (copy / "backend-api" / "README.md").read_text()
    assert run_tool("--check", "--helm-dir", str(copy)).returncode == 0


@pytest.mark.parametrize("edit, message", [
    (("  # -- Service type.\n", ""), "service.type has no `# --` comment"),
    (("replicaCount: 1\n", "replicaCount: 1\n# -- Not in the schema.\nreplicaCountt: 1\n"), "replicaCountt is not in values.schema.json"),
    (("# -- Pods when autoscaling is off.\nreplicaCount: 1\n", ""), "values.schema.json has replicaCount, values.yaml has no such value"),
])
def test_the_generator_refuses_undocumented_untyped_and_stale_schema_keys(tmp_path: Path, edit: tuple[str, str],
                                                                         message: str) -> None:
    copy = copy_of_charts(tmp_path)
    values = copy / "backend-api" / "values.yaml"
    old, new = edit
    assert old in values.read_text()
    values.write_text(values.read_text().replace(old, new, 1))
    result = run_tool("--check", "--helm-dir", str(copy))
    assert result.returncode == 1 and message in result.stderr, result.stderr


@pytest.mark.parametrize("chart", CHARTS)
def test_chart_versions_are_semver_with_a_changelog_entry(chart: str) -> None:
    meta = yaml.safe_load((HELM / chart / "Chart.yaml").read_text())
    assert SEMVER.match(meta["version"]), meta["version"]
    changelog = (HELM / chart / "CHANGELOG.md").read_text()
    assert re.search(rf"^## {re.escape(meta['version'])}$", changelog, re.M), f"{chart}: no entry for {meta['version']}"
    for dependency in meta.get("dependencies", []):
        pinned = yaml.safe_load((HELM / dependency["repository"].removeprefix("file://../") / "Chart.yaml").read_text())
        assert dependency["version"] == pinned["version"], f"{chart} pins {dependency['name']} {dependency['version']}"

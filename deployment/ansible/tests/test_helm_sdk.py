"""tools/helm-sdk: the helm-compatible `template` command the render-only path runs.

Each test copies the fixture charts (an umbrella with a file:// subchart) to a temporary
directory, because `--dependency-update` writes charts/ and Chart.lock next to the chart.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import FIXTURE_CHARTS, HELM_SDK, run, venv_bin


@pytest.fixture
def charts(tmp_path: Path) -> Path:
    target = tmp_path / "charts"
    shutil.copytree(FIXTURE_CHARTS, target)
    return target


def helm_sdk(*args: str):
    return run([venv_bin("python"), str(HELM_SDK), *args])


def documents(stream: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(stream) if doc is not None]


def by_name(stream: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in documents(stream)}


def test_template_merges_values_files_in_order_and_sets_release(charts: Path, tmp_path: Path) -> None:
    first = tmp_path / "first.yaml"
    first.write_text("greeting: first\nreplicas: 2\ndemo-sub:\n  port: 6000\n", encoding="utf-8")
    second = tmp_path / "second.yaml"
    second.write_text("greeting: second\n", encoding="utf-8")

    # The exact argument shapes kubernetes.core.helm_template emits: `-f=<file>` and `-n <ns>`.
    result = helm_sdk(
        "template", "rel", str(charts / "demo"), "--dependency-update", f"-f={first}", f"-f={second}", "-n", "ns1"
    )

    assert result.returncode == 0, result.stderr
    docs = by_name(result.stdout)
    assert docs["rel-greeting"]["data"] == {"greeting": "second", "replicas": "2"}
    assert docs["rel-greeting"]["metadata"]["namespace"] == "ns1"
    # The subchart's value comes from the umbrella's values file, so the dependency was built.
    assert docs["rel-sub"]["spec"]["ports"] == [{"port": 6000}]
    assert (charts / "demo" / "charts" / "demo-sub-0.1.0.tgz").is_file()


def test_template_prints_helm_source_headers_and_leaves_out_notes(charts: Path) -> None:
    result = helm_sdk("template", "rel", str(charts / "demo"), "--dependency-update")

    assert result.returncode == 0, result.stderr
    sources = re.findall(r"^# Source: (.+)$", result.stdout, flags=re.MULTILINE)
    # configmap.yaml holds two documents; each gets its own header, as with helm.
    assert sorted(sources) == [
        "demo/charts/demo-sub/templates/service.yaml",
        "demo/templates/configmap.yaml",
        "demo/templates/configmap.yaml",
        "demo/templates/test-hook.yaml",
    ]
    assert "Installed rel" not in result.stdout
    assert result.stdout.count("\n---\n") + result.stdout.startswith("---\n") == 4


def test_template_without_hooks_drops_hook_documents(charts: Path) -> None:
    result = helm_sdk("template", "rel", str(charts / "demo"), "--dependency-update", "--no-hooks")

    assert result.returncode == 0, result.stderr
    assert "rel-test" not in by_name(result.stdout)
    assert "rel-greeting" in by_name(result.stdout)


def test_template_enforces_the_values_schema(charts: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("demo-sub:\n  port: not-a-number\n", encoding="utf-8")

    result = helm_sdk("template", "rel", str(charts / "demo"), "--dependency-update", f"-f={bad}")

    assert result.returncode == 1
    assert "/port" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["template", "rel", "CHART", "--repo=https://charts.example.invalid"],
        ["template", "rel", "CHART", "--set", "a=b"],
        ["install", "rel", "CHART"],
        ["template", "a", "b", "CHART"],
    ],
)
def test_unsupported_command_lines_stop_with_usage_error(charts: Path, args: list[str]) -> None:
    result = helm_sdk(*[str(charts / "demo") if arg == "CHART" else arg for arg in args])

    assert result.returncode == 2
    assert result.stderr.startswith("helm-sdk: ")


def test_missing_chart_is_an_error(tmp_path: Path) -> None:
    result = helm_sdk("template", "rel", str(tmp_path / "nowhere"))

    assert result.returncode == 2
    assert "not a chart directory" in result.stderr


def test_version_has_the_shape_kubernetes_core_parses() -> None:
    result = helm_sdk("version")

    assert result.returncode == 0
    # The pattern kubernetes.core's AnsibleHelmModule.get_helm_version matches.
    match = re.match(r'version.BuildInfo{Version:"v(.*?)",', result.stdout)
    assert match is not None, result.stdout
    assert match.group(1).split(".")[0].isdigit()

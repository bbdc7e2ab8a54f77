"""Render the abn-stack Helm charts offline with helm-python-sdk (Helm's Go SDK, no helm binary).

Library use (from the repo root, with the venv of scripts/check-charts.sh):

    import sys; sys.path.insert(0, "deployment/helm/tests")
    import render
    render.build_dependencies("deployment/helm/abn-stack")
    docs = render.render_objects("deployment/helm/abn-stack",
                                 ["deployment/configuration/dev/values.yaml"],
                                 release="abn-stack", namespace="abn-stack-dev")

Command line (prints the manifests like `helm template`, `---` separated, with `# Source:` lines):

    build/charts-venv/bin/python deployment/helm/tests/render.py \\
        -f deployment/configuration/prod/values.yaml -n abn-stack-prod [--release abn-stack] \\
        [--chart deployment/helm/abn-stack] [--kube-version v1.30.0] \\
        [--api-versions monitoring.coreos.com/v1/ServiceMonitor ...] [--skip-tests] [--set-json JSON]

Values files merge like `helm -f a -f b` (maps deep-merged, later files win, null removes a key),
then the chart's defaults are coalesced and values.schema.json of every chart is enforced by the
SDK: a bad values file raises helm_python.HelmValuesError (exit code 2 on the command line).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Iterable

import helm_python as helm
import yaml
from helm_python import _native

REPO_ROOT = Path(__file__).resolve().parents[3]
UMBRELLA = REPO_ROOT / "deployment" / "helm" / "abn-stack"
CONFIGURATION = REPO_ROOT / "deployment" / "configuration"
ENVIRONMENTS = ("dev", "prod")
RELEASE = "abn-stack"


def env_values_file(env: str) -> Path:
    """deployment/configuration/<env>/values.yaml."""
    return CONFIGURATION / env / "values.yaml"


#: Charts with file:// dependencies, in build order: a subchart's own charts/ (the abn-common
#: library) must be built before the umbrella packages the subchart.
CHARTS_WITH_DEPENDENCIES = ("backend-api", "data-api", "abn-stack")


def build_dependencies(chart_dir: str | os.PathLike[str] = UMBRELLA) -> None:
    """`helm dependency build` from each Chart.lock: the abn-common library into the subcharts'
    charts/, then the subcharts and the library into the umbrella's (chart_dir last)."""
    chart_dir = Path(chart_dir).resolve()
    for name in CHARTS_WITH_DEPENDENCIES:
        sub = chart_dir.parent / name
        if sub != chart_dir and (sub / "Chart.lock").is_file():
            helm.dependency_build(sub)
    helm.dependency_build(chart_dir)


def merge_values(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's merge of user values files: maps merge recursively, anything else is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_values(files: Iterable[str | os.PathLike[str]] = (), extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read values files in order (later wins), then `extra` on top."""
    values: dict[str, Any] = {}
    for path in files:
        with open(path, encoding="utf-8") as handle:
            loaded = yaml.safe_load(handle) or {}
        if not isinstance(loaded, dict):
            raise helm.HelmValuesError(f"{path}: a values file must be a YAML mapping")
        values = merge_values(values, loaded)
    if extra:
        values = merge_values(values, extra)
    return values


def render(
    chart_dir: str | os.PathLike[str] = UMBRELLA,
    values_files: Iterable[str | os.PathLike[str]] = (),
    *,
    release: str = RELEASE,
    namespace: str = "abn-stack-dev",
    extra_values: dict[str, Any] | None = None,
    kube_version: str | None = None,
    api_versions: Iterable[str] = (),
    include_tests: bool = True,
) -> dict[str, str]:
    """Render a chart; returns {template path: manifest text}, NOTES.txt included.

    kube_version and api_versions set .Capabilities (what `helm template --kube-version
    --api-versions` does). The Python wrapper's Chart.render does not expose them, so they go
    straight to the library's helm_render, which accepts them in its options.
    """
    helm.validate_release_name(release)
    values = load_values(values_files, extra_values)
    with helm.Chart.load(chart_dir) as chart:
        opts: dict[str, Any] = {"name": release, "namespace": namespace, "is_install": True}
        if kube_version:
            opts["kube_version"] = kube_version
        api_versions = list(api_versions)
        if api_versions:
            opts["api_versions"] = api_versions
        rendered = _native.call_string("helm_render", chart._raw(), json.dumps(values), json.dumps(opts))
    manifests: dict[str, str] = json.loads(rendered)
    if not include_tests:
        manifests = {path: text for path, text in manifests.items() if "/templates/tests/" not in path}
    return manifests


def render_in_cluster(
    server: str,
    chart_dir: str | os.PathLike[str] = UMBRELLA,
    values_files: Iterable[str | os.PathLike[str]] = (),
    *,
    release: str = RELEASE,
    namespace: str = "abn-stack-dev",
    extra_values: dict[str, Any] | None = None,
    upgrade: bool = True,
) -> dict[str, str]:
    """Render as `helm upgrade --dry-run=server` and `helm diff upgrade` do: the same engine as
    render(), but `lookup` asks the API server at `server` (plain HTTP, a token nobody checks:
    the tests' stand-in API server) for the live objects. Nothing is created."""
    helm.validate_release_name(release)
    values = load_values(values_files, extra_values)
    kubeconfig = yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "rehearsal",
        "clusters": [{"name": "rehearsal", "cluster": {"server": server}}],
        "users": [{"name": "rehearsal", "user": {"token": "unused"}}],
        "contexts": [{"name": "rehearsal", "context": {"cluster": "rehearsal", "user": "rehearsal", "namespace": namespace}}],
    })
    with helm.Config(kubeconfig_content=kubeconfig, namespace=namespace) as config, helm.Chart.load(chart_dir) as chart:
        return config.render(chart, values, name=release, namespace=namespace,
                             is_install=not upgrade, is_upgrade=upgrade)


def objects(manifests: dict[str, str]) -> list[dict[str, Any]]:
    """The Kubernetes objects of a render (NOTES.txt and empty documents dropped), in path order."""
    found: list[dict[str, Any]] = []
    for path in sorted(manifests):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(manifests[path]):
            if doc:
                found.append(doc)
    return found


def render_objects(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """render() then objects()."""
    return objects(render(*args, **kwargs))


def generated(obj: dict[str, Any]) -> bool:
    """An object whose data the chart generates on every offline render: the dev log-provider's
    TLS Secret (<release>-log-provider-tls, genCA/genSignedCert). In a cluster, lookup hands the
    existing Secret's data back instead (test_render's cluster-aware render proves it)."""
    return (obj.get("kind") == "Secret" and obj.get("type") == "kubernetes.io/tls"
            and obj["metadata"]["name"].endswith("-log-provider-tls"))


def comparable(objects: Iterable[dict[str, Any]]) -> list[str]:
    """Two renders' objects made comparable: each object as sorted JSON, in sorted order (helm and
    this module order them differently), a generated() object's data reduced to its keys."""
    return sorted(json.dumps({**obj, "data": sorted(obj.get("data") or {})} if generated(obj) else obj, sort_keys=True)
                  for obj in objects)


def to_yaml_stream(manifests: dict[str, str]) -> str:
    """Manifests as one YAML stream, like `helm template`."""
    parts = []
    for path in sorted(manifests):
        text = manifests[path].strip()
        if path.endswith("NOTES.txt") or not text:
            continue
        for doc in re.split(r"(?m)^---[ \t]*$", text):
            if doc.strip() and any(line and not line.lstrip().startswith("#") for line in doc.splitlines()):
                parts.append(f"---\n# Source: {path}\n{doc.strip()}\n")
    return "".join(parts)


def lint(
    chart_dir: str | os.PathLike[str] = UMBRELLA,
    values_files: Iterable[str | os.PathLike[str]] = (),
    *,
    namespace: str = "abn-stack-dev",
    kube_version: str | None = None,
) -> list[str]:
    """`helm lint --strict --with-subcharts`; returns the findings at warning level or above.

    The SDK's with_subcharts option lints the top chart only (total_charts_linted stays 1), and the
    helm CLI's --with-subcharts would hand the umbrella's values to every subchart (helm/helm#12798),
    which the subcharts' strict schemas rightly reject. So each packaged subchart in charts/ is
    linted here as well, with the values it really receives in a release: its own section of the
    umbrella's values.yaml and values files, plus `global`.
    """
    chart_dir = Path(chart_dir)
    values = load_values(values_files)
    findings = _lint_one(chart_dir, values, namespace, kube_version)
    if (chart_dir / "charts").is_dir():
        with open(chart_dir / "values.yaml", encoding="utf-8") as handle:
            umbrella_defaults = yaml.safe_load(handle) or {}
        effective = merge_values(umbrella_defaults, values)
        for archive in sorted((chart_dir / "charts").glob("*.tgz")):
            name = archive.name.rsplit("-", 1)[0]
            sub_values = merge_values(effective.get(name) or {}, {"global": effective.get("global") or {}})
            findings += [f"{name}: {finding}" for finding in _lint_one(archive, sub_values, namespace, kube_version)]
    return findings


def _lint_one(path: Path, values: dict[str, Any], namespace: str, kube_version: str | None) -> list[str]:
    report = helm.lint(
        path,
        values or None,
        strict=True,
        with_subcharts=True,
        namespace=namespace,
        kube_version=kube_version,
    )
    if report.get("total_charts_linted") != 1:
        return [f"{path}: expected one chart linted, got {report.get('total_charts_linted')}"]
    problems = [f"{m['path']}: {m['error']}" for m in report.get("messages", []) if m.get("severity", 0) >= 2]
    problems += [error for error in report.get("errors") or [] if error not in {m["error"] for m in report.get("messages", [])}]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render an abn-stack chart offline (helm template).")
    parser.add_argument("--chart", default=str(UMBRELLA))
    parser.add_argument("-f", "--values", action="append", default=[], help="values file (repeatable)")
    parser.add_argument("--release", default=RELEASE)
    parser.add_argument("-n", "--namespace", default="abn-stack-dev")
    parser.add_argument("--kube-version")
    parser.add_argument("--api-versions", action="append", default=[])
    parser.add_argument("--set-json", help="extra values as one JSON object, merged last")
    parser.add_argument("--skip-tests", action="store_true", help="drop the helm test hooks")
    parser.add_argument("--no-dependency-build", action="store_true")
    parser.add_argument("--notes", action="store_true", help="print NOTES.txt instead")
    args = parser.parse_args(argv)
    try:
        if not args.no_dependency_build and Path(args.chart, "Chart.lock").exists():
            build_dependencies(args.chart)
        manifests = render(
            args.chart,
            args.values,
            release=args.release,
            namespace=args.namespace,
            extra_values=json.loads(args.set_json) if args.set_json else None,
            kube_version=args.kube_version,
            api_versions=args.api_versions,
            include_tests=not args.skip_tests,
        )
    except helm.HelmError as error:
        print(f"render failed: {error}", file=sys.stderr)
        return 2
    if args.notes:
        notes = [text for path, text in manifests.items() if path.endswith("NOTES.txt")]
        sys.stdout.write("".join(notes))
    else:
        sys.stdout.write(to_yaml_stream(manifests))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""global.otel: OpenTelemetry traces of every workload of the umbrella and its subcharts.

Unset (the default), no container of any render has an OTEL_ variable; set, every container a
release runs (Deployments, the StatefulSet, the CronJobs' runs, the config-check hook Jobs, the
`helm test` pod, data-api's backup and legacy import) gets the endpoint, the sampler only where
set, and the resource attributes the OpenTelemetry Kubernetes conventions expect, as the kubelet
expands them. The schema refuses what the binaries would refuse at start; every container so
configured passes its binary's --check-config (test_check_config.py's runner).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import podspec
import render
from conftest import ENVS, NAMESPACES, objects
from test_check_config import check_release
from test_render import by_kind, one, render_error

ENDPOINT = "http://otel-collector.observability.svc:4318"
OTEL = {"global": {"otel": {"endpoint": ENDPOINT}}}
VALUES = Path(__file__).resolve().parent / "values"


def with_otel(otel: dict[str, Any], *more: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {"global": {"otel": otel}}
    for extra in more:
        values = render.merge_values(values, extra)
    return values


def every_container(docs: list[dict[str, Any]]):
    """(workload, pod name, container) of every container a release runs, init containers too."""
    for workload in podspec.workloads(docs):
        pod_name = workload.pod_names()[0]
        spec = workload.pod_spec
        for container in spec.get("initContainers", []) + spec["containers"]:
            yield workload, pod_name, container


def backup_and_legacy_import() -> dict[str, Any]:
    """prod with the scheduled backup and the legacy import Job: every data-api container kind."""
    values = yaml.safe_load((VALUES / "backup.yaml").read_text())
    return render.merge_values(values, {"data-api": {"legacyImport": {"enabled": True, "existingClaim": "flask-logs"}}})


@pytest.mark.parametrize("env", ENVS)
def test_unset_no_container_has_an_otel_variable(env: str) -> None:
    docs = objects(env)
    for workload, _, container in every_container(docs):
        names = [e["name"] for e in container.get("env", [])]
        assert not [n for n in names if n.startswith("OTEL_")], f"{workload.kind}/{workload.name}: {names}"
    assert not [p for p in by_kind(docs, "NetworkPolicy") if "otel" in p["metadata"]["name"]]


@pytest.mark.parametrize("env, extra", [
    ("default", {}), ("dev", {}), ("prod", {}),
    ("dev", {"healthCheck": {"mode": "serve"}}),
    ("prod", "backup"),
])
def test_set_every_container_of_every_workload_exports_to_the_endpoint(env: str, extra: Any) -> None:
    extra = backup_and_legacy_import() if extra == "backup" else extra
    docs = objects(env, extra=with_otel({"endpoint": ENDPOINT}, extra))
    cluster = podspec.Cluster(docs, podspec.operator_secrets(docs))
    seen = set()
    for workload, pod_name, container in every_container(docs):
        where = f"{workload.kind}/{workload.name} container {container['name']}"
        running = podspec.container_env(container, pod_name=pod_name, namespace=workload.namespace,
                                        cluster=cluster, base={})
        assert running.get("OTEL_EXPORTER_OTLP_ENDPOINT") == ENDPOINT, where
        # The binary's own sampler unless one is chosen.
        assert "OTEL_TRACES_SAMPLER" not in running and "OTEL_TRACES_SAMPLER_ARG" not in running, where
        attributes = dict(pair.split("=", 1) for pair in running["OTEL_RESOURCE_ATTRIBUTES"].split(","))
        expected = {"k8s.pod.name": pod_name, "k8s.namespace.name": NAMESPACES[env]}
        environment = {"default": None, "dev": "dev", "prod": "prod"}[env]
        if environment:
            expected |= {"deployment.environment.name": environment, "deployment.environment": environment}
        assert attributes == expected, where
        seen.add((workload.kind, container["name"]))
    kinds = {kind for kind, _ in seen}
    assert {"Deployment", "StatefulSet", "Job", "Pod"} <= kinds, seen
    if extra.get("healthCheck", {}).get("mode") != "serve":
        assert ("CronJob", "health-check") in seen, seen
    if extra.get("data-api", {}).get("backup"):
        assert ("CronJob", "backup") in seen and ("Job", "import-legacy") in seen, seen


def test_sampler_and_its_ratio_are_rendered_when_set() -> None:
    docs = objects("dev", extra=with_otel({"endpoint": ENDPOINT, "sampler": "parentbased_traceidratio",
                                           "samplerArg": 0.01}))
    backend = one(docs, "Deployment", "abn-stack-backend-api")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in backend["env"]}
    assert env["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio" and env["OTEL_TRACES_SAMPLER_ARG"] == "0.01"
    docs = objects("dev", extra=with_otel({"endpoint": ENDPOINT, "samplerArg": 1}))
    backend = one(docs, "Deployment", "abn-stack-backend-api")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in backend["env"]}
    assert env["OTEL_TRACES_SAMPLER_ARG"] == "1" and "OTEL_TRACES_SAMPLER" not in env


def test_an_operators_extra_env_wins_over_the_charts() -> None:
    """extraEnv comes after the chart's variables: the later name wins, as in Kubernetes."""
    docs = objects("dev", extra=with_otel({"endpoint": ENDPOINT}, {"backend-api": {"extraEnv": [
        {"name": "OTEL_RESOURCE_ATTRIBUTES", "value": "team=payments"}]}}))
    workload = next(w for w in podspec.workloads(docs) if w.name == "abn-stack-backend-api")
    cluster = podspec.Cluster(docs, podspec.operator_secrets(docs))
    running = podspec.container_env(workload.pod_spec["containers"][0], pod_name="p", namespace="n",
                                    cluster=cluster, base={})
    assert running["OTEL_RESOURCE_ATTRIBUTES"] == "team=payments"


@pytest.mark.parametrize("endpoint", [
    "otel-collector:4318",          # no scheme: the binary refuses it
    "grpc://otel-collector:4317",   # OTLP/gRPC: the binaries speak OTLP/HTTP only
    "http://",                      # no host
    "http://otel collector:4318",   # a space
    "http://collector:4318?x=1",    # a query: traces go to <endpoint>/v1/traces
])
def test_the_schema_refuses_a_bad_endpoint(endpoint: str, tmp_path) -> None:
    assert "endpoint" in render_error("dev", yaml.safe_dump({"global": {"otel": {"endpoint": endpoint}}}), tmp_path)


@pytest.mark.parametrize("otel, key", [
    ({"endpoint": ENDPOINT, "sampler": "sometimes"}, "sampler"),
    ({"endpoint": ENDPOINT, "samplerArg": 1.5}, "samplerArg"),
    ({"endpoint": ENDPOINT, "samplerArg": "0.1"}, "samplerArg"),
    ({"endpoint": ENDPOINT, "headers": "x"}, "headers"),
])
def test_the_schema_refuses_a_bad_sampler_or_an_unknown_key(otel: dict[str, Any], key: str, tmp_path) -> None:
    assert key in render_error("prod", yaml.safe_dump({"global": {"otel": otel}}), tmp_path)


@pytest.mark.parametrize("endpoint", [ENDPOINT, "https://otel.example.com", "http://10.0.0.7/otlp", "http://[fd00::7]:4318"])
def test_the_schema_accepts_an_http_or_https_base_url(endpoint: str) -> None:
    docs = objects("prod", extra=with_otel({"endpoint": endpoint}))
    assert one(docs, "NetworkPolicy", "abn-stack-otel-collector")


@pytest.mark.parametrize("endpoint, port", [
    (ENDPOINT, 4318), ("https://otel.example.com", 443), ("http://10.0.0.7/otlp", 80), ("http://[fd00::7]:4319", 4319)])
def test_every_pod_may_reach_the_collector_on_the_endpoints_port(endpoint: str, port: int) -> None:
    docs = objects("prod", extra=with_otel({"endpoint": endpoint}))
    policy = one(docs, "NetworkPolicy", "abn-stack-otel-collector")["spec"]
    assert policy["podSelector"] == {"matchLabels": {"app.kubernetes.io/instance": "abn-stack"}}
    assert policy["policyTypes"] == ["Egress"]
    assert policy["egress"] == [{"ports": [{"port": port, "protocol": "TCP"}]}]


def test_the_collector_egress_can_name_the_collectors_pods() -> None:
    """values/otel.yaml (also what scripts/check-charts.sh validates and checkov reads)."""
    values = yaml.safe_load((VALUES / "otel.yaml").read_text())
    peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "opentelemetry-collector"}}}
    assert values["networkPolicy"]["collectorEgressTo"] == [peer] and values["global"]["otel"]["endpoint"] == ENDPOINT
    policy = one(objects("prod", extra=values), "NetworkPolicy", "abn-stack-otel-collector")["spec"]
    assert policy["egress"] == [{"ports": [{"port": 4318, "protocol": "TCP"}], "to": [peer]}]


@pytest.mark.parametrize("env", ENVS)
def test_every_container_with_traces_on_passes_its_binarys_check(env: str) -> None:
    otel = {"endpoint": ENDPOINT, "sampler": "parentbased_traceidratio", "samplerArg": 0.01}
    passed, failed = check_release(objects(env, extra=with_otel(otel)))
    assert not failed, "\n".join(failed)
    assert {"Deployment", "StatefulSet", "CronJob", "Job", "Pod"} <= {e.split()[0] for e in passed}, passed


@pytest.mark.parametrize("chart, kind", [("backend-api", "Deployment"), ("data-api", "StatefulSet")])
def test_a_subchart_installed_on_its_own_takes_global_otel_too(chart: str, kind: str) -> None:
    chart_dir = render.UMBRELLA.parent / chart
    off = render.objects(render.render(chart_dir, [], release="solo", namespace="solo"))
    on = render.objects(render.render(chart_dir, [], release="solo", namespace="solo",
                                      extra_values=with_otel({"endpoint": ENDPOINT, "sampler": "always_on"})))
    for docs, expected in ((off, None), (on, ENDPOINT)):
        workload = next(w for w in podspec.workloads(docs) if w.kind == kind)
        env = {e["name"]: e for e in workload.pod_spec["containers"][0].get("env", [])}
        assert (env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or {}).get("value") == expected
    env = {e["name"]: e for e in next(w for w in podspec.workloads(on) if w.kind == kind).pod_spec["containers"][0]["env"]}
    assert env["OTEL_TRACES_SAMPLER"]["value"] == "always_on"
    assert env["OTEL_K8S_POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}

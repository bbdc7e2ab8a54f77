"""Static checks of monitoring/ that need the charts: the rule jobs match the ServiceMonitors, the
chart ships the same rules, the dashboard stays importable by Grafana, and every metric the rules
and panels read is one the services (or kube-state-metrics / the kubelet) expose. The PromQL itself
is checked by the real tools in the monitoring area (promtool check rules, promtool test rules, the
panel queries run against a live Prometheus: scripts/check-monitoring.sh)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

import render
from conftest import objects

MONITORING = render.REPO_ROOT / "monitoring"
RULES = MONITORING / "prometheus" / "abn-stack-rules.yaml"
CHART_RULES = render.UMBRELLA / "files" / "abn-stack-rules.yaml"
DASHBOARD = MONITORING / "grafana" / "abn-stack-dashboard.json"
DATASOURCES = MONITORING / "grafana" / "datasources.yaml"
# The label of the latency buckets' exemplars (crates/platform/src/latency_histogram.rs; the
# monitoring area's live test reads it back from Prometheus).
EXEMPLAR_LABEL = "trace_id"


def histogram(name: str) -> set[str]:
    return {f"{name}_bucket", f"{name}_sum", f"{name}_count"}


# The services' /metrics, as docs/contract.md lists them (a new metric is added there and here).
SERVICE_METRICS = {
    "http_requests_total", "http_requests_in_flight", "build_info",
    "backend_upstream_requests_total", "backend_upstream_bytes_total", "backend_download_requests_total",
    "data_api_records_written_total", "data_api_store_bytes", "data_api_retention_bytes",
    "data_api_store_writable", "data_api_write_errors_total",
    "secret_reloads_total", "secret_last_reload_timestamp_seconds", "log_lines_dropped_total",
    # when traces are exported (OTEL_EXPORTER_OTLP_ENDPOINT)
    "trace_spans_exported_total", "trace_spans_dropped_total",
    # health-check serve
    "healthcheck_target_up", "healthcheck_last_success_timestamp_seconds", "healthcheck_probes_total",
    "healthcheck_last_run_timestamp_seconds", "healthcheck_notifications_total",
    "healthcheck_notification_retries_total",
} | histogram("http_request_duration_seconds") | histogram("data_api_sync_duration_seconds") \
  | histogram("data_api_commit_batch_size") | histogram("healthcheck_probe_duration_seconds")
# Outside the services: Prometheus itself, kube-state-metrics (the health-check CronJob has no
# /metrics) and the kubelet (volume usage of the data-api claims).
PLATFORM_METRICS = {
    "up", "kube_job_status_failed", "kube_job_status_succeeded", "kube_cronjob_status_last_successful_time",
    "kubelet_volume_stats_used_bytes", "kubelet_volume_stats_capacity_bytes",
}
KNOWN_METRICS = SERVICE_METRICS | PLATFORM_METRICS

PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                   "and", "or", "unless", "offset", "atan2", "inf", "nan"}
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """Metric names read by a PromQL expression (Grafana variables allowed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', " ", expr)          # strings: label values, regexes
    text = re.sub(r"\$\{?\w+\}?", " ", text)                  # $__rate_interval, ${datasource}
    text = re.sub(r"\{[^}]*\}", " ", text)                    # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)                   # ranges and subqueries
    text = GROUPING.sub(" ", text)                            # grouping label lists
    text = re.sub(r"\b\d+(\.\d+)?([eE][+-]?\d+)?(ms|s|m|h|d|w|y)?\b", " ", text)  # numbers, durations
    names = set()
    for match in IDENTIFIER.finditer(text):
        rest = text[match.end():].lstrip()
        word = match.group()
        if rest.startswith("(") or word.lower() in PROMQL_KEYWORDS:
            continue                                          # a function or aggregation
        names.add(word)
    return names


def load_rules() -> dict[str, Any]:
    with open(RULES, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def all_rules() -> list[dict[str, Any]]:
    """Alerting and recording rules alike."""
    return [rule for group in load_rules()["groups"] for rule in group["rules"]]


def rule_name(rule: dict[str, Any]) -> str:
    return rule.get("alert") or rule["record"]


def recorded() -> set[str]:
    """Series the recording rules make (the SLO ratios), which later rules may read."""
    return {rule["record"] for rule in all_rules() if "record" in rule}


def dashboard_exprs(panels: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    for panel in panels:
        yield from dashboard_exprs(panel.get("panels", []))
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def test_metric_name_extraction_sees_through_promql() -> None:
    expr = ('histogram_quantile(0.95, sum by (le, route) (rate(http_request_duration_seconds_bucket'
            '{job="x", route=~"/a|/b"}[$__rate_interval]))) / on (job) group_left up offset 5m > bool 1e3')
    assert metric_names(expr) == {"http_request_duration_seconds_bucket", "up"}
    assert metric_names("time() - max by (cronjob) (kube_cronjob_status_last_successful_time) or vector(0)") == \
        {"kube_cronjob_status_last_successful_time"}


def test_rules_file_is_a_valid_rule_file() -> None:
    rules = load_rules()
    assert set(rules) == {"groups"}
    names = set()
    for group in rules["groups"]:
        assert set(group) <= {"name", "interval", "rules"} and group["rules"]
        for rule in group["rules"]:
            if "record" in rule:
                assert set(rule) <= {"record", "expr", "labels"}, rule
                assert re.fullmatch(r"[a-z_]+:[a-z_]+:[a-z0-9_]+", rule["record"]) and rule["record"] not in names
                names.add(rule["record"])
                continue
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", rule["alert"]) and rule["alert"] not in names
            names.add(rule["alert"])
            assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s")), rule["alert"]
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]
            for text in rule["annotations"].values():
                assert text.count("{{") == text.count("}}"), rule["alert"]


@pytest.mark.parametrize("rule", all_rules(), ids=rule_name)
def test_rule_expressions_read_exposed_metrics(rule: dict[str, Any]) -> None:
    names = metric_names(rule["expr"])
    assert names, rule["expr"]
    assert names <= KNOWN_METRICS | recorded(), names - KNOWN_METRICS - recorded()


def test_rules_cover_the_required_alerts() -> None:
    by_metric: dict[str, set[str]] = {}
    for rule in all_rules():
        for name in metric_names(rule["expr"]):
            by_metric.setdefault(name, set()).add(rule_name(rule))
    assert "up" in by_metric                                              # service down
    assert any("5.." in r["expr"] and "http_requests_total" in r["expr"] for r in all_rules())  # error ratio
    assert "http_request_duration_seconds_bucket" in by_metric            # latency
    assert "kubelet_volume_stats_used_bytes" in by_metric                 # data-api volume filling
    assert "data_api_store_writable" in by_metric
    assert {"kube_job_status_failed", "kube_cronjob_status_last_successful_time"} <= set(by_metric)  # health-check
    assert {"healthcheck_target_up", "healthcheck_probe_duration_seconds_bucket",          # health-check serve
            "healthcheck_last_run_timestamp_seconds"} <= set(by_metric)


def test_rule_job_names_match_the_service_monitor_jobs() -> None:
    """The ServiceMonitors take `job` from app.kubernetes.io/name; the rules must use those values."""
    docs = objects("dev", api_versions=("monitoring.coreos.com/v1/ServiceMonitor",))
    service_names = {s["metadata"]["labels"]["app.kubernetes.io/name"] for s in docs if s["kind"] == "Service"}
    for rule in all_rules():
        for matcher in re.findall(r'\bjob=~?"([^"]+)"', rule["expr"]):
            assert set(matcher.split("|")) <= service_names, (rule_name(rule), matcher)


def test_chart_ships_the_same_rules() -> None:
    assert CHART_RULES.read_bytes() == RULES.read_bytes(), \
        "copy monitoring/prometheus/abn-stack-rules.yaml to deployment/helm/abn-stack/files/"


def test_dashboard_panels_read_exposed_metrics() -> None:
    with open(DASHBOARD, encoding="utf-8") as handle:
        dashboard = json.load(handle)
    assert dashboard["uid"] and dashboard["title"]
    exprs = list(dashboard_exprs(dashboard["panels"]))
    assert len(exprs) >= 10
    used = set()
    for title, expr in exprs:
        names = metric_names(expr)
        assert names and names <= KNOWN_METRICS, (title, names - KNOWN_METRICS)
        used |= names
    # What the dashboard must show: request rate, error ratio, latency, data-api writes and sync
    # latency, health-check results.
    assert {"http_requests_total", "http_request_duration_seconds_bucket", "data_api_records_written_total",
            "data_api_sync_duration_seconds_bucket", "kube_job_status_failed",
            "kube_cronjob_status_last_successful_time"} <= used
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_service_metrics_are_registered_by_the_services() -> None:
    """Each service metric the rules and dashboard may read is registered in crates/ under that
    name (prometheus-client appends _total to counters; histograms add _bucket/_sum/_count)."""
    sources = "\n".join(path.read_text(encoding="utf-8") for path in (render.REPO_ROOT / "crates").rglob("*.rs"))
    for metric in sorted(SERVICE_METRICS):
        base = re.sub(r"_(total|bucket|sum|count)$", "", metric)
        assert f'"{base}"' in sources, f"{metric}: no service registers {base!r}"


def test_dashboard_is_importable_by_grafana() -> None:
    """What a Grafana import needs: a schema version, a data source variable that every panel and
    query uses (no hard-coded data source uid), unique panel ids, nested rows included."""
    with open(DASHBOARD, encoding="utf-8") as handle:
        dashboard = json.load(handle)
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"

    def walk(node: Any) -> Iterator[dict[str, Any]]:
        if isinstance(node, dict):
            yield node
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    uids = {d["datasource"]["uid"] for d in walk(dashboard) if isinstance(d.get("datasource"), dict)}
    assert uids <= {"${datasource}", "$datasource"}, f"hard-coded data source uid: {uids}"
    ids = [panel["id"] for panel in walk(dashboard["panels"]) if "gridPos" in panel]
    assert ids and len(ids) == len(set(ids)), ids


def test_latency_panel_shows_exemplars_linked_to_traces() -> None:
    """One latency query asks Grafana for exemplars (one: the three quantiles would draw the same
    points thrice), and the provisioning example links their label to a trace data source it
    provisions."""
    with open(DASHBOARD, encoding="utf-8") as handle:
        dashboard = json.load(handle)
    exemplar_targets = [(panel["title"], target["expr"]) for panel in dashboard["panels"]
                        for target in panel.get("targets", []) if target.get("exemplar")]
    assert len(exemplar_targets) == 1, exemplar_targets
    assert "http_request_duration_seconds_bucket" in metric_names(exemplar_targets[0][1])
    with open(DATASOURCES, encoding="utf-8") as handle:
        provisioning = yaml.safe_load(handle)
    assert provisioning["apiVersion"] == 1
    by_type = {source["type"]: source for source in provisioning["datasources"]}
    destinations = by_type["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert [d["name"] for d in destinations] == [EXEMPLAR_LABEL]
    uids = {source["uid"] for source in provisioning["datasources"]}
    assert destinations[0]["datasourceUid"] in uids - {by_type["prometheus"]["uid"]}
    assert by_type["tempo"]["uid"] == destinations[0]["datasourceUid"]

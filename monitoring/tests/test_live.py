"""Monitoring proven against the real thing: the services' classic pages pass `promtool check
metrics`, Prometheus scrapes every target healthy with the declared metric types and keeps a
traced request's exemplar, every dashboard panel query has data after load, and each fault a rule
describes, made for real, fires its alert at Alertmanager and resolves once the fault is gone.

Rules that read kube-state-metrics or kubelet series (Job status, volume stats) cannot fire here:
monitoring/prometheus/tests/ unit-tests them (test_rules.py checks that every alert is either)."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
import yaml

from stack import DASHBOARD, NAMESPACE, RULES, Stack, derive_rules, get_json, http, wait_until

SERVICES = ("backend-api", "data-api", "log-provider", "health-check")
# Grafana's variables, as the dashboard would resolve them for this Prometheus (1 s scrapes).
VARIABLES = {"namespace": NAMESPACE, "service": "backend-api|data-api|log-provider",
             "__rate_interval": "15s", "__interval": "1s"}
PANEL_TIMEOUT = 30


def classic_page(stack: Stack, service: str) -> tuple[str, bytes]:
    status, headers, body = http(f"{stack.services[service].base}/metrics",
                                 headers={"Accept": "text/plain;version=0.0.4"})
    assert status == 200
    return headers["Content-Type"], body


@pytest.mark.parametrize("service", SERVICES)
def test_classic_page_passes_promtool_check_metrics(stack: Stack, service: str) -> None:
    content_type, page = classic_page(stack, service)
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    result = subprocess.run(["promtool", "check", "metrics"], input=page, capture_output=True, timeout=30)
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), \
        f"promtool check metrics on {service}: {(result.stdout + result.stderr).decode()}"


def test_every_target_is_scraped_healthy(stack: Stack) -> None:
    def healthy() -> list[dict[str, Any]] | None:
        targets = [t for t in stack.query_api("targets")["activeTargets"] if t["labels"].get("namespace") == NAMESPACE]
        return targets if len(targets) == len(SERVICES) and all(t["health"] == "up" and not t["lastError"] for t in targets) else None
    targets = wait_until("every target up with an empty lastError", healthy, timeout=30)
    assert {t["labels"]["job"] for t in targets} == set(SERVICES)


def declared_types(stack: Stack, service: str) -> dict[str, str]:
    """{family: type} from the service's own OpenMetrics page (what Prometheus negotiates)."""
    status, headers, body = http(f"{stack.services[service].base}/metrics")
    assert status == 200 and headers["Content-Type"].startswith("application/openmetrics-text")
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", body.decode(), flags=re.MULTILINE))


def test_metadata_api_reports_each_declared_type(stack: Stack) -> None:
    wrong = []
    for service in SERVICES:
        declared = declared_types(stack, service)
        assert declared, service
        metadata = wait_until(f"{service} metadata", lambda: (
            lambda m: m if set(declared) <= set(m) else None)(stack.query_api("metadata")), timeout=30)
        for name, kind in declared.items():
            if kind not in {entry["type"] for entry in metadata[name]}:
                wrong.append(f"{service}: {name} declared {kind}, Prometheus has {metadata[name]}")
    assert not wrong, "\n".join(wrong)


def test_a_traced_request_is_an_exemplar_in_prometheus(stack: Stack, report: list[str]) -> None:
    """backend-api traces only requests that come sampled (the stack's sampler is
    parentbased_always_off): this one's trace id is the exemplar of its latency bucket on the
    OpenMetrics page, and Prometheus (exemplar-storage on) keeps it."""
    trace_id = secrets.token_hex(16)
    status, _, _ = http(f"{stack.backend.base}/health_check",
                        headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"})
    assert status == 200
    wait_until("backend-api exports the request's span", lambda: stack.collector.bodies, timeout=30)
    series = f'http_request_duration_seconds_bucket{{job="backend-api", namespace="{NAMESPACE}", route="/health_check"}}'
    now = time.time()

    def stored() -> list[tuple[dict[str, str], dict[str, Any]]]:
        url = f"{stack.prometheus}/api/v1/query_exemplars?" + urllib.parse.urlencode(
            {"query": series, "start": f"{now - 300:.3f}", "end": f"{time.time() + 60:.3f}"})
        answer = get_json(url)
        assert answer["status"] == "success", answer
        return [(found["seriesLabels"], exemplar) for found in answer["data"] for exemplar in found["exemplars"]
                if exemplar["labels"].get("trace_id") == trace_id]
    started = time.monotonic()
    found = wait_until(f"an exemplar with trace_id {trace_id} at /api/v1/query_exemplars", stored, timeout=30)
    labels, exemplar = found[0]
    assert labels["route"] == "/health_check" and labels["method"] == "GET" and labels["status"] == "200", labels
    seconds = float(exemplar["value"])
    assert labels["le"] == "+Inf" or seconds <= float(labels["le"]), (labels, exemplar)
    report.append(f"- exemplar: backend-api's /health_check request with trace id {trace_id} stored by Prometheus "
                  f"under le={labels['le']} ({seconds}s) after {time.monotonic() - started:.0f}s")


def panel_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    found = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            walk(panel.get("panels", []))
            for target in panel.get("targets", []):
                found.append((f'#{panel["id"]} "{panel["title"]}" ({target.get("refId", "?")})', target["expr"]))
    walk(dashboard["panels"])
    return found


def substituted(expr: str) -> str:
    text = re.sub(r"\$\{?(\w+)\}?", lambda m: VARIABLES.get(m.group(1), m.group(0)), expr)
    assert "$" not in text, f"unknown Grafana variable in {expr}"
    return text


def kube_state_only(expr: str) -> bool:
    """A query of kube-state-metrics series only (the health-check CronJob's Jobs): no such
    exporter here, so such a panel is reported, not failed; a service panel never is."""
    metrics = set(re.findall(r"\b([a-z_]+)\{", expr))
    return bool(metrics) and all(m.startswith("kube_") for m in metrics)


def test_every_panel_query_returns_series_after_load(stack: Stack, report: list[str]) -> None:
    queries = panel_queries()
    provable = [name for name, expr in queries if not kube_state_only(expr)]
    # Bounded: a counter needs two scrapes inside the rate window after its first request.
    deadline = time.monotonic() + PANEL_TIMEOUT
    while True:
        counts = {name: len(stack.query(substituted(expr))) for name, expr in queries}
        if all(counts[name] for name in provable) or time.monotonic() > deadline:
            break
        time.sleep(1)
    report.append("| panel query | series after load |\n|---|---|")
    empty = []
    for name, expr in queries:
        if kube_state_only(expr):
            fallback = " (the query's own `or vector(0)`)" if counts[name] else ""
            report.append(f"| {name} | {counts[name]}{fallback}: needs kube-state-metrics, not on this machine |")
            continue
        report.append(f"| {name} | {counts[name]} |")
        if not counts[name]:
            empty.append(f"{name}: {expr}")
    assert not empty, "dashboard panels with no data after load:\n" + "\n".join(empty)


def test_the_live_rules_differ_only_in_for_and_windows() -> None:
    shipped = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    live = yaml.safe_load(derive_rules(RULES.read_text(encoding="utf-8")))
    for group, live_group in zip(shipped["groups"], live["groups"], strict=True):
        for rule, live_rule in zip(group["rules"], live_group["rules"], strict=True):
            assert live_rule.get("for") == ("2s" if "alert" in rule else None)
            assert re.sub(r"\[\d+[smh]\]", "[W]", rule["expr"]) == re.sub(r"\[\d+[smh]\]", "[W]", live_rule["expr"])
            assert {k: v for k, v in rule.items() if k not in {"for", "expr"}} == \
                   {k: v for k, v in live_rule.items() if k not in {"for", "expr"}}


# --- faults ---------------------------------------------------------------------------------------

@dataclass
class Fault:
    name: str
    inject: Callable[[Stack], None]
    remove: Callable[[Stack], None]
    # alertname -> labels the alert at Alertmanager must carry.
    alerts: dict[str, dict[str, str]] = field(default_factory=dict)
    # After the alerts resolved: put the stack back as the next fault expects it.
    cleanup: Callable[[Stack], None] = lambda stack: None


def restart(service: str, **env: str) -> Callable[[Stack], None]:
    def run(stack: Stack) -> None:
        stack.services[service].kill()
        stack.services[service].start(**env)
    return run


def vanish_volume(stack: Stack) -> None:
    # Removed, not renamed: the store holds its folder open, so a rename goes unnoticed.
    shutil.rmtree(stack.log_dir)


def restore_volume(stack: Stack) -> None:
    stack.log_dir.mkdir()


class FullVolume:
    """data-api restarted on a small tmpfs that someone else's file nearly fills; big records fill
    the rest (507 storage_full). Deleting that file frees the volume and the store recovers by
    itself. Needs mount (root), as data-api's own tmpfs fault tests do."""

    FILLER = "other-data.bin"

    def inject(self, stack: Stack) -> None:
        mount = stack.root / "tmpfs-volume"
        mount.mkdir(exist_ok=True)
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", str(mount)],
                                capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip()}); the unit tests and "
                        "data-api's own fault tests cover a full volume")
        try:
            (mount / self.FILLER).write_bytes(b"\0" * 160 * 1024)
            # Small segments, and a retention larger than the volume so that the volume fills first.
            restart("data-api", LOG_DIR=str(mount), LOG_SEGMENT_BYTES="32768", LOG_RETENTION_BYTES="1048576")(stack)
            record = json.dumps({"message": "f" * 4000, "level": "info"}).encode()
            for _ in range(100):  # bounded: 96 KiB free takes about 25 of these
                status, _, _ = http(f"{stack.data.base}/logs", method="POST", body=record,
                                    headers={"Content-Type": "application/json"})
                if status == 507:
                    return
            raise AssertionError("the tmpfs never filled up")
        except BaseException:
            self.cleanup(stack)
            raise

    def remove(self, stack: Stack) -> None:
        (stack.root / "tmpfs-volume" / self.FILLER).unlink()

    def cleanup(self, stack: Stack) -> None:
        restart("data-api")(stack)
        subprocess.run(["umount", "-l", str(stack.root / "tmpfs-volume")], check=True, timeout=30)


FULL_VOLUME = FullVolume()
FAULTS = [
    Fault("log-provider stopped", lambda s: s.provider.kill(), lambda s: s.provider.start(),
          {"AbnStackServiceDown": {"job": "log-provider"},
           # backend-api's downloads answer 502 provider_unavailable meanwhile
           "AbnStackHighErrorRatio": {"job": "backend-api"}}),
    Fault("backend-api scrape target removed", lambda s: s.write_targets(without="backend-api"),
          lambda s: s.write_targets(), {"AbnStackServiceAbsent": {"job": "backend-api"}}),
    Fault("data-api volume vanished", vanish_volume, restore_volume,
          {"AbnStackDataApiStoreNotWritable": {"pod": "abn-stack-data-api-0"},
           "AbnStackDataApiWriteErrors": {"pod": "abn-stack-data-api-0", "kind": "unavailable"},
           # POST /logs and GET / answer 503 storage_unavailable meanwhile
           "AbnStackHighErrorRatio": {"job": "data-api"}}),
    Fault("data-api volume full (tmpfs)", FULL_VOLUME.inject, FULL_VOLUME.remove,
          {"AbnStackDataApiStoreNotWritable": {"pod": "abn-stack-data-api-0"},
           "AbnStackDataApiWriteErrors": {"pod": "abn-stack-data-api-0", "kind": "full"},
           # POST /logs answers 507 storage_full meanwhile
           "AbnStackHighErrorRatio": {"job": "data-api"}},
          cleanup=FULL_VOLUME.cleanup),
    Fault("backend-api /api_1 slow (2 s of work)", restart("backend-api", SIMULATED_LATENCY_MS="2000"),
          restart("backend-api"), {"AbnStackBackendHighLatency": {"route": "/api_1"}}),
    Fault("data-api GET / slow (6 s of work)", restart("data-api", SIMULATED_LATENCY_MS="6000"),
          restart("data-api"), {"AbnStackDataApiHighLatency": {"route": "/"}}),
]
FIRE_TIMEOUT = 60
RESOLVE_TIMEOUT = 60


def matching(stack: Stack, alertname: str, labels: dict[str, str]) -> list[dict[str, Any]]:
    return [a for a in stack.active_alerts(alertname)
            if all(a["labels"].get(k) == v for k, v in labels.items()) and a["labels"].get("namespace", NAMESPACE) == NAMESPACE]


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
def test_fault_fires_its_alerts_then_resolves(stack: Stack, report: list[str], fault: Fault) -> None:
    for alertname, labels in fault.alerts.items():
        wait_until(f"{alertname} {labels} not active before the fault",
                   lambda: not matching(stack, alertname, labels), timeout=RESOLVE_TIMEOUT)
    started = time.monotonic()
    fault.inject(stack)
    try:
        for alertname, labels in fault.alerts.items():
            alerts = wait_until(f"{fault.name}: {alertname} {labels} at Alertmanager",
                                lambda: matching(stack, alertname, labels), timeout=FIRE_TIMEOUT)
            assert alerts[0]["annotations"]["runbook_url"].endswith("#" + alertname.lower())
        fired = time.monotonic() - started
    finally:
        fault.remove(stack)
    removed = time.monotonic()
    try:
        for alertname, labels in fault.alerts.items():
            wait_until(f"{fault.name}: {alertname} {labels} resolved", lambda: not matching(stack, alertname, labels),
                       timeout=RESOLVE_TIMEOUT)
        resolved = time.monotonic() - removed
    finally:
        fault.cleanup(stack)
    report.append(f"- {fault.name}: {', '.join(fault.alerts)} reached Alertmanager after {fired:.0f}s, "
                  f"resolved {resolved:.0f}s after the fault was removed")

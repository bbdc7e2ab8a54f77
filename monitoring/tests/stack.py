"""The live monitoring stack on loopback: the three services and `health-check serve` (real
binaries; health-check probes one more log-provider that is not scraped, the target a test may
stop), a real Prometheus scraping them every second with a derived copy of the rules, and a real
Alertmanager routing the health-check alerts to a webhook receiver of the test.

The services start on port 0 and name the port they bound in their log
(tests/support/service_process.py); a restarted service asks for the same port again, so it keeps
its scrape target. Prometheus and Alertmanager cannot report theirs, so they get a free port
picked just before they start. Everything lives under one temporary folder; `Stack.stop` kills
what it started. Every wait is bounded."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any, Callable

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tests" / "support"))
from service_process import ServiceProcess, eventually, free_port  # noqa: E402  (the one way to start a binary)

RULES = REPO_ROOT / "monitoring" / "prometheus" / "abn-stack-rules.yaml"
INHIBIT_RULES = REPO_ROOT / "monitoring" / "alertmanager" / "inhibit-rules.yaml"
DASHBOARD = REPO_ROOT / "monitoring" / "grafana" / "abn-stack-dashboard.json"
BIN_DIR = Path(os.environ.get("ABN_BIN_DIR", REPO_ROOT / "target" / "debug"))
NAMESPACE = "abn-stack-live"
# The live copy of the rules: Prometheus cannot override for:, and a 5-minute rate window would
# keep an alert firing for minutes after its fault is gone.
LIVE_FOR = "2s"
LIVE_RANGE = "15s"


def wait_until(what: str, check: Callable[[], Any], timeout: float = 60.0, every: float = 0.5) -> Any:
    """service_process.eventually with this suite's pace: Prometheus moves once a second."""
    return eventually(what, check, timeout, every)


def http(url: str, *, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None,
         timeout: float = 15.0) -> tuple[int, Message, bytes]:
    """(status, headers (case-insensitive), body); an HTTP error status is an answer, not an error."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def get_json(url: str) -> Any:
    status, _, body = http(url)
    assert status == 200, (url, status, body[:300])
    return json.loads(body)


def derive_rules(text: str) -> str:
    """The shipped rules with every for: and every range window shortened, nothing else changed."""
    text = re.sub(r"^(\s+for:) \S+$", rf"\1 {LIVE_FOR}", text, flags=re.MULTILINE)
    return re.sub(r"\[\d+[smh]\]", f"[{LIVE_RANGE}]", text)


@dataclass
class Service:
    """One service binary: port 0 on its first start; a restart asks for the port it bound then
    (so it keeps its scrape target)."""
    name: str
    env: dict[str, str]
    log: Path
    port: int = 0
    process: ServiceProcess | None = None
    args: tuple[str, ...] = ()

    @property
    def base(self) -> str:
        assert self.port, f"{self.name} has not started yet"
        return f"http://127.0.0.1:{self.port}"

    def start(self, **overrides: str) -> None:
        env = {"PATH": os.environ.get("PATH", ""), **self.env, **overrides}
        self.process = ServiceProcess([BIN_DIR / self.name, *self.args], env=env, inherit_env=False,
                                      log_path=self.log, capture=False, port=self.port, start_bound=20)
        self.process.start()
        self.port = self.process.port

    def kill(self) -> None:
        """A crash: SIGKILL, no drain."""
        if self.process:
            self.process.kill()
        self.process = None


class PostReceiver:
    """An HTTP receiver of the test on loopback: keeps the body of every POST to `path` and
    answers 200 (404 elsewhere)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.bodies: list[bytes] = []
        lock = threading.Lock()
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path != path:
                    self.send_response(404)
                    self.end_headers()
                    return
                with lock:
                    bodies.append(body)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # port 0: the OS picks
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}{self.path}"


class WebhookReceiver(PostReceiver):
    """Alertmanager's webhook receiver: keeps every notification body it is sent."""

    def __init__(self) -> None:
        super().__init__("/alertmanager")

    @property
    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(body) for body in list(self.bodies)]

    def alerts(self, alertname: str, status: str | None = None) -> list[dict[str, Any]]:
        """Every alert of that name in the notifications so far (one per notification)."""
        return [alert for payload in self.payloads for alert in payload["alerts"]
                if alert["labels"].get("alertname") == alertname and status in (None, alert["status"])]


class Stack:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.provider_key = secrets.token_urlsafe(24)
        self.log_dir = root / "data-api-volume"
        self.log_dir.mkdir()
        self.provider = Service("log-provider", {"PROVIDER_KEY": self.provider_key}, root / "log-provider.log")
        # backend-api's OTLP collector: takes the exports and answers 200. Only requests that
        # come with a sampled traceparent are traced (the load's are not), so the exemplars on
        # backend-api's latency histogram are the test's requests alone.
        self.collector = PostReceiver("/v1/traces")
        # EXTERNAL_LOGS_URL and HEALTHCHECK_TARGETS name ports known once their targets run (start()).
        self.backend = Service("backend-api", {
            "EXTERNAL_INTEGRATION_KEY": self.provider_key,
            # 0.5 s of simulated work would make the load loop slow; the latency fault sets its own.
            "SIMULATED_LATENCY_MS": "20",
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.collector.base,
            "OTEL_TRACES_SAMPLER": "parentbased_always_off",
        }, root / "backend-api.log")
        self.data = Service("data-api", {
            "LOG_DIR": str(self.log_dir), "INSTANCE_ID": "abn-stack-data-api-0",
            "SIMULATED_LATENCY_MS": "20",  # GET / simulates 3 s by default: too slow for the load loop
        }, root / "data-api.log")
        # What health-check probes: a log-provider of its own, not scraped, so stopping it raises
        # the health-check's alert alone.
        self.probed = Service("log-provider", {"PROVIDER_KEY": self.provider_key}, root / "probed.log")
        self.health = Service("health-check", {
            "HEALTHCHECK_INTERVAL": "1s", "HEALTHCHECK_TIMEOUT": "500ms",
            "HEALTHCHECK_OUTPUT": str(root / "health" / "health_check.log"),
        }, root / "health-check.log", args=("serve",))
        self.services = {s.name: s for s in (self.provider, self.backend, self.data, self.health)}
        self.webhook = WebhookReceiver()
        self.prometheus_port = 0
        self.alertmanager_port = 0
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs: list[IO[bytes]] = []
        self.targets_file = root / "targets.json"

    @property
    def prometheus(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def alertmanager(self) -> str:
        return f"http://127.0.0.1:{self.alertmanager_port}"

    # --- scrape targets: file_sd, so a test can take a target away (AbnStackServiceAbsent) -------

    def write_targets(self, without: str | None = None) -> None:
        groups = []
        for service in self.services.values():
            if service.name == without:
                continue
            # The labels a ServiceMonitor gives a target: job = app.kubernetes.io/name, namespace, pod.
            groups.append({"targets": [f"127.0.0.1:{service.port}"],
                           "labels": {"job": service.name, "namespace": NAMESPACE,
                                      "pod": f"abn-stack-{service.name}-0"}})
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups), encoding="utf-8")
        tmp.replace(self.targets_file)  # atomic: Prometheus never reads half a file

    def start(self) -> None:
        self.webhook.thread.start()
        self.collector.thread.start()
        self.provider.start()
        self.probed.start()
        self.backend.env["EXTERNAL_LOGS_URL"] = f"{self.provider.base}/v1/logs"
        self.health.env["HEALTHCHECK_TARGETS"] = f"probed={self.probed.base}/healthz"
        for service in (self.backend, self.data, self.health):
            service.start()
        self.prometheus_port = free_port()
        self.alertmanager_port = free_port()
        self.write_targets()
        rules = self.root / "abn-stack-rules.live.yaml"
        rules.write_text(derive_rules(RULES.read_text(encoding="utf-8")), encoding="utf-8")
        prometheus_config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{self.alertmanager_port}"]}]}]},
            "scrape_configs": [{"job_name": "abn-stack", "file_sd_configs": [{"files": [str(self.targets_file)]}]}],
        }
        (self.root / "prometheus.yml").write_text(yaml.safe_dump(prometheus_config), encoding="utf-8")
        alertmanager_config = {
            "route": {"receiver": "record", "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h",
                      # health-check's alerts, one group per alert and target, to the test's webhook.
                      "routes": [{"receiver": "webhook", "matchers": ['alertname=~"AbnStackTarget.*|AbnStackHealthCheck(Absent|Stuck)"'],
                                  "group_by": ["alertname", "namespace", "target"]}]},
            "receivers": [{"name": "record"},
                          {"name": "webhook", "webhook_configs": [{"url": self.webhook.url, "send_resolved": True}]}],
            # The shipped inhibit rules, unchanged.
            **yaml.safe_load(INHIBIT_RULES.read_text(encoding="utf-8")),
        }
        (self.root / "alertmanager.yml").write_text(yaml.safe_dump(alertmanager_config), encoding="utf-8")
        self._spawn("alertmanager", [
            "prometheus-alertmanager", f"--config.file={self.root / 'alertmanager.yml'}",
            f"--storage.path={self.root / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{self.alertmanager_port}",
            "--cluster.listen-address=",  # no gossip port: a single Alertmanager
        ])
        self._spawn("prometheus", [
            "prometheus", f"--config.file={self.root / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.root / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{self.prometheus_port}",
            "--rules.alert.resend-delay=1s",  # default 1m: a resolve would reach Alertmanager late
            # Keeps the exemplars of the OpenMetrics scrapes (the latency buckets' trace ids).
            "--enable-feature=exemplar-storage",
        ])
        for name, url, timeout in (("alertmanager", self.alertmanager, 30), ("prometheus", self.prometheus, 60)):
            try:
                wait_until(f"{name} ready", lambda: http(f"{url}/-/ready", timeout=2)[0] == 200, timeout=timeout)
            except AssertionError as error:
                tail = (self.root / f"{name}.log").read_text(errors="replace")[-2000:]
                raise AssertionError(f"{error}\n{name}.log ends:\n{tail}") from None

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 (closed in stop())
        self.logs.append(log)
        self.processes.append(subprocess.Popen(argv, stdout=log, stderr=log))

    def stop(self) -> None:
        for service in (*self.services.values(), self.probed):
            service.kill()
        self.webhook.server.shutdown()
        self.collector.server.shutdown()
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        for log in self.logs:
            log.close()

    # --- Prometheus and Alertmanager APIs -----------------------------------------------------

    def query_api(self, path: str) -> Any:
        answer = get_json(f"{self.prometheus}/api/v1/{path}")
        assert answer["status"] == "success", answer
        return answer["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"{self.prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        answer = get_json(url)
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """Sends alerts to Alertmanager as Prometheus does (POST /api/v2/alerts)."""
        status, _, body = http(f"{self.alertmanager}/api/v2/alerts", method="POST", body=json.dumps(alerts).encode(),
                         headers={"Content-Type": "application/json"}, timeout=5)
        assert status == 200, (status, body[:300])

    def alertmanager_alerts(self, alertname: str) -> list[dict[str, Any]]:
        """Every alert of that name Alertmanager holds, inhibited or not (with its status)."""
        url = f"{self.alertmanager}/api/v2/alerts?" + urllib.parse.urlencode({"filter": f'alertname="{alertname}"'})
        return get_json(url)

    def active_alerts(self, alertname: str) -> list[dict[str, Any]]:
        """The alerts of that name Alertmanager holds as active (resolved ones are not listed)."""
        url = f"{self.alertmanager}/api/v2/alerts?" + urllib.parse.urlencode(
            {"filter": f'alertname="{alertname}"', "active": "true", "silenced": "false", "inhibited": "false"})
        return get_json(url)

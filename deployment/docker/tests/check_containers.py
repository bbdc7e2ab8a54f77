#!/usr/bin/env python3
"""The containerized abn-stack, tested with faults (stdlib only).

Started by scripts/check-containers.sh after it built the images under a test tag; that script
owns clean-up (its trap removes the project's containers, network, volumes and image tags). This
file brings the stack up and checks, in order:

1. the containers run hardened: numeric non-root user, read-only root, no capabilities,
   no-new-privileges, OCI labels, and no shell in any image;
2. every service's endpoints answer through the containers (published 127.0.0.1 ports);
3. names resolve inside scratch images: backend-api reaches https://log-provider:5002 and the
   health-check loop probes the services by their compose names;
   the provider path is HTTPS: the one-shot dev-certs made the dev CA and log-provider's
   certificate (kept, byte for byte, when it runs again), log-provider answers HTTPS only and its
   certificate verifies against that CA alone, backend-api downloads over https:// with no
   plaintext flag, and each key is mounted only where it is used;
4. data-api killed with SIGKILL under concurrent writes, then restarted, still has every record it
   acknowledged;
5. the health-check history on its volume recorded the data-api outage and its recovery, and
   health-check serve's status page, /api/v1/status and per-target metrics show every service;
6. SIGTERM ends every container with exit code 0 within the grace period, and a request in flight
   during the stop is answered.

Every wait is a bounded loop; nothing asserts on elapsed time. Prints "N passed, N failed".
"""

from __future__ import annotations

import argparse
from http.client import HTTPException
import io
import json
import os
import re
import ssl
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime

PORTS = {"backend-api": 5000, "data-api": 5001, "log-provider": 5002}
# health-check serve: the status page; the health-check's targets are PORTS.
STATUS_PORT = 5003
ALL_SERVICES = [*PORTS, "health-check"]
HISTORY_PATH = "/var/data/health/health_check.log"
# `log-provider dev-certs`'s folders (compose.yaml): the CA (dev-certs only), the server's
# certificate and key (log-provider), ca.pem alone (backend-api, health-check).
CERTS = "/var/lib/dev-certs"
LOG_DIR = "/var/data/logs"
REQUIRED_LABELS = ["title", "source", "version", "revision", "licenses"]
STOP_GRACE_SECONDS = 20


class CheckFailed(Exception):
    pass


@dataclass
class Response:
    status: int
    headers: dict
    body: bytes

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError as err:
            raise CheckFailed(f"not JSON ({err}): {self.text()[:200]!r}") from err


# Straight to 127.0.0.1: never through a proxy from the environment. HTTPS (log-provider) trusts
# the stack's dev CA alone, once bring_up has copied it out (trust_dev_ca).
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def trust_dev_ca(pem: bytes) -> ssl.SSLContext:
    global OPENER
    context = ssl.create_default_context(cadata=pem.decode())
    OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPSHandler(context=context))
    return context


def copy_out(container: str, path: str) -> dict[str, bytes]:
    """The files under `path` in a container (running or not), by name, through `docker cp`."""
    raw = subprocess.run(["docker", "cp", f"{container}:{path}", "-"],
                         capture_output=True, timeout=60, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        return {m.name.split("/", 1)[-1] if "/" in m.name else m.name: tar.extractfile(m).read()
                for m in tar.getmembers() if m.isfile()}


def http(method: str, url: str, body=None, headers=None, timeout: float = 15) -> Response:
    data = None
    headers = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with OPENER.open(req, timeout=timeout) as resp:
            return Response(resp.status, dict(resp.headers), resp.read())
    except urllib.error.HTTPError as err:
        return Response(err.code, dict(err.headers), err.read())


def caller() -> dict:
    """The headers of a known caller: compose requires API_TOKENS_FILE's tokens on backend-api's
    download and data-api's API (the check script exports the one token it wrote)."""
    return {"Authorization": f"Bearer {os.environ['ABN_API_TOKEN']}"}


def bounded_wait(what: str, probe, attempts: int, pause: float = 0.5):
    """Calls probe until it returns a truthy value, at most `attempts` times."""
    last_error = None
    for _ in range(attempts):
        try:
            result = probe()
            if result:
                return result
        except (OSError, CheckFailed, ValueError) as err:
            last_error = err
        time.sleep(pause)
    detail = f" (last error: {last_error})" if last_error else ""
    raise CheckFailed(f"gave up waiting for {what} after {attempts} attempts{detail}")


@dataclass
class Stack:
    project: str
    compose_cmd: list[str]
    compose_files: list[str]
    image_tag: str
    key: str
    ports: dict = field(default_factory=dict)
    containers: dict = field(default_factory=dict)

    def compose(self, *args: str, timeout: float = 180) -> str:
        files = [arg for path in self.compose_files for arg in ("-f", path)]
        cmd = [*self.compose_cmd, "-p", self.project, *files, *args]
        return run(cmd, timeout=timeout)

    def container(self, service: str) -> str:
        """The service's container id (kept: docker start/stop keep it, only a recreate changes it)."""
        if service not in self.containers:
            cid = self.compose("ps", "-q", service).strip()
            if not cid:
                raise CheckFailed(f"no container for service {service}")
            self.containers[service] = cid.splitlines()[0]
        return self.containers[service]

    def refresh_ports(self) -> None:
        """The published 127.0.0.1 ports; ephemeral ones change when a container restarts."""
        for service, port in {**PORTS, "health-check": STATUS_PORT}.items():
            published = self.inspect(service)["NetworkSettings"]["Ports"].get(f"{port}/tcp") or []
            if not published or any(p["HostIp"] != "127.0.0.1" for p in published):
                raise CheckFailed(f"{service} port {port} is published as {published}, expected 127.0.0.1 only")
            self.ports[service] = int(published[0]["HostPort"])

    def inspect(self, service: str) -> dict:
        return json.loads(run(["docker", "inspect", self.container(service)]))[0]


    def url(self, service: str, path: str) -> str:
        scheme = "https" if service == "log-provider" else "http"
        return f"{scheme}://127.0.0.1:{self.ports[service]}{path}"

    def image(self, service: str) -> str:
        return f"abn-stack/{service}:{self.image_tag}"


def run(cmd: list[str], timeout: float = 120, check: bool = True) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise CheckFailed(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return proc.stdout


class Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def ok(self, what: str) -> None:
        self.passed += 1
        print(f"ok: {what}", flush=True)

    def expect(self, condition: bool, what: str, detail: str = "") -> None:
        if not condition:
            raise CheckFailed(f"{what}{': ' + detail if detail else ''}")
        self.ok(what)


# ---------------------------------------------------------------- bring-up and hardening


def bring_up(stack: Stack, checks: Checks) -> None:
    stack.compose("up", "-d", "--no-build", timeout=240)
    for service in PORTS:
        bounded_wait(
            f"{service} to be healthy (its image's HEALTHCHECK, the health-check binary, no shell)",
            lambda s=service: stack.inspect(s)["State"].get("Health", {}).get("Status") == "healthy",
            attempts=120,
        )
    checks.ok("compose stack up; backend-api, data-api, log-provider report healthy")
    bounded_wait(
        "health-check serve to be healthy (its compose healthcheck: the probe binary on /readyz)",
        lambda: stack.inspect("health-check")["State"].get("Health", {}).get("Status") == "healthy",
        attempts=120,
    )
    stack.refresh_ports()
    checks.ok(f"ports published on 127.0.0.1 only: {stack.ports}")
    state = stack.inspect("dev-certs")["State"]
    checks.expect(state["Status"] == "exited" and state["ExitCode"] == 0,
                  "the one-shot dev-certs made the dev CA and log-provider's certificate (exit 0)", str(state))
    trust_dev_ca(copy_out(stack.container("log-provider"), f"{CERTS}/tls/ca.pem")["ca.pem"])


def check_hardening(stack: Stack, checks: Checks) -> None:
    for service in ALL_SERVICES:
        info = stack.inspect(service)
        host = info["HostConfig"]
        problems = []
        if info["Config"]["User"] != "65532:65532":
            problems.append(f"user {info['Config']['User']!r}")
        if not host.get("ReadonlyRootfs"):
            problems.append("root filesystem writable")
        if "ALL" not in (host.get("CapDrop") or []):
            problems.append(f"cap_drop {host.get('CapDrop')}")
        if not any(o.startswith("no-new-privileges") for o in host.get("SecurityOpt") or []):
            problems.append(f"security_opt {host.get('SecurityOpt')}")
        labels = json.loads(run(["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", stack.image(service)]))
        missing = [k for k in REQUIRED_LABELS if not labels.get(f"org.opencontainers.image.{k}")]
        if missing:
            problems.append(f"missing OCI labels {missing}")
        if labels.get("org.opencontainers.image.title") != service:
            problems.append(f"title label {labels.get('org.opencontainers.image.title')!r}")
        rows = run(["docker", "top", stack.container(service), "-o", "pid,uid"]).splitlines()[1:]
        uids = [row.split()[1] for row in rows if row.strip()]
        if not uids or any(u != "65532" for u in uids):
            problems.append(f"processes run as uid {uids}")
        checks.expect(not problems, f"{service}: uid 65532, read-only root, no capabilities, no-new-privileges, OCI labels", "; ".join(problems))

        # No shell: starting /bin/sh in the image must fail.
        proc = subprocess.run(
            ["docker", "run", "--rm", "--network", "none", "--label", f"com.docker.compose.project={stack.project}",
             "--entrypoint", "/bin/sh", stack.image(service), "-c", "true"],
            capture_output=True, text=True, timeout=60,
        )
        checks.expect(proc.returncode != 0, f"{service}: image has no /bin/sh", proc.stdout + proc.stderr)


# ---------------------------------------------------------------- endpoints


def check_common_endpoints(stack: Stack, checks: Checks) -> None:
    for service in PORTS:
        r = http("GET", stack.url(service, "/healthz"))
        checks.expect(r.status == 200, f"{service} GET /healthz 200", f"{r.status} {r.text()[:200]}")
        r = http("GET", stack.url(service, "/readyz"))
        checks.expect(r.status == 200 and isinstance(r.json(), dict), f"{service} GET /readyz 200 with JSON checks", r.text()[:200])
        r = http("GET", stack.url(service, "/version"))
        v = r.json()
        checks.expect(r.status == 200 and v.get("name") == service and v.get("version"), f"{service} GET /version names itself", r.text()[:200])
        r = http("GET", stack.url(service, "/openapi.json"))
        checks.expect(r.status == 200 and "openapi" in r.json(), f"{service} GET /openapi.json", r.text()[:200])
        r = http("GET", stack.url(service, "/metrics"))
        checks.expect(
            r.status == 200 and "http_requests_total" in r.text() and "build_info" in r.text(),
            f"{service} GET /metrics (Prometheus text with http_requests_total, build_info)",
            r.text()[:200],
        )
        r = http("GET", stack.url(service, "/no-such-route"))
        body = r.json()
        checks.expect(r.status == 404 and "error" in body and "code" in body, f"{service} unknown route answers JSON 404", r.text()[:200])


def check_provider_tls(stack: Stack, checks: Checks) -> None:
    """The provider path over HTTPS: what dev-certs made, where each key is, what is refused."""
    info = stack.inspect("dev-certs")
    host = info["HostConfig"]
    checks.expect(
        info["Config"]["User"] == "65532:65532" and host.get("ReadonlyRootfs") and "ALL" in (host.get("CapDrop") or [])
        and any(o.startswith("no-new-privileges") for o in host.get("SecurityOpt") or [])
        and host["RestartPolicy"]["Name"] in ("", "no"),
        "dev-certs: uid 65532, read-only root, no capabilities, no-new-privileges, no restart",
        json.dumps({k: host.get(k) for k in ("ReadonlyRootfs", "CapDrop", "SecurityOpt", "RestartPolicy")}),
    )
    logs = run(["docker", "logs", stack.container("dev-certs")], check=False)
    checks.expect("-----BEGIN" not in logs and "made a new CA" in logs, "dev-certs says what it made and prints no key", logs[-300:])

    # Each folder where it is needed only: the CA's key in dev-certs, the server's in log-provider.
    def mounts(service):
        return {m["Destination"]: m["RW"] for m in stack.inspect(service)["Mounts"] if m["Destination"].startswith(CERTS)}
    expected = {"log-provider": {f"{CERTS}/tls": False}, "backend-api": {f"{CERTS}/trust": False},
                "health-check": {f"{CERTS}/trust": False}, "data-api": {}}
    seen = {service: mounts(service) for service in expected}
    checks.expect(seen == expected, "the server's key mounted read-only in log-provider only, the CA's key in dev-certs only, ca.pem alone read-only in its clients", str(seen))
    trust = copy_out(stack.container("backend-api"), f"{CERTS}/trust")
    checks.expect(set(trust) == {"ca.pem"}, "backend-api's trust folder holds ca.pem and no key", str(sorted(trust)))

    # HTTPS only, and a certificate no public CA vouches for: the dev CA's.
    url = stack.url("log-provider", "/healthz")
    try:
        r = http("GET", url.replace("https://", "http://", 1), timeout=5)
        plain = f"answered {r.status}"
    except (OSError, HTTPException):
        plain = None  # the connection ended, or what came back was no HTTP answer
    checks.expect(plain is None, "log-provider answers no plain HTTP on its port", str(plain))
    try:
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=5)
        unverified = "verified against the system bundle"
    except urllib.error.URLError as err:
        unverified = None if isinstance(err.reason, ssl.SSLCertVerificationError) else str(err)
    checks.expect(unverified is None, "log-provider's certificate does not verify against the system bundle (it is the dev CA's)", str(unverified))
    r = http("GET", url)
    checks.expect(r.status == 200, "log-provider GET /healthz over HTTPS, verified against the dev CA alone, for 127.0.0.1", f"{r.status}")

    # The key's path: https:// to the provider, no plaintext flag, nothing warned about.
    # A bare name is a variable compose passes through from the shell only when it is set there
    # (OTEL_EXPORTER_OTLP_ENDPOINT and the sampler pair): unset here, so the process has none.
    env = dict(e.split("=", 1) for e in stack.inspect("backend-api")["Config"]["Env"] or [] if "=" in e)
    checks.expect(env.get("EXTERNAL_LOGS_URL") == "https://log-provider:5002/v1/logs" and "EXTERNAL_LOGS_ALLOW_PLAINTEXT" not in env
                  and env.get("EXTERNAL_LOGS_CA_FILE") == f"{CERTS}/trust/ca.pem",
                  "backend-api: EXTERNAL_LOGS_URL https://log-provider:5002, EXTERNAL_LOGS_CA_FILE the dev CA, no EXTERNAL_LOGS_ALLOW_PLAINTEXT",
                  str({k: v for k, v in env.items() if k.startswith("EXTERNAL_LOGS")}))
    logs = run(["docker", "logs", stack.container("backend-api")], check=False)
    started = [line for line in logs.splitlines() if "external log integration enabled" in line]
    checks.expect(bool(started) and all("https://log-provider:5002/v1/logs" in line for line in started) and "ALLOW_PLAINTEXT" not in logs,
                  "backend-api's start line names the provider https://log-provider:5002/v1/logs and warns of no plaintext", str(started)[:300])

    # A second run (what every later `up` does) keeps the CA and the certificate byte for byte.
    before = copy_out(stack.container("log-provider"), f"{CERTS}/tls")
    out = run(["docker", "start", "--attach", stack.container("dev-certs")], timeout=60)
    after = copy_out(stack.container("log-provider"), f"{CERTS}/tls")
    checks.expect("kept the CA" in out and "kept the server certificate" in out and after == before,
                  "dev-certs run again keeps the CA and log-provider's certificate and key byte for byte", out.strip()[-300:])


def check_log_provider(stack: Stack, checks: Checks) -> None:
    url = stack.url("log-provider", "/v1/logs?limit=3")
    r = http("GET", url)
    checks.expect(r.status == 401 and r.json().get("code"), "log-provider rejects a request without the key (401 JSON)", r.text()[:200])
    r = http("GET", url, headers={"Authorization": "Bearer wrong-key"})
    checks.expect(r.status == 401, "log-provider rejects a wrong key (401)", r.text()[:200])
    r = http("GET", url, headers={"Authorization": f"Bearer {stack.key}"})
    lines = [json.loads(line) for line in r.text().splitlines() if line.strip()]
    checks.expect(r.status == 200 and len(lines) == 3, "log-provider serves 3 JSON Lines with the key", r.text()[:200])


def check_backend(stack: Stack, checks: Checks) -> None:
    r = http("GET", stack.url("backend-api", "/api_1"))
    checks.expect(r.status == 200 and re.fullmatch(r"completed: (Success|Created|Failed)", r.text().strip()), "backend-api GET /api_1", r.text()[:200])
    r = http("GET", stack.url("backend-api", "/health_check"))
    checks.expect(r.status == 200 and r.text().strip() == "healthy", "backend-api GET /health_check", r.text()[:200])
    # Through the private network by compose name: hickory-dns resolving inside a scratch image.
    r = http("GET", stack.url("backend-api", "/download_external_logs?limit=5"))
    checks.expect(r.status == 401 and {k.lower(): v for k, v in r.headers.items()}.get("www-authenticate") == "Bearer" and r.json().get("code") == "invalid_token",
                  "backend-api refuses a download without a caller token (401 JSON, WWW-Authenticate)", r.text()[:200])
    r = http("GET", stack.url("backend-api", "/download_external_logs?limit=5"), headers=caller(), timeout=40)
    lines = [json.loads(line) for line in r.text().splitlines() if line.strip()]
    checks.expect(
        r.status == 200 and len(lines) == 5,
        "backend-api downloads logs from https://log-provider:5002 (DNS name resolved in a scratch image, the dev CA trusted)",
        f"{r.status} {r.text()[:300]}",
    )
    checks.expect(stack.key not in r.text(), "backend-api response does not contain the key")
    metrics = http("GET", stack.url("backend-api", "/metrics")).text()
    checks.expect(
        re.search(r'backend_upstream_requests_total\{[^}]*outcome="ok"[^}]*\} [1-9]', metrics) is not None,
        "backend-api counts the upstream call (backend_upstream_requests_total{outcome=\"ok\"})",
    )
    logs = run(["docker", "logs", stack.container("backend-api")], check=False)
    logs += run(["docker", "logs", stack.container("log-provider")], check=False)
    checks.expect(stack.key not in logs, "the key appears in no container log line")
    checks.expect(os.environ["ABN_API_TOKEN"] not in logs and '"caller":"container-check"' in logs,
                  "the caller's name is in backend-api's access log, its token in no log line")
    # The key is a compose secret read through the *_FILE variables: not in any container's
    # environment, so `docker inspect` does not show it.
    for service in ("backend-api", "log-provider"):
        env = stack.inspect(service)["Config"]["Env"] or []
        checks.expect(not any(stack.key in e for e in env) and any(e.endswith("=/run/secrets/integration_key") for e in env),
                      f"{service} reads the key from /run/secrets/integration_key, not from its environment")
    for service in ("backend-api", "data-api"):
        env = stack.inspect(service)["Config"]["Env"] or []
        checks.expect(not any(os.environ["ABN_API_TOKEN"] in e for e in env) and "API_TOKENS_FILE=/run/secrets/api_tokens" in env,
                      f"{service} reads the callers' tokens from /run/secrets/api_tokens, not from its environment")


def post_record(stack: Stack, message: str, timeout: float = 15) -> Response:
    return http("POST", stack.url("data-api", "/logs"), body={"message": message, "level": "info"}, headers=caller(), timeout=timeout)


def read_records(stack: Stack, limit: int = 1000) -> list[dict]:
    """GET /logs: {"records": [...]}, newest first, at most 1000."""
    r = http("GET", stack.url("data-api", f"/logs?limit={limit}"), headers=caller())
    if r.status != 200:
        raise CheckFailed(f"GET /logs answered {r.status}: {r.text()[:200]}")
    return r.json()["records"]


def records_on_volume(stack: Stack) -> dict[str, dict]:
    """Every record in data-api's segment files (JSON Lines), read from its volume by `docker cp`."""
    raw = subprocess.run(
        ["docker", "cp", f"{stack.container('data-api')}:{LOG_DIR}", "-"],
        capture_output=True, timeout=60, check=True,
    ).stdout
    records = {}
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        for member in tar:
            if member.isfile() and member.name.endswith(".jsonl"):
                for line in tar.extractfile(member).read().decode().splitlines():
                    if line.strip():
                        rec = json.loads(line)
                        records[rec["id"]] = rec
    return records


def check_data_api(stack: Stack, checks: Checks) -> None:
    r = http("POST", stack.url("data-api", "/logs"), body={"message": "no token", "level": "info"})
    checks.expect(r.status == 401 and r.json().get("code") == "invalid_token", "data-api refuses a write without a caller token (401 JSON)", r.text()[:200])
    r = http("GET", stack.url("data-api", "/"), headers=caller(), timeout=30)
    checks.expect(
        r.status == 200 and re.fullmatch(r"Log: (Processing request|Executing task|Preparing data|Performing operation)\.\.\.", r.text().strip()),
        "data-api GET / (legacy answer)",
        r.text()[:200],
    )
    r = post_record(stack, "container check: first record")
    created = r.json()
    checks.expect(r.status == 201 and created.get("id") is not None, "data-api POST /logs 201 with an id", r.text()[:200])
    ids = {str(rec.get("id")) for rec in read_records(stack)}
    checks.expect(str(created["id"]) in ids, "data-api GET /logs returns the new record")
    r = http("POST", stack.url("data-api", "/logs"), body={"message": "", "level": "info"}, headers=caller())
    checks.expect(400 <= r.status < 500 and "code" in r.json(), "data-api rejects an empty message with a JSON 4xx", r.text()[:200])
    on_disk = records_on_volume(stack)
    checks.expect(
        on_disk.get(created["id"], {}).get("instance") == "data-api-0",
        "the record is in a segment file under /var/data/logs/data-api-0 on the named volume",
    )


# ---------------------------------------------------------------- faults


def history(stack: Stack) -> list[dict]:
    """The health-check's JSON Lines history, read from its volume through `docker cp`."""
    raw = subprocess.run(
        ["docker", "cp", f"{stack.container('health-check')}:{HISTORY_PATH}", "-"],
        capture_output=True, timeout=30, check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        member = tar.next()
        text = tar.extractfile(member).read().decode()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def probe_fields(entry: dict) -> tuple[str, bool, float]:
    """(target, ok, unix time) of one history line ({"ts", "target", "url", "ok", ...})."""
    when = datetime.fromisoformat(entry["ts"].replace("Z", "+00:00")).timestamp()
    return entry["target"], bool(entry["ok"]), when


def check_history_names(stack: Stack, checks: Checks) -> None:
    def all_reachable():
        seen = {name for name, healthy, _ in map(probe_fields, history(stack)) if healthy}
        return seen >= set(PORTS)

    bounded_wait("the health-check history to show every service reachable", all_reachable, attempts=60)
    checks.ok("health-check (scratch image) probes backend-api, data-api, log-provider by compose name: all reachable")


@dataclass
class WriteLoad:
    stack: Stack
    writers: int = 4
    per_writer: int = 1000
    acknowledged: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def writer(self, n: int) -> None:
        for i in range(self.per_writer):
            if self.stop.is_set():
                return
            message = f"crash test writer {n} record {i}"
            try:
                r = post_record(self.stack, message, timeout=10)
            except OSError as err:  # the container died under us: not acknowledged
                with self.lock:
                    self.errors.append(str(err))
                return
            if r.status == 201:
                with self.lock:
                    self.acknowledged.append((r.json()["id"], message))
            else:
                with self.lock:
                    self.errors.append(f"{r.status} {r.text()[:100]}")
                return

    def count(self) -> int:
        with self.lock:
            return len(self.acknowledged)


def check_sigkill_under_load(stack: Stack, checks: Checks) -> float:
    load = WriteLoad(stack)
    threads = [threading.Thread(target=load.writer, args=(n,), daemon=True) for n in range(load.writers)]
    for t in threads:
        t.start()
    bounded_wait("writers to get 200 acknowledgements", lambda: load.count() >= 200, attempts=1500, pause=0.02)
    killed_at = time.time()
    try:
        run(["docker", "kill", "--signal", "KILL", stack.container("data-api")])
    except CheckFailed:
        load.stop.set()  # no kill: end the load rather than run out every quota
        raise
    # Each writer ends at its first failed request (the container is gone) or after its quota.
    for t in threads:
        t.join(timeout=60)
    acked_at_kill = load.count()
    checks.expect(bool(load.errors), "the kill cut writers off mid-load (writes were in flight)", "every writer had finished before the kill")
    state = stack.inspect("data-api")["State"]
    checks.expect(state["Status"] == "exited" and state["ExitCode"] == 137, "data-api killed with SIGKILL under write load (exit 137)", str(state))
    print(f"info: {acked_at_kill} records acknowledged before the kill; {len(load.errors)} writers cut off", flush=True)

    # The outage must be in the history before data-api comes back.
    def outage_recorded():
        return any(name == "data-api" and not healthy and when >= killed_at - 1 for name, healthy, when in map(probe_fields, history(stack)))

    bounded_wait("the health-check history to record data-api unreachable", outage_recorded, attempts=60)
    checks.ok("health-check history on its volume recorded the data-api outage")

    restarted_at = time.time()
    run(["docker", "start", stack.container("data-api")])
    bounded_wait(
        "data-api to be healthy after the restart",
        lambda: stack.inspect("data-api")["State"].get("Health", {}).get("Status") == "healthy",
        attempts=120,
    )
    stack.refresh_ports()
    acked = dict(load.acknowledged)
    on_disk = records_on_volume(stack)
    lost = [i for i in acked if i not in on_disk]
    checks.expect(not lost, f"after SIGKILL and restart all {len(acked)} acknowledged records are in the segment files", f"lost {lost[:5]}")
    wrong = [i for i, m in acked.items() if on_disk[i]["message"] != m]
    checks.expect(not wrong, "every acknowledged record kept its message", f"{wrong[:3]}")
    # The API serves at most 1000 records, newest first: compare those with the newest acknowledged.
    served = {rec["id"] for rec in read_records(stack)}
    newest = sorted(acked)[-min(len(acked), 900):]  # UUIDv7 ids sort by creation time
    missing = [i for i in newest if i not in served]
    checks.expect(not missing, f"GET /logs after the restart serves the newest {len(newest)} acknowledged records", f"missing {missing[:5]}")
    r = post_record(stack, "container check: after restart")
    checks.expect(r.status == 201, "data-api accepts writes after the restart", r.text()[:200])

    def recovery_recorded():
        return any(name == "data-api" and healthy and when >= restarted_at - 1 for name, healthy, when in map(probe_fields, history(stack)))

    bounded_wait("the health-check history to record data-api reachable again", recovery_recorded, attempts=60)
    checks.ok("health-check history recorded the data-api recovery")
    return killed_at


def check_status_page(stack: Stack, checks: Checks) -> None:
    """health-check serve through its published port: every service up on the page, in the API and metrics."""
    def all_up():
        r = http("GET", stack.url("health-check", "/api/v1/status"))
        return r.status == 200 and {t["target"] for t in r.json()["targets"] if t["up"]} >= set(PORTS) and r

    status = bounded_wait("/api/v1/status to show every service up", all_up, attempts=60)
    checks.ok(f"health-check serve GET /api/v1/status: {sorted(t['target'] for t in status.json()['targets'])} up")
    r = http("GET", stack.url("health-check", "/"))
    checks.expect(
        r.status == 200 and all(f"<h2>{name}</h2>" in r.text() for name in PORTS),
        "health-check serve GET / (the status page) has a section per service", r.text()[:200],
    )
    r = http("GET", stack.url("health-check", "/metrics"))
    checks.expect(
        all(f'healthcheck_target_up{{target="{name}"}} 1' in r.text() for name in PORTS),
        "health-check serve GET /metrics: healthcheck_target_up 1 per service", r.text()[:300],
    )


def check_report(stack: Stack, checks: Checks) -> None:
    volume = next(m["Name"] for m in stack.inspect("health-check")["Mounts"] if m["Destination"] == "/var/data/health")
    out = run([
        "docker", "run", "--rm", "--network", "none", "--read-only", "--label", f"com.docker.compose.project={stack.project}",
        "-v", f"{volume}:/var/data/health:ro", stack.image("health-check"),
        "report", "--input", HISTORY_PATH, "--format", "json",
    ])
    targets = {t["target"]: t for t in json.loads(out)["targets"]}
    data_api = targets.get("data-api", {})
    checks.expect(
        set(targets) == set(PORTS) and data_api.get("ok", 0) < data_api.get("probes", 0) and data_api.get("last_failure"),
        "health-check report (one-off container on the volume) shows every target and data-api's failure",
        out[:300],
    )
    for name, t in sorted(targets.items()):
        print(f"info: report {name}: {t['ok']}/{t['probes']} ok, uptime {t['uptime_percent']:.1f}%", flush=True)


def check_sigterm(stack: Stack, checks: Checks) -> None:
    # A request in flight when SIGTERM arrives must still be answered (drain, then finish).
    in_flight: dict = {}

    def slow_request():
        try:
            in_flight["response"] = http("GET", stack.url("data-api", "/"), headers=caller(), timeout=40)
        except OSError as err:
            in_flight["error"] = err

    t = threading.Thread(target=slow_request, daemon=True)
    t.start()
    time.sleep(0.3)  # let the request reach the server; ordering only, not an assertion
    started = time.time()
    run(["docker", "stop", "--time", str(STOP_GRACE_SECONDS), stack.container("data-api")], timeout=STOP_GRACE_SECONDS + 30)
    took = time.time() - started
    t.join(timeout=40)
    state = stack.inspect("data-api")["State"]
    checks.expect(state["ExitCode"] == 0, f"data-api exits 0 on SIGTERM within the {STOP_GRACE_SECONDS}s grace period (took {took:.1f}s)", str(state))
    r = in_flight.get("response")
    checks.expect(r is not None and r.status == 200, "the request in flight during SIGTERM was answered 200", str(in_flight))

    others = ["backend-api", "log-provider", "health-check"]
    stoppers = [
        threading.Thread(target=run, args=(["docker", "stop", "--time", str(STOP_GRACE_SECONDS), stack.container(s)],), kwargs={"timeout": STOP_GRACE_SECONDS + 30})
        for s in others
    ]
    for t in stoppers:
        t.start()
    for t in stoppers:
        t.join(timeout=STOP_GRACE_SECONDS + 40)
    for service in others:
        state = stack.inspect(service)["State"]
        checks.expect(state["Status"] == "exited", f"{service} stopped", str(state))
        checks.expect(state["ExitCode"] == 0, f"{service} exits 0 on SIGTERM within the grace period", str(state))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", required=True)
    parser.add_argument("--compose", required=True, help="the compose command, e.g. 'docker compose'")
    parser.add_argument("--compose-file", required=True, action="append",
                        help="compose file; repeat to add overrides (compose -f a -f b)")
    parser.add_argument("--image-tag", required=True)
    parser.add_argument("--sizes", help="file with the image sizes, printed at the end")
    args = parser.parse_args()

    stack = Stack(args.project, args.compose.split(), args.compose_file, args.image_tag, os.environ["ABN_INTEGRATION_KEY"])
    checks = Checks()
    steps = [
        bring_up, check_hardening, check_provider_tls, check_common_endpoints, check_log_provider, check_backend,
        check_data_api, check_history_names, check_status_page, check_sigkill_under_load, check_report, check_sigterm,
    ]
    try:
        for step in steps:
            print(f"--- {step.__name__}", flush=True)
            began = time.monotonic()
            step(stack, checks)
            print(f"info: {step.__name__} took {time.monotonic() - began:.1f}s", flush=True)
    except (CheckFailed, subprocess.SubprocessError, OSError, KeyError, ValueError) as err:
        checks.failed += 1
        print(f"FAIL in {step.__name__}: {err}", flush=True)
    if args.sizes:
        print("image sizes:\n" + open(args.sizes).read().rstrip(), flush=True)
    print(f"containers: {checks.passed} passed, {checks.failed} failed", flush=True)
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())

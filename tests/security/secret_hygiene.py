#!/usr/bin/env python3
"""Secret hygiene end to end: the services' real binaries with a known key, under load and
under errors, then every log, response, metrics page and file they wrote is searched for it.

Started on loopback: log-provider (PROVIDER_KEY), backend-api wired to it (the same key, debug
logging), the same pair with the keys from files (PROVIDER_KEY_FILE, EXTERNAL_INTEGRATION_KEY_FILE;
their reloads are searched by secret_rotation.py), data-api, and the fault cases: a backend with a wrong key, one whose provider is down,
one whose provider is slow (PROVIDER_FIRST_BYTE_DELAY beyond the backend's budget). Clients also
send the key where it does not belong (to data-api, to the backend's own routes, to the provider
as a wrong guess) and in query strings, which services must not echo. Configuration errors
(exit 2) and `--help` with the key in the environment are checked too.

The key is searched as given, URL-encoded and base64-encoded, in: every process's stdout and
stderr, every response (status line, headers, body), /metrics, /readyz, /version and
/openapi.json of each service, and every file under the scratch folder (data-api's LOG_DIR).
Standard library only. Exit 0 when no form of either key appears anywhere.
"""

import argparse
import base64
import concurrent.futures
import http.client
import os
import secrets
import subprocess
import sys
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from service_process import ServiceProcess, free_port  # noqa: E402

KEY = "hygiene-" + secrets.token_hex(16)
WRONG_KEY = "wrong-" + secrets.token_hex(16)
# What a client mistakenly sends; it must not be echoed or logged either.
CLIENT_KEY = "client-" + secrets.token_hex(16)
# A caller's token (API_TOKENS_FILE of backend-api and data-api): as secret as the key.
API_TOKEN = "api-token-" + secrets.token_hex(16)


def forms(key):
    raw = key.encode()
    return {
        "plain": raw,
        "url-encoded": urllib.parse.quote(key, safe="").encode(),
        "base64": base64.b64encode(raw).rstrip(b"="),
        "base64 of Bearer": base64.b64encode(b"Bearer " + raw).rstrip(b"="),
    }


class Stack:
    def __init__(self, bin_dir, work):
        self.bin_dir, self.work = Path(bin_dir), Path(work)
        self.procs = []
        self.responses = []  # (label, bytes)

    def start(self, name, label, run_as=None, **env):
        service = ServiceProcess(
            [self.bin_dir / name], env=dict(RUST_LOG="debug", **env),
            log_path=self.work / f"{label}.log",
            # As a pod's runAsUser/runAsGroup: that uid and gid only.
            **(dict(user=run_as, group=run_as, extra_groups=[]) if run_as is not None else {}))
        self.procs.append((label, service))
        service.start()
        return service.port

    def request(self, port, method, path, headers=None, body=None, record=True, timeout=30):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            payload = response.read()
        finally:
            conn.close()
        if record:
            head = f"HTTP {response.status} {response.reason}\n{response.msg}".encode()
            self.responses.append((f"{method} :{port}{path}", head + b"\n" + payload))
        return response.status, payload

    def stop(self):
        for _, service in self.procs:
            service.terminate()
        for label, service in self.procs:
            try:
                service.stop()
            except TimeoutError:
                print(f"{label} did not stop on SIGTERM", file=sys.stderr)


def key_file(work, name, content):
    """A key file outside the searched folder: its own content is no leak."""
    folder = Path(work).parent / (Path(work).name + "-keys")
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(content)
    return folder / name


def config_errors(bin_dir, work):
    """Start-up errors and --help with the key in the environment: nothing echoes it."""
    outputs = []
    base = dict(os.environ, LOG_FORMAT="json")
    cases = [
        ("backend-api bad key", "backend-api",
         dict(EXTERNAL_LOGS_URL="http://127.0.0.1:9/v1/logs",
              EXTERNAL_INTEGRATION_KEY=KEY + "\x01ctl"), [], 2),
        ("backend-api bad timeout", "backend-api",
         dict(EXTERNAL_LOGS_URL="http://127.0.0.1:9/v1/logs", EXTERNAL_INTEGRATION_KEY=KEY,
              EXTERNAL_LOGS_TIMEOUT="soon"), [], 2),
        ("backend-api legacy name, bad URL", "backend-api",
         dict(EXTERNAL_LOGS_URL="ftp://x/", EXTERNAL_INTGERATION_KEY=KEY), [], 2),
        ("backend-api --help", "backend-api", dict(EXTERNAL_INTEGRATION_KEY=KEY), ["--help"], 0),
        ("log-provider bad limit", "log-provider",
         dict(PROVIDER_KEY=KEY, PROVIDER_MAX_LIMIT="lots"), [], 2),
        ("log-provider --help", "log-provider", dict(PROVIDER_KEY=KEY), ["--help"], 0),
        # The _FILE mode: a bad file's content, a variable next to its file.
        ("backend-api key file with a control character", "backend-api",
         dict(EXTERNAL_LOGS_URL="http://127.0.0.1:9/v1/logs",
              EXTERNAL_INTEGRATION_KEY_FILE=str(key_file(work, "bad-key", KEY + "\x01ctl"))),
         [], 2),
        ("backend-api key and key file", "backend-api",
         dict(EXTERNAL_LOGS_URL="http://127.0.0.1:9/v1/logs", EXTERNAL_INTEGRATION_KEY=KEY,
              EXTERNAL_INTEGRATION_KEY_FILE=str(key_file(work, "key", KEY))), [], 2),
        ("log-provider key file with a bad line", "log-provider",
         dict(PROVIDER_KEY_FILE=str(key_file(work, "bad-keys", f"{KEY}\n{KEY} x"))), [], 2),
        ("log-provider key and key file", "log-provider",
         dict(PROVIDER_KEY=KEY, PROVIDER_KEY_FILE=str(key_file(work, "keys", KEY))), [], 2),
        # API_TOKENS_FILE with a bad line (a space in the token): named by line number only.
        ("backend-api tokens file with a bad line", "backend-api",
         dict(API_TOKENS_FILE=str(key_file(work, "bad-tokens", f"ci:{API_TOKEN} x"))), [], 2),
        ("data-api tokens file with a bad line", "data-api",
         dict(API_TOKENS_FILE=str(key_file(work, "bad-tokens", f"ci:{API_TOKEN} x")),
              LOG_DIR=str(Path(work) / "data-config-errors"), INSTANCE_ID="hygiene"), [], 2),
    ]
    failures = []
    for label, name, env, argv, expected in cases:
        result = subprocess.run([str(Path(bin_dir) / name), *argv], env={**base, **env},
                                capture_output=True, timeout=30)
        outputs.append((label, result.stdout + result.stderr))
        if result.returncode != expected:
            failures.append(f"{label}: exit {result.returncode}, expected {expected}")
        if expected == 2 and len(result.stderr.strip().splitlines()) != 1:
            failures.append(f"{label}: expected one error line, got {result.stderr!r}")
    (Path(work) / "config-errors.log").write_bytes(
        b"\n".join(label.encode() + b": " + out for label, out in outputs))
    return failures


def drive(stack, bin_dir):
    # The healthy path, under load.
    provider = stack.start("log-provider", "log-provider", PROVIDER_KEY=KEY)
    backend = stack.start("backend-api", "backend-api", SIMULATED_LATENCY_MS="0",
                          EXTERNAL_LOGS_URL=f"http://127.0.0.1:{provider}/v1/logs",
                          EXTERNAL_INTEGRATION_KEY=KEY)
    tokens = str(key_file(stack.work, "api-tokens", f"hygiene:{API_TOKEN}\n"))
    data = stack.start("data-api", "data-api", SIMULATED_LATENCY_MS="0",
                       LOG_DIR=str(stack.work / "data"), INSTANCE_ID="hygiene",
                       API_TOKENS_FILE=tokens)
    # The same pair with the keys from files (PROVIDER_KEY_FILE, EXTERNAL_INTEGRATION_KEY_FILE).
    provider_file = stack.start("log-provider", "log-provider-key-file",
                                PROVIDER_KEY_FILE=str(key_file(stack.work, "keys",
                                                               f"{WRONG_KEY}\n{KEY}\n")))
    backend_file = stack.start("backend-api", "backend-api-key-file", SIMULATED_LATENCY_MS="0",
                               EXTERNAL_LOGS_URL=f"http://127.0.0.1:{provider_file}/v1/logs",
                               EXTERNAL_INTEGRATION_KEY_FILE=str(key_file(stack.work, "key",
                                                                          KEY)),
                               API_TOKENS_FILE=tokens)
    # Faults: wrong key, provider down, provider slow.
    wrong = stack.start("backend-api", "backend-api-wrong-key", SIMULATED_LATENCY_MS="0",
                        EXTERNAL_LOGS_URL=f"http://127.0.0.1:{provider}/v1/logs",
                        EXTERNAL_INTEGRATION_KEY=WRONG_KEY)
    down = stack.start("backend-api", "backend-api-provider-down", SIMULATED_LATENCY_MS="0",
                       EXTERNAL_LOGS_URL=f"http://127.0.0.1:{free_port()}/v1/logs",
                       EXTERNAL_INTEGRATION_KEY=KEY, EXTERNAL_LOGS_TIMEOUT="2s",
                       EXTERNAL_LOGS_CONNECT_TIMEOUT="500ms",
                       EXTERNAL_LOGS_RETRIES="2")
    slow_provider = stack.start("log-provider", "log-provider-slow", PROVIDER_KEY=KEY,
                                PROVIDER_FIRST_BYTE_DELAY="3s")
    slow = stack.start("backend-api", "backend-api-provider-slow", SIMULATED_LATENCY_MS="0",
                       EXTERNAL_LOGS_URL=f"http://127.0.0.1:{slow_provider}/v1/logs",
                       EXTERNAL_INTEGRATION_KEY=KEY, EXTERNAL_LOGS_TIMEOUT="1s",
                       EXTERNAL_LOGS_CONNECT_TIMEOUT="500ms")

    expectations = []

    def expect(port, path, status, headers=None, method="GET", body=None):
        got, payload = stack.request(port, method, path, headers=headers, body=body)
        if got != status:
            expectations.append(f"{method} {path} on :{port}: {got}, expected {status}: "
                                f"{payload[:200]!r}")

    client_auth = {"Authorization": f"Bearer {CLIENT_KEY}", "X-Api-Key": CLIENT_KEY,
                   "Cookie": f"session={CLIENT_KEY}"}
    # A known caller (the services that require tokens), with the client's other credentials.
    caller_auth = {**client_auth, "Authorization": f"Bearer {API_TOKEN}"}
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        jobs = []
        for i in range(120):
            jobs.append(pool.submit(expect, backend, f"/download_external_logs?limit={i % 50 + 1}"
                                    f"&since=2026-01-01T00:00:00Z", 200))
            jobs.append(pool.submit(expect, backend, "/api_1", 200, client_auth))
            jobs.append(pool.submit(expect, backend_file, f"/download_external_logs?limit="
                                    f"{i % 50 + 1}", 200, caller_auth))
            jobs.append(pool.submit(expect, data, "/logs", 201, {
                "Content-Type": "application/json", **caller_auth}, "POST",
                b'{"message": "load ' + str(i).encode() + b'"}'))
        for job in jobs:
            job.result()
    expect(backend, "/download_external_logs?limit=0", 400)
    expect(backend, f"/download_external_logs?key={CLIENT_KEY}&limit=x", 400)
    expect(wrong, "/download_external_logs", 502)
    expect(down, "/download_external_logs", 502)
    expect(slow, "/download_external_logs", 504)
    expect(provider, "/v1/logs", 401, {"Authorization": f"Bearer {CLIENT_KEY}"})
    expect(provider, "/v1/logs", 401, {"Authorization": f"Basic {CLIENT_KEY}"})
    expect(provider, f"/v1/logs?limit={CLIENT_KEY}", 401)
    expect(provider, f"/v1/logs?limit={CLIENT_KEY}", 400, {"Authorization": f"Bearer {KEY}"})
    expect(data, "/logs", 400, {"Content-Type": "application/json", **caller_auth}, "POST",
           b'{"message": "' + CLIENT_KEY.encode())
    expect(data, f"/nope/{CLIENT_KEY}", 404, client_auth)
    # A wrong or missing token: 401, neither token echoed.
    expect(data, "/logs", 401, {"Content-Type": "application/json", **client_auth}, "POST",
           b'{"message": "refused"}')
    expect(data, "/logs?limit=1", 401)
    expect(backend_file, "/download_external_logs?limit=1", 401, client_auth)
    expect(data, "/logs?limit=1", 200, caller_auth)
    # What operators and scrapers read.
    for port in (provider, backend, data, wrong, down, slow, slow_provider, provider_file,
                 backend_file):
        for path in ("/metrics", "/readyz", "/version", "/openapi.json", "/healthz"):
            stack.request(port, "GET", path)
    return expectations


def find_secrets(haystacks, named_secrets):
    """Where any form of any (name, secret) appears among (label, bytes) haystacks."""
    places = []
    for name, key in named_secrets:
        for form, needle in forms(key).items():
            for label, data in haystacks:
                if needle in data:
                    places.append(f"{name} ({form}) in {label}")
    return places


def search(stack, work):
    """Every form of every secret, everywhere: returns the places it was found."""
    places = []
    haystacks = [(label, data) for label, data in stack.responses]
    files = 0
    total = 0
    for path in sorted(Path(work).rglob("*")):
        if path.is_file():
            files += 1
            data = path.read_bytes()
            total += len(data)
            haystacks.append((str(path.relative_to(work)), data))
    places += find_secrets(haystacks, (("the integration key", KEY), ("the wrong key", WRONG_KEY),
                                       ("a client's credential", CLIENT_KEY),
                                       ("a caller's API token", API_TOKEN)))
    # Canaries: what must be in these haystacks is found by the same search, so an empty or
    # unreadable haystack cannot pass for a clean one.
    canaries = {b"external log integration enabled": "backend-api.log",
                b"provider_rejected_key": "responses", b"provider_timeout": "responses",
                b'"load 7"': "data-api's segment files", b"backend_upstream_requests": "/metrics",
                b'"caller":"hygiene"': "data-api's access log"}
    everything = [data for _, data in haystacks]
    for needle, where in canaries.items():
        if not any(needle in data for data in everything):
            places.append(f"canary {needle!r} (expected in {where}) not found: the search is blind")
    print(f"searched {len(stack.responses)} responses and {files} files ({total} bytes: "
          f"process logs, data-api's LOG_DIR) for 4 secrets in 4 forms each")
    return places


def bin_dir_and_work(doc):
    """The command line of the scripts that start the binaries: --bin-dir and --work (created)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--work", required=True)
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    return args, work


def main():
    args, work = bin_dir_and_work(__doc__)

    failures = config_errors(args.bin_dir, work)
    stack = Stack(args.bin_dir, work)
    try:
        failures += drive(stack, args.bin_dir)
    finally:
        stack.stop()
    leaks = search(stack, work)
    for failure in failures:
        print(f"unexpected answer: {failure}", file=sys.stderr)
    for leak in leaks:
        print(f"LEAK: {leak}", file=sys.stderr)
    if not leaks:
        print("no secret found in any log, response, metrics page or file")
    return 1 if (leaks or failures) else 0


if __name__ == "__main__":
    sys.exit(main())

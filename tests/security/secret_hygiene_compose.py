#!/usr/bin/env python3
"""Secret hygiene on the compose stack (deployment/docker/compose.yaml) with a known key.

The stack runs under a unique project name with ephemeral loopback ports and debug logging, and
is driven under load and under errors: a backend recreated with a wrong key, the provider slow
(PROVIDER_FIRST_BYTE_DELAY beyond a short EXTERNAL_LOGS_TIMEOUT, set by an override file), the
provider stopped. log-provider serves HTTPS only (its dev CA from the one-shot dev-certs, copied
out of the container and trusted alone here), and backend-api's start line must name the
https:// provider with no plaintext flag: the key is searched for where it travels over TLS. Then every container log (`compose logs`), every response, /metrics, /readyz,
/version and /openapi.json of each service, and every file on the stack's volumes (data-api's
records, the health-check history, copied out with `docker cp`) is searched for the key, URL- and
base64-encoded too. The key is in the containers' configuration by design (environment
variables; `docker inspect` needs access to the engine), which is not searched.

Exit 0: clean; 1: the key was found or the stack misbehaved; 77: skipped (no engine, no compose,
or the images are not built: scripts/build-images.sh).
"""

import argparse
import http.client
import io
import json
import os
import secrets
import shutil
import ssl
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

# The encodings a leaked key is searched in: one definition for both hygiene checks.
from secret_hygiene import forms
from service_process import eventually  # noqa: E402  (tests/support: on the path secret_hygiene sets)

SKIP = 77
KEY = "compose-hygiene-" + secrets.token_hex(16)
WRONG_KEY = "compose-wrong-" + secrets.token_hex(16)
CLIENT_KEY = "compose-client-" + secrets.token_hex(16)
# The callers' token (compose gives backend-api and data-api API_TOKENS_FILE by default).
API_TOKEN = "compose-token-" + secrets.token_hex(16)
IMAGES = ["log-provider", "backend-api", "data-api", "health-check"]


def compose_command():
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


class Stack:
    def __init__(self, compose, compose_file, work, tag):
        self.project = f"abnsec{os.getpid()}"
        self.work = Path(work)
        self.override = self.work / "override.yaml"
        test_file = Path(compose_file).parent / "tests" / "compose.test.yaml"
        self.base = [*compose, "-p", self.project, "-f", str(compose_file), "-f", str(test_file),
                     "-f", str(self.override)]
        self.env = dict(os.environ, ABN_INTEGRATION_KEY_FILE=self.key_file("key", KEY),
                        ABN_API_TOKENS_FILE=self.key_file("api-tokens", f"hygiene:{API_TOKEN}"),
                        ABN_IMAGE_TAG=tag, RUST_LOG="debug",
                        ABN_BACKEND_PORT="", ABN_DATA_API_PORT="", ABN_LOG_PROVIDER_PORT="",
                        ABN_HEALTH_CHECK_PORT="",
                        ABN_BACKEND_LATENCY_MS="0", ABN_DATA_LATENCY_MS="0",
                        ABN_HEALTHCHECK_INTERVAL="1s", ABN_RESTART_POLICY="no")
        self.responses = []
        self.tls = None  # the dev CA's context, once the stack is up (trust_dev_ca)
        self.write_override(slow=False)

    def trust_dev_ca(self):
        """log-provider's ca.pem (its volume, through `docker cp`): the only CA HTTPS trusts here."""
        cid = self.compose("ps", "-q", "log-provider").decode().split()[0]
        tar_bytes = subprocess.run(["docker", "cp", f"{cid}:/var/lib/dev-certs/tls/ca.pem", "-"],
                                   capture_output=True, timeout=60, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
            pem = tar.extractfile(tar.getmembers()[0]).read().decode()
        self.tls = ssl.create_default_context(cadata=pem)

    def connection(self, port, timeout, tls):
        if tls:
            return http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=self.tls)
        return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def key_file(self, name, key):
        """The compose secret's file, readable by uid 65532 (compose 1.29 keeps the host mode)."""
        path = self.work / name
        path.write_text(key + "\n")
        path.chmod(0o444)
        return str(path)

    def write_override(self, slow):
        # Debug logs everywhere: the key must stay out of those too.
        provider = {"PROVIDER_FIRST_BYTE_DELAY": "6s" if slow else "0s", "RUST_LOG": "debug"}
        # A connection to a stopped provider must fail (502) before the 2 s budget ends (504).
        backend = {"EXTERNAL_LOGS_TIMEOUT": "2s", "EXTERNAL_LOGS_CONNECT_TIMEOUT": "500ms",
                   "RUST_LOG": "debug"}
        others = {"RUST_LOG": "debug"}
        # JSON is YAML.
        self.override.write_text(json.dumps({"services": {
            "log-provider": {"environment": provider},
            "backend-api": {"environment": backend},
            "data-api": {"environment": others},
            "health-check": {"environment": others}}}))

    def compose(self, *args, env=None, check=True, timeout=300):
        result = subprocess.run([*self.base, *args], env=env or self.env, capture_output=True,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"compose {' '.join(args)}: {result.stderr.decode(errors='replace')}")
        return result.stdout

    def port(self, service, container_port):
        out = self.compose("port", service, str(container_port)).decode().strip()
        return int(out.rsplit(":", 1)[1])

    def request(self, port, path, headers=None, method="GET", body=None, timeout=40, tls=False):
        conn = self.connection(port, timeout, tls)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            payload = response.read()
        finally:
            conn.close()
        self.responses.append((f"{method} :{port}{path}",
                               f"{response.status}\n{response.msg}".encode() + payload))
        return response.status

    def wait_ready(self, port, bound=90, tls=False):
        def ready():
            conn = self.connection(port, 2, tls)
            try:
                conn.request("GET", "/readyz")
                return conn.getresponse().status == 200
            finally:
                conn.close()
        eventually(f"the container on port {port} answers /readyz 200", ready, bound, every=0.5)

    def volume_files(self):
        """The stack's volumes, copied out of the containers as tar streams."""
        found = []
        for service, path in (("data-api", "/var/data/logs"), ("health-check", "/var/data/health"),
                              ("log-provider", "/var/lib/dev-certs/tls")):
            ids = self.compose("ps", "-q", service).decode().split()
            for cid in ids:
                tar_bytes = subprocess.run(["docker", "cp", f"{cid}:{path}", "-"],
                                           capture_output=True, timeout=60).stdout
                with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
                    for member in tar.getmembers():
                        if member.isfile():
                            found.append((f"{service}:{member.name}",
                                          tar.extractfile(member).read()))
        return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compose-file", default="deployment/docker/compose.yaml")
    parser.add_argument("--tag", default="0.1.0")
    args = parser.parse_args()

    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        print("SKIPPED: no Docker engine answers")
        return SKIP
    compose = compose_command()
    if compose is None:
        print("SKIPPED: neither 'docker compose' nor 'docker-compose' is installed")
        return SKIP
    missing = [i for i in IMAGES if subprocess.run(
        ["docker", "image", "inspect", f"abn-stack/{i}:{args.tag}"],
        capture_output=True).returncode != 0]
    if missing:
        print(f"SKIPPED: images not built ({', '.join(missing)}:{args.tag}); "
              "run scripts/build-images.sh first")
        return SKIP

    work = tempfile.mkdtemp(prefix="abn-compose-hygiene.")
    stack = Stack(compose, Path(args.compose_file).resolve(), work, args.tag)
    failures = []
    logs = b""
    volume_files = []
    try:
        stack.compose("up", "-d")
        stack.trust_dev_ca()
        backend, data, provider = (stack.port("backend-api", 5000), stack.port("data-api", 5001),
                                   stack.port("log-provider", 5002))
        for port in (backend, data):
            stack.wait_ready(port)
        stack.wait_ready(provider, tls=True)

        def expect(port, path, status, **kw):
            got = stack.request(port, path, **kw)
            if got != status:
                failures.append(f"{path} on :{port}: {got}, expected {status}")

        client = {"Authorization": f"Bearer {CLIENT_KEY}", "Cookie": f"s={CLIENT_KEY}"}
        known = {**client, "Authorization": f"Bearer {API_TOKEN}"}
        for i in range(40):
            expect(backend, f"/download_external_logs?limit={i + 1}", 200, headers=known)
            expect(backend, "/api_1", 200, headers=client)
            expect(data, "/logs", 201, method="POST", body=json.dumps({"message": f"load {i}"}),
                   headers={"Content-Type": "application/json", **known})
        # A client's own credential is no caller token: 401, not echoed.
        expect(backend, "/download_external_logs?limit=1", 401, headers=client)
        expect(data, "/logs", 401, method="POST", body=json.dumps({"message": "refused"}),
               headers={"Content-Type": "application/json", **client})
        expect(provider, "/v1/logs", 401, headers=client, tls=True)
        # 400 since the provider's refusals of a client's query are the client's error; images
        # built before that change answer 502. Either way nothing may echo the query.
        if stack.request(backend, f"/download_external_logs?limit=0&k={CLIENT_KEY}",
                         headers=known) not in (400, 502):
            failures.append("a refused query was not answered 400 (or 502 by older images)")

        # Wrong key: only the backend is recreated with it.
        stack.compose("up", "-d", "--no-deps", "backend-api",
                      env={**stack.env,
                           "ABN_INTEGRATION_KEY_FILE": stack.key_file("wrong-key", WRONG_KEY)})
        backend = stack.port("backend-api", 5000)
        stack.wait_ready(backend)
        expect(backend, "/download_external_logs", 502, headers=known)

        # Provider slow: first byte after 6 s, the backend's budget is 2 s.
        stack.write_override(slow=True)
        stack.compose("up", "-d", "--no-deps", "log-provider", "backend-api")
        backend, provider = stack.port("backend-api", 5000), stack.port("log-provider", 5002)
        stack.wait_ready(backend)
        stack.wait_ready(provider, tls=True)
        expect(backend, "/download_external_logs", 504, headers=known)

        # Provider down.
        stack.compose("stop", "log-provider")
        expect(backend, "/download_external_logs", 502, headers=known)

        for port in (backend, data):
            for path in ("/metrics", "/readyz", "/version", "/openapi.json"):
                stack.request(port, path)
        time.sleep(2)  # a few health-check probes into the history
        volume_files = stack.volume_files()
        stack.compose("stop", "--timeout", "20")
        logs = stack.compose("logs", "--no-color", "--timestamps")
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as err:
        failures.append(f"the stack did not run as expected: {err}")
    finally:
        stack.compose("down", "--volumes", "--remove-orphans", "--timeout", "5", check=False)
        shutil.rmtree(work, ignore_errors=True)

    haystacks = [("compose logs", logs), *stack.responses, *volume_files]
    leaks = [f"{name} in {label}" for name, key in (("the key", KEY), ("the wrong key", WRONG_KEY),
                                                    ("a client's credential", CLIENT_KEY),
                                                    ("a caller's API token", API_TOKEN))
             for needle in forms(key).values() for label, data in haystacks if needle in data]
    # The key's path is HTTPS: backend-api started with the https:// provider and no plaintext flag.
    if b"EXTERNAL_LOGS_ALLOW_PLAINTEXT" in logs:
        failures.append("backend-api warned of EXTERNAL_LOGS_ALLOW_PLAINTEXT: the key travelled in clear")
    for canary, where in ((b"listening", "compose logs"),
                          (b"https://log-provider:5002/v1/logs", "compose logs (backend-api's start line)"), (b'"load 7"', "data-api's volume"),
                          (b"provider_timeout", "responses"), (b"provider_rejected_key", "responses")):
        if not any(canary in data for _, data in haystacks):
            failures.append(f"canary {canary!r} not found in {where}: the search is blind")
    print(f"compose stack: searched {len(logs)} bytes of container logs, "
          f"{len(stack.responses)} responses and {len(volume_files)} files on its volumes")
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    for leak in leaks:
        print(f"LEAK: {leak}", file=sys.stderr)
    if not leaks and not failures:
        print("no secret found in any container log, response, metrics page or volume file")
    return 1 if (leaks or failures) else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Request ids and the access log on the real binaries: backend-api and log-provider.

A download with a sane x-request-id gets the same id back, and every log line either service
wrote for that request carries it (the request's span), the provider's included (backend-api
sends the id on), with one access-log line each (method, route template, status, duration).
Hostile ids (too long, a space, a tab, non-ASCII bytes, a control character) are never echoed
and never logged: each is replaced by a new UUIDv7 (or the request is refused as malformed by
the HTTP parser), and the replacement reaches the provider. /healthz, /readyz and /metrics are
logged at debug, the API at info; with ACCESS_LOG=off no access-log line is written while the
other lines stay. Standard library only; exit 0 when all holds.
"""

import json
import re
import secrets
import sys

from secret_hygiene import Stack, bin_dir_and_work

KEY = "request-ids-" + secrets.token_hex(16)
UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def log_lines(work, label):
    lines = []
    for raw in (work / f"{label}.log").read_bytes().splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            lines.append({"unparsed": raw.decode("utf-8", "replace")})
    return lines


def request_id_of(line):
    return (line.get("span") or {}).get("request_id")


def response_id(stack, port, path, headers):
    """The status and the x-request-id of the answer (None when it has none)."""
    conn_status, _ = stack.request(port, "GET", path, headers=headers)
    label, raw = stack.responses[-1]
    head = raw.split(b"\n\n", 1)[0].decode("latin-1")
    match = re.search(r"(?im)^x-request-id: *(\S+)", head)
    return conn_status, (match.group(1) if match else None)


def main():
    args, work = bin_dir_and_work(__doc__)
    stack = Stack(args.bin_dir, work)
    failures = []

    def check(condition, what):
        print(("ok: " if condition else "FAILED: ") + what)
        if not condition:
            failures.append(what)

    sane = "trace-" + secrets.token_hex(8)
    hostile = {
        "too long": "x" * 129,
        "a space": "two words",
        "a tab": "tab\there",
        "non-ASCII bytes": "caf\u00e9".encode("utf-8").decode("latin-1"),
        "a control character": "bad\x01id",
    }
    try:
        provider = stack.start("log-provider", "log-provider", PROVIDER_KEY=KEY)
        backend = stack.start("backend-api", "backend-api", SIMULATED_LATENCY_MS="0",
                              EXTERNAL_LOGS_URL=f"http://127.0.0.1:{provider}/v1/logs",
                              EXTERNAL_INTEGRATION_KEY=KEY)
        quiet = stack.start("backend-api", "backend-api-access-log-off", SIMULATED_LATENCY_MS="0",
                            EXTERNAL_LOGS_URL=f"http://127.0.0.1:{provider}/v1/logs",
                            EXTERNAL_INTEGRATION_KEY=KEY, ACCESS_LOG="off")

        status, echoed = response_id(stack, backend, "/download_external_logs?limit=3",
                                     {"x-request-id": sane})
        check(status == 200 and echoed == sane, f"a sane id comes back: {status} {echoed}")

        replaced = {}
        for what, bad in hostile.items():
            try:
                status, got = response_id(stack, backend, "/download_external_logs?limit=1",
                                          {"x-request-id": bad})
            except ValueError as err:  # http.client refuses to send it at all
                check(False, f"{what}: not sent ({err})")
                continue
            if status == 400 and got is None:
                # hyper's parser refuses the header before the pipeline sees it.
                check(True, f"{what}: refused as a malformed request (400), not echoed")
                continue
            check(status == 200 and got is not None and UUID7.match(got) is not None
                  and got != bad, f"{what}: replaced by a UUIDv7 ({status} {got})")
            if got:
                replaced[what] = got
        for path in ("/healthz", "/readyz", "/metrics", "/api_1"):
            stack.request(backend, "GET", path)
            stack.request(quiet, "GET", path)
        stack.request(quiet, "GET", "/download_external_logs?limit=1")
    finally:
        stack.stop()

    backend_lines = log_lines(work, "backend-api")
    provider_lines = log_lines(work, "log-provider")
    quiet_lines = log_lines(work, "backend-api-access-log-off")
    everything = backend_lines + provider_lines + quiet_lines

    # Every line that mentions the sane id carries it as the request's id, and both services'
    # lines of the request are there: backend-api's download line and access line, the
    # provider's access line.
    mentioning = [line for line in everything if sane in json.dumps(line)]
    check(all(request_id_of(line) == sane for line in mentioning),
          f"every line mentioning the id carries it as span.request_id ({len(mentioning)} lines)")
    ours = [line for line in backend_lines if request_id_of(line) == sane]
    theirs = [line for line in provider_lines if request_id_of(line) == sane]
    check(any(line.get("message") == "download" for line in ours)
          and any(line.get("target") == "access_log" and line.get("route") ==
                  "/download_external_logs" and line.get("status") == 200
                  and line.get("level") == "INFO" and "duration_ms" in line for line in ours),
          f"backend-api logged the download and its access line under the id ({len(ours)} lines)")
    check(any(line.get("target") == "access_log" and line.get("route") == "/v1/logs"
              and line.get("status") == 200 for line in theirs),
          f"log-provider logged its access line under the same id ({len(theirs)} lines)")
    # Every line logged inside a request has an id: backend-api's download lines.
    downloads = [line for line in backend_lines if line.get("message") == "download"]
    check(downloads and all(request_id_of(line) for line in downloads),
          f"each of the {len(downloads)} download lines carries a request id")

    text = "\n".join(json.dumps(line) for line in everything)
    for what, bad in hostile.items():
        check(json.dumps(bad)[1:-1] not in text and bad not in text,
              f"{what}: the hostile id is in no log line")
    for what, new in replaced.items():
        check(any(request_id_of(line) == new and line.get("route") == "/v1/logs"
                  for line in provider_lines),
              f"{what}: the replacement id reached the provider's log")

    access = [line for line in backend_lines if line.get("target") == "access_log"]
    levels = {line.get("route"): line.get("level") for line in access}
    check(all(levels.get(route) == "DEBUG" for route in ("/healthz", "/readyz", "/metrics"))
          and levels.get("/api_1") == "INFO",
          f"probes and scrapes at debug, the API at info: {levels}")
    check(not any(line.get("target") == "access_log" for line in quiet_lines)
          and any(line.get("message") == "download" for line in quiet_lines),
          "ACCESS_LOG=off: no access line, the other lines stay")

    print(f"{len(failures)} failed" if failures else "request ids and access log: all hold")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Instructions per request, counted by callgrind: what one `/health_check` costs a build in a
configuration, on any machine, however loaded.

The req/s of `bench.py` move with the machine's load by more than the few percent #20's goals
are about (tracing off within 3 % of the build before it, a 1 % sampler within 10 %). callgrind
counts the instructions the server executes, in every thread (the log writer's and the span
exporter's included), and the count repeats for the same binary, input and environment. It is
not a time: memory stalls and system calls do not show, so it complements the wrk rounds rather
than replacing them.

Each case runs its server twice under `valgrind --tool=callgrind`, with FEW and with MANY
sequential keep-alive requests, and reports (Ir(MANY) - Ir(FEW)) / (MANY - FEW): start-up and
shutdown cancel out. Usage (the binaries are the static release builds the images carry):

    bench/instructions.py --case "v0.1.0, access log off" /tmp/base/backend-api ACCESS_LOG=off \
                          --case "HEAD, access log off" target/static/.../backend-api ACCESS_LOG=off

A case's `OTEL_SINK` setting (any value) points OTEL_EXPORTER_OTLP_ENDPOINT at a local sink that
accepts every export. Writes a Markdown table on stdout (and --json FILE). Needs valgrind.
"""

import argparse
import http.client
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))
from service_process import ServiceProcess  # noqa: E402

ROUTE = "/health_check"


class Sink(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP collector that takes every export (an empty protobuf answer is a valid one)."""

    def do_POST(self):  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def start_sink():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def instructions(binary, env, requests, work):
    """The callgrind total (Ir, every thread) of one server run that answers `requests`."""
    out = Path(work) / f"callgrind.{os.getpid()}.{requests}.out"
    out.unlink(missing_ok=True)
    server = ServiceProcess(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary],
        env={"DRAIN_PERIOD": "0s", **env}, inherit_env=False,
        log_path=Path(work) / "server.log", start_bound=120.0)
    server.start()
    try:
        host, port = server.addr.rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        for _ in range(requests):
            connection.request("GET", ROUTE)
            answer = connection.getresponse()
            answer.read()
            if answer.status != 200:
                raise RuntimeError(f"{ROUTE} answered {answer.status}")
        connection.close()
    finally:
        code = server.stop(bound=120.0)
    # A server without a SIGTERM handler (hello-hyper) dies of the signal; valgrind still writes
    # the counts of its run.
    if code not in (0, -signal.SIGTERM):
        raise RuntimeError(f"the server exited {code}:\n{server.output()[-2000:]}")
    totals = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
    if not totals:
        raise RuntimeError(f"no total in {out}")
    return int(totals.group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", nargs="+", action="append", required=True,
                        metavar=("LABEL BINARY", "VAR=VALUE"),
                        help="a label, a server binary and its settings")
    parser.add_argument("--few", type=int, default=100)
    parser.add_argument("--many", type=int, default=600)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    sink, sink_url = start_sink()
    rows = []
    with tempfile.TemporaryDirectory(prefix="abn-instructions-") as work:
        for label, binary, *settings in args.case:
            env = dict(s.split("=", 1) for s in settings)
            if env.pop("OTEL_SINK", None) is not None:
                env["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink_url
            few = instructions(binary, env, args.few, work)
            many = instructions(binary, env, args.many, work)
            per_request = (many - few) / (args.many - args.few)
            rows.append({"case": label, "binary": binary, "settings": settings,
                         "instructions_per_request": round(per_request)})
            print(f"{label}: {per_request:,.0f} instructions per request", file=sys.stderr)
    sink.shutdown()
    first = rows[0]["instructions_per_request"]
    print(f"| case | settings | instructions per `{ROUTE}` | vs the first |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        ratio = row["instructions_per_request"] / first
        settings = " ".join(f"`{s}`" for s in row["settings"]) or "defaults"
        print(f"| {row['case']} | {settings} | {row['instructions_per_request']:,} | {ratio:.3f}x |")
    if args.json:
        args.json.write_text(json.dumps({"few": args.few, "many": args.many, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()

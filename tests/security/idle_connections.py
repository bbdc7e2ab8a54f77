#!/usr/bin/env python3
"""Many idle connections against a real service binary (log-provider: the shared platform
server, nothing else in the way): memory stays bounded and the service still answers.

Opens COUNT connections that send nothing (half of them a partial HTTP/2 preface), measures the
server's resident memory and open files from /proc, checks that a new client is still served,
and that the server closes the silent connections after HEADER_READ_TIMEOUT (so even COUNT at
the default MAX_CONNECTIONS of 10000 keeps others out for one timeout at most). Standard library only; needs COUNT + a few hundred
file descriptors (`ulimit -n`).
"""

import argparse
import os
import resource
import selectors
import socket
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from service_process import ServiceProcess  # noqa: E402


def proc_status(pid):
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) * 1024, len(os.listdir(f"/proc/{pid}/fd"))


def get(port, path, timeout):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return r.status


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--count", type=int, default=10_000)
    # Longer than opening COUNT connections takes, so that all of them are held at once.
    parser.add_argument("--header-read-timeout", type=int, default=30, help="seconds")
    parser.add_argument("--max-rss-growth-mib", type=int, default=256)
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.count + 256
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
        if min(need, hard) < need:
            print(f"needs {need} file descriptors, the hard limit is {hard}", file=sys.stderr)
            return 1

    server = ServiceProcess(
        [Path(args.bin_dir) / "log-provider"],
        env=dict(PROVIDER_KEY="idle-check-key", HEADER_READ_TIMEOUT=f"{args.header_read_timeout}s"),
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard)),
    ).start()
    port = server.port
    failures = []
    idle = []
    try:
        rss_before, fds_before = proc_status(server.pid)

        started = time.monotonic()
        for i in range(args.count):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            if i % 2:
                s.sendall(b"PRI * HTTP/2")
            idle.append(s)
        opened = time.monotonic() - started
        time.sleep(0.5)
        rss_held, fds_held = proc_status(server.pid)

        # With COUNT >= MAX_CONNECTIONS every slot is held: the new client is served once the
        # silent ones are closed, within about one header read timeout.
        t = time.monotonic()
        status = get(port, "/healthz", args.header_read_timeout * 4 + 30)
        served_after = time.monotonic() - t
        if status != 200:
            failures.append(f"/healthz answered {status} while {args.count} were idle")

        # The server closes every silent connection (bounded wait).
        selector = selectors.DefaultSelector()
        for s in idle:
            s.setblocking(False)
            selector.register(s, selectors.EVENT_READ)
        open_left = set(idle)
        deadline = time.monotonic() + args.header_read_timeout * 4 + 30
        while open_left and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=1):
                try:
                    data = key.fileobj.recv(64)
                except OSError:
                    data = b""
                if not data:
                    selector.unregister(key.fileobj)
                    open_left.discard(key.fileobj)
        closed_after = time.monotonic() - t
        if open_left:
            failures.append(f"{len(open_left)} silent connections were never closed")
        rss_after, fds_after = proc_status(server.pid)

        growth = rss_held - rss_before
        print(f"{args.count} idle connections opened in {opened:.1f} s (MAX_CONNECTIONS at its "
              f"default of 10000, HEADER_READ_TIMEOUT={args.header_read_timeout}s)")
        print(f"server resident memory: {rss_before / 2**20:.1f} MiB before, "
              f"{rss_held / 2**20:.1f} MiB while held ({growth / args.count:.0f} bytes per "
              f"connection), {rss_after / 2**20:.1f} MiB after")
        print(f"server open files: {fds_before} before, {fds_held} while held, {fds_after} after")
        print(f"a new client was served after {served_after:.1f} s; every silent connection "
              f"closed by the server after {closed_after:.1f} s")
        if growth > args.max_rss_growth_mib * 2**20:
            failures.append(f"resident memory grew by {growth / 2**20:.0f} MiB")
        if server.proc.poll() is not None:
            failures.append(f"the server exited with {server.proc.returncode}")
    finally:
        for s in idle:
            s.close()
        server.stop()
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

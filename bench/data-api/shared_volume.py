#!/usr/bin/env python3
"""data-api on one shared LOG_DIR (the chart's shared mode), on loopback, by hand:

  python3 bench/data-api/shared_volume.py --bin target/static/x86_64-unknown-linux-gnu/release/data-api

1. writes: 1, 2 and 3 data-api processes on one fresh LOG_DIR, each its own folder, driven by
   wrk POST /logs with 64 connections in total (split evenly), DURATION seconds each: records/s
   summed over the writers, and records per fdatasync (data_api_commit_batch_size);
2. reads: GET /logs?limit=100 through one more instance, with 1 and with 8 other instance folders
   of 100,000 records each: requests/s, latency, and bytes read per request (rchar from
   /proc/<pid>/io), which shows the k-way merge reads about one 64 KiB chunk per folder, not whole
   segments. The folders are written by this script in the store's format (segments of 16 MiB and
   the commit marker, as a writer leaves them), which takes seconds instead of 800,000 POSTs.

Every load is bounded (wrk -d); prints a Markdown table. Needs wrk.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "support"))
from service_process import ServiceProcess  # noqa: E402  (port 0, address read from the log)

POST_LUA = REPO / "bench" / "wrk" / "post_logs.lua"
SEGMENT_BYTES = 16 << 20


def start(binary: str, log_dir: Path, instance: str) -> ServiceProcess:
    """One data-api on port 0, ready. The access log is off, so its few log lines cost nothing
    under load (RUST_LOG=warn did the same before, but hid the "listening" line)."""
    env = {"LOG_DIR": str(log_dir), "INSTANCE_ID": instance, "SIMULATED_LATENCY_MS": "0",
           "ACCESS_LOG": "off", "PATH": os.environ.get("PATH", "")}
    return ServiceProcess([binary], env=env, inherit_env=False).start()


def stop(processes: list[ServiceProcess]) -> None:
    for p in processes:
        p.terminate()
    for p in processes:
        p.stop()


def wrk(url: str, connections: int, duration: int, lua: Path | None = None) -> subprocess.Popen:
    args = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    if lua:
        args += ["-s", str(lua)]
    env = {**os.environ, "BENCH_WRK_DIR": str(REPO / "bench" / "wrk")}
    return subprocess.Popen(args + [url], stdout=subprocess.PIPE, text=True, env=env)


def result(process: subprocess.Popen) -> dict[str, float]:
    out, _ = process.communicate(timeout=120)
    line = next((l for l in out.splitlines() if l.startswith("RESULT ")), None)
    if line is None:  # plain wrk output (GET, no lua): requests/s and the latency distribution
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p50.group(2)]
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        return {"rps": rps, "p50_ms": float(p50.group(1)) * scale, "status": float(errors.group(1)) if errors else 0.0}
    return {k: float(v) for k, v in (f.split("=") for f in line.split()[1:])}


def metric_sum(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith(name + " ") or l.startswith(name + "{"))


def writes(binary: str, writers: int, duration: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="shared-bench-") as root:
        processes = [start(binary, Path(root), f"data-api-{i}") for i in range(writers)]
        ports = [p.port for p in processes]
        try:
            split = [64 // writers + (1 if i < 64 % writers else 0) for i in range(writers)]
            loads = [wrk(f"http://127.0.0.1:{p}/logs", c, duration, POST_LUA) for p, c in zip(ports, split)]
            results = [result(w) for w in loads]
            batches = sum(metric_sum(p, "data_api_commit_batch_size_count") for p in ports)
            records = sum(metric_sum(p, "data_api_commit_batch_size_sum") for p in ports)
        finally:
            stop(processes)
    return {"writers": writers, "rps": sum(r["rps"] for r in results),
            "errors": sum(r["status"] + r["timeout"] for r in results),
            "per_sync": records / batches if batches else 0.0}


def write_folder(log_dir: Path, instance: str, records: int, start_time: float) -> None:
    """`records` records in the store's format: 16 MiB segments, then the commit marker."""
    folder = log_dir / instance
    folder.mkdir(parents=True)
    seq, size, out = 1, 0, None
    for n in range(records):
        ts = start_time + n * 0.001
        line = json.dumps({"id": str(uuid.uuid4()), "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts))
                           + f".{int(ts % 1 * 1e6):06d}Z", "level": "info",
                           "message": f"Processing request... {instance} {n}", "instance": instance},
                          separators=(",", ":")).encode() + b"\n"
        if out is None or size + len(line) > SEGMENT_BYTES:
            if out:
                out.close()
                seq += 1
            out, size = open(folder / f"segment-{seq:020d}.jsonl", "wb"), 0
        out.write(line)
        size += len(line)
    out.close()
    pair = f"{seq:020d} {size:020d}"
    (folder / ".commit").write_text(f"{pair} {pair}\n")


def rchar(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise RuntimeError("no rchar")


def reads(binary: str, folders: int, records: int, duration: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="shared-bench-") as root:
        for i in range(folders):
            write_folder(Path(root), f"old-{i}", records, time.time() - 86400 + i * 0.0003)
        reader = start(binary, Path(root), "reader")
        try:
            url = reader.url("/logs?limit=100")
            with urllib.request.urlopen(url, timeout=10) as answer:
                page = json.loads(answer.read())["records"]
            assert len(page) == 100, len(page)
            before = rchar(reader.pid)
            load = wrk(url, 8, duration)
            figures = result(load)
            read = rchar(reader.pid) - before
        finally:
            stop([reader])
    requests = figures["rps"] * duration
    return {"folders": folders, "rps": figures["rps"], "p50_ms": figures["p50_ms"],
            "kib_per_request": read / requests / 1024 if requests else 0.0, "errors": figures["status"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="the data-api binary (a release build)")
    parser.add_argument("--duration", type=int, default=10, help="wrk seconds per load")
    parser.add_argument("--records", type=int, default=100_000, help="records per folder for the reads")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk missing: apt-get install -y wrk")
    print(f"load average at start: {os.getloadavg()}", file=sys.stderr)
    rows = [writes(args.bin, n, args.duration) for n in (1, 2, 3)]
    print("| writers on one LOG_DIR | records/s (sum) | records per fdatasync | errors |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['writers']} | {r['rps']:.0f} | {r['per_sync']:.1f} | {r['errors']:.0f} |")
    rows = [reads(args.bin, n, args.records, args.duration) for n in (1, 8)]
    print()
    print(f"| folders of {args.records} records | GET /logs?limit=100 req/s (8 connections) | p50 ms | KiB read per request | errors |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['folders']} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['kib_per_request']:.0f} | {r['errors']:.0f} |")
    print(f"load average at end: {os.getloadavg()}", file=sys.stderr)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""data-api crash loop: the real binary under concurrent writes, killed with SIGKILL, many rounds.

Each round starts data-api on the same LOG_DIR and INSTANCE_ID, lets CLIENTS threads POST
records as fast as they are acknowledged, and SIGKILLs the process at a random moment. After
the last round the binary starts once more (its recovery cuts any torn tail), and every segment
file is read back line by line:

  - every acknowledged record (201) is there: 0 lost;
  - no record is there twice: 0 duplicated (messages are unique per request);
  - every line is a whole record: 0 corrupt.

Requests whose outcome is unknown (the connection broke with the kill) may or may not be there;
they are counted, not judged. Standard library only. Exit 0 when all three counts are 0.
"""

import argparse
import http.client
import json
import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from service_process import ServiceProcess  # noqa: E402

INSTANCE = "crash-loop"


def start(binary, log_dir, log_path):
    """data-api on 127.0.0.1:0, ready. A just-killed writer's lock is released by the kernel; the
    new process may need a moment, which the bounded readiness wait covers."""
    return ServiceProcess([binary], log_path=log_path, env=dict(
        LOG_DIR=str(log_dir),
        INSTANCE_ID=INSTANCE,
        SIMULATED_LATENCY_MS="0",
        # Small segments, so kills also land around rotations.
        LOG_SEGMENT_BYTES="256KiB",
        LOG_RETENTION_BYTES="1GiB",
    )).start()


class Client(threading.Thread):
    """Posts unique records until its connection breaks; remembers what was acknowledged."""

    def __init__(self, port, round_no, client_no, stop):
        super().__init__(daemon=True)
        self.port, self.round_no, self.client_no, self.stop = port, round_no, client_no, stop
        self.acked = []
        self.unknown = []

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        seq = 0
        while not self.stop.is_set():
            message = f"r{self.round_no}-c{self.client_no}-{seq}"
            seq += 1
            body = json.dumps({"message": message, "level": "info"})
            try:
                conn.request("POST", "/logs", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException):
                self.unknown.append(message)
                return
            if response.status == 201:
                self.acked.append((message, json.loads(payload)["id"]))
            else:
                # A refusal is a definite "not stored"; it must not show up either.
                self.unknown.append(message)


def read_segments(log_dir):
    """Every line of every segment: (records, corrupt line descriptions)."""
    records, corrupt = [], []
    folder = Path(log_dir) / INSTANCE
    for path in sorted(folder.glob("segment-*.jsonl")):
        data = path.read_bytes()
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        elif lines:
            corrupt.append(f"{path.name}: last line has no newline")
        for number, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
                assert set(record) == {"id", "ts", "level", "message", "instance"}, record
                records.append(record)
            except (ValueError, AssertionError) as err:
                corrupt.append(f"{path.name}:{number}: {err}")
    return records, corrupt


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", required=True, help="the data-api binary")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--work", required=True, help="a scratch folder (created)")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    work = Path(args.work)
    log_dir = work / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    acked, unknown = {}, set()
    log_path = work / "data-api.log"
    for round_no in range(args.rounds):
        service = start(args.bin, log_dir, log_path)
        stop = threading.Event()
        clients = [Client(service.port, round_no, c, stop) for c in range(args.clients)]
        for c in clients:
            c.start()
        time.sleep(rng.uniform(0.2, 1.2))
        service.kill()
        stop.set()
        for c in clients:
            c.join(timeout=15)
            if c.is_alive():
                print(f"round {round_no}: a client did not finish", file=sys.stderr)
                return 1
            acked.update(c.acked)
            unknown.update(c.unknown)
    # Recovery: the last start cuts a torn tail; what remains is what is judged.
    start(args.bin, log_dir, log_path).stop()

    records, corrupt = read_segments(log_dir)
    seen = {}  # message -> ids on disk
    for record in records:
        seen.setdefault(record["message"], []).append(record["id"])
    lost = [m for m in acked if m not in seen]
    duplicated = [m for m, ids in seen.items() if len(ids) > 1]
    wrong_id = [m for m, i in acked.items() if m in seen and i not in seen[m]]
    unexpected = [m for m in seen if m not in acked and m not in unknown]
    log_text = (work / "data-api.log").read_text(errors="replace")
    torn = log_text.count("cut off an incomplete record")
    unknown_kept = sum(1 for m in unknown if m in seen)

    print(f"rounds (SIGKILL): {args.rounds}, clients per round: {args.clients}, "
          f"time: {time.monotonic() - started:.1f} s")
    print(f"acknowledged records: {len(acked)}, requests cut by a kill: {len(unknown)} "
          f"({unknown_kept} of them on disk)")
    print(f"records on disk: {len(records)}, torn-tail log lines at restart: {torn}")
    print(f"lost: {len(lost)}, duplicated: {len(duplicated)}, corrupt lines: {len(corrupt)}, "
          f"wrong id: {len(wrong_id)}, never sent: {len(unexpected)}")
    for label, items in (("lost", lost), ("duplicated", duplicated), ("corrupt", corrupt),
                         ("wrong id", wrong_id), ("never sent", unexpected)):
        for item in items[:10]:
            print(f"  {label}: {item}", file=sys.stderr)
    if not acked:
        print("no record was acknowledged: the loop did not exercise anything", file=sys.stderr)
        return 1
    return 1 if (lost or duplicated or corrupt or wrong_id or unexpected) else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Network faults between backend-api and its provider, made for real on the Docker engine.

The test creates a private network with log-provider (HTTPS, a CA made for the run with openssl),
two backend-apis (one reaching the provider by its name, one through a delaying TCP proxy on the
network's gateway) and a health-check loop probing both backends' download. Faults are made in
the provider's network namespace with iptables (`nsenter -t <pid> -n`, so root): `-m statistic`
random loss, DROP for a silent partition, REJECT --reject-with tcp-reset for resets; latency by
the proxy (this kernel has no netem); a name that no longer resolves by taking the provider off
the network. Each case checks backend-api's answer inside its budget, recovery without a restart
once the fault is removed, and no leak: backend-api's open file descriptors (/proc/<pid>/fd) and
its TCP connections (/proc/<pid>/net/tcp*) back to their level before the fault. Then that the
health-check's history (its JSON lines on stdout) recorded the faults.

Prints a table: fault, answer, time to answer, time to recover, fds and connections before,
during and after, and the health-check's failed probes during the fault. Standard library only.

    sudo python3 tests/faults/network_faults.py --image-tag 0.1.0
"""

import argparse
import http.client
import json
import os
import secrets
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from capture import check_capture  # noqa: E402
from delay_proxy import DelayProxy  # noqa: E402
from service_process import eventually  # noqa: E402

# backend-api's budgets, shorter than its defaults so the run stays short; the cases check
# the answers against these.
FIRST_BYTE_BUDGET = 5.0  # EXTERNAL_LOGS_TIMEOUT
READ_IDLE = 3.0  # EXTERNAL_LOGS_READ_IDLE_TIMEOUT
CONNECT_TIMEOUT = 1.0  # EXTERNAL_LOGS_CONNECT_TIMEOUT
# Slack on a budget for the answer to travel back (a shared 2-core machine): a later answer fails.
GRACE = 5.0
LATENCY = 0.3  # what leaves the provider is delayed this long (netem's delay on its interface)
LOSS = 0.2  # each packet in and out of the provider dropped with this probability
DOWNLOAD_MIB = 3
LINE_BYTES = 120  # about a generated line; the download is checked by its line count
# The shortest a fault lasts: longer than backend-api's budget, so a health-check probe that
# starts during the fault ends in backend-api's answer to it, not in the fault's end.
HOLD = FIRST_BYTE_BUDGET + 1.0
PROVIDER_PORT = 5002
LABEL = "io.abn-stack.faults"


def log(msg):
    print(f"network-faults: {msg}", file=sys.stderr, flush=True)


def run(cmd, timeout=60, check=True):
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {done.returncode}: {done.stderr.strip()}")
    return done.stdout.strip()


class Answer:
    def __init__(self, status=None, body=b"", complete=False, error=None, seconds=0.0):
        self.status, self.body, self.complete, self.error = status, body, complete, error
        self.seconds = seconds

    def json(self):
        return json.loads(self.body)

    def lines(self):
        return self.body.count(b"\n")


def get(host, path, timeout, read_first=None, after_first=None):
    """GET over HTTP/1.1; `complete` only when the body ended cleanly (the chunked stream's last
    chunk). With `read_first`, that many bytes are read, `after_first()` is called (the fault
    goes in there) and the rest is read."""
    start = time.monotonic()
    conn = http.client.HTTPConnection(host, 5000, timeout=timeout)
    answer = Answer()
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        answer.status = resp.status
        parts = []
        if read_first:
            parts.append(resp.read(read_first))
            after_first()
        parts.append(resp.read())
        answer.body = b"".join(parts)
        answer.complete = True
    except http.client.IncompleteRead as e:
        answer.body = b"".join(parts) + e.partial
        answer.error = "incomplete read (stream ended without its last chunk)"
    except (OSError, http.client.HTTPException) as e:
        answer.error = f"{type(e).__name__}: {e}"
    finally:
        conn.close()
    answer.seconds = time.monotonic() - start
    return answer


class Stack:
    def __init__(self, image_tag, work):
        self.tag, self.work = image_tag, Path(work)
        self.run_id = secrets.token_hex(4)
        self.net = f"abnfaults{self.run_id}"
        self.key = "faults-" + secrets.token_hex(16)
        self.containers = {}

    # ------------------------------------------------------------------ set up

    def certificates(self, gateway):
        d = self.work
        subj = ["-subj"]
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"), "-days", "2",
             *subj, "/CN=abn-stack faults test CA"])
        (d / "san.ext").write_text(
            f"subjectAltName=DNS:log-provider,IP:{gateway}\n"
            "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
        run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", str(d / "tls.key"), "-out", str(d / "tls.csr"), *subj, "/CN=log-provider"])
        run(["openssl", "x509", "-req", "-in", str(d / "tls.csr"), "-CA", str(d / "ca.pem"),
             "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "2",
             "-extfile", str(d / "san.ext"), "-out", str(d / "tls.pem")])
        # The services run as uid 65532; these are a throwaway run's files.
        for name in ("tls.key", "tls.pem", "ca.pem", "key"):
            os.chmod(d / name, 0o444)

    def start(self):
        run(["docker", "network", "create", "--label", f"{LABEL}={self.run_id}", self.net])
        gateway = run(["docker", "network", "inspect", self.net, "--format",
                       "{{(index .IPAM.Config 0).Gateway}}"])
        (self.work / "key").write_text(self.key + "\n")
        self.certificates(gateway)
        self.container("log-provider", [
            "-e", "PROVIDER_KEY_FILE=/run/faults/key",
            "-e", "TLS_CERT_FILE=/run/faults/tls.pem", "-e", "TLS_KEY_FILE=/run/faults/tls.key",
        ], alias="log-provider")
        # The packet capture's positive control: the same pair over plain HTTP.
        self.container("log-provider", ["-e", "PROVIDER_KEY_FILE=/run/faults/key"],
                       name="log-provider-plain", alias="log-provider-plain")
        self.provider_ip = self.ip("log-provider")
        self.proxy = DelayProxy(gateway, (self.provider_ip, PROVIDER_PORT))
        backend_env = [
            "-e", "EXTERNAL_INTEGRATION_KEY_FILE=/run/faults/key",
            "-e", "EXTERNAL_LOGS_CA_FILE=/run/faults/ca.pem",
            "-e", f"EXTERNAL_LOGS_TIMEOUT={FIRST_BYTE_BUDGET:g}s",
            "-e", f"EXTERNAL_LOGS_READ_IDLE_TIMEOUT={READ_IDLE:g}s",
            "-e", f"EXTERNAL_LOGS_CONNECT_TIMEOUT={CONNECT_TIMEOUT:g}s",
            "-e", "SIMULATED_LATENCY_MS=0",
        ]
        self.container("backend-api", [
            *backend_env, "-e", f"EXTERNAL_LOGS_URL=https://log-provider:{PROVIDER_PORT}/v1/logs",
        ], name="backend-direct")
        self.container("backend-api", [
            *backend_env, "-e", f"EXTERNAL_LOGS_URL=https://{gateway}:{self.proxy.port}/v1/logs",
        ], name="backend-proxied")
        self.container("backend-api", [
            *backend_env, "-e", f"EXTERNAL_LOGS_URL=http://log-provider-plain:{PROVIDER_PORT}/v1/logs",
            "-e", "EXTERNAL_LOGS_ALLOW_PLAINTEXT=true",
        ], name="backend-plain")
        # Readiness as the test sees it: the images' HEALTHCHECK probes plain HTTP, which the
        # provider over HTTPS does not answer.
        for name in ("log-provider", "log-provider-plain", "backend-direct", "backend-proxied",
                     "backend-plain"):
            eventually(f"{name} ready", lambda n=name: self.ready(n), bound=60, every=0.5)
        self.container("health-check", [
            "-e", "HEALTHCHECK_TARGETS="
                  "direct=http://backend-direct:5000/download_external_logs?limit=1,"
                  "proxied=http://backend-proxied:5000/download_external_logs?limit=1",
            # Longer than backend-api's budget: a provider timeout is recorded as backend-api's
            # 504, not as the probe's own timeout.
            "-e", f"HEALTHCHECK_TIMEOUT={FIRST_BYTE_BUDGET + GRACE:g}s",
        ], name="health-check", command=["--interval", "1s", "--output", "-"])

    def container(self, image, args, name=None, alias=None, command=()):
        name = name or image
        cname = f"{self.net}-{name}"
        extra = ["--network-alias", alias or name]
        run(["docker", "run", "-d", "--name", cname, "--label", f"{LABEL}={self.run_id}",
             "--network", self.net, *extra, "--read-only", "--cap-drop", "ALL",
             "--security-opt", "no-new-privileges:true", "--pids-limit", "256",
             "--memory", "256m", "-v", f"{self.work}:/run/faults:ro", *args,
             f"abn-stack/{image}:{self.tag}", *command])
        self.containers[name] = cname

    def inspect(self, name, fmt):
        return run(["docker", "inspect", self.containers[name], "--format", fmt])

    def ready(self, name):
        if name == "log-provider":
            context = ssl.create_default_context(cafile=str(self.work / "ca.pem"))
            # Reached by its address, which the certificate does not name (the CA is checked).
            context.check_hostname = False
            conn = http.client.HTTPSConnection(self.ip(name), PROVIDER_PORT, timeout=5,
                                               context=context)
        else:
            port = PROVIDER_PORT if name.startswith("log-provider") else 5000
            conn = http.client.HTTPConnection(self.ip(name), port, timeout=5)
        try:
            conn.request("GET", "/readyz")
            return conn.getresponse().status == 200
        finally:
            conn.close()

    def ip(self, name):
        return self.inspect(name, "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")

    def pid(self, name):
        return int(self.inspect(name, "{{.State.Pid}}"))

    def logs(self, name):
        done = subprocess.run(["docker", "logs", self.containers[name]], capture_output=True,
                              text=True, timeout=60)
        return done.stdout + done.stderr

    def stop(self):
        if getattr(self, "proxy", None):
            self.proxy.close()
        ids = run(["docker", "ps", "-aq", "--filter", f"label={LABEL}={self.run_id}"], check=False)
        if ids:
            run(["docker", "rm", "-f", *ids.split()], check=False)
        run(["docker", "network", "rm", self.net], check=False)

    # ------------------------------------------------------------------ faults

    def no_offloads(self):
        """Segmentation and receive offloads off on the provider's interface, so iptables sees
        (and -m statistic drops) wire-sized packets, not 64 KiB aggregates."""
        run(["nsenter", "-t", str(self.pid("log-provider")), "-n", "ethtool", "-K", "eth0",
             "sg", "off", "tso", "off", "gso", "off", "gro", "off"])

    def iptables(self, *rule):
        run(["nsenter", "-t", str(self.pid("log-provider")), "-n", "iptables", "-w", *rule])

    def dropped(self):
        """(dropped, seen) packets of the provider's namespace so far, in and out: the DROP rules'
        counters and those of the ACCEPT rule that follows them (what got through)."""
        counts = []
        for chain in ("INPUT", "OUTPUT"):
            out = run(["nsenter", "-t", str(self.pid("log-provider")), "-n", "iptables", "-w",
                       "-nvxL", chain])
            rows = [row.split() for row in out.splitlines()[2:] if row.strip()]
            dropped = sum(int(r[0]) for r in rows if r[2] == "DROP")
            counts.append((dropped, sum(int(r[0]) for r in rows)))
        return tuple(counts)

    def clear_faults(self):
        self.iptables("-F", "INPUT")
        self.iptables("-F", "OUTPUT")
        self.proxy.delay = 0.0

    # ------------------------------------------------------------------ what backend-api holds

    def counts(self, name):
        """(open fds, TCP connections) of backend-api: every socket of its network namespace but
        the listener and those in TIME_WAIT (which no descriptor holds)."""
        pid = self.pid(name)
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        conns = 0
        for table in ("tcp", "tcp6"):
            with open(f"/proc/{pid}/net/{table}") as f:
                for row in f.readlines()[1:]:
                    state = row.split()[3]
                    if state not in ("0A", "06"):  # LISTEN, TIME_WAIT
                        conns += 1
        return fds, conns

    def metric(self, name, metric):
        text = get(self.ip(name), "/metrics", timeout=10).body.decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith(metric):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def download(self, name, lines, timeout, **kw):
        return get(self.ip(name), f"/download_external_logs?limit={lines}", timeout, **kw)


class Case:
    def __init__(self, fault, backend):
        self.fault, self.backend = fault, backend
        self.answer = ""
        self.to_answer = None
        self.to_recover = None
        self.counts = {}
        self.window = None
        self.fault_on = None  # time.time(), time.monotonic() when the fault went in
        self.probes = (0, 0)  # failed, all (the health-check, during the fault)


def small_ok(stack, backend):
    a = stack.download(backend, 100, timeout=FIRST_BYTE_BUDGET + GRACE)
    return a.status == 200 and a.complete and a.lines() == 100


def settled(stack, case, bound=30.0):
    """After recovery: fds and connections back to their level before the fault (the pool may
    keep its idle connection; nothing beyond what it held before)."""
    fds0, conns0 = case.counts["before"]

    def back():
        fds, conns = stack.counts(case.backend)
        return (fds, conns) if fds <= fds0 and conns <= conns0 else None

    try:
        case.counts["after"] = eventually(
            f"{case.backend}'s fds and connections back to {fds0}/{conns0} after {case.fault}",
            back, bound=bound, every=0.5)
    except AssertionError:
        case.counts["after"] = stack.counts(case.backend)
        raise


def with_fault(stack, case, apply, observe):
    """before -> fault on -> observe (the answer; 'during': the most fds and connections seen
    while the fault was on, sampled every 0.5 s) -> hold -> fault off ->
    recovery (a clean small download, no restart) -> after."""
    eventually(f"{case.backend} answers a small download before {case.fault}",
               lambda: small_ok(stack, case.backend), bound=30, every=0.5)
    case.counts["before"] = stack.counts(case.backend)
    samples, sampling = [], threading.Event()

    def sample():
        while not sampling.is_set():
            try:
                samples.append(stack.counts(case.backend))
            except OSError:
                pass  # the container went away under it: the case fails on its own
            sampling.wait(0.5)

    apply()
    case.fault_on = case.fault_on or (time.time(), time.monotonic())
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        try:
            observe()
        finally:
            sampling.set()
            sampler.join()
        case.counts["during"] = (max(f for f, _ in samples), max(c for _, c in samples))
        rest = HOLD - (time.monotonic() - case.fault_on[1])
        if rest > 0:
            time.sleep(rest)
    finally:
        stack.clear_faults()
        case.window = (case.fault_on[0], time.time())
    cleared = time.monotonic()
    eventually(f"{case.backend} recovers from {case.fault} without a restart",
               lambda: small_ok(stack, case.backend), bound=60, every=0.2)
    case.to_recover = time.monotonic() - cleared
    settled(stack, case)


def latency_and_loss(stack):
    case = Case(f"{LATENCY * 1000:.0f} ms latency + {LOSS * 100:.0f} % loss", "backend-proxied")
    lines = DOWNLOAD_MIB * 1024 * 1024 // LINE_BYTES
    healthz, stop = [], threading.Event()

    def probe_healthz():
        host = stack.ip(case.backend)
        while not stop.is_set():
            a = get(host, "/healthz", timeout=10)
            healthz.append(a.seconds if a.status == 200 else float("inf"))
            stop.wait(0.1)

    def apply():
        stack.no_offloads()
        stack.proxy.delay = LATENCY
        p = f"{LOSS:g}"
        stack.iptables("-A", "INPUT", "-m", "statistic", "--mode", "random", "--probability", p,
                       "-j", "DROP")
        stack.iptables("-A", "OUTPUT", "-m", "statistic", "--mode", "random", "--probability", p,
                       "-j", "DROP")
        for chain in ("INPUT", "OUTPUT"):  # counts what got through
            stack.iptables("-A", chain, "-j", "ACCEPT")

    def observe():
        prober = threading.Thread(target=probe_healthz, daemon=True)
        prober.start()
        a = stack.download(case.backend, lines, timeout=120)
        dropped_in, dropped_out = stack.dropped()
        # /healthz sampled for the whole fault, not only the download.
        time.sleep(max(0.0, HOLD - (time.monotonic() - case.fault_on[1])))
        stop.set()
        prober.join()
        assert dropped_in[0] and dropped_out[0], (
            f"{case.fault}: the loss rules dropped nothing ({dropped_in} in, {dropped_out} out)")
        case.to_answer = a.seconds
        mib = len(a.body) / 1024 / 1024
        assert a.status == 200 and a.complete and a.lines() == lines, (
            f"{case.fault}: download of {lines} lines: status {a.status}, complete {a.complete}, "
            f"{a.lines()} lines, {a.error}")
        ordered = sorted(healthz)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else None
        case.answer = (f"200, {mib:.1f} MiB complete at {mib / a.seconds:.2f} MiB/s "
                       f"(packets dropped: in {dropped_in[0]} of {dropped_in[1]}, "
                       f"out {dropped_out[0]} of {dropped_out[1]}); "
                       f"/healthz p99 {p99 * 1000:.0f} ms over {len(ordered)} requests")

    with_fault(stack, case, apply, observe)
    return case


def partition_before_first_byte(stack):
    case = Case("silent partition before the first byte", "backend-direct")

    def apply():
        # Handshakes complete (SYN in, SYN-ACK out), then everything else in is dropped: the
        # request never arrives, pooled connections go silent too. A SYN dropped as well would be
        # a connect timeout (502 provider_unavailable), not a provider that stops answering.
        stack.iptables("-A", "INPUT", "-p", "tcp", "--dport", str(PROVIDER_PORT), "!", "--syn",
                       "-j", "DROP")

    def observe():
        # Two requests: the first may go out on a connection the pool kept (the request is sent,
        # nothing comes back: 504 provider_timeout); the second needs a new connection, whose TLS
        # handshake is part of connecting (EXTERNAL_LOGS_CONNECT_TIMEOUT) and cannot finish, so
        # the attempts fail until the budget runs out: 502 provider_unavailable. Both within it.
        answers = []
        for _ in range(2):
            a = stack.download(case.backend, 1000, timeout=FIRST_BYTE_BUDGET + GRACE)
            code = a.json().get("code") if a.status in (502, 504) else None
            assert (a.status, code) in ((504, "provider_timeout"), (502, "provider_unavailable")), (
                f"{case.fault}: expected 504 provider_timeout or 502 provider_unavailable within "
                f"{FIRST_BYTE_BUDGET} s, got {a.status} {a.body[:200]!r} {a.error}")
            answers.append(f"{a.status} {code} in {a.seconds:.1f} s")
        case.to_answer = a.seconds
        reasons = warnings_since(stack.logs(case.backend), case.fault_on[0])
        case.answer = f"{'; then '.join(answers)} (budget {FIRST_BYTE_BUDGET:g} s)"
        if reasons:
            case.answer += f"; log: {reasons[-1][:120]}"

    with_fault(stack, case, apply, observe)
    return case


def mid_stream(stack, fault, rules, reason, expect_within):
    case = Case(fault, "backend-direct")
    metric = f'backend_upstream_truncated_total{{reason="{reason}"}}'
    before = stack.metric(case.backend, metric)

    def apply():
        pass  # the fault goes in once the stream has started (after_first below)

    def after_first():
        for rule in rules:
            stack.iptables(*rule)
        case.fault_on = (time.time(), time.monotonic())

    def observe():
        # The largest answer the provider gives: it cannot finish before the fault.
        a = stack.download(case.backend, 10_000_000, timeout=expect_within + GRACE,
                           read_first=256 * 1024, after_first=after_first)
        ended = time.monotonic()
        case.to_answer = ended - case.fault_on[1] if case.fault_on else None
        assert a.status == 200 and not a.complete and a.error and "incomplete" in a.error, (
            f"{case.fault}: expected a truncated stream, got status {a.status}, complete "
            f"{a.complete}, {a.error}")
        eventually(f"{metric} counts the truncation",
                   lambda: stack.metric(case.backend, metric) >= before + 1, bound=10)
        counted = stack.metric(case.backend, metric) - before
        case.answer = (f"200 then truncated after {len(a.body) / 1024 / 1024:.1f} MiB "
                       f"({a.error.split(' (')[0]}); {metric} +{counted:g}")

    with_fault(stack, case, apply, observe)
    return case


def name_gone(stack):
    case = Case("provider's name no longer resolves", "backend-direct")

    def apply():
        run(["docker", "network", "disconnect", stack.net, stack.containers["log-provider"]])

    def observe():
        # A connection the pool kept to the provider's old address goes silent (its interface
        # is gone, nothing answers): that request is the silent partition's 504. The next one
        # needs the name: 502.
        answers = []
        for _ in range(3):
            a = stack.download(case.backend, 1000, timeout=FIRST_BYTE_BUDGET + GRACE)
            answers.append(a)
            code = a.json().get("code") if a.status in (502, 504) else None
            assert (a.status, code) in ((502, "provider_unavailable"), (504, "provider_timeout")), (
                f"{case.fault}: expected 502 provider_unavailable (or 504 on a pooled "
                f"connection), got {a.status} {a.body[:200]!r} {a.error}")
            if a.status == 502:
                break
        case.to_answer = answers[-1].seconds
        assert answers[-1].status == 502, (
            f"{case.fault}: {len(answers)} answers, none 502 provider_unavailable")
        first = "504 on the pooled connection, then " if len(answers) > 1 else ""
        reasons = warnings_since(stack.logs(case.backend), case.fault_on[0])
        last = reasons[-1] if reasons else ""
        case.answer = f"{first}502 provider_unavailable; log: {last}"
        assert last, f"{case.fault}: no warning naming the reason in {case.backend}'s log"

    def clear():
        run(["docker", "network", "connect", "--alias", "log-provider", stack.net,
             stack.containers["log-provider"]])

    orig = stack.clear_faults

    def clear_all():
        clear()
        stack.proxy.upstream = (stack.ip("log-provider"), PROVIDER_PORT)
        orig()

    stack.clear_faults = clear_all
    try:
        with_fault(stack, case, apply, observe)
    finally:
        stack.clear_faults = orig
    return case


def warnings_since(output, since):
    """The `error` of every WARN line of a JSON log after `since` (time.time())."""
    found = []
    for line in output.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if doc.get("level") == "WARN" and doc.get("error") and parse_ts(doc["timestamp"]) >= since:
            found.append(f'{doc["message"]}: {doc["error"]}')
    return found


def health_history(stack, cases):
    records = []
    for line in stack.logs("health-check").splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and "target" in doc and "ok" in doc:
            records.append(doc)
    assert records, "the health-check wrote no history lines"
    for case in cases:
        target = "proxied" if case.backend == "backend-proxied" else "direct"
        start, end = case.window
        # Every probe that overlapped the fault (it starts at ts and lasts latency_ms).
        during = [r for r in records if r["target"] == target
                  and parse_ts(r["ts"]) <= end
                  and parse_ts(r["ts"]) + r["latency_ms"] / 1000 >= start]
        failed = [r for r in during if not r["ok"]]
        case.probes = (len(failed), len(during))
    return records


def parse_ts(ts):
    """RFC 3339 in UTC, as the services write it (milliseconds or finer)."""
    whole, _, frac = ts.rstrip("Z").partition(".")
    t = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    return t + float(f"0.{frac or 0}")


def table(cases):
    def fmt(c, k):
        v = c.counts.get(k)
        return f"{v[0]}/{v[1]}" if v else "-"

    def secs(v):
        return f"{v:.2f} s" if v is not None else "-"

    rows = [("fault", "answer from backend-api", "time to answer", "time to recover",
             "fds/conns before", "during", "after", "health-check failed/probes")]
    for c in cases:
        rows.append((c.fault, c.answer, secs(c.to_answer), secs(c.to_recover), fmt(c, "before"),
                     fmt(c, "during"), fmt(c, "after"), f"{c.probes[0]}/{c.probes[1]}"))
    out = []
    for i, r in enumerate(rows):
        out.append("| " + " | ".join(r) + " |")
        if i == 0:
            out.append("|" + "---|" * len(r))
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-tag", required=True)
    parser.add_argument("--results", help="write the table (Markdown) here too")
    args = parser.parse_args()
    # A TERM (CI's timeout, the area script's trap) unwinds through the clean-up below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    with tempfile.TemporaryDirectory(prefix="abn-faults-") as work:
        os.chmod(work, 0o755)
        stack = Stack(args.image_tag, work)
        cases = []
        try:
            log(f"stack on network {stack.net} (images tagged {args.image_tag})")
            stack.start()
            log("warm-up download")
            eventually("both backends answer a small download",
                       lambda: small_ok(stack, "backend-direct")
                       and small_ok(stack, "backend-proxied"), bound=60, every=0.5)
            steps = [
                latency_and_loss,
                partition_before_first_byte,
                lambda s: mid_stream(s, "silent partition mid-stream", [
                    ("-A", "INPUT", "-p", "tcp", "--dport", str(PROVIDER_PORT), "-j", "DROP"),
                    ("-A", "OUTPUT", "-p", "tcp", "--sport", str(PROVIDER_PORT), "-j", "DROP"),
                ], "idle", READ_IDLE),
                lambda s: mid_stream(s, "connection reset mid-stream", [
                    ("-A", "INPUT", "-p", "tcp", "--dport", str(PROVIDER_PORT), "-j", "REJECT",
                     "--reject-with", "tcp-reset"),
                ], "broken", 0.0),
                name_gone,
            ]
            for step in steps:
                log(f"case {len(cases) + 1}/{len(steps)}")
                cases.append(step(stack))
                log(f"  {cases[-1].fault}: {cases[-1].answer}")
            log("packet capture on the provider's interface during a download")
            capture_rows = check_capture(stack)
            time.sleep(1.5)  # the health-check's probe that started last has written its line
            health_history(stack, cases)
            print(table(cases), flush=True)
            print("\npacket capture on the provider's interface:", flush=True)
            for row in capture_rows:
                print(f"- {row}", flush=True)
            quiet = [c for c in cases if c.backend == "backend-direct" and c.probes[0] == 0]
            assert not quiet, ("the health-check recorded no failure during: "
                               + ", ".join(c.fault for c in quiet))
            if args.results:
                Path(args.results).write_text(
                    table(cases) + "\n\n" + "".join(f"- {r}\n" for r in capture_rows))
        except BaseException:
            if cases:
                print(table(cases), flush=True)
            log(run(["docker", "ps", "-a", "--filter", f"label={LABEL}={stack.run_id}",
                     "--format", "{{.Names}} {{.Status}}"], check=False))
            for name in stack.containers:
                tail = "\n".join(stack.logs(name).splitlines()[-15:])
                log(f"--- {name} (last lines)\n{tail}")
            raise
        finally:
            stack.stop()
    log("every case passed")


if __name__ == "__main__":
    main()

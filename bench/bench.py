"""The side-by-side benchmark driver: the Rust services against the legacy gunicorn apps, on
loopback, with the same wrk load in alternating rounds. Called by bench/run.sh (which builds the
binaries, installs wrk and makes the venvs); writes every raw figure to RAW (JSON), which
bench/report.py turns into bench/results/.

Every load is bounded in time (wrk -d, probe durations, subprocess timeouts). Standard library
only. Usage: bench.py --raw FILE [--quick] [--only SCENARIO,...]
"""
import argparse
import datetime
import http.client
import json
import math
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "support"))
from service_process import ServiceProcess, bound_address, eventually  # noqa: E402  (the one way to start a binary)
from instructions import start_sink  # noqa: E402  (the one OTLP sink of the bench)

BASELINE = Path(os.environ.get("BASELINE_DIR", HERE / "legacy")).resolve()
TARGET = Path(os.environ.get("BENCH_TARGET_DIR", REPO / "target" / "release"))
WORK = Path(os.environ.get("BENCH_WORK_DIR", REPO / "build" / "bench-run"))
VENV = Path(os.environ["VENV"]) if "VENV" in os.environ else REPO / "build" / "baseline-venv"
CLK_TCK = os.sysconf("SC_CLK_TCK")
LEGACY_WORKERS = 4  # as the legacy containers ran (gunicorn -w 4)
GIB = 1 << 30


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def loadavg() -> list:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


# --- processes -------------------------------------------------------------------------------


def children(pid: int) -> list:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            text = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
            found.extend(int(c) for c in text)
    except OSError:
        pass
    return found


def tree(pid: int) -> list:
    """pid and its descendants (gunicorn: the master and its workers)."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo.extend(children(p))
    return pids


def rss_kib(pid: int) -> int:
    total = 0
    for p in tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def cpu_split(pid: int) -> tuple:
    """(user, system) CPU seconds of a process tree."""
    user = system = 0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            user, system = user + int(fields[11]), system + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return user / CLK_TCK, system / CLK_TCK


def cpu_seconds(pid: int) -> float:
    return sum(cpu_split(pid))


def http_status(port: int, path: str, timeout: float = 2.0):
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        conn.close()
        return response.status
    except OSError:
        return None


class Server:
    """One server process that this driver started (only ever signalled by its own pid), on
    port 0: its address is read from its "listening" log line (tests/support/service_process.py),
    so no run races another process for a port. Its output goes straight to WORK/<name>.log."""

    def __init__(self, name, argv, ready_path, env=None, workers=0, cwd=None):
        self.name, self.argv, self.ready_path = name, argv, ready_path
        self.env, self.workers, self.cwd = env or {}, workers, cwd
        self.proc = None
        self.port = None

    def start(self) -> "Server":
        # The first legacy start may build its venv: 120 s.
        service = ServiceProcess(self.argv, env=self.env, log_path=WORK / f"{self.name}.log",
                                 ready_path=None, capture=False, start_bound=120, cwd=self.cwd)
        try:
            service.start()
        except (RuntimeError, TimeoutError) as error:
            raise SystemExit(f"{self.name} did not start: {str(error).splitlines()[0]}; "
                             f"see {WORK / (self.name + '.log')}")
        self.proc, self.port = service.proc, service.port

        def answering() -> bool:  # any HTTP answer: the legacy apps have no readiness route
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited at start; see {WORK / (self.name + '.log')}")
            return http_status(self.port, self.ready_path) is not None
        eventually(f"{self.name} answers {self.ready_path}", answering, bound=120, every=0.02)
        if self.workers:
            # Let every gunicorn worker finish booting, as the baseline did.
            eventually(f"{self.name}'s {self.workers} workers", lambda: len(children(self.proc.pid)) >= self.workers,
                       bound=120, every=0.05)
            time.sleep(1.5)
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        pids = tree(self.pid)
        # gunicorn: SIGINT is its quick shutdown (TERM would let queued /api_1 requests drain).
        self.proc.send_signal(signal.SIGINT if self.workers else signal.SIGTERM)
        try:
            self.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for p in pids[1:]:  # workers the master did not reap
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        self.proc = None


def legacy(app: str, label: str, **env) -> Server:
    """gunicorn on port 0 (it logs "Listening at: http://127.0.0.1:PORT")."""
    return Server(f"legacy-{app}-{label}", [str(BASELINE / "run.sh"), app, "0", str(LEGACY_WORKERS)],
                  "/health_check", env={"VENV": str(VENV), "PYTHONUNBUFFERED": "1",
                                        "PYTHONDONTWRITEBYTECODE": "1", **env},
                  workers=LEGACY_WORKERS)


def rust(binary: str, label: str, ready_path="/healthz", **env) -> Server:
    """A Rust service; ServiceProcess sets LISTEN_ADDR=127.0.0.1:0 and LOG_FORMAT=json."""
    return Server(f"{binary}-{label}", [str(TARGET / binary)], ready_path, env=env)


class Sampler:
    """RSS of a process tree every 0.1 s while a load runs."""

    def __init__(self, pid: int):
        self.pid, self.samples, self._stop = pid, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.samples.append(rss_kib(self.pid))
            self._stop.wait(0.1)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.samples.append(rss_kib(self.pid))

    @property
    def peak(self) -> int:
        return max(self.samples)


# --- load ------------------------------------------------------------------------------------


def wrk(url: str, conns: int, duration: int, timeout="2s", script="report.lua", threads=2) -> dict:
    argv = ["wrk", "--latency", "-s", str(HERE / "wrk" / script), f"-t{threads}", f"-c{conns}",
            f"-d{duration}s", "--timeout", timeout, url]
    env = {**os.environ, "BENCH_WRK_DIR": str(HERE / "wrk")}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    watchdog = threading.Timer(duration + 60, proc.kill)
    watchdog.start()
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    watchdog.cancel()
    result = {"command": "wrk " + " ".join(argv[1:]).replace(str(HERE) + "/", "bench/"),
              "wrk_cpu_s": round(usage.ru_utime + usage.ru_stime, 2), "non_2xx": 0}
    for line in out.splitlines():
        if line.startswith("RESULT "):
            for pair in line.split()[1:]:
                key, value = pair.split("=")
                result[key] = float(value) if "." in value else int(value)
        elif "Non-2xx or 3xx responses:" in line:
            result["non_2xx"] = int(line.split(":")[1])
    if "rps" not in result:
        raise SystemExit(f"wrk failed ({proc.returncode}):\n{out}")
    result["errors"] = sum(result[k] for k in ("connect", "read", "write", "status", "timeout"))
    return result


def loaded(server: Server, url: str, conns: int, duration: int, **wrk_args) -> dict:
    """One wrk run against server, with its RSS sampled and its CPU time counted."""
    user0, sys0 = cpu_split(server.pid)
    with Sampler(server.pid) as sampler:
        result = wrk(url, conns, duration, **wrk_args)
    user1, sys1 = cpu_split(server.pid)
    result["server_user_s"], result["server_sys_s"] = round(user1 - user0, 2), round(sys1 - sys0, 2)
    result["server_cpu_s"] = round(user1 - user0 + sys1 - sys0, 2)
    result["rss_peak_kib"] = sampler.peak
    result["loadavg_1m"] = loadavg()[0]
    return result


def probe_start(url: str, rate: float, duration: float, timeout: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(HERE / "tools" / "probe.py"), url, str(rate),
                             str(duration), str(timeout)], stdout=subprocess.PIPE, text=True)


def probe_result(proc: subprocess.Popen, duration: float) -> dict:
    out, _ = proc.communicate(timeout=duration + 60)
    result = json.loads(out)
    lat = sorted(result.pop("latencies_ms"))
    result["p50_ms"] = percentile(lat, 50)
    result["p99_ms"] = percentile(lat, 99)
    result["max_ms"] = lat[-1] if lat else None
    return result


def percentile(values: list, p: float):
    if not values:
        return None
    k = max(0, math.ceil(p / 100 * len(values)) - 1)
    return values[k]


def alternating(names: list, round_index: int) -> list:
    """Round 0 in the given order, round 1 reversed, and so on: neither side always goes first."""
    return names if round_index % 2 == 0 else list(reversed(names))


def settle(seconds: float = 1.0) -> None:
    time.sleep(seconds)


# --- scenarios -------------------------------------------------------------------------------


def scenario_health(cfg) -> dict:
    """/health_check at 64 connections: legacy, backend-api and the bare hyper server."""
    servers = {
        "legacy": legacy("backend_api", "health"),
        "rust": rust("backend-api", "health"),
        "hello": Server("hello-hyper", [str(TARGET / "hello-hyper"), "127.0.0.1:0"], "/"),
    }
    out = {name: {"rounds": []} for name in servers}
    try:
        for name, server in servers.items():
            server.start()
            http_status(server.port, "/health_check")  # one request, so lazy state is counted
            settle(0.5)
            out[name]["idle_fresh_kib"] = server.rss_kib()
        for r in range(cfg.rounds):
            for name in alternating(list(servers), r):
                server = servers[name]
                url = f"http://127.0.0.1:{server.port}/health_check"
                result = loaded(server, url, 64, cfg.duration)
                log(f"health c64 round {r + 1} {name}: {result['rps']:.0f} req/s, p99 {result['p99_ms']} ms")
                out[name]["rounds"].append(result)
                settle()
        for name, server in servers.items():
            out[name]["idle_after_kib"] = server.rss_kib()
    finally:
        for server in servers.values():
            server.stop()
    return out


def alternating_rounds(servers: dict, cfg, measure) -> dict:
    """Starts every server, runs cfg.rounds rounds of measure(name, server, round) with the
    servers in alternating order, stops them all; each server's results as {"rounds": [...]}."""
    out = {name: {"rounds": []} for name in servers}
    try:
        for server in servers.values():
            server.start()
        for r in range(cfg.rounds):
            for name in alternating(list(servers), r):
                out[name]["rounds"].append(measure(name, servers[name], r))
                settle()
    finally:
        for server in servers.values():
            server.stop()
    return out


def scenario_accesslog(cfg) -> dict:
    """The access log's own cost: backend-api /health_check at 64 connections with ACCESS_LOG on
    (the default: one JSON line per request to its log file) and off, alternating rounds."""
    servers = {"on": rust("backend-api", "accesslog-on"),
               "off": rust("backend-api", "accesslog-off", ACCESS_LOG="off")}

    def measure(name, server, r):
        log_file = WORK / f"{server.name}.log"
        before = log_file.stat().st_size
        result = loaded(server, f"http://127.0.0.1:{server.port}/health_check", 64, cfg.duration)
        result["log_bytes_written"] = log_file.stat().st_size - before
        log(f"access log {name} round {r + 1}: {result['rps']:.0f} req/s, "
            f"{result['log_bytes_written'] / max(result['requests'], 1):.0f} log bytes/request")
        # The lines are counted, not kept: a 10 s round writes some 100 MB.
        os.truncate(log_file, 0)
        return result

    return alternating_rounds(servers, cfg, measure)


def scenario_tracing(cfg) -> dict:
    """What traces cost: backend-api /health_check at 64 connections, access log off, with tracing
    off and with a 1 % sampler exporting to a local OTLP sink (bench/instructions.py's), and, when
    BENCH_BEFORE_BIN names a backend-api built before traces, that build; alternating rounds."""
    sink, endpoint = start_sink()
    servers = {"off": rust("backend-api", "tracing-off", ACCESS_LOG="off"),
               "sampled_1pct": rust("backend-api", "tracing-1pct", ACCESS_LOG="off",
                                    OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
                                    OTEL_TRACES_SAMPLER="parentbased_traceidratio",
                                    OTEL_TRACES_SAMPLER_ARG="0.01")}
    before = os.environ.get("BENCH_BEFORE_BIN")
    if before:
        servers["before"] = Server("backend-api-before", [before], "/healthz", env={"ACCESS_LOG": "off"})

    def measure(name, server, r):
        result = loaded(server, f"http://127.0.0.1:{server.port}/health_check", 64, cfg.duration)
        log(f"tracing {name} round {r + 1}: {result['rps']:.0f} req/s")
        return result

    try:
        out = alternating_rounds(servers, cfg, measure)
    finally:
        sink.shutdown()
    out["before_binary"] = before
    return out


def scenario_api1(cfg) -> dict:
    """/api_1 at 1,000 connections with a liveness probe alongside."""
    conns, duration = 1000, cfg.api_duration
    probe_for = max(1.0, duration - 2.0)
    out = {"legacy": {"rounds": []}, "rust": {"rounds": []}}
    rust_server = rust("backend-api", "api1", SIMULATED_LATENCY_MS="500").start()
    try:
        settle(0.5)
        out["rust"]["idle_fresh_kib"] = rust_server.rss_kib()
        for r in range(cfg.api_rounds):
            for name in alternating(["legacy", "rust"], r):
                # The legacy server is started fresh per round: after a 1,000-connection load its
                # 4 workers have minutes of queued requests left (RESULTS.md).
                server = legacy("backend_api", "api1").start() if name == "legacy" else rust_server
                probe_path = "/health_check" if name == "legacy" else "/healthz"  # legacy has no /healthz
                holder = {}
                idle_probe = None
                if name == "rust":
                    # The same probe against the same server with no load: the machine's own share
                    # of the latency (scheduling on a shared 2-core box), for comparison.
                    idle_probe = probe_result(probe_start(f"http://127.0.0.1:{server.port}{probe_path}", 50,
                                                          cfg.idle_probe_s, 2.0), cfg.idle_probe_s)

                def launch(server=server, probe_path=probe_path):
                    holder["proc"] = probe_start(f"http://127.0.0.1:{server.port}{probe_path}", 50,
                                                 probe_for, 2.0)

                probe = threading.Timer(1.0, launch)  # once wrk has opened its connections
                probe.start()
                try:
                    result = loaded(server, f"http://127.0.0.1:{server.port}/api_1", conns, duration,
                                    timeout="30s")
                finally:
                    probe.join()
                result["probe"] = probe_result(holder["proc"], probe_for)
                if idle_probe is not None:
                    result["probe_idle"] = idle_probe
                log(f"api_1 c{conns} round {r + 1} {name}: {result['rps']:.1f} req/s, errors "
                    f"{result['errors']}, non-2xx {result['non_2xx']}, probe p99 {result['probe']['p99_ms']} ms "
                    f"({result['probe']['failures']} failed; idle server {(idle_probe or {}).get('p99_ms')} ms), "
                    f"peak RSS {result['rss_peak_kib'] // 1024} MiB")
                out[name]["rounds"].append(result)
                if name == "legacy":
                    server.stop()
                settle(1.5)  # the last in-flight requests (0.5 s) finish
        out["rust"]["idle_after_kib"] = rust_server.rss_kib()
    finally:
        rust_server.stop()
    return out


def count_lines(folder: Path, pattern: str) -> int:
    total = 0
    for path in folder.rglob(pattern):
        with open(path, "rb") as f:
            total += sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    return total


def metric(port: int, name: str) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/metrics")
    body = conn.getresponse().read().decode()
    conn.close()
    total = 0.0
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def verify_segments(log_dir: Path) -> str:
    """bench/data-api/verify.py (the data-api engineer's stand-alone benchmark): every line of
    every segment is a whole record and ids are unique. Prints records=N segments=M."""
    script = HERE / "data-api" / "verify.py"
    if not script.exists():
        return "not run (bench/data-api/verify.py missing)"
    done = subprocess.run([sys.executable, str(script), str(log_dir)], capture_output=True, text=True, timeout=300)
    return done.stdout.strip() if done.returncode == 0 else f"FAILED: {done.stderr.strip() or done.stdout.strip()}"


def empty_folder(folder: Path) -> int:
    """Deletes the files in folder; returns how many there were."""
    count = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            os.unlink(entry.path)
            count += 1
    return count


def scenario_data(cfg) -> dict:
    """data-api writes at 64 connections: durable POST /logs and GET / against legacy GET /."""
    rust_dir, legacy_dir = WORK / "data-rust", WORK / "data-legacy"
    for d in (rust_dir, legacy_dir):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    servers = {
        "legacy_get": legacy("data_api", "data", SIMULATED_DELAY_SCALE="0", LOG_DIR=str(legacy_dir)),
        "rust": rust("data-api", "data", SIMULATED_LATENCY_MS="0", LOG_DIR=str(rust_dir),
                     INSTANCE_ID="bench"),
    }
    loads = {"legacy_get": ("legacy_get", "/", "report.lua"),
             "rust_post": ("rust", "/logs", "post_logs.lua"),
             "rust_get": ("rust", "/", "report.lua")}
    out = {name: {"rounds": []} for name in loads}
    try:
        for name, server in servers.items():
            server.start()
            settle(0.5)
        out["legacy_get"]["idle_fresh_kib"] = servers["legacy_get"].rss_kib()
        out["rust_post"]["idle_fresh_kib"] = servers["rust"].rss_kib()
        for r in range(cfg.rounds):
            for name in alternating(list(loads), r):
                server_name, path, script = loads[name]
                server = servers[server_name]
                if name == "legacy_get":
                    # The legacy app makes a file per request; start each round with an empty
                    # folder, as the baseline did (a folder of 100,000 files slows it down).
                    out["legacy_files_written"] = out.get("legacy_files_written", 0) + empty_folder(legacy_dir)
                result = loaded(server, f"http://127.0.0.1:{server.port}{path}", 64, cfg.duration,
                                script=script)
                log(f"data c64 round {r + 1} {name}: {result['rps']:.0f} req/s, p99 {result['p99_ms']} ms, "
                    f"errors {result['errors']}, non-2xx {result['non_2xx']}")
                out[name]["rounds"].append(result)
                settle()
        port = servers["rust"].port
        written = metric(port, "data_api_records_written_total")
        syncs = metric(port, "data_api_sync_duration_seconds_count")
        out["rust_post"]["idle_after_kib"] = servers["rust"].rss_kib()
        # Every acknowledged request (wrk counts 2xx answers) must be on disk; the server may
        # have finished up to 64 more that were in flight when wrk stopped.
        acked = sum(x["requests"] - x["non_2xx"] for n in ("rust_post", "rust_get") for x in out[n]["rounds"])
        out["rust_durability"] = {
            "acknowledged_by_wrk": acked,
            "records_written_metric": written,
            "lines_in_segments": count_lines(rust_dir, "segment-*.jsonl"),
            "fdatasync_calls": syncs,
            "records_per_sync": round(written / syncs, 1) if syncs else None,
            "sync_seconds_sum": metric(port, "data_api_sync_duration_seconds_sum"),
        }
        out["rust_durability"]["segments_check"] = verify_segments(rust_dir)
        log(f"data durability: {out['rust_durability']}")
    finally:
        for server in servers.values():
            server.stop()
        out["legacy_files_written"] = out.get("legacy_files_written", 0) + empty_folder(legacy_dir)
        shutil.rmtree(legacy_dir, ignore_errors=True)
        shutil.rmtree(rust_dir, ignore_errors=True)
    return out


def listening_port(log_file: Path, proc, t0: float, name: str) -> int:
    """The port a server started on port 0 names in its "listening" line, polled every
    millisecond (the startup figures must not wait for a coarser poll)."""
    with open(log_file, "rb") as log_stream:
        pending = b""
        while True:
            pending += log_stream.read()
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                address = bound_address(raw.decode("utf-8", "replace"))
                if address:
                    return int(address.rsplit(":", 1)[1])
            if time.monotonic() - t0 > 30 or proc.poll() is not None:
                raise SystemExit(f"{name}: no listening line within 30 s; see {log_file}")
            time.sleep(0.001)


def startup_runs(name, argv, path, runs, env=None, cwd=None) -> dict:
    """Spawn to first 200 on path, polling every millisecond. Each run listens on port 0 and
    names its port in its log (a fresh file per run)."""
    times = []
    env = {**os.environ, "LISTEN_ADDR": "127.0.0.1:0", "LOG_FORMAT": "json", **(env or {})}
    log_file = WORK / f"startup-{name.split()[0]}.log"
    for _ in range(runs):
        t0 = time.monotonic()
        with open(log_file, "wb") as out:
            proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        try:
            port = listening_port(log_file, proc, t0, name)
            while http_status(port, path) != 200:
                if time.monotonic() - t0 > 30 or proc.poll() is not None:
                    raise SystemExit(f"{name}: no 200 on {path} within 30 s")
                time.sleep(0.001)
            times.append(round((time.monotonic() - t0) * 1000, 1))
        finally:
            pids = tree(proc.pid)
            proc.send_signal(signal.SIGINT if len(pids) > 1 else signal.SIGTERM)
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        time.sleep(0.3)
    log(f"startup {name}: median {statistics.median(times)} ms of {times}")
    return {"runs_ms": times, "median_ms": statistics.median(times), "path": path}


def scenario_startup(cfg) -> dict:
    runs = cfg.startup_runs
    data_dir = WORK / "data-startup"
    shutil.rmtree(data_dir, ignore_errors=True)
    key = secrets.token_hex(16)
    out = {
        # gunicorn started directly (not through run.sh), so bash and the venv check are not timed.
        "legacy": startup_runs("legacy backend_api -w 4",
                               [str(VENV / "bin" / "gunicorn"), "-w", str(LEGACY_WORKERS), "-b",
                                "127.0.0.1:0", "backend_api:app"], "/health_check", runs,
                               env={"PYTHONDONTWRITEBYTECODE": "1"}, cwd=BASELINE),
    }
    out["backend-api"] = startup_runs("backend-api", [str(TARGET / "backend-api")], "/health_check", runs)
    out["data-api"] = startup_runs("data-api", [str(TARGET / "data-api")], "/readyz", runs,
                                   env={"LOG_DIR": str(data_dir), "INSTANCE_ID": "bench"})
    out["log-provider"] = startup_runs("log-provider", [str(TARGET / "log-provider")], "/readyz",
                                       runs, env={"PROVIDER_KEY": key})
    shutil.rmtree(data_dir, ignore_errors=True)
    return out


def scenario_idle(cfg) -> dict:
    """Idle RSS of every Rust service (after one request) and of the two legacy apps."""
    key = secrets.token_hex(16)
    data_dir = WORK / "data-idle"
    shutil.rmtree(data_dir, ignore_errors=True)
    servers = {
        "backend-api": rust("backend-api", "idle"),
        "data-api": rust("data-api", "idle", LOG_DIR=str(data_dir), INSTANCE_ID="bench"),
        "log-provider": rust("log-provider", "idle", PROVIDER_KEY=key),
        "legacy backend_api": legacy("backend_api", "idle"),
        "legacy data_api": legacy("data_api", "idle", LOG_DIR=str(data_dir / "legacy")),
    }
    out = {}
    try:
        for name, server in servers.items():
            server.start()
            http_status(server.port, server.ready_path)
            http_status(server.port, "/metrics")
        settle(1.0)
        for name, server in servers.items():
            out[name] = {"rss_kib": server.rss_kib(), "processes": len(tree(server.pid))}
            log(f"idle {name}: {out[name]['rss_kib'] / 1024:.1f} MiB in {out[name]['processes']} process(es)")
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    return out


def curl_download(url: str, header_file: Path) -> dict:
    argv = ["curl", "-sS", "-o", "/dev/null", "-H", f"@{header_file}", "-m", "600", "-w",
            "%{http_code} %{size_download} %{time_total} %{time_starttransfer}", url]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=660).stdout.split()
    code, size, total, first = int(out[0]), int(out[1]), float(out[2]), float(out[3])
    return {"status": code, "bytes": size, "seconds": total, "first_byte_s": first,
            "mib_per_s": round(size / (1 << 20) / total, 1) if total else None}


def scenario_download(cfg) -> dict:
    """/download_external_logs streaming DOWNLOAD_BYTES from log-provider through backend-api."""
    key = secrets.token_hex(16)
    header = WORK / "provider-auth-header"
    header.write_text(f"Authorization: Bearer {key}\n")
    header.chmod(0o600)
    provider = rust("log-provider", "download", PROVIDER_KEY=key, PROVIDER_MAX_LIMIT="1000000000")
    backend = None
    out = {"target_bytes": cfg.download_bytes, "rounds": []}
    try:
        p_port = provider.start().port
        # backend-api is told the provider's raised bound (a 1 GiB download is over 10M lines).
        backend = rust("backend-api", "download", EXTERNAL_LOGS_URL=f"http://127.0.0.1:{p_port}/v1/logs",
                       EXTERNAL_INTEGRATION_KEY=key, EXTERNAL_LOGS_MAX_LIMIT="1000000000")
        b_port = backend.start().port
        sample = curl_download(f"http://127.0.0.1:{p_port}/v1/logs?limit=10000", header)
        limit = math.ceil(cfg.download_bytes / (sample["bytes"] / 10000))
        out["limit_lines"] = limit
        settle(0.5)
        out["backend_idle_kib"] = backend.rss_kib()
        for r in range(cfg.download_rounds):
            for path in alternating(["direct", "backend"], r):
                if path == "direct":
                    url = f"http://127.0.0.1:{p_port}/v1/logs?limit={limit}"
                else:
                    url = f"http://127.0.0.1:{b_port}/download_external_logs?limit={limit}"
                before = backend.rss_kib()
                cpu0 = cpu_seconds(backend.pid)
                with Sampler(backend.pid) as backend_rss, Sampler(provider.pid) as provider_rss:
                    result = curl_download(url, header)
                result.update(path=path, backend_rss_before_kib=before, backend_rss_peak_kib=backend_rss.peak,
                              backend_rss_samples=len(backend_rss.samples),
                              provider_rss_peak_kib=provider_rss.peak,
                              backend_cpu_s=round(cpu_seconds(backend.pid) - cpu0, 2))
                log(f"download round {r + 1} {path}: {result['bytes'] / GIB:.2f} GiB in {result['seconds']:.1f} s "
                    f"({result['mib_per_s']} MiB/s), status {result['status']}, backend RSS "
                    f"{before / 1024:.1f} -> peak {backend_rss.peak / 1024:.1f} MiB")
                out["rounds"].append(result)
                settle()
        out["backend_after_kib"] = backend.rss_kib()
    finally:
        if backend is not None:
            backend.stop()
        provider.stop()
        header.unlink(missing_ok=True)
    return out


def scenario_healthcheck(cfg) -> dict:
    """health-check --once over 100 targets, half of them hanging."""
    ok = rust("backend-api", "healthcheck")
    timeout_s = 2.0
    history = WORK / "health-history.log"
    # The hanging listener never answers, so it is ready once it names its port.
    hang = ServiceProcess([sys.executable, HERE / "tools" / "hang.py", "0"], ready_path=None)
    try:
        hang_port = hang.start().port
        ok_port = ok.start().port
        targets = [f"ok-{i:02}=http://127.0.0.1:{ok_port}/healthz" for i in range(50)]
        targets += [f"hang-{i:02}=http://127.0.0.1:{hang_port}/hang/{i}" for i in range(50)]
        out = {"targets": len(targets), "hanging": 50, "timeout_s": timeout_s, "runs": []}
        argv = [str(TARGET / "health-check"), "--once", "--timeout", f"{timeout_s:g}s", "--output", str(history)]
        for r in range(cfg.healthcheck_runs):
            history.unlink(missing_ok=True)
            env = {**os.environ, "HEALTHCHECK_TARGETS": ",".join(targets), "LOG_FORMAT": "json"}
            t0 = time.monotonic()
            proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            with Sampler(proc.pid) as sampler:
                code = proc.wait(timeout=120)
            wall = time.monotonic() - t0
            records = [json.loads(line) for line in history.read_text().splitlines() if line.strip()]
            run = {"wall_s": round(wall, 3), "exit_code": code, "records": len(records),
                   "healthy": sum(1 for x in records if x.get("ok")), "rss_peak_kib": sampler.peak}
            log(f"health-check --once run {r + 1}: {run}")
            out["runs"].append(run)
            settle(0.5)
        out["command"] = ("HEALTHCHECK_TARGETS=<100 name=url pairs> health-check --once --timeout "
                          f"{timeout_s:g}s --output FILE")
    finally:
        ok.stop()
        hang.stop()
    return out


SCENARIOS = {
    "idle": scenario_idle,
    "startup": scenario_startup,
    "health": scenario_health,
    "accesslog": scenario_accesslog,
    "tracing": scenario_tracing,
    "api1": scenario_api1,
    "data": scenario_data,
    "download": scenario_download,
    "healthcheck": scenario_healthcheck,
}


def command_output(argv) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unavailable"


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kib = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal:")))
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kib / (1 << 20), 1),
        "kernel": platform.release(), "os": command_output(["sh", "-c", ". /etc/os-release; echo $PRETTY_NAME"]),
        "wrk": command_output(["sh", "-c", "wrk -v 2>&1 | head -1"]).split(" [")[0],
        "rustc": command_output(["rustc", "--version"]),
        "python": command_output([str(VENV / "bin" / "python"), "--version"]),
        "baseline_requirements": (BASELINE / "requirements.txt").read_text().split(),
        "git_revision": command_output(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]),
        "busiest_processes_at_start": command_output(
            ["sh", "-c", "ps -eo pcpu,comm --sort=-pcpu | head -6 | tail -5"]).splitlines(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--raw", required=True, type=Path)
    parser.add_argument("--quick", action="store_true", help="one short round per scenario (tooling check)")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated: " + ",".join(SCENARIOS))
    parser.add_argument("--command", default="bench/run.sh", help="the command line, for the results")
    args = parser.parse_args()
    cfg = argparse.Namespace(
        rounds=1 if args.quick else 5,
        api_rounds=1 if args.quick else 3,  # sleep-bound, so steadier than the CPU-bound loads
        duration=3 if args.quick else 10,
        # wrk counts completed requests only: with 500 ms requests a run loses up to one per
        # connection at its end, so the longer run is the truer figure (3 % at 15 s, 2.5 % at 20 s).
        api_duration=5 if args.quick else 20,
        startup_runs=3 if args.quick else 10,
        idle_probe_s=2 if args.quick else 6,
        download_bytes=(128 << 20) if args.quick else GIB,
        download_rounds=1 if args.quick else 3,
        healthcheck_runs=1 if args.quick else 3,
    )
    WORK.mkdir(parents=True, exist_ok=True)
    raw = {
        "mode": "quick" if args.quick else "full",
        "command": args.command,
        "started_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "loadavg_at_start": loadavg(),
        "machine": machine(),
        "config": vars(cfg),
        "legacy_workers": LEGACY_WORKERS,
        "scenarios": {},
    }
    started = time.monotonic()
    for name in args.only.split(","):
        log(f"scenario {name} (load average {loadavg()})")
        raw["scenarios"][name] = {"loadavg_at_start": loadavg(), **SCENARIOS[name](cfg)}
    raw["loadavg_at_end"] = loadavg()
    raw["duration_s"] = round(time.monotonic() - started)
    args.raw.parent.mkdir(parents=True, exist_ok=True)
    args.raw.write_text(json.dumps(raw, indent=1) + "\n")
    log(f"raw figures in {args.raw} ({raw['duration_s']} s)")


if __name__ == "__main__":
    main()

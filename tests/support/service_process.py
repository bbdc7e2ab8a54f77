"""One way for the Python checks to start a service binary: on 127.0.0.1:0, its bound address
read from its "listening" JSON log line (as test-support's ServiceProcess does in Rust), so no
script picks a port and races another process for it.

    from service_process import ServiceProcess
    with ServiceProcess([bin_dir / "data-api"], env={"LOG_DIR": ...}, log_path=work / "d.log") as svc:
        urllib.request.urlopen(svc.url("/readyz"))

A benchmark whose server logs a line per request passes `capture=False`: the output then goes
straight to `log_path` (no Python thread in its way) and the address is read back from that file.
The "listening" line may also be gunicorn's (`Listening at: http://HOST:PORT`) or any line
ending `listening on HOST:PORT`, for the legacy baseline and the bench's bare hyper server.

Standard library only. Every wait is bounded and fails naming what did not happen.
"""

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

READY_BOUND = 30.0

# Servers that do not log JSON: gunicorn ("Listening at: http://127.0.0.1:41234 (77)") and the
# bench's hello-hyper ("hello-hyper listening on 127.0.0.1:41234").
_PLAIN_LISTENING = re.compile(r"(?:Listening at: https?://|listening on )(\S+:\d+)")


def bound_address(line):
    """The HOST:PORT a server's "listening" log line names, or None for any other line."""
    try:
        value = json.loads(line)
    except ValueError:
        match = _PLAIN_LISTENING.search(line)
        return match.group(1) if match else None
    if isinstance(value, dict) and value.get("message") == "listening":
        return value.get("local_addr")
    return None


def eventually(what, check, bound=30.0, every=0.05):
    """Polls check() until it returns something truthy (and returns that), at most `bound` s.
    A connection error or an unparsable answer counts as "not yet"; the failure names the last
    value or error seen."""
    deadline = time.monotonic() + bound
    last = None
    while True:
        try:
            value = check()
        except (OSError, ValueError) as error:
            value, last = None, error
        else:
            last = value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {bound} s: {what} (last: {last!r})")
        time.sleep(every)


def free_port():
    """A free loopback port: for servers that cannot report the port they bound (Prometheus,
    Alertmanager), or as an address where nothing listens. The project's own binaries are
    started on port 0 instead."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServiceProcess:
    """A service binary as a child process; its combined stdout/stderr go to `log_path` (and are
    kept in `lines`). `popen` passes further Popen arguments (user, group, preexec_fn...).
    `capture=False` (needs `log_path`): the output goes to the file only, and `lines` stays empty;
    `output()` then reads the file. `port`: 0 (the default) on the first start; a restart that must
    keep its address (a Prometheus scrape target) passes the port the first start bound."""

    def __init__(self, argv, env=None, log_path=None, ready_path="/readyz", inherit_env=True,
                 capture=True, start_bound=READY_BOUND, port=0, **popen):
        self.argv = [str(a) for a in argv]
        base = dict(os.environ) if inherit_env else {}
        self.env = {**base, **(env or {}), "LISTEN_ADDR": f"127.0.0.1:{port}", "LOG_FORMAT": "json"}
        self.log_path = Path(log_path) if log_path else None
        self.ready_path = ready_path
        self.capture = capture
        self.start_bound = start_bound
        if not capture and self.log_path is None:
            raise ValueError("ServiceProcess(capture=False) needs a log_path to read its address from")
        self.popen = popen
        self.proc = None
        self.addr = None
        self.lines = []
        self._listening = threading.Event()
        self._reader = None
        self._signalled = False

    # ------------------------------------------------------------------ lifecycle

    def start(self):
        if self.capture:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         **self.popen)
            self._reader = threading.Thread(target=self._read, daemon=True)
        else:
            with open(self.log_path, "ab") as log:
                # Only this run's lines: the file may hold an earlier run's.
                self._log_offset = log.tell()
                self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log,
                                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             **self.popen)
            self._reader = threading.Thread(target=self._follow_file, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + self.start_bound
        while not self._listening.wait(0.05):
            if self.proc.poll() is not None:
                self._reader.join(5)
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before it "
                                   f"listened:\n{self.output()}")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{self.name} logged no 'listening' line within "
                                   f"{self.start_bound} s")
        if self.ready_path:
            self.wait_status(self.ready_path, 200, self.start_bound)
        return self

    def _found(self, line):
        if self.addr is None:
            self.addr = bound_address(line)
            if self.addr is not None:
                self._listening.set()

    def _follow_file(self):
        """capture=False: reads the log file's new lines until the address is in it."""
        with open(self.log_path, "rb") as log:
            log.seek(self._log_offset)
            pending = b""
            while self.addr is None and self.proc.poll() is None:
                chunk = log.read()
                if not chunk:
                    time.sleep(0.02)
                    continue
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for raw in complete:
                    self._found(raw.decode("utf-8", "replace"))

    def _read(self):
        log = open(self.log_path, "ab") if self.log_path else None
        try:
            for raw in self.proc.stdout:
                if log:
                    log.write(raw)
                    log.flush()
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.lines.append(line)
                self._found(line)
        finally:
            if log:
                log.close()

    def terminate(self):
        """Sends SIGTERM without waiting, so several services drain at once; stop() then waits."""
        if self.proc is not None and self.proc.poll() is None and not self._signalled:
            self.proc.send_signal(signal.SIGTERM)
            self._signalled = True

    def stop(self, sig=signal.SIGTERM, bound=30.0):
        """Signals the process (unless terminate() did) and waits (bounded) for it to exit;
        returns its exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        if not self._signalled:
            self.proc.send_signal(sig)
            self._signalled = True
        try:
            return self.proc.wait(timeout=bound)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise TimeoutError(f"{self.name} did not exit within {bound} s of signal {sig}")
        finally:
            if self._reader:
                self._reader.join(5)

    def kill(self):
        """SIGKILL, then reap."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self._reader:
            self._reader.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        try:
            self.stop()
        except TimeoutError:
            pass

    # ------------------------------------------------------------------ access

    @property
    def name(self):
        return Path(self.argv[0]).name

    @property
    def pid(self):
        return self.proc.pid

    @property
    def port(self):
        return int(self.addr.rsplit(":", 1)[1])

    def url(self, path=""):
        return f"http://{self.addr}{path}"

    def output(self):
        if not self.capture:
            return self.log_path.read_text(errors="replace")
        return "\n".join(self.lines)

    def status_of(self, path, timeout=2.0):
        """The HTTP status `path` answers now, or None when nothing answers."""
        try:
            with urllib.request.urlopen(self.url(path), timeout=timeout) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return None

    def wait_status(self, path, status, bound=READY_BOUND):
        def answered():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.output()}")
            return self.status_of(path) == status
        eventually(f"{self.name} {path} answers {status}", answered, bound)


def port_in_log(log_path, bound=READY_BOUND):
    """Waits (bounded) for a "listening" line in a log file some other process writes; returns
    its port. For shell scripts: `python3 tests/support/service_process.py port-in-log FILE`."""
    def found():
        with open(log_path, "rb") as log:
            for raw in log:
                address = bound_address(raw.decode("utf-8", "replace").rstrip("\n"))
                if address:
                    return int(address.rsplit(":", 1)[1])
        return None
    return eventually(f"a 'listening' line in {log_path}", found, bound)


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 3 or sys.argv[1] != "port-in-log":
        sys.exit("usage: service_process.py port-in-log LOG_FILE")
    print(port_in_log(sys.argv[2]))

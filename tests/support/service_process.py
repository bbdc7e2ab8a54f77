"""One way for the Python checks to start a service binary: on 127.0.0.1:0, its bound address
read from its "listening" JSON log line (as test-support's ServiceProcess does in Rust), so no
script picks a port and races another process for it.

    from service_process import ServiceProcess
    with ServiceProcess([bin_dir / "data-api"], env={"LOG_DIR": ...}, log_path=work / "d.log") as svc:
        urllib.request.urlopen(svc.url("/readyz"))

Standard library only. Every wait is bounded and fails naming what did not happen.
"""

import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

READY_BOUND = 30.0


def eventually(what, check, bound=30.0, every=0.05):
    """Polls check() until it returns something truthy (and returns that), at most `bound` s."""
    deadline = time.monotonic() + bound
    while True:
        try:
            value = check()
        except OSError:
            value = None
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {bound} s: {what}")
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
    kept in `lines`). `popen` passes further Popen arguments (user, group, preexec_fn...)."""

    def __init__(self, argv, env=None, log_path=None, ready_path="/readyz", inherit_env=True,
                 **popen):
        self.argv = [str(a) for a in argv]
        base = dict(os.environ) if inherit_env else {}
        self.env = {**base, **(env or {}), "LISTEN_ADDR": "127.0.0.1:0", "LOG_FORMAT": "json"}
        self.log_path = Path(log_path) if log_path else None
        self.ready_path = ready_path
        self.popen = popen
        self.proc = None
        self.addr = None
        self.lines = []
        self._listening = threading.Event()
        self._reader = None
        self._signalled = False

    # ------------------------------------------------------------------ lifecycle

    def start(self):
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     **self.popen)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + READY_BOUND
        while not self._listening.wait(0.05):
            if self.proc.poll() is not None:
                self._reader.join(5)
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before it "
                                   f"listened:\n{self.output()}")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{self.name} logged no 'listening' line within {READY_BOUND} s")
        if self.ready_path:
            self.wait_status(self.ready_path, 200)
        return self

    def _read(self):
        log = open(self.log_path, "ab") if self.log_path else None
        try:
            for raw in self.proc.stdout:
                if log:
                    log.write(raw)
                    log.flush()
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.lines.append(line)
                if self.addr is None:
                    try:
                        value = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(value, dict) and value.get("message") == "listening":
                        self.addr = value["local_addr"]
                        self._listening.set()
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

#!/usr/bin/env python3
"""Key rotation on the real binaries, with the key files swapped the way the kubelet updates a
Secret volume (a new timestamped folder, a `..data_tmp` link renamed over `..data`).

log-provider reads PROVIDER_KEY_FILE, backend-api EXTERNAL_INTEGRATION_KEY_FILE; both run as uid
65532 (when this runs as root) with the files root:65532 0440, as the charts mount them. Under a
steady download and /api_1 load (bounded in count and time) the three-step runbook runs: the
provider accepts old and new, backend-api switches to new, the provider drops old. Every answer
must be 200; afterwards the provider refuses the old key (401) and its only 401s are this
script's own probes, so backend-api never sent the old key again.

Then failed reloads of backend-api's file (key file missing from the new folder, empty, not
readable) keep downloads at 200 with the current key, leave /readyz at 200, are counted in
secret_reloads_total{outcome="failed"} and logged; a good file afterwards is taken.

Last, every log, response and metrics page is searched for every form of the three keys.
Standard library only; exit 0 when all holds.
"""

import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from secret_hygiene import Stack, bin_dir_and_work, find_secrets

OLD = "rotation-old-" + secrets.token_hex(16)
NEW = "rotation-new-" + secrets.token_hex(16)
NEWER = "rotation-newer-" + secrets.token_hex(16)
SERVICE_UID = 65532
# Bounds: every wait below, and the load.
WAIT_S = 30
LOAD_MAX_REQUESTS = 20000
# Requests that must complete between two steps, so every phase is really under load.
PER_PHASE = 100


class SecretVolume:
    """A folder laid out like a Secret volume: `<file> -> ..data/<file>`, `..data -> ..<stamp>`."""

    def __init__(self, root, file_name):
        self.root, self.file_name, self.generation = Path(root), file_name, 0
        self.root.mkdir(parents=True)
        os.chmod(self.root, 0o755)
        self.path = self.root / file_name

    def swap(self, content, mode=0o440):
        """A new timestamped folder with `content` (None: the file left out) swapped in."""
        self.generation += 1
        stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.") + str(self.generation)
        folder = self.root / stamp
        folder.mkdir()
        os.chmod(folder, 0o755)
        if content is not None:
            target = folder / self.file_name
            target.write_text(content)
            if os.geteuid() == 0:
                os.chown(target, 0, SERVICE_UID)
            os.chmod(target, mode)
        tmp = self.root / "..data_tmp"
        tmp.symlink_to(stamp)
        os.replace(tmp, self.root / "..data")
        if not self.path.is_symlink():
            self.path.symlink_to(Path("..data") / self.file_name)


class Load:
    """Downloads and /api_1 from a few threads until stopped (or the bounds are reached)."""

    def __init__(self, stack, backend, threads=4):
        self.stack, self.backend = stack, backend
        self.statuses, self.lock = {}, threading.Lock()
        self.done, self.stop = 0, threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(threads)]
        self.deadline = time.monotonic() + 300

    def run(self, i):
        path = "/download_external_logs?limit=5" if i % 2 == 0 else "/api_1"
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            with self.lock:
                if self.done >= LOAD_MAX_REQUESTS:
                    return
            status, _ = self.stack.request(self.backend, "GET", path)
            with self.lock:
                self.done += 1
                self.statuses.setdefault((path.split("?")[0], status), 0)
                self.statuses[(path.split("?")[0], status)] += 1

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *_):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=WAIT_S)

    def settle(self):
        """Waits until PER_PHASE more requests completed."""
        with self.lock:
            target = self.done + PER_PHASE
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            with self.lock:
                if self.done >= target:
                    return
            time.sleep(0.02)
        raise RuntimeError("the load stalled")


def metric(stack, port, series):
    _, page = stack.request(port, "GET", "/metrics")
    for line in page.decode().splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


def wait_metric(stack, port, series, at_least):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if metric(stack, port, series) >= at_least:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{series} never reached {at_least} on :{port}")


def reloads(secret, outcome):
    return f'secret_reloads_total{{secret="{secret}",outcome="{outcome}"}}'


def main():
    args, work = bin_dir_and_work(__doc__)
    logs = work / "logs"
    logs.mkdir(parents=True)
    run_as = SERVICE_UID if os.geteuid() == 0 else None
    # Outside --work (which may be private to this user): the services' uid must reach them.
    volumes = Path(tempfile.mkdtemp(prefix="abn-rotation-"))
    os.chmod(volumes, 0o755)
    try:
        return rotate(args.bin_dir, logs, volumes, run_as)
    finally:
        shutil.rmtree(volumes)


def rotate(bin_dir, logs, volumes, run_as):
    provider_volume = SecretVolume(volumes / "provider", "keys")
    backend_volume = SecretVolume(volumes / "backend", "key")
    provider_volume.swap(OLD + "\n")
    backend_volume.swap(OLD + "\n")
    failures = []
    stack = Stack(bin_dir, logs)
    try:
        provider = stack.start("log-provider", "log-provider", run_as=run_as,
                               PROVIDER_KEY_FILE=str(provider_volume.path))
        backend = stack.start("backend-api", "backend-api", run_as=run_as,
                              SIMULATED_LATENCY_MS="0",
                              EXTERNAL_LOGS_URL=f"http://127.0.0.1:{provider}/v1/logs",
                              EXTERNAL_INTEGRATION_KEY_FILE=str(backend_volume.path))
        with Load(stack, backend) as load:
            load.settle()
            provider_volume.swap(f"{OLD}\n{NEW}\n")
            wait_metric(stack, provider, reloads("provider_keys", "ok"), 1)
            load.settle()
            backend_volume.swap(NEW + "\n")
            wait_metric(stack, backend, reloads("external_integration_key", "ok"), 1)
            load.settle()
            provider_volume.swap(NEW + "\n")
            wait_metric(stack, provider, reloads("provider_keys", "ok"), 2)
            load.settle()
        bad = {k: v for k, v in load.statuses.items() if k[1] != 200}
        print(f"rotation under load: {load.done} requests, {load.statuses}")
        if bad:
            failures.append(f"non-200 answers during the rotation: {bad}")
        status, _ = stack.request(provider, "GET", "/v1/logs",
                                  headers={"Authorization": f"Bearer {OLD}"})
        if status != 401:
            failures.append(f"the provider answered {status} to the old key, expected 401")
        refused = metric(stack, provider,
                         'http_requests_total{route="/v1/logs",method="GET",status="401"}')
        if refused != 1:
            failures.append(f"the provider refused {refused} requests, expected only the probe: "
                            "backend-api sent the old key after the switch")

        failures += failed_reloads(stack, provider, backend, provider_volume, backend_volume,
                                   run_as)
    finally:
        stack.stop()
    haystacks = list(stack.responses)
    for path in sorted(logs.rglob("*")):
        if path.is_file():
            haystacks.append((path.name, path.read_bytes()))
    leaks = find_secrets(haystacks, (("the old key", OLD), ("the new key", NEW),
                                     ("the newer key", NEWER)))
    # Canaries: the search must see the reload lines and the metric it checked.
    for needle in (b"secret reloaded", b"secret reload failed", b"secret_reloads_total"):
        if not any(needle in data for _, data in haystacks):
            failures.append(f"canary {needle!r} not found: the search is blind")
    print(f"searched {len(haystacks)} responses and logs for 3 keys in 4 forms each")
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    for leak in leaks:
        print(f"LEAK: {leak}", file=sys.stderr)
    if not (failures or leaks):
        print("rotation: 0 non-200, old key refused and never sent again; failed reloads kept "
              "the key; no key in any log, response or metrics page")
    return 1 if (failures or leaks) else 0


def failed_reloads(stack, provider, backend, provider_volume, backend_volume, run_as):
    """backend-api's file gone, empty, unreadable: the current key (NEW) stays in use."""
    failures = []
    series = reloads("external_integration_key", "failed")
    cases = [("missing", None, 0o440), ("empty", "\n", 0o440)]
    if run_as is not None or os.geteuid() != 0:
        # Root reads any file: unreadable only means something to the service's own uid.
        cases.append(("unreadable", NEW + "\n", 0o000))
    for count, (label, content, mode) in enumerate(cases, start=1):
        backend_volume.swap(content, mode)
        wait_metric(stack, backend, series, count)
        for path in ("/download_external_logs?limit=3", "/readyz"):
            status, _ = stack.request(backend, "GET", path)
            if status != 200:
                failures.append(f"{label} key file: {path} answered {status}, expected 200")
    log = (stack.work / "backend-api.log").read_bytes()
    if log.count(b"secret reload failed") != len(cases):
        failures.append(f"expected {len(cases)} 'secret reload failed' lines in backend-api's log")
    # A good file afterwards is taken: the provider then accepts only the newer key.
    provider_volume.swap(f"{NEW}\n{NEWER}\n")
    wait_metric(stack, provider, reloads("provider_keys", "ok"), 3)
    backend_volume.swap(NEWER + "\n")
    wait_metric(stack, backend, reloads("external_integration_key", "ok"), 2)
    provider_volume.swap(NEWER + "\n")
    wait_metric(stack, provider, reloads("provider_keys", "ok"), 4)
    status, _ = stack.request(backend, "GET", "/download_external_logs?limit=3")
    if status != 200:
        failures.append(f"after a good file: download answered {status}, expected 200")
    print(f"failed reloads ({', '.join(c[0] for c in cases)}): the key kept, then a good file taken")
    return failures


if __name__ == "__main__":
    sys.exit(main())

"""Background load through every route of every service, bounded in count and time, one thread per
service (a slowed service must not slow the others' traffic)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error

from stack import Stack, http

MAX_SECONDS = 600        # the whole live suite takes a few minutes; the load never outlives this
MAX_ROUNDS = 20_000      # per service


def rounds(stack: Stack) -> dict[str, list[tuple[str, str, bytes | None, dict[str, str]]]]:
    """(method, path, body, headers) per service: every route, good and bad requests alike."""
    common = [("GET", path, None, {}) for path in ("/healthz", "/readyz", "/version", "/openapi.json")]
    key = {"Authorization": f"Bearer {stack.provider_key}"}
    record = json.dumps({"message": "live monitoring test", "level": "info"}).encode()
    return {
        "backend-api": common + [
            ("GET", "/api_1", None, {}),
            ("GET", "/health_check", None, {}),
            ("GET", "/download_external_logs?since=2026-01-01T00:00:00Z&limit=3", None, {}),
            ("GET", "/download_external_logs?limit=0", None, {}),  # 400 invalid_limit
            ("GET", "/nowhere", None, {}),                         # 404, the unmatched route
        ],
        "data-api": common + [
            ("GET", "/", None, {}),
            ("POST", "/logs", record, {"Content-Type": "application/json"}),
            ("GET", "/logs?limit=5", None, {}),
        ],
        "log-provider": common + [
            ("GET", "/v1/logs?since=2026-01-01T00:00:00Z&limit=3", None, key),
            ("GET", "/v1/logs?limit=3", None, {}),                 # 401
        ],
    }


class Load:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(name, requests), daemon=True)
                        for name, requests in rounds(stack).items()]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _run(self, name: str, requests: list[tuple[str, str, bytes | None, dict[str, str]]]) -> None:
        deadline = time.monotonic() + MAX_SECONDS
        for _ in range(MAX_ROUNDS):
            if self.stop_event.is_set() or time.monotonic() > deadline:
                return
            service = self.stack.services[name]
            for method, path, body, headers in requests:
                try:
                    http(service.base + path, method=method, body=body, headers=headers, timeout=20)
                except (OSError, urllib.error.URLError):
                    pass  # a service stopped by a fault test: keep trying, that is the point
            self.stop_event.wait(0.05)

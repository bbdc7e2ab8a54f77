"""A paced latency probe, run next to a load: one GET every 1/RATE s on a new connection (as a
Kubernetes probe does), each bounded by TIMEOUT. Prints one JSON object: answered latencies
(ms), failures, and the status codes seen.

Usage: probe.py URL RATE_PER_S DURATION_S TIMEOUT_S
"""
import http.client
import json
import sys
import time
import urllib.parse

url, rate, duration, timeout = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
parts = urllib.parse.urlsplit(url)
path = parts.path or "/"
latencies_ms, failures, statuses = [], 0, {}
interval = 1.0 / rate
start = time.monotonic()
next_at = start
while time.monotonic() - start < duration:
    t0 = time.perf_counter()
    try:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        conn.close()
        elapsed = (time.perf_counter() - t0) * 1000
        statuses[str(response.status)] = statuses.get(str(response.status), 0) + 1
        if response.status == 200:
            latencies_ms.append(round(elapsed, 3))
        else:
            failures += 1
    except OSError:
        failures += 1
    next_at += interval
    pause = next_at - time.monotonic()
    if pause > 0:
        time.sleep(pause)
    else:
        next_at = time.monotonic()  # fell behind (a slow answer): do not burst to catch up
print(json.dumps({"url": url, "rate_per_s": rate, "duration_s": duration, "timeout_s": timeout,
                  "answered": len(latencies_ms), "failures": failures, "statuses": statuses,
                  "latencies_ms": latencies_ms}))

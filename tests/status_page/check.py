#!/usr/bin/env python3
"""health-check serve in a real headless Chromium and scraped by a real Prometheus.

Starts three live HTTP targets (threads of this script), `health-check serve` probing them, and
stops one target once every target has been probed. Then:

  - Chromium (--headless --dump-dom) renders `/`: every target has its section, the stopped one
    reads "Down" with its reason in an open incident, and each section's uptime figures (24 h,
    7 d, whole window) are those of `/api/v1/status` for the same report (same generated_at);
    a screenshot of the page is kept under the output directory;
  - Prometheus scrapes `/metrics` and its metadata API gives each healthcheck_* family its
    declared type, with a series per target (the stopped one at 0).

Every wait is bounded. Standard library only. Exit 0 when every check holds.
"""

import argparse
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from service_process import ServiceProcess, eventually, free_port  # noqa: E402

TARGETS = ("backend", "data", "provider")
STOPPED = "provider"
TYPES = {
    "healthcheck_target_up": "gauge",
    "healthcheck_probe_duration_seconds": "histogram",
    "healthcheck_last_success_timestamp_seconds": "gauge",
    "healthcheck_probes": "counter",
}


def log(message):
    print(f"status-page: {message}", flush=True)


class Healthy(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def start_target():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Healthy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def show_percent(p):
    """The page's rounding: two decimals, never 100.00% below 100."""
    if p is None:
        return "no probes"
    shown = f"{p:.2f}"
    return "99.99%" if shown == "100.00" and p < 100 else f"{shown}%"


class Sections(HTMLParser):
    """Per <section class="target">: its h2, state, uptimes and open incident text."""

    def __init__(self):
        super().__init__()
        self.sections, self.current, self.field, self.generated = {}, None, None, None
        self.text = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "section" and "target" in classes:
            self.current = {"text": []}
        if self.current is None:
            return
        if tag == "h2":
            self.field = "name"
        elif "state" in classes:
            self.field = "state"
        elif "uptime-24h" in classes:
            self.field = "uptime_24h"
        elif "uptime-7d" in classes:
            self.field = "uptime_7d"
        elif tag == "strong" and self.field is None:
            self.field = "uptime"
        if self.field:
            self.text = []

    def handle_endtag(self, tag):
        if self.current is None:
            return
        if self.field and tag in ("h2", "p", "dd", "strong"):
            self.current.setdefault(self.field, "".join(self.text).strip())
            self.field = None
        if tag == "section":
            self.sections[self.current["name"]] = self.current
            self.current = None

    def handle_data(self, data):
        if self.current is not None:
            self.current["text"].append(data)
            if self.field:
                self.text.append(data)
        elif data.startswith("Report at "):
            self.generated = data.split(" ")[2]


def dump_dom(chromium, url):
    out = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", url],
        capture_output=True, text=True, timeout=60, check=True,
    )
    return out.stdout


def check_page(chromium, base, out_dir):
    for attempt in range(5):
        before = json.loads(get(f"{base}/api/v1/status")[1])
        dom = dump_dom(chromium, f"{base}/")
        after = json.loads(get(f"{base}/api/v1/status")[1])
        page = Sections()
        page.feed(dom)
        status = next((s for s in (before, after) if s["generated_at"] == page.generated), None)
        if status:
            break
        log(f"the page was rebuilt between the reads (attempt {attempt + 1}); reading again")
    else:
        raise AssertionError("no /api/v1/status read matched the rendered page")
    assert set(page.sections) == set(TARGETS), f"sections {sorted(page.sections)}"
    for t in status["targets"]:
        section = page.sections[t["target"]]
        for field, key in (("uptime", "uptime_percent"), ("uptime_24h", "uptime_24h_percent"),
                           ("uptime_7d", "uptime_7d_percent")):
            shown = section.get(field)
            assert shown == show_percent(t[key]), f"{t['target']} {field}: page {shown!r}, api {t[key]}"
        want = "Up" if t["up"] else "Down"
        assert section["state"].endswith(want), f"{t['target']} state {section['state']!r}"
    stopped = page.sections[STOPPED]
    text = " ".join("".join(stopped["text"]).split())
    reason = status["targets"][[t["target"] for t in status["targets"]].index(STOPPED)]["incidents"][0]
    assert reason["ended"] is None, reason
    assert "open since" in text and reason["reason"] in text, text
    log(f"Chromium DOM: {len(page.sections)} targets, {STOPPED} down ({reason['reason']}), "
        f"uptimes match /api/v1/status at {status['generated_at']}")
    shot = out_dir / "status-page.png"
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--window-size=1000,1400", f"--screenshot={shot}", f"{base}/"],
        capture_output=True, timeout=60, check=True,
    )
    assert shot.stat().st_size > 10_000, "the screenshot is suspiciously small"
    log(f"screenshot: {shot}")


def check_prometheus(prometheus, hc_addr, work):
    # Prometheus cannot report the port it bound: the one port picked here (service_process.py).
    port = free_port()
    config = work / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s}\n"
        f"scrape_configs:\n  - job_name: health-check\n    static_configs: [{{targets: ['{hc_addr}']}}]\n"
    )
    proc = subprocess.Popen(
        [prometheus, f"--config.file={config}", f"--storage.tsdb.path={work / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=open(work / "prometheus.log", "w"),
    )
    try:
        api = f"http://127.0.0.1:{port}/api/v1"

        def query(q):
            return json.loads(get(f"{api}/query?" + urllib.parse.urlencode({"query": q}))[1])["data"]["result"]

        up = eventually("Prometheus has healthcheck_target_up for every target",
                   lambda: (r := query("healthcheck_target_up")) and len(r) == len(TARGETS) and r)
        values = {r["metric"]["target"]: r["value"][1] for r in up}
        assert values[STOPPED] == "0" and all(values[t] == "1" for t in TARGETS if t != STOPPED), values
        for family, kind in TYPES.items():
            meta = eventually(f"metadata of {family}",
                         lambda: json.loads(get(f"{api}/metadata?metric={family}")[1])["data"].get(family))
            assert meta[0]["type"] == kind, f"{family}: {meta}"
        buckets = query("sum by (target) (healthcheck_probe_duration_seconds_bucket{le=\"+Inf\"})")
        assert len(buckets) == len(TARGETS), buckets
        failed = query(f"healthcheck_probes_total{{target=\"{STOPPED}\",result=\"failed\"}}")
        assert failed and float(failed[0]["value"][1]) >= 1, failed
        log(f"Prometheus: {len(TYPES)} families with their declared types, up = {values}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--health-check", required=True, help="the health-check binary")
    parser.add_argument("--chromium", default="chromium")
    parser.add_argument("--prometheus", default="prometheus")
    parser.add_argument("--out", required=True, help="where the screenshot is kept")
    args = parser.parse_args()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    servers = {name: start_target() for name in TARGETS}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEALTHCHECK_")}
        env.update(
            HEALTHCHECK_INTERVAL="1s",
            HEALTHCHECK_OUTPUT=str(work / "health_check.log"),
            HEALTHCHECK_TARGETS=",".join(
                f"{n}=http://127.0.0.1:{s.server_address[1]}/healthz" for n, s in servers.items()),
        )
        hc = ServiceProcess([args.health_check, "serve"], env=env, inherit_env=False,
                            log_path=work / "serve.out").start()
        base = hc.url()
        try:
            def probed(least):
                status = json.loads(get(f"{base}/api/v1/status")[1])
                return len(status["targets"]) == len(TARGETS) and all(
                    t["probes"] >= least for t in status["targets"])

            eventually("every target probed twice", lambda: probed(2))
            servers[STOPPED].shutdown()
            servers[STOPPED].server_close()
            log(f"stopped {STOPPED}")
            eventually(f"{STOPPED} shown down", lambda: any(
                t["target"] == STOPPED and not t["up"]
                for t in json.loads(get(f"{base}/api/v1/status")[1])["targets"]))
            check_page(args.chromium, base, out_dir)
            check_prometheus(args.prometheus, hc.addr, work)
        except Exception:
            print((work / "serve.out").read_text()[-4000:], file=sys.stderr)
            raise
        finally:
            hc.stop()
    log("ok")


if __name__ == "__main__":
    main()

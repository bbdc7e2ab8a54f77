#!/usr/bin/env bash
# The direct alerting path end to end on this machine: backend-api, `health-check serve` probing
# it every second with a webhook receiver (a few lines of Python that print what they receive),
# then backend-api stopped: a "down" notification arrives; started again: an "up" one.
# Everything binds 127.0.0.1 on free ports under one temporary folder, removed at the end.
# Binaries: ABN_BIN_DIR, else the debug build (built here). Every wait is bounded (30 s).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
log() { printf 'alert-demo: %s\n' "$*" >&2; }

if [[ -z ${ABN_BIN_DIR:-} ]]; then
    log "cargo build -p backend-api -p health-check (debug)"
    cargo build --locked --quiet -p backend-api -p health-check
    ABN_BIN_DIR=target/debug
fi
bin=$(cd "$ABN_BIN_DIR" && pwd)
dir=$(mktemp -d /tmp/alert-demo.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
backend_port=$(free_port)
receiver_port=$(free_port)
status_port=$(free_port)

# wait_for WHAT COMMAND...: runs COMMAND every 0.2 s until it succeeds, for at most 30 s.
wait_for() {
    local what=$1; shift
    for _ in $(seq 150); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    log "FAILED: $what not within 30 s; logs in $dir:"
    tail -n 20 "$dir"/*.log >&2
    exit 1
}

log "webhook receiver on 127.0.0.1:$receiver_port (appends each body to received.jsonl)"
python3 - "$receiver_port" "$dir/received.jsonl" >"$dir/receiver.log" 2>&1 <<'PY' &
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with open(sys.argv[2], "a", encoding="utf-8") as out:
            out.write(json.dumps(body) + "\n")
        self.send_response(204)
        self.end_headers()

HTTPServer(("127.0.0.1", int(sys.argv[1])), Hook).serve_forever()
PY
pids+=($!)

start_backend() {
    LISTEN_ADDR=127.0.0.1:$backend_port "$bin/backend-api" >>"$dir/backend-api.log" 2>&1 &
    backend_pid=$!
    pids+=("$backend_pid")
    wait_for "backend-api ready" curl -fsS "http://127.0.0.1:$backend_port/readyz"
}
log "backend-api on 127.0.0.1:$backend_port"
start_backend

# The URL is a secret in real use (a Slack hook's path is its credential): read from a file.
printf 'http://127.0.0.1:%s/hook\n' "$receiver_port" >"$dir/webhook-url"
cat >"$dir/health-check.yaml" <<YAML
targets:
  - name: backend
    url: http://127.0.0.1:$backend_port/healthz
alerting:
  down_after: 2
  up_after: 1
  receivers:
    - name: demo
      type: webhook
      url_file: $dir/webhook-url
YAML
log "health-check serve every 1s, status page http://127.0.0.1:$status_port/"
HEALTHCHECK_CONFIG=$dir/health-check.yaml HEALTHCHECK_INTERVAL=1s HEALTHCHECK_TIMEOUT=1s \
    HEALTHCHECK_OUTPUT=$dir/health/health_check.log LISTEN_ADDR=127.0.0.1:$status_port \
    "$bin/health-check" serve >"$dir/health-check.log" 2>&1 &
pids+=($!)
wait_for "health-check ready" curl -fsS "http://127.0.0.1:$status_port/readyz"

received() { [[ -f $dir/received.jsonl ]] && grep -c "\"state\": \"$1\"" "$dir/received.jsonl"; }

log "stopping backend-api: health-check notifies after 2 failed probes"
kill "$backend_pid"
wait_for "a down notification" received down
log "received:"
grep '"state": "down"' "$dir/received.jsonl" | python3 -m json.tool >&2

log "starting backend-api again: health-check notifies after 1 good probe"
start_backend
wait_for "an up notification" received up
log "received:"
grep '"state": "up"' "$dir/received.jsonl" | python3 -m json.tool >&2

log "delivery counters on /metrics:"
curl -fsS -H 'Accept: text/plain;version=0.0.4' "http://127.0.0.1:$status_port/metrics" \
    | grep '^healthcheck_notifications_total' >&2
[[ $(wc -l <"$dir/received.jsonl") -eq 2 ]] || { log "FAILED: expected 2 notifications"; cat "$dir/received.jsonl" >&2; exit 1; }
log "ok: one down and one up notification for one outage"

# shellcheck shell=bash disable=SC2154
# What both alert demos (scripts/alert-demo.sh, scripts/alert-demo-compose.sh) share: a webhook
# receiver that appends every body it is sent to a file, bounded waits, and the count of
# notifications of one state. Source it; the caller sets `dir` (its temporary folder), `pids`
# (an array it kills on exit) and `log` (hence SC2154 off: `dir` is the caller's).

# free_port ADDRESS: a port free on ADDRESS.
free_port() {
    python3 -c 'import socket, sys; s=socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$1"
}

# wait_for WHAT COMMAND...: runs COMMAND every 0.2 s until it succeeds, for at most 30 s; on
# failure shows the logs under $dir and exits 1.
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

# start_receiver ADDRESS PORT: the receiver on ADDRESS:PORT, appending to $dir/received.jsonl.
start_receiver() {
    python3 - "$1" "$2" "$dir/received.jsonl" >"$dir/receiver.log" 2>&1 <<'PY' &
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with open(sys.argv[3], "a", encoding="utf-8") as out:
            out.write(json.dumps(body) + "\n")
        self.send_response(204)
        self.end_headers()

HTTPServer((sys.argv[1], int(sys.argv[2])), Hook).serve_forever()
PY
    pids+=($!)
}

# received STATE: how many notifications of that state (down, up) arrived; fails when none.
received() { [[ -f $dir/received.jsonl ]] && grep -c "\"state\": \"$1\"" "$dir/received.jsonl"; }

# show_received STATE: those notifications, pretty-printed.
show_received() {
    log "received:"
    grep "\"state\": \"$1\"" "$dir/received.jsonl" | python3 -m json.tool >&2
}

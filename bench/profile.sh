#!/usr/bin/env bash
# Where the CPU goes under the /health_check load: perf samples (cpu-clock: this VM has no
# hardware counters) of backend-api and of the bare hyper server, each under
# `wrk -t2 -c64 -d10s`, flat by symbol and by shared object.
#
#   bench/profile.sh        writes bench/results/profile-<server>.txt
#
# Builds symbolized copies of the two binaries in target/bench-profile (release settings, symbols
# kept), so the shared target/release stays as it is. Needs perf (Debian: linux-perf) and wrk.
# The server CPU per request of the same load is in results.md; these files say where it goes.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
OUT="${OUT:-$REPO/bench/results}"
export CARGO_TARGET_DIR="$REPO/target/bench-profile"
CARGO_PROFILE_RELEASE_STRIP=none CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
  cargo build --release --quiet -p backend-api -p hello-hyper
BIN="$CARGO_TARGET_DIR/release"
mkdir -p "$OUT" "$REPO/build/bench-run"

profile() {  # NAME URL_PATH COMMAND... (the server listens on port 0 and logs the port it bound)
  local name=$1 path=$2 pid data="$REPO/build/bench-run/perf-$1.data" log PORT
  log="$REPO/build/bench-run/profile-$name.log"
  shift 2
  "$@" >"$log" 2>&1 &
  pid=$!
  PORT=$(python3 "$REPO/tests/support/service_process.py" port-in-log "$log")
  for _ in $(seq 1 200); do curl -s -o /dev/null -m 1 "http://127.0.0.1:$PORT$path" && break; sleep 0.05; done
  wrk -t2 -c64 -d10s "http://127.0.0.1:$PORT$path" >"$REPO/build/bench-run/profile-$name.wrk" &
  local wrk_pid=$!
  sleep 1
  perf record -q -e cpu-clock -F 2999 -p "$pid" -o "$data" -- sleep 8 2>/dev/null
  wait "$wrk_pid"
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  set +o pipefail   # head closes the pipe early
  {
    echo "# $name under wrk -t2 -c64 -d10s $path ($(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg))"
    grep -E 'Requests/sec' "$REPO/build/bench-run/profile-$name.wrk"
    echo; echo "## by shared object"
    perf report -i "$data" --stdio --sort dso 2>/dev/null | grep -v '^#' | grep -v '^$' | head -12
    echo; echo "## by crate (share of the samples)"
    perf report -i "$data" --stdio --sort dso,symbol 2>/dev/null | python3 "$REPO/bench/tools/perf_by_crate.py"
    echo; echo "## top symbols"
    perf report -i "$data" --stdio --sort dso,symbol 2>/dev/null | grep -v '^#' | grep -v '^$' | head -45
  } | sed -E 's/ +- +- *$//; s/ +$//' >"$OUT/profile-$name.txt"
  set -o pipefail
  echo "wrote $OUT/profile-$name.txt"
}

profile backend-api /health_check env LISTEN_ADDR=127.0.0.1:0 LOG_FORMAT=json "$BIN/backend-api"
profile hello-hyper / "$BIN/hello-hyper" 127.0.0.1:0

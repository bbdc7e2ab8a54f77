#!/usr/bin/env bash
# data-api against the legacy Flask baseline, side by side in one run, on loopback.
#
#   bench/data-api/run.sh            # from the repo root; about 1 minute plus the release build
#
# Builds the release binary, then for each test starts a fresh server, drives it with wrk for a
# bounded time at 64 connections, stops it, and checks what it wrote:
#   baseline GET /      gunicorn, 4 sync workers, SIMULATED_DELAY_SCALE=0 (not durable: no fsync)
#   data-api GET /      SIMULATED_LATENCY_MS=0, every record fdatasync'ed before the answer
#   data-api POST /logs the same, with a JSON body
# The three run in turn, REPEAT times (the machine is shared and disk sync latency varies from
# minute to minute), and the ratios are taken from the medians. Writes
# bench/results/data-api-<UTC time>.md plus the raw outputs.
#
# Environment: DURATION (wrk seconds, default 10), REPEAT (3), CONNECTIONS (64), THREADS (2),
# PORT (5301),
# BASELINE (the legacy apps, default bench/legacy), VENV (baseline venv,
# default build/baseline-venv), CARGO_TARGET_DIR (default target/bench, so the shared dev target
# is not locked for the release build).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$REPO/bench/data-api"
DURATION="${DURATION:-10}"
REPEAT="${REPEAT:-3}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
PORT="${PORT:-5301}"
URL="http://127.0.0.1:$PORT"
BASELINE="${BASELINE:-$REPO/bench/legacy}"
if [ ! -x "$BASELINE/run.sh" ]; then echo "no legacy apps at $BASELINE (set BASELINE)" >&2; exit 2; fi
export VENV="${VENV:-$REPO/build/baseline-venv}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target/bench}"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1   # as the baseline's own figures
# One RESULT-line hook for every wrk run of the benchmarks.
export REPORT_LUA="$REPO/bench/wrk/report.lua"
command -v wrk >/dev/null || { echo "wrk missing: apt-get install -y wrk" >&2; exit 2; }

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
RESULTS="$REPO/bench/results"
RAW="$RESULTS/data-api-$STAMP"
WORK="$REPO/build/bench-data-api-$STAMP"   # record folders on the real disk, not tmpfs
mkdir -p "$RAW" "$WORK"
SUMMARY="$RESULTS/data-api-$STAMP.md"

echo "building the release binary ($CARGO_TARGET_DIR)"
(cd "$REPO" && cargo build --release -p data-api 2>&1 | tail -1)
BIN="$CARGO_TARGET_DIR/release/data-api"
INSTALL_ONLY=1 "$BASELINE/run.sh" data_api >/dev/null

SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
trap stop_server EXIT

wait_up() {  # until anything answers on PORT (bounded: 15 s)
  for _ in $(seq 1 300); do
    curl -s -o /dev/null -m 1 "$URL/readyz" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "server died" >&2; exit 1; }
    sleep 0.05
  done
  echo "server did not come up" >&2; exit 1
}

peak_rss_mib() {  # VmHWM summed over the process and its children
  local total=0 p v
  for p in "$1" $(pgrep -P "$1" || true); do
    v=$(awk '/^VmHWM:/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
    total=$((total + ${v:-0}))
  done
  echo $((total / 1024))
}

cpu_s() {  # user+system CPU seconds of the process and its children
  local t=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "scale=1; $t / $(getconf CLK_TCK)" | bc
}

declare -A RPS
# load NAME WRK_ARGS...: runs wrk against the current server, records the RESULT line
load() {
  local name=$1 c0 c1 rss
  shift
  c0=$(cpu_s "$SERVER_PID")
  echo "\$ wrk $*" >"$RAW/$name.wrk"
  wrk "$@" >>"$RAW/$name.wrk" 2>&1
  c1=$(cpu_s "$SERVER_PID")
  rss=$(peak_rss_mib "$SERVER_PID")
  local result
  result=$(grep '^RESULT' "$RAW/$name.wrk" | cut -d' ' -f2-)
  local rps=${result#*rps=}
  RPS[$name]=${rps%% *}
  printf '| %s | %s | %s | %s |\n' "$name" "$result" "$(echo "$c1 - $c0" | bc)" "$rss" >>"$RAW/table.md"
  echo "$name: $result server_cpu_s=$(echo "$c1 - $c0" | bc) peak_rss_MiB=$rss"
}

WRK_ARGS=(-t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s --latency)
: >"$RAW/table.md"

run_baseline() {  # NAME: gunicorn, 4 sync workers, no simulated delay, no fsync
  local name=$1 logs="$WORK/$1"
  mkdir -p "$logs"
  SIMULATED_DELAY_SCALE=0 LOG_DIR="$logs" "$BASELINE/run.sh" data_api "$PORT" 4 >"$WORK/$name.log" 2>&1 &
  SERVER_PID=$!
  wait_up
  sleep 1.5   # let all four workers finish booting (/readyz is a 404 here: no file written)
  load "$name" "${WRK_ARGS[@]}" -s "$REPORT_LUA" "$URL/"
  stop_server
  echo "$name wrote $(find "$logs" -type f -exec cat {} + | wc -l) lines in $(find "$logs" -type f | wc -l) files (no fsync)" | tee -a "$RAW/durability.txt"
}

run_data_api() {  # NAME SCRIPT PATH: durable
  local name=$1 script=$2 path=$3 dir="$WORK/$1"
  LISTEN_ADDR="127.0.0.1:$PORT" LOG_DIR="$dir" INSTANCE_ID=bench SIMULATED_LATENCY_MS=0 \
    LOG_FORMAT=json RUST_LOG=warn "$BIN" >"$WORK/$name.log" 2>&1 &
  SERVER_PID=$!
  wait_up
  load "$name" "${WRK_ARGS[@]}" -s "$script" "$URL$path"
  curl -s "$URL/metrics" >"$RAW/$name.metrics"
  stop_server
  local check written syncs sync_sum
  check=$(python3 "$HERE/verify.py" "$dir")
  written=$(awk '/^data_api_records_written_total /{print $2}' "$RAW/$name.metrics")
  syncs=$(awk '/^data_api_commit_batch_size_count /{print $2}' "$RAW/$name.metrics")
  sync_sum=$(awk '/^data_api_sync_duration_seconds_sum /{print $2}' "$RAW/$name.metrics")
  # Requests still in flight when wrk stops are completed after the metrics were read, so the
  # disk may hold up to CONNECTIONS more than were counted, never fewer.
  local on_disk=${check%% *}; on_disk=${on_disk#records=}
  [ "$on_disk" -ge "${written%.*}" ] || { echo "$name: $check but $written acknowledged" >&2; exit 1; }
  echo "$name on disk: $check, all lines whole records, ids unique; acknowledged_at_end_of_load=$written fdatasyncs=$syncs records_per_sync=$(echo "scale=1; $written / $syncs" | bc) mean_write_and_sync_ms=$(echo "scale=3; 1000 * $sync_sum / $syncs" | bc)" | tee -a "$RAW/durability.txt"
  rm -rf "$dir"
}

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

declare -a BASE_RPS GET_RPS POST_RPS
for r in $(seq 1 "$REPEAT"); do
  run_baseline "baseline-get-$r";  BASE_RPS+=("${RPS[baseline-get-$r]}")
  run_data_api "data-api-get-$r" "$REPORT_LUA" /;  GET_RPS+=("${RPS[data-api-get-$r]}")
  run_data_api "data-api-post-$r" "$HERE/post.lua" /logs;  POST_RPS+=("${RPS[data-api-post-$r]}")
done
BASE_MED=$(median "${BASE_RPS[@]}")
GET_MED=$(median "${GET_RPS[@]}")
POST_MED=$(median "${POST_RPS[@]}")
GET_RATIO=$(echo "scale=2; $GET_MED / $BASE_MED" | bc)
POST_RATIO=$(echo "scale=2; $POST_MED / $BASE_MED" | bc)
echo "median req/s: baseline GET / $BASE_MED, data-api GET / $GET_MED, data-api POST /logs $POST_MED"
echo "ratio GET / vs baseline: ${GET_RATIO}x; POST /logs vs baseline GET /: ${POST_RATIO}x (goal: 3x)"

{
  echo "# data-api vs legacy baseline, $STAMP"
  echo
  echo "Machine: $(nproc) vCPU ($(lscpu | awk -F: '/Model name/{gsub(/^ +/,"",$2); print $2}')), $(free -g | awk '/Mem:/{print $2}') GiB RAM, kernel $(uname -r), $(sed -n 's/^PRETTY_NAME="\(.*\)"$/\1/p' /etc/os-release); $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2); $(rustc --version)."
  echo "Records on $(df --output=source,fstype "$WORK" | tail -1 | tr -s ' ') (the VM's disk, not tmpfs). wrk and the server share the two cores, over 127.0.0.1."
  echo "Load while measuring (other engineers' builds share the VM): $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15-min load average at the end)."
  echo "Command: \`bench/data-api/run.sh\` with DURATION=$DURATION REPEAT=$REPEAT CONNECTIONS=$CONNECTIONS THREADS=$THREADS: wrk ${WRK_ARGS[*]}; the three tests in turn, each on a freshly started server."
  echo
  echo "- baseline: \`SIMULATED_DELAY_SCALE=0 $BASELINE/run.sh data_api $PORT 4\` (gunicorn sync workers, Connection: close, appends without fsync)"
  echo "- data-api: \`SIMULATED_LATENCY_MS=0 LOG_DIR=... $BIN\` (release build; keep-alive; every acknowledged record fdatasync'ed, group commit)"
  echo
  echo "| test | wrk RESULT | server CPU s | peak RSS MiB |"
  echo "|---|---|---|---|"
  cat "$RAW/table.md"
  echo
  sed 's/^/- /' "$RAW/durability.txt"
  echo
  echo "Median req/s over $REPEAT rounds: baseline GET / $BASE_MED; data-api GET / $GET_MED; data-api POST /logs $POST_MED."
  echo
  echo "**Ratios of the medians: data-api GET / = ${GET_RATIO}x the baseline's GET /; data-api POST /logs = ${POST_RATIO}x (goal: at least 3x, durable).**"
  echo
  echo "Raw outputs: \`bench/results/data-api-$STAMP/\`."
} >"$SUMMARY"
rm -rf "$WORK"
echo "results: $SUMMARY"

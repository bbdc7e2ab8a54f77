#!/usr/bin/env bash
# The side-by-side benchmark: the Rust services against the legacy gunicorn apps of
# bench/legacy, on loopback, same wrk load in alternating rounds.
#
#   bench/run.sh            full run (about 10 minutes): results in bench/results/
#   bench/run.sh --quick    one short round per scenario (about 2 minutes), to check the tooling:
#                           results in build/bench-results-quick/ (never over the committed ones)
#   bench/run.sh --only health,api1     some scenarios only: idle startup health accesslog tracing api1 data
#                                       download healthcheck
#
# Environment: OUT (results folder), VENV (legacy venv, default build/baseline-venv),
# BASELINE_DIR (default bench/legacy), BENCH_SKIP_BUILD=1 (use target/release as it is),
# BENCH_BEFORE_BIN (a backend-api built before traces, e.g. of v0.1.0: the tracing scenario adds it).
# Needs cargo, python3 (3.11), curl, and wrk (installed with apt-get when missing).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
COMMAND="bench/run.sh${*:+ $*}"
MODE=full
PY_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) MODE=quick; PY_ARGS+=(--quick) ;;
    --only) PY_ARGS+=(--only "$2"); shift ;;
    --only=*) PY_ARGS+=(--only "${1#--only=}") ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "bench/run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ "$MODE" = quick ]; then OUT="${OUT:-$REPO/build/bench-results-quick}"; else OUT="${OUT:-$REPO/bench/results}"; fi

if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get install -y wrk >/dev/null || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y wrk >/dev/null; }
fi

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then   # 1: reuse target/release as it is (debugging the bench)
  echo "building the release binaries"
  cargo build --release --quiet -p backend-api -p data-api -p health-check -p log-provider -p hello-hyper
fi

# A private copy: other builds may replace target/release/* while the bench runs.
BIN="$REPO/build/bench-run/bin"
mkdir -p "$BIN"
for b in backend-api data-api health-check log-provider hello-hyper; do cp -f "target/release/$b" "$BIN/"; done
export BENCH_TARGET_DIR="$BIN"

export VENV="${VENV:-$REPO/build/baseline-venv}"
BASELINE_DIR="${BASELINE_DIR:-$REPO/bench/legacy}"
export BASELINE_DIR
INSTALL_ONLY=1 "$BASELINE_DIR/run.sh"          # the legacy venv (gunicorn, Flask), pinned there

REPORT_VENV="$REPO/build/bench-venv"           # matplotlib for the chart, pinned here
STAMP="$REPORT_VENV/.bench-requirements"
if [ ! -x "$REPORT_VENV/bin/python" ] || ! cmp -s bench/requirements.txt "$STAMP"; then
  python3 -m venv "$REPORT_VENV"
  "$REPORT_VENV/bin/pip" install --quiet -r bench/requirements.txt
  cp bench/requirements.txt "$STAMP"
fi

# 1,000 connections: wrk and the server each need more than a thousand descriptors.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt 4096 ]; then echo "bench/run.sh: ulimit -n is $(ulimit -n), need 4096" >&2; exit 1; fi

export PYTHONDONTWRITEBYTECODE=1
RAW="$REPO/build/bench-run/raw-$MODE.json"
"$REPORT_VENV/bin/python" bench/bench.py --raw "$RAW" --command "$COMMAND" "${PY_ARGS[@]}"
"$REPORT_VENV/bin/python" bench/report.py "$RAW" "$OUT"

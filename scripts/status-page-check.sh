#!/usr/bin/env bash
# health-check serve's status page in a real headless Chromium, and its per-target metrics as a
# real Prometheus scrapes them (tests/status_page/check.py). Reuses the health-check binary the
# Rust tests built. The screenshot is kept in build/status-page/.
# Exit 77 (skipped, with the reason) when Debian's chromium or prometheus is missing: .ci/run
# installs both.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v prometheus >/dev/null || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
    echo "SKIPPED: status page check: ${missing[*]} not found: apt-get install ${missing[*]} (Debian; .ci/run installs them)" >&2
    exit 77
fi
bin=target/debug/health-check
# A no-op after the Rust tests (they built it); run alone, it makes sure the binary is current.
cargo build --locked --quiet -p health-check
# Chromium refuses its sandbox as root; the check runs it with --no-sandbox.
python3 tests/status_page/check.py --health-check "$bin" --out build/status-page

#!/usr/bin/env bash
# Rust checks: formatting, lints (warnings are errors), every crate's tests, and shellcheck on
# every shell script of the repository (0 findings at every severity).
# The tests start real servers on loopback port 0, real child processes and a real
# data directory; nothing leaves the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== shellcheck"
command -v shellcheck >/dev/null || {
    echo "shellcheck not found: apt-get install shellcheck (Debian; .ci/run installs it)" >&2
    exit 1
}
# Every tracked file ending in .sh or starting with a sh/bash shebang.
tracked=$(git ls-files)
scripts=()
while IFS= read -r file; do
    [ -f "$file" ] || continue
    if [[ $file == *.sh ]] || head -n1 "$file" | grep -qE '^#!.*[/ ](ba|da)?sh$'; then
        scripts+=("$file")
    fi
done <<<"$tracked"
shellcheck --external-sources "${scripts[@]}"
echo "shellcheck: ${#scripts[@]} scripts, 0 findings"

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
    # nextest runs each test in its own process, so a crash or a hang names its test.
    cargo nextest run --workspace --locked --no-fail-fast
    cargo test --workspace --locked --doc
else
    cargo test --workspace --locked --no-fail-fast
fi

echo "== status page in Chromium, metrics in Prometheus"
rc=0
scripts/status-page-check.sh || rc=$?
# Skipped (77, reason printed) only when Chromium or Prometheus cannot be had.
exit "$rc"

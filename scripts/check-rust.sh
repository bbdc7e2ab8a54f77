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
# The tests marked #[ignore] need what not every machine grants (mounting a tmpfs): they run
# here when this machine can, and the summary says how many ran or were skipped, and why.
ignored_note=
if mountpoint_probe=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs "$mountpoint_probe" 2>/dev/null; then
    umount "$mountpoint_probe"
    run_ignored=yes
else
    run_ignored=no
    ignored_note="the tests marked #[ignore] were SKIPPED: this machine cannot mount a tmpfs (needs root with CAP_SYS_ADMIN)"
fi
rmdir "$mountpoint_probe" 2>/dev/null || true
if cargo nextest --version >/dev/null 2>&1; then
    # nextest runs each test in its own process, so a crash or a hang names its test.
    ignored=()
    [ "$run_ignored" = yes ] && ignored=(--run-ignored all)
    cargo nextest run --workspace --locked --no-fail-fast "${ignored[@]}"
    cargo test --workspace --locked --doc
else
    ignored=()
    [ "$run_ignored" = yes ] && ignored=(--include-ignored)
    cargo test --workspace --locked --no-fail-fast -- "${ignored[@]}"
fi
if [ "$run_ignored" = yes ]; then
    echo "tests: the tests marked #[ignore] ran too (this machine can mount a tmpfs)"
else
    echo "tests: $ignored_note"
fi

echo "== status page in Chromium, metrics in Prometheus"
rc=0
scripts/status-page-check.sh || rc=$?
# Skipped (77, reason printed) only when Chromium or Prometheus cannot be had.
exit "$rc"

#!/usr/bin/env bash
# Rust checks: formatting, lints (warnings are errors), and every crate's tests.
# The tests start real servers on loopback port 0, real child processes and a real
# data directory; nothing leaves the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

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

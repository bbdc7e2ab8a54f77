#!/usr/bin/env bash
# Reliability and security checks (SECURITY.md): advisories and licences, HTTP abuse, property
# tests of every parser of outside input, schemathesis against each live service, secret
# hygiene end to end (binaries, and the compose stack when its images are built), a data-api
# crash loop and 10,000 idle connections. Each step is bounded; together they take a few
# minutes on 2 cores. Everything runs on loopback; nothing leaves the machine except the
# crates.io / PyPI installs of the tools on a fresh machine.
#
#   scripts/check-security.sh                 every step
#   scripts/check-security.sh schemathesis    one or more steps by name (see STEPS below)
#
# Settings (environment):
#   ADVISORY_DB        a local snapshot of the RustSec advisory database (unset: fetched)
#   SECURITY_PROFILE   debug (default) or release: which build of the binaries the live steps run
#   CRASH_ROUNDS       SIGKILL rounds of the data-api crash loop (20)
#   CRASH_PROFILE      image (default: the binary of this commit's data-api image, else a release
#                      build), release or debug: the data-api build the crash loop kills
#   IDLE_CONNECTIONS   idle connections held against a live service (10000)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)

# abuse and properties are Rust test suites the rust area already runs: they are steps here only
# for running them on their own (scripts/check-security.sh abuse), not part of the default run.
STEPS=(advisories abuse properties schemathesis secrets secrets-compose crash-loop idle-connections)
DEFAULT_STEPS=(advisories schemathesis secrets secrets-compose crash-loop idle-connections)
SECURITY_PROFILE=${SECURITY_PROFILE:-debug}
CRASH_ROUNDS=${CRASH_ROUNDS:-20}
CRASH_PROFILE=${CRASH_PROFILE:-image}
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-10000}
VENV=$ROOT/build/security-venv
BIN=$ROOT/target/$SECURITY_PROFILE

WORK=$(mktemp -d "${TMPDIR:-/tmp}/abn-security.XXXXXX")
SERVICE_PIDS=()

stop_services() {
    local pid
    for pid in "${SERVICE_PIDS[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for pid in "${SERVICE_PIDS[@]}"; do
        wait "$pid" 2>/dev/null
    done
    SERVICE_PIDS=()
}
cleanup() {
    stop_services
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- helpers

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_ready URL: polls until the URL answers 200 (bounded: 30 s).
wait_ready() {
    local url=$1
    for _ in $(seq 1 150); do
        if python3 - "$url" <<'EOF' 2>/dev/null; then return 0; fi
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2)
EOF
        sleep 0.2
    done
    echo "not ready: $url" >&2
    return 1
}

# start_service NAME PORT [VAR=VALUE ...]: starts target/<profile>/NAME on 127.0.0.1:PORT with
# the given environment, logs to $WORK/NAME.log, waits for /readyz.
start_service() {
    local name=$1 port=$2
    shift 2
    env LISTEN_ADDR="127.0.0.1:$port" LOG_FORMAT=json "$@" "$BIN/$name" >>"$WORK/$name.log" 2>&1 &
    SERVICE_PIDS+=($!)
    wait_ready "http://127.0.0.1:$port/readyz"
}

build_binaries() {
    local flags=(--locked -p log-provider -p backend-api -p data-api --bins)
    [ "$SECURITY_PROFILE" = release ] && flags+=(--release)
    cargo build "${flags[@]}"
}

python_venv() {
    if [ ! -x "$VENV/bin/schemathesis" ] \
        || ! "$VENV/bin/pip" freeze 2>/dev/null | diff -q - <(grep -v '^#' tests/security/requirements.txt) >/dev/null; then
        python3 -m venv "$VENV" && "$VENV/bin/pip" install --quiet --disable-pip-version-check \
            -r tests/security/requirements.txt
    fi
}

log() { echo "$*"; }
# shellcheck source=scripts/lib/cargo-tool.sh
source scripts/lib/cargo-tool.sh
# shellcheck source=scripts/lib/version.sh
source scripts/lib/version.sh

ensure_cargo_tool() {
    local tool=$1
    if ! cargo "${tool#cargo-}" --version >/dev/null 2>&1; then
        echo "installing $tool from crates.io"
        cargo install "$tool" --locked
    fi
}

# ---------------------------------------------------------------- steps

# The RustSec advisory database: with ADVISORY_DB=<folder> a local snapshot (offline machines);
# without it, cargo-deny's normal fetch of the URL in deny.toml. cargo-deny fetches it first
# (into $WORK, through its documented db-urls/db-path settings); cargo audit then reads the
# same copy, so both judge one database and neither fetches again.
step_advisories() {
    cargo_tool cargo-audit "$cargo_audit_version" || return 1
    ensure_cargo_tool cargo-deny || return 1

    local dbs=$WORK/advisory-dbs config=$WORK/deny.toml source
    sed "s|^db-path = .*|db-path = \"$dbs\"|" deny.toml >"$config"
    if [ -n "${ADVISORY_DB:-}" ]; then
        [ -d "$ADVISORY_DB/crates" ] || {
            echo "ADVISORY_DB=$ADVISORY_DB is not a RustSec advisory database (no crates/ folder)" >&2
            return 1
        }
        # db-urls takes git URLs: the snapshot (a plain folder) becomes a one-commit repository
        # on the branch cargo-deny clones (main).
        local repo=$WORK/advisory-db-snapshot
        cp -r "$ADVISORY_DB" "$repo" && chmod -R u+w "$repo" && rm -rf "$repo/.git"
        git -C "$repo" init --quiet --initial-branch=main \
            && git -C "$repo" add -A \
            && git -C "$repo" -c user.name=check -c user.email=check@localhost \
                commit --quiet -m "snapshot of $ADVISORY_DB" || return 1
        # cargo-deny wants a domain in the URL (it names the clone after it); git ignores the
        # host of a file:// URL.
        sed -i "s|^db-urls = .*|db-urls = [\"file://snapshot.invalid$repo\"]|" "$config"
        source="the snapshot ADVISORY_DB=$ADVISORY_DB"
    else
        source=$(sed -n 's/^db-urls = \["\(.*\)"\]$/\1/p' deny.toml)
    fi
    echo "== fetching the advisory database from $source"
    if ! timeout 300 cargo deny --config "$config" fetch db >"$WORK/advisory-fetch.log" 2>&1; then
        echo "advisories: cannot fetch the RustSec advisory database from $source; without network access set ADVISORY_DB=<folder> to a local copy of it" >&2
        return 1
    fi
    # cargo-deny names the clone after the URL; it is the one folder under db-path with crates/.
    local db
    db=$(find "$dbs" -mindepth 2 -maxdepth 2 -name crates -type d -printf '%h\n' | head -1)
    [ -n "$db" ] || { echo "cargo deny fetch db left no database under $dbs" >&2; return 1; }

    # The advisories accepted (each with its reason) are listed once, in deny.toml.
    local ignores=() id
    while read -r id; do
        ignores+=(--ignore "$id")
    done < <(sed -n '/^\[advisories\]/,/^\[/p' deny.toml | grep -o 'id = "RUSTSEC-[0-9-]*"' | grep -o 'RUSTSEC-[0-9-]*')
    echo "== cargo audit (the database just fetched, no fetch; accepted in deny.toml: ${ignores[*]:-none})"
    cargo audit --db "$db" --no-fetch "${ignores[@]}" || return 1

    echo "== cargo deny (advisories from the same database, licences, bans, duplicate versions, sources)"
    # --offline: the database is the copy just fetched; yanked versions are looked up in the
    # local crates.io index cache the build used.
    cargo deny --locked --offline --config "$config" check advisories licenses bans sources
}

step_abuse() {
    cargo test --locked -p log-provider -p backend-api -p data-api --test it -- abuse::
}

step_properties() {
    cargo test --locked -p log-provider -p backend-api --test it -- fuzz_query:: \
        && cargo test --locked -p data-api --test it -- fuzz_parsers:: \
        && cargo test --locked -p health-check --test it -- fuzz_parsers:: properties::
}

# The seeds schemathesis runs with: a fixed one, and one derived from the commit so that each
# commit explores new inputs while any failure still reproduces from the printed seed.
schemathesis_seeds() {
    local commit
    commit=$(git -C "$ROOT" rev-parse --short=8 HEAD) || return 1
    echo "1 $((16#$commit))"
}

step_schemathesis() {
    python_venv || return 1
    build_binaries || return 1
    local seeds
    seeds=$(schemathesis_seeds) || { echo "no git commit to derive a seed from" >&2; return 1; }
    local key=schemathesis-key-$RANDOM$RANDOM provider backend data status=0 seed
    provider=$(free_port) backend=$(free_port) data=$(free_port)
    mkdir -p "$WORK/schemathesis-logs"
    # backend-api is told the provider's bound, as an operator would (EXTERNAL_LOGS_MAX_LIMIT).
    start_service log-provider "$provider" PROVIDER_KEY="$key" PROVIDER_MAX_LIMIT=1000 || return 1
    start_service backend-api "$backend" SIMULATED_LATENCY_MS=0 \
        EXTERNAL_LOGS_URL="http://127.0.0.1:$provider/v1/logs" EXTERNAL_INTEGRATION_KEY="$key" \
        EXTERNAL_LOGS_TIMEOUT=10s EXTERNAL_LOGS_MAX_LIMIT=1000 || return 1
    start_service data-api "$data" SIMULATED_LATENCY_MS=0 LOG_DIR="$WORK/schemathesis-logs" \
        INSTANCE_ID=schemathesis || return 1

    # Run from build/security so that schemathesis's own cache folder lands there too. The hooks
    # file lets it validate every line of the JSON Lines streams.
    mkdir -p "$ROOT/build/security"
    cd "$ROOT/build/security" || return 1
    export SCHEMATHESIS_HOOKS=$ROOT/tests/security/schemathesis_hooks.py
    for seed in $seeds; do
        local st=("$VENV/bin/schemathesis" --config-file "$ROOT/tests/security/schemathesis.toml" run
            --checks all --workers 2 --seed "$seed" --report junit
            --report-dir "$ROOT/build/security/schemathesis/seed-$seed")
        echo "== schemathesis --seed $seed: log-provider"
        "${st[@]}" -H "Authorization: Bearer $key" "http://127.0.0.1:$provider/openapi.json" || status=1
        echo "== schemathesis --seed $seed: backend-api (wired to the live log-provider)"
        "${st[@]}" "http://127.0.0.1:$backend/openapi.json" || status=1
        echo "== schemathesis --seed $seed: data-api"
        "${st[@]}" "http://127.0.0.1:$data/openapi.json" || status=1
    done
    unset SCHEMATHESIS_HOOKS
    stop_services
    cd "$ROOT" || return 1
    return $status
}

step_secrets() {
    build_binaries || return 1
    python3 tests/security/secret_hygiene.py --bin-dir "$BIN" --work "$WORK/secrets" || return 1
    # The keys from files rotated live under load, failed reloads, and the same search.
    python3 tests/security/secret_rotation.py --bin-dir "$BIN" --work "$WORK/rotation" || return 1
    # Request ids across backend-api and log-provider, hostile ids replaced, the access log.
    python3 tests/security/request_ids.py --bin-dir "$BIN" --work "$WORK/request-ids"
}

# The same search on the compose stack (images abn-stack/*:<version>, or IMAGE_TAG as
# scripts/build-images.sh tagged them). Without an engine or the images it exits 77 with the
# reason, and the step is reported as skipped.
step_secrets_compose() {
    python3 tests/security/secret_hygiene_compose.py --tag "${IMAGE_TAG:-$(workspace_version)}"
}

# The crash loop kills the data-api the image ships (static, release, cargo-auditable), copied out
# of abn-stack/data-api:<version> when that image is of this clean commit (the containers area
# built it): the binary that runs in production, and no second release build of data-api (minutes
# and a target dir of its own). Otherwise, or with CRASH_PROFILE=release|debug, a cargo build.
step_crash_loop() {
    local bin
    bin=$(crash_loop_binary) || return 1
    python3 tests/security/crash_loop.py --bin "$bin" \
        --rounds "$CRASH_ROUNDS" --work "$WORK/crash-loop"
}

crash_loop_binary() {
    if [ "$CRASH_PROFILE" = image ]; then
        local image revision container
        image=abn-stack/data-api:$(workspace_version)
        revision=$(docker image inspect --format '{{index .Config.Labels "org.opencontainers.image.revision"}}' \
            "$image" 2>/dev/null || true)
        if [ -z "$(git status --porcelain | head -1)" ] && [ "$revision" = "$(git rev-parse HEAD)" ] \
            && container=$(docker create "$image" 2>/dev/null); then
            docker cp "$container:/usr/local/bin/data-api" "$WORK/data-api" >/dev/null
            docker rm "$container" >/dev/null
            echo "crash loop: the binary of $image (revision $revision)" >&2
            echo "$WORK/data-api"
            return
        fi
        echo "crash loop: no $image of this clean commit: a release build instead" >&2
    fi
    local profile=${CRASH_PROFILE/image/release} flags=(--locked -p data-api --bin data-api)
    [ "$profile" = release ] && flags+=(--release)
    cargo build "${flags[@]}" >&2 || return 1
    echo "$ROOT/target/$profile/data-api"
}

step_idle_connections() {
    build_binaries || return 1
    python3 tests/security/idle_connections.py --bin-dir "$BIN" --count "$IDLE_CONNECTIONS"
}

# ---------------------------------------------------------------- runner

selected=("$@")
[ ${#selected[@]} -eq 0 ] && selected=("${DEFAULT_STEPS[@]}")
for s in "${selected[@]}"; do
    [[ " ${STEPS[*]} " == *" $s "* ]] || { echo "unknown step: $s (steps: ${STEPS[*]})" >&2; exit 2; }
done

summary=()
failed=0
skipped=0
for s in "${selected[@]}"; do
    echo
    echo "======== security: $s"
    start=$(date +%s)
    "step_${s//-/_}"
    rc=$?
    took=$(( $(date +%s) - start ))
    if [ $rc -eq 0 ]; then
        summary+=("PASS  $s (${took}s)")
    elif [ $rc -eq 77 ]; then
        summary+=("SKIP  $s (${took}s; the reason is above)")
        skipped=$((skipped + 1))
    else
        summary+=("FAIL  $s (${took}s)")
        failed=$((failed + 1))
    fi
    stop_services
    cd "$ROOT" || exit 1
done

echo
echo "======== security summary"
printf '%s\n' "${summary[@]}"
if [ ${#selected[@]} -eq ${#DEFAULT_STEPS[@]} ] && [ "${selected[*]}" = "${DEFAULT_STEPS[*]}" ]; then
    echo "(abuse and properties ran in the rust area)"
fi
if [ $failed -gt 0 ]; then
    echo "$failed of ${#selected[@]} steps FAILED, $skipped skipped"
    exit 1
fi
if [ $skipped -gt 0 ]; then
    # Reported to scripts/test as a skipped area, never as a pass.
    echo "$skipped of ${#selected[@]} steps SKIPPED, the others passed"
    exit 77
fi
echo "all ${#selected[@]} steps passed"

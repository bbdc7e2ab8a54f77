#!/usr/bin/env bash
# Container check: lints the Dockerfile with checkov, builds the four images without pulling
# anything (scripts/build-images.sh, tagged with the crate version and shared with the deploy
# rehearsal; the same commit gives the same image IDs), runs the compose stack under a unique project
# name and tests it with
# faults (deployment/docker/tests/check_containers.py): every endpoint through the containers, a
# SIGKILL of data-api under write load with no acknowledged record lost, the outage and recovery in
# the health-check history on its volume, and SIGTERM ending every container cleanly. Before the
# stack it checks what a scanner sees in the images (deployment/docker/tests/check_image_contents.py:
# syft, cargo audit bin, the SBOMs) and that the log-provider image reproduces
# (scripts/reproduce-images.sh).
#
# Usage, from anywhere in the repository:  scripts/check-containers.sh
# Where no Docker engine (or no Compose) answers it prints SKIPPED with the reason and exits 77
# (scripts/test reports the area as skipped). Whatever happens it removes what it created:
# containers, network, volumes (the images stay, for the other areas).
# SKIP_CARGO=1 reuses the binaries in target/static (quicker reruns while developing).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

checkov_version=3.3.30
venv=build/venv-containers

log() { printf 'check-containers: %s\n' "$*" >&2; }

run_checkov() {
    if [[ ! -x "$venv/bin/checkov" ]] || ! "$venv/bin/checkov" --version 2>/dev/null | grep -qx "$checkov_version"; then
        log "installing checkov $checkov_version into $venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "checkov==$checkov_version"
    fi
    log "checkov --framework dockerfile on deployment/docker/Dockerfile and Dockerfile.source"
    "$venv/bin/checkov" --framework dockerfile --skip-download --compact --quiet \
        -f deployment/docker/Dockerfile -f deployment/docker/Dockerfile.source
}

# The lint does not need an engine, so it runs (and must pass) everywhere.
run_checkov

# shellcheck source=scripts/lib/engine.sh
source scripts/lib/engine.sh
need_engine check-containers
# shellcheck source=scripts/lib/compose.sh
source scripts/lib/compose.sh
if ! find_compose; then
    echo "check-containers: SKIPPED: Docker engine $engine answers but neither 'docker compose' nor 'docker-compose' is installed"
    exit 77
fi
log "engine $engine, compose: ${compose[*]}"

run_id="$(date +%s)$$"
project="abncheck${run_id}"
# shellcheck source=scripts/lib/version.sh
source scripts/lib/version.sh
# IMAGE_TAG: build and test images under another tag (scripts/build-images.sh reads it too).
tag=${IMAGE_TAG:-$(workspace_version)}
work_dir=$(mktemp -d)

cleanup() {
    local rc=$?
    set +e
    log "cleaning up project $project and tag $tag"
    if [[ -n "${checker_pid:-}" ]] && kill -0 "$checker_pid" 2>/dev/null; then
        kill "$checker_pid"
        wait "$checker_pid"
    fi
    if [[ -n "${compose_ready:-}" ]]; then
        if (( rc != 0 )); then
            "${compose[@]}" -p "$project" -f deployment/docker/compose.yaml logs --no-color --tail 40 >&2 2>/dev/null
        fi
        "${compose[@]}" -p "$project" -f deployment/docker/compose.yaml down --volumes --remove-orphans --timeout 5 >/dev/null 2>&1
    fi
    # Anything left with the project's label (one-off containers, volumes, networks).
    docker ps -aq --filter "label=com.docker.compose.project=$project" | xargs -r docker rm -f >/dev/null 2>&1
    docker volume ls -q --filter "label=com.docker.compose.project=$project" | xargs -r docker volume rm -f >/dev/null 2>&1
    docker network ls -q --filter "label=com.docker.compose.project=$project" | xargs -r docker network rm >/dev/null 2>&1
    rm -rf "$work_dir"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building images tagged $tag"
IMAGE_CONTEXT_DIR="$work_dir/context" scripts/build-images.sh | tee "$work_dir/sizes.txt" >&2
# The size goal (at most 15 MB an image) is reported, not enforced: a dependency that grows an
# image should be seen, not block everyone's CI.
awk '$2 > 15 {print "check-containers: WARNING: " $1 " is " $2 " MB, over the 15 MB goal"}' "$work_dir/sizes.txt" >&2

# What a scanner sees in the images: syft's crates against cargo tree, cargo audit bin against the
# advisory database (ADVISORY_DB, a local snapshot; unset: cargo audit fetches it), the SBOMs and
# their labels, and a binary without the auditable data caught.
# shellcheck source=scripts/lib/cargo-tool.sh
source scripts/lib/cargo-tool.sh
cargo_tool cargo-audit "$cargo_audit_version"
python3 deployment/docker/tests/check_image_contents.py \
    --images log-provider backend-api data-api health-check --tag "$tag" \
    --bin-dir target/static/x86_64-unknown-linux-gnu/release --sbom-dir build/sbom \
    --syft build/venv-syft/bin/syft --epoch "$(git log -1 --format=%ct)" --work "$work_dir"

# Reproducible images, on the smallest one, log-provider (its binaries rebuilt in a second checkout folder); all
# four: scripts/reproduce-images.sh. Uncommitted changes leave nothing to reproduce (exit 77).
repro_rc=0
IMAGES=log-provider scripts/reproduce-images.sh || repro_rc=$?
if (( repro_rc == 77 )); then
    log "reproducibility: NOT CHECKED (uncommitted changes); CI checks it on the commit"
elif (( repro_rc != 0 )); then
    exit "$repro_rc"
fi

# Configuration of the stack under test: its own project and image tag, ephemeral 127.0.0.1 ports,
# a fresh random key, short simulated latencies, a fast health-check loop and no automatic restart
# (the test decides when data-api comes back, so the outage is long enough to be recorded).
export ABN_IMAGE_TAG="$tag"
export ABN_INTEGRATION_KEY ABN_INTEGRATION_KEY_FILE
ABN_INTEGRATION_KEY=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
# The compose secret's file; readable by uid 65532 (compose 1.29 mounts it with this mode).
ABN_INTEGRATION_KEY_FILE=$work_dir/integration-key
printf '%s
' "$ABN_INTEGRATION_KEY" >"$ABN_INTEGRATION_KEY_FILE"
chmod 0444 "$ABN_INTEGRATION_KEY_FILE"
# The callers' tokens (backend-api's download, data-api's API): one caller, a fresh token.
export ABN_API_TOKEN ABN_API_TOKENS_FILE
ABN_API_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
ABN_API_TOKENS_FILE=$work_dir/api-tokens
printf 'container-check:%s\n' "$ABN_API_TOKEN" >"$ABN_API_TOKENS_FILE"
chmod 0444 "$ABN_API_TOKENS_FILE"
export ABN_BACKEND_PORT="" ABN_DATA_API_PORT="" ABN_LOG_PROVIDER_PORT="" ABN_HEALTH_CHECK_PORT=""
export ABN_BACKEND_LATENCY_MS=50 ABN_DATA_LATENCY_MS=1500 ABN_HEALTHCHECK_INTERVAL=1s
export ABN_RESTART_POLICY=no

compose_ready=1
# In the background and waited for, so that a signal to this script runs the clean-up at once
# (bash runs traps only between foreground commands).
python3 deployment/docker/tests/check_containers.py \
    --project "$project" \
    --compose "${compose[*]}" \
    --compose-file deployment/docker/compose.yaml \
    --compose-file deployment/docker/tests/compose.test.yaml \
    --image-tag "$tag" \
    --sizes "$work_dir/sizes.txt" &
checker_pid=$!
wait "$checker_pid"

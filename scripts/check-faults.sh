#!/usr/bin/env bash
# Network faults between backend-api and its provider, for real (tests/faults/network_faults.py):
# containers of the images on a private Docker network, faults made with iptables inside the
# provider's network namespace (random loss, a silent partition before the first byte and in
# the middle of a stream, resets) and latency by a delaying TCP proxy (the kernel has no netem),
# and the provider's name taken off the network. Each case: backend-api's answer inside its
# budget, recovery without a restart, its fds and connections back to their level, the
# health-check's history recording the fault. Then a packet capture (tcpdump) on the provider's
# interface during a download: over plain HTTP the key is found (the control), over TLS in no
# encoding (tests/faults/capture.py). Prints the table of every case.
#
# Usage, from anywhere in the repository:  scripts/check-faults.sh
# As root (nsenter into a container's network namespace). Where no Docker engine answers, or the
# script is not root, it prints SKIPPED with the reason and exits 77. iptables and nsenter come
# from Debian (iptables, util-linux, ethtool, tcpdump, openssl; .ci/run installs them).
# IMAGE_TAG: the images to test (default: the workspace version, built by scripts/build-images.sh
# when missing; the containers area builds them first in a full run).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

log() { printf 'check-faults: %s\n' "$*" >&2; }

# shellcheck source=scripts/lib/engine.sh
source scripts/lib/engine.sh
need_engine check-faults
if [[ $(id -u) -ne 0 ]]; then
    echo "check-faults: SKIPPED: not root (iptables in a container's network namespace needs nsenter as root)"
    exit 77
fi
for tool in iptables nsenter ethtool tcpdump openssl; do
    command -v "$tool" >/dev/null || { log "$tool is missing (Debian: iptables, util-linux, ethtool, tcpdump, openssl)"; exit 1; }
done
log "engine $engine"

# shellcheck source=scripts/lib/version.sh
source scripts/lib/version.sh
tag=${IMAGE_TAG:-$(workspace_version)}
images=(log-provider backend-api health-check)
missing=()
for image in "${images[@]}"; do
    docker image inspect "abn-stack/$image:$tag" >/dev/null 2>&1 || missing+=("$image")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    log "building ${missing[*]} tagged $tag (scripts/build-images.sh)"
    IMAGE_TAG=$tag IMAGES="${missing[*]}" scripts/build-images.sh >&2
fi

mkdir -p build/faults
# In the background and waited for, so that a signal to this script reaches the test, which
# removes its containers and network.
# Bounded as a whole (about 80 s here): a TERM makes the test clean up and fail.
timeout --signal=TERM 300 python3 tests/faults/network_faults.py --image-tag "$tag" --results build/faults/table.md &
test_pid=$!
trap 'kill "$test_pid" 2>/dev/null; wait "$test_pid"; exit 130' INT TERM
wait "$test_pid"

#!/usr/bin/env bash
# Upgrade rehearsal: the previous release (scripts/release-base.sh: $RELEASE_BASE, else the newest
# v* tag, else CHANGELOG.md's release-base: line) installed with its own charts and images and the
# dev values, records and health history written, upgraded to the working tree's charts and images
# (pre-upgrade hooks, every pod ready, every record and history line kept, counts printed), then
# rolled back the same way; before that, the render diff of both steps must find nothing
# Kubernetes refuses in place (deployment/rehearsal/upgrade.py, renderdiff.py). Then `make release`
# over the same images: the sums verify and the packaged charts render (test_release.py).
#
# Usage, from anywhere in the repository:  scripts/check-upgrade.sh
# IMAGE_TAG picks the working tree's images (default: the chart's appVersion, built here like the
# deploy area does). Where no Docker engine answers it prints SKIPPED with the reason and exits 77.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

log() { printf 'check-upgrade: %s\n' "$*" >&2; }

# shellcheck source=scripts/lib/engine.sh
source scripts/lib/engine.sh
need_engine check-upgrade
log "engine $engine"

# shellcheck source=scripts/lib/venv.sh
source scripts/lib/venv.sh
need_python 3.10
make_venv build/charts-venv deployment/helm/tests/requirements.txt kubernetes-validate

# The working tree's images: built unless the deploy or containers area just built them for this
# commit (a clean tree, every image labelled with HEAD's revision and with its SBOM's digest).
# shellcheck source=scripts/lib/version.sh
source scripts/lib/version.sh
tag=${IMAGE_TAG:-$(workspace_version)}
revision=$(git rev-parse HEAD)
current=0
if [[ -z "$(git status --porcelain | head -1)" ]]; then
    for b in backend-api data-api health-check log-provider; do
        labels=$(docker image inspect --format '{{index .Config.Labels "org.opencontainers.image.revision"}} {{index .Config.Labels "io.abn-stack.sbom.digest"}}' \
            "abn-stack/$b:$tag" 2>/dev/null || true)
        sbom=build/sbom/$b.cdx.json
        [[ -f "$sbom" && "$labels" == "$revision sha256:$(sha256sum "$sbom" | cut -d' ' -f1)" ]] && current=$((current + 1))
    done
fi
if [[ $current -eq 4 ]]; then
    log "images abn-stack/*:$tag of $revision with their SBOMs exist: not rebuilt"
else
    log "the working tree's images (scripts/build-images.sh, IMAGE_TAG=$tag)"
    IMAGE_TAG=$tag scripts/build-images.sh >&2
fi
export IMAGE_TAG=$tag

log "the base release (scripts/release-base.sh)"
base=$(scripts/release-base.sh)
read -r base_sha base_tag base_dir <<<"$base"
log "base $base_sha, images abn-stack/*:$base_tag, checkout $base_dir"

log "pytest deployment/rehearsal/test_upgrade.py test_release.py (make release over these images)"
RELEASE_BASE_DIR=$base_dir RELEASE_BASE_TAG=$base_tag \
    build/charts-venv/bin/python -m pytest -p no:cacheprovider -v -s \
    deployment/rehearsal/test_upgrade.py deployment/rehearsal/test_release.py

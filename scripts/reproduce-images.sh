#!/usr/bin/env bash
# Rebuilds images of this commit in a clean second checkout and compares them with the ones
# scripts/build-images.sh built here: the binaries byte for byte and the image IDs. Same commit,
# other folder, other target directory: any build time, random data or build path that leaks into
# a binary or a layer shows up as a difference.
#
# Usage, from anywhere in the repository, after scripts/build-images.sh:
#   scripts/reproduce-images.sh                     all four images (a full release build: minutes)
#   IMAGES=log-provider scripts/reproduce-images.sh the smallest one (what the container check runs)
# Exit 0 when everything matches, 1 on any difference, 77 (SKIPPED) on uncommitted changes: the
# images here are then not of a commit, and there is nothing to reproduce.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

log() { printf 'reproduce-images: %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/version.sh
source scripts/lib/version.sh

read -r -a images <<<"${IMAGES:-log-provider backend-api data-api health-check}"
# The tag scripts/build-images.sh gave them (IMAGE_TAG, else the crate version).
tag=${IMAGE_TAG:-$(workspace_version)}
prefix=abn-stack
repro_prefix=abn-stack-reproduce
target_bin=target/static/x86_64-unknown-linux-gnu/release
second=${REPRODUCE_DIR:-build/reproduce}

cleanup() {
    local rc=$? b
    set +e
    for b in "${images[@]}"; do
        docker image rm "$repro_prefix/$b:$tag" >/dev/null 2>&1
    done
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -n "$(git status --porcelain | head -1)" ]]; then
    echo "reproduce-images: SKIPPED: uncommitted changes; commit, build the images, then reproduce them"
    exit 77
fi
commit=$(git rev-parse HEAD)
for b in "${images[@]}"; do
    built=$(docker image inspect --format '{{index .Config.Labels "org.opencontainers.image.revision"}}' "$prefix/$b:$tag" 2>/dev/null || true)
    if [[ "$built" != "$commit" ]]; then
        echo "reproduce-images: $prefix/$b:$tag is of ${built:-no commit}, not $commit: run scripts/build-images.sh first" >&2
        exit 1
    fi
done

# A clean checkout of the commit; its target directory is kept between runs (a rerun only relinks),
# which does not weaken the comparison: the folder still differs from this one.
if [[ ! -d "$second/.git" ]]; then
    rm -rf "$second"
    git clone --quiet --shared --no-checkout "$repo_root" "$second"
fi
git -C "$second" fetch --quiet "$repo_root" "$commit"
git -C "$second" checkout --quiet --force --detach "$commit"
git -C "$second" clean --quiet -fdx --exclude=/target --exclude=/build
log "building ${images[*]} of $commit in $second"
(cd "$second" && IMAGES="${images[*]}" IMAGE_PREFIX="$repro_prefix" scripts/build-images.sh >/dev/null)

failed=0
# Every image carries the probe binary.
for b in $(printf '%s\n' "${images[@]}" probe | sort -u); do
    if cmp -s "$target_bin/$b" "$second/$target_bin/$b"; then
        log "binary $b: identical ($(sha256sum "$target_bin/$b" | cut -c1-19))"
    else
        log "binary $b: DIFFERS between $target_bin and $second/$target_bin"
        failed=1
    fi
done
for b in "${images[@]}"; do
    first_id=$(docker image inspect --format '{{.Id}}' "$prefix/$b:$tag")
    second_id=$(docker image inspect --format '{{.Id}}' "$repro_prefix/$b:$tag")
    if [[ "$first_id" == "$second_id" ]]; then
        echo "reproduce-images: $prefix/$b:$tag $first_id: reproduced"
    else
        echo "reproduce-images: $prefix/$b:$tag DIFFERS: $first_id here, $second_id from $second"
        failed=1
    fi
done
(( failed == 0 ))

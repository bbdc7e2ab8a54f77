#!/usr/bin/env bash
# The previous release, for the upgrade rehearsal: resolves its commit and builds its four images
# with its own scripts/build-images.sh, tagged base-<short sha>.
#
# Usage, from anywhere in the repository:
#   scripts/release-base.sh            # prints "<full sha> <image tag> <checkout dir>" on stdout
# The base is, in this order: $RELEASE_BASE (a commit or tag); the newest v* tag reachable from
# HEAD; the commit on the `release-base:` line of the root CHANGELOG.md (tags may not survive into
# CI's clone). Which one was used is printed on stderr.
#
# The base is checked out (git worktree) at build/release-base/src. Its images are built there only
# when abn-stack/<name>:base-<short sha> is missing or carries another revision label. Cheapest
# honest build: the base's build-images.sh remaps its checkout path out of the binaries through
# RUSTFLAGS, and cargo rebuilds every dependency when RUSTFLAGS change. So, where the machine
# allows a private mount namespace (root: unshare -m), the base's checkout is shown at this
# checkout's own path, over an overlay of this checkout's target/static and its syft venv: the same
# RUSTFLAGS, so cargo reuses every dependency already built and recompiles only the workspace's
# crates. Elsewhere it builds in its own folder from cold, and says so.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
log() { printf 'release-base: %s\n' "$*" >&2; }

if [[ -n "${RELEASE_BASE:-}" ]]; then
    ref=$RELEASE_BASE how="RELEASE_BASE=$RELEASE_BASE"
elif ref=$(git describe --tags --match 'v*' --abbrev=0 HEAD 2>/dev/null); then
    how="the newest v* tag reachable from HEAD ($ref)"
else
    ref=$(awk '/^release-base: /{print $2; exit}' CHANGELOG.md)
    [[ -n "$ref" ]] || { log "no RELEASE_BASE, no v* tag and no release-base: line in CHANGELOG.md"; exit 2; }
    how="the release-base: line of CHANGELOG.md ($ref)"
fi
sha=$(git rev-parse --verify --quiet "$ref^{commit}") || { log "$how names no commit of this clone"; exit 2; }
short=${sha:0:7}
tag=base-$short
log "base: $sha, from $how; images abn-stack/*:$tag"

src=build/release-base/src
if [[ ! -e "$src/.git" ]]; then
    git worktree prune
    mkdir -p build/release-base
    git worktree add --detach --force "$src" "$sha" >/dev/null 2>&1
fi
git -C "$src" checkout --quiet --detach --force "$sha"
git -C "$src" clean -fdxq -e target -e build

images=(log-provider backend-api data-api health-check)
have=0
for b in "${images[@]}"; do
    label=$(docker image inspect --format '{{index .Config.Labels "org.opencontainers.image.revision"}}' \
        "abn-stack/$b:$tag" 2>/dev/null || true)
    [[ "$label" == "$sha" ]] && have=$((have + 1))
done
if [[ $have -eq ${#images[@]} ]]; then
    log "images abn-stack/*:$tag with revision $sha exist: not rebuilt"
else
    start=$(date +%s)
    # cargo decides freshness by modification times, not content: the base's sources must be
    # newer than anything already built, or cargo would take another commit's crates as built.
    find "$src" \( -path "$src/target" -o -path "$src/build" -o -path "$src/.git" \) -prune -o -type f -exec touch {} +
    if unshare -m true 2>/dev/null; then
        log "building the base's images with its own scripts/build-images.sh, shown at $repo_root"
        # The base's target/static is an overlay on this checkout's: it reads every dependency
        # built here and writes (its crates, binaries, fingerprints) to an upper folder, removed
        # after. No copy of the target dir (gigabytes of disk), and this checkout's stays
        # untouched: the base's binaries there (same paths, older sources) would pass as built.
        # A kernel without overlayfs gets a copy instead.
        upper=build/release-base/static-upper scratch=build/release-base/static-work
        rm -rf "$upper" "$scratch" "$src/target/static"
        mkdir -p "$upper" "$scratch" target/static "$src/target/static" build/venv-syft \
            "$src/build/venv-syft" "$src/build/host-git"
        # The base's checkout is a worktree whose .git file names this checkout's .git, which the
        # bind below hides: git reads it through a second bind, so the base's build-images.sh
        # stamps the base's revision and commit time (not "unknown" and 1970).
        worktree_git=$(git -C "$src" rev-parse --absolute-git-dir)
        worktree_git=${worktree_git#"$repo_root/.git/"}
        # shellcheck disable=SC2016  # expanded by the inner shell
        unshare -m bash -euc '
            mount --make-rprivate /
            if ! mount -t overlay overlay -o "lowerdir=$1/target/static,upperdir=$1/$4,workdir=$1/$5" \
                "$2/target/static" 2>/dev/null; then
                echo "release-base: no overlayfs here: copying target/static ($(du -sh "$1/target/static" | cut -f1))"
                cp -a "$1/target/static/." "$2/target/static/"
            fi
            mount --bind "$1/build/venv-syft" "$2/build/venv-syft"
            mount --bind "$1/.git" "$2/build/host-git"
            mount --rbind "$2" "$1"
            cd "$1"
            GIT_DIR="$1/build/host-git/$6" GIT_WORK_TREE="$1" IMAGE_TAG="$3" scripts/build-images.sh' \
            _ "$repo_root" "$repo_root/$src" "$tag" "$upper" "$scratch" "$worktree_git" >&2
        rm -rf "$upper" "$scratch"
    else
        log "no private mount namespace here: building the base from cold in $src (every dependency)"
        (cd "$src" && IMAGE_TAG="$tag" scripts/build-images.sh) >&2
    fi
    log "base images built in $(( $(date +%s) - start ))s"
fi
echo "$sha $tag $repo_root/$src"

#!/usr/bin/env bash
# The release artifacts of the working tree (`make release`), under build/release/<version>/:
#   charts/<chart>-<chart version>.tgz   the four charts as `helm package` makes them (Helm's SDK)
#   images/<image>-<tag>.tar             the four images (`docker save`; `docker load -i` them)
#   sbom/<image>.cdx.json                their CycloneDX SBOMs (scripts/build-images.sh's)
#   CHANGELOG.md                         the version's entry of the root CHANGELOG.md
#   SHA256SUMS                           of every file above (`sha256sum -c SHA256SUMS` there)
#
# Usage, from anywhere in the repository:  scripts/release.sh
# Environment:
#   IMAGE_TAG            the images' tag (default: the workspace version)
#   RELEASE_SKIP_BUILD=1 use the images already built instead of running scripts/build-images.sh;
#                        each image's SBOM digest label must then match build/sbom (no stale SBOM)
#   RELEASE_OUT          the folder to write (default: build/release/<version>)
# The version must have a `## <version>` entry in CHANGELOG.md.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
log() { printf 'release: %s\n' "$*" >&2; }

# shellcheck source=scripts/lib/version.sh
source scripts/lib/version.sh
version=$(workspace_version)
tag=${IMAGE_TAG:-$version}
out=${RELEASE_OUT:-build/release/$version}
images=(backend-api data-api health-check log-provider)

entry=$(awk -v v="$version" '$0 ~ "^## "v"( |$)" {on=1; print; next} on && /^## / {exit} on {print}' CHANGELOG.md)
[[ -n "$entry" ]] || { log "CHANGELOG.md has no '## $version' entry: add it (move the Unreleased lines under it)"; exit 1; }

# shellcheck source=scripts/lib/venv.sh
source scripts/lib/venv.sh
need_python 3.10
make_venv build/charts-venv deployment/helm/tests/requirements.txt kubernetes-validate

if [[ "${RELEASE_SKIP_BUILD:-0}" != 1 ]]; then
    log "images (scripts/build-images.sh, IMAGE_TAG=$tag)"
    IMAGE_TAG=$tag scripts/build-images.sh >&2
fi

rm -rf "$out"
mkdir -p "$out/charts" "$out/images" "$out/sbom"
log "charts -> $out/charts"
build/charts-venv/bin/python deployment/helm/tools/package_charts.py "$out/charts" >&2

for b in "${images[@]}"; do
    image="abn-stack/$b:$tag"
    sbom=build/sbom/$b.cdx.json
    label=$(docker image inspect --format '{{index .Config.Labels "io.abn-stack.sbom.digest"}}' "$image") \
        || { log "$image is missing (run without RELEASE_SKIP_BUILD)"; exit 1; }
    [[ -f "$sbom" && "$label" == "sha256:$(sha256sum "$sbom" | cut -d' ' -f1)" ]] \
        || { log "$sbom is not the SBOM of $image (its label says $label): rebuild the images"; exit 1; }
    log "docker save $image -> $out/images/$b-$tag.tar"
    docker save --output "$out/images/$b-$tag.tar" "$image"
    cp "$sbom" "$out/sbom/"
done
printf '%s\n' "$entry" >"$out/CHANGELOG.md"

files=$(cd "$out" && find . -type f -printf '%P\n' | LC_ALL=C sort)
# shellcheck disable=SC2086  # one path a word: the names have no blanks
(cd "$out" && sha256sum $files >SHA256SUMS && sha256sum --quiet -c SHA256SUMS)
log "abn-stack $version (images :$tag) in $out: $(wc -l <"$out/SHA256SUMS") files, SHA256SUMS verified"
echo "$out"

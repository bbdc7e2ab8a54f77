#!/usr/bin/env bash
# Builds the four abn-stack images from static release binaries, without pulling anything:
#   abn-stack/{backend-api,data-api,health-check,log-provider}:<crate version>
# and their CycloneDX SBOMs, build/sbom/<image>.cdx.json (digest in the label io.abn-stack.sbom.digest).
#
# Usage (from anywhere in the repository):
#   scripts/build-images.sh
# Environment:
#   IMAGE_TAG     tag to apply (default: the workspace crate version, e.g. 0.1.0)
#   IMAGE_PREFIX  repository prefix (default: abn-stack)
#   IMAGES        the images to build (default: all four)
#   SKIP_CARGO=1  reuse the binaries already in target/static
#   IMAGE_CONTEXT_DIR  where the build context is assembled (default: build/docker-context)
#   SBOM_DIR      where the SBOMs are written (default: build/sbom)
#   SOURCE_DATE_EPOCH  the time stamped into the images (default: the commit's time)
#
# Reproducible: the same commit gives byte-identical binaries and the same image IDs
# (scripts/reproduce-images.sh checks it). Binaries are built with cargo-auditable (installed,
# pinned, when missing) into CARGO_TARGET_DIR=target/static so release builds never fight the debug
# builds in target/; the images with Debian's buildah, which stamps no build time. Static glibc
# binaries cannot use glibc's NSS for DNS; the services resolve names with hickory-resolver (pure
# Rust, reads /etc/resolv.conf), which scripts/check-containers.sh proves inside the containers.
# Needs cargo, Docker, buildah, python3, and Debian's ca-certificates and libc6-dev.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

all_images=(log-provider backend-api data-api health-check)
target=x86_64-unknown-linux-gnu
static_dir=target/static
context=${IMAGE_CONTEXT_DIR:-build/docker-context}
prefix=${IMAGE_PREFIX:-abn-stack}
# IMAGES: a subset to build (the reproducibility check builds log-provider alone). Every image
# also carries the probe binary (its container probe).
read -r -a images <<<"${IMAGES:-${all_images[*]}}"
binaries=(probe)
for b in "${images[@]}"; do
    [[ " ${all_images[*]} " == *" $b "* ]] || { echo "build-images: unknown image $b (images: ${all_images[*]})" >&2; exit 2; }
    binaries+=("$b")
done
sbom_dir=${SBOM_DIR:-build/sbom}
syft_venv=build/venv-syft
buildah_dir=build/buildah

# shellcheck source=scripts/lib/version.sh
source scripts/lib/version.sh

version=$(workspace_version)
[[ -n "$version" ]] || { echo "build-images: no [workspace.package] version in Cargo.toml" >&2; exit 1; }
tag=${IMAGE_TAG:-$version}
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [[ -n "$(git status --porcelain 2>/dev/null | head -1)" ]]; then revision="${revision}-dirty"; fi
source_url=$(awk -F'"' '/^repository *=/{print $2; exit}' Cargo.toml)

# Reproducible: the same commit gives the same bytes. Time stamps come from the commit, never the
# clock; the build paths (this checkout, cargo's registry) are remapped out of the binaries.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
export SOURCE_DATE_EPOCH
cargo_home=${CARGO_HOME:-$HOME/.cargo}

if [[ "${SKIP_CARGO:-0}" != 1 ]]; then
    log() { printf 'build-images: %s\n' "$*" >&2; }
    # shellcheck source=scripts/lib/cargo-tool.sh
    source scripts/lib/cargo-tool.sh
    # cargo-auditable embeds the dependency list (section .dep-v0) that cargo audit bin, syft,
    # trivy and grype read; without it a scanner sees no packages in a static Rust binary.
    cargo_tool cargo-auditable "$cargo_auditable_version"
    # One cargo run a binary: built together, cargo unifies the features of their dependencies,
    # so a binary would depend on which others were built with it (not reproducible alone, and
    # carrying code and SBOM entries only another binary needs).
    for b in "${binaries[@]}"; do
        echo "build-images: cargo auditable build --release -p $b (static, $target) -> $static_dir" >&2
        # --target keeps RUSTFLAGS away from build scripts and proc macros, which must stay dynamic.
        # Size over the last percent of CPU for these I/O-bound services: opt-level "s", one codegen
        # unit and fat LTO make every binary about 30% smaller (backend-api 10.1 -> 6.6 MB), which
        # keeps each image, service plus its probe, under 15 MB. Only the image build
        # does this; `cargo build --release` keeps the workspace profile.
        RUSTFLAGS="-C target-feature=+crt-static --remap-path-prefix=$repo_root=/abn-stack --remap-path-prefix=$cargo_home=/cargo" \
            CARGO_TARGET_DIR="$static_dir" \
            cargo auditable build --locked --release --target "$target" \
            --config 'profile.release.opt-level="s"' \
            --config 'profile.release.lto="fat"' \
            --config 'profile.release.codegen-units=1' \
            -p "$b"
    done
fi

# The CA bundle comes from Debian's ca-certificates package (the host's generated bundle).
ca_bundle=/etc/ssl/certs/ca-certificates.crt
ca_version=$(dpkg-query -W -f='${Version}' ca-certificates 2>/dev/null || true)
if [[ -z "$ca_version" || ! -s "$ca_bundle" ]]; then
    echo "build-images: Debian's ca-certificates package is needed (apt-get install ca-certificates)" >&2
    exit 1
fi

rm -rf "$context"
mkdir -p "$context/bin" "$context/volumes/logs" "$context/volumes/health" \
    "$context/volumes/dev-certs/ca" "$context/volumes/dev-certs/tls" "$context/volumes/dev-certs/trust"
cp "$ca_bundle" "$context/ca-certificates.crt"
for b in "${binaries[@]}"; do
    bin="$static_dir/$target/release/$b"
    [[ -x "$bin" ]] || { echo "build-images: $bin is missing (run without SKIP_CARGO)" >&2; exit 1; }
    # A dynamic binary would fail in scratch with a confusing "no such file or directory".
    if readelf -l "$bin" | grep -q 'Requesting program interpreter'; then
        echo "build-images: $bin is dynamically linked; expected +crt-static" >&2
        exit 1
    fi
    # Without the section a scanner sees nothing (a plain cargo build, or a strip that drops it).
    if ! readelf -S "$bin" | grep -q '\.dep-v0'; then
        echo "build-images: $bin has no .dep-v0 section; expected a cargo auditable build" >&2
        exit 1
    fi
    cp "$bin" "$context/bin/$b"
done
# Sorted, fixed times and modes: what buildah copies into the layers does not depend on this checkout.
chmod 0755 "$context/bin/"* && chmod 0644 "$context/ca-certificates.crt"
find "$context/volumes" -type d -exec chmod 0755 {} + && chmod 0700 "$context/volumes/dev-certs/ca"
find "$context" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

log() { printf 'build-images: %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/venv.sh
source scripts/lib/venv.sh
need_python 3.9
make_venv "$syft_venv" deployment/docker/requirements-syft.txt syft
export SYFT_CHECK_FOR_APP_UPDATE=false
glibc_version=$(dpkg-query -W -f='${Version}' libc6-dev)
mkdir -p "$sbom_dir"
cargo metadata --locked --format-version 1 --filter-platform "$target" >"$context.metadata.json"

# buildah, not the engine's legacy builder, which stamps the build time into every image config:
# with --timestamp the config, the history and every file in the layers carry SOURCE_DATE_EPOCH,
# so the same commit gives the same image ID (after normalize_archive.py). Its storage is a folder
# under build/.
command -v buildah >/dev/null || { echo "build-images: buildah is needed (apt-get install buildah)" >&2; exit 1; }
buildah_cmd=(buildah --root "$repo_root/$buildah_dir/root" --runroot "$repo_root/$buildah_dir/run" --storage-driver vfs)
created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
for b in "${images[@]}"; do
    image="$prefix/$b:$tag"
    echo "build-images: $image" >&2
    # The SBOM is syft's reading of the image's files, laid out as in the image.
    root="$context.sbom/$b"
    rm -rf "$root" && mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs"
    cp "$context/bin/probe" "$context/bin/$b" "$root/usr/local/bin/"
    cp "$context/ca-certificates.crt" "$root/etc/ssl/certs/"
    "$syft_venv/bin/syft" scan --quiet "dir:$root" -o cyclonedx-json="$context.sbom/$b.syft.json"
    sbom="$sbom_dir/$b.cdx.json"
    "$python" deployment/docker/sbom.py --syft "$context.sbom/$b.syft.json" \
        --metadata "$context.metadata.json" --image "$b" --version "$version" \
        --epoch "$SOURCE_DATE_EPOCH" --glibc-version "$glibc_version" --ca-version "$ca_version" \
        --out "$sbom"
    rm -rf "$root" "$context.sbom/$b.syft.json"
    sbom_digest="sha256:$(sha256sum "$sbom" | cut -d' ' -f1)"
    # Docker format, not OCI: OCI image configs have no HEALTHCHECK.
    if ! out=$("${buildah_cmd[@]}" bud --quiet --format docker --timestamp "$SOURCE_DATE_EPOCH" \
        --pull=never --layers=false \
        -f deployment/docker/Dockerfile \
        --target "$b" \
        --build-arg VERSION="$version" \
        --build-arg REVISION="$revision" \
        --build-arg SOURCE="$source_url" \
        --build-arg CREATED="$created" \
        --build-arg CA_CERTIFICATES_VERSION="$ca_version" \
        --build-arg SBOM_DIGEST="$sbom_digest" \
        -t "$image" \
        "$context" 2>&1) \
        || ! out=$("${buildah_cmd[@]}" push --quiet "$image" "docker-archive:$context.$b.tar:$image" 2>&1); then
        echo "$out" >&2
        exit 1
    fi
    "${buildah_cmd[@]}" rmi --force "$image" >/dev/null
    # buildah's config still names its random build container: rewritten without it, then loaded.
    "$python" deployment/docker/normalize_archive.py "$context.$b.tar" "$context.$b.normal.tar" \
        --tag "$image" --epoch "$SOURCE_DATE_EPOCH" >/dev/null
    docker load --quiet --input "$context.$b.normal.tar" >/dev/null
    rm -f "$context.$b.tar" "$context.$b.normal.tar"
done

rm -rf "$context.sbom" "$context.metadata.json"

for b in "${images[@]}"; do
    docker image inspect --format "{{index .RepoTags 0}} {{.Size}}" "$prefix/$b:$tag"
done | awk '{printf "%-40s %6.1f MB\n", $1, $2/1000000}'

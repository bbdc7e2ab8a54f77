#!/usr/bin/env bash
# Builds the four abn-stack images from static release binaries, without pulling anything:
#   abn-stack/{backend-api,data-api,health-check,log-provider}:<crate version>
#
# Usage (from anywhere in the repository):
#   scripts/build-images.sh
# Environment:
#   IMAGE_TAG     tag to apply (default: the workspace crate version, e.g. 0.1.0)
#   IMAGE_PREFIX  repository prefix (default: abn-stack)
#   SKIP_CARGO=1  reuse the binaries already in target/static
#   IMAGE_CONTEXT_DIR  where the build context is assembled (default: build/docker-context)
#
# Binaries are built into CARGO_TARGET_DIR=target/static so release builds never fight the debug
# builds in target/. Static glibc binaries cannot use glibc's NSS for DNS; the services resolve
# names with reqwest's hickory-dns resolver (pure Rust, reads /etc/resolv.conf), which
# scripts/check-containers.sh proves inside the containers.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

# One image per service; every image also carries the probe binary (its container probe).
images=(log-provider backend-api data-api health-check)
binaries=("${images[@]}" probe)
target=x86_64-unknown-linux-gnu
static_dir=target/static
context=${IMAGE_CONTEXT_DIR:-build/docker-context}
prefix=${IMAGE_PREFIX:-abn-stack}

# shellcheck source=scripts/lib/version.sh
source scripts/lib/version.sh

version=$(workspace_version)
[[ -n "$version" ]] || { echo "build-images: no [workspace.package] version in Cargo.toml" >&2; exit 1; }
tag=${IMAGE_TAG:-$version}
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [[ -n "$(git status --porcelain 2>/dev/null | head -1)" ]]; then revision="${revision}-dirty"; fi
source_url=$(awk -F'"' '/^repository *=/{print $2; exit}' Cargo.toml)

if [[ "${SKIP_CARGO:-0}" != 1 ]]; then
    packages=()
    for b in "${binaries[@]}"; do packages+=(-p "$b"); done
    echo "build-images: cargo build --release (static, $target) -> $static_dir" >&2
    # --target keeps RUSTFLAGS away from build scripts and proc macros, which must stay dynamic.
    # Size over the last percent of CPU for these I/O-bound services: opt-level "s", one codegen
    # unit and fat LTO make every binary about 30% smaller (backend-api 10.1 -> 6.6 MB), which keeps
    # each image, service plus its health-check probe, under 15 MB. Only the image build does this;
    # `cargo build --release` keeps the workspace profile.
    RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR="$static_dir" \
        cargo build --release --target "$target" \
        --config 'profile.release.opt-level="s"' \
        --config 'profile.release.lto="fat"' \
        --config 'profile.release.codegen-units=1' \
        "${packages[@]}"
fi

# The CA bundle comes from Debian's ca-certificates package (the host's generated bundle).
ca_bundle=/etc/ssl/certs/ca-certificates.crt
ca_version=$(dpkg-query -W -f='${Version}' ca-certificates 2>/dev/null || true)
if [[ -z "$ca_version" || ! -s "$ca_bundle" ]]; then
    echo "build-images: Debian's ca-certificates package is needed (apt-get install ca-certificates)" >&2
    exit 1
fi

rm -rf "$context"
mkdir -p "$context/bin" "$context/volumes/logs" "$context/volumes/health"
cp "$ca_bundle" "$context/ca-certificates.crt"
for b in "${binaries[@]}"; do
    bin="$static_dir/$target/release/$b"
    [[ -x "$bin" ]] || { echo "build-images: $bin is missing (run without SKIP_CARGO)" >&2; exit 1; }
    # A dynamic binary would fail in scratch with a confusing "no such file or directory".
    if readelf -l "$bin" | grep -q 'Requesting program interpreter'; then
        echo "build-images: $bin is dynamically linked; expected +crt-static" >&2
        exit 1
    fi
    cp "$bin" "$context/bin/$b"
done

for b in "${images[@]}"; do
    image="$prefix/$b:$tag"
    echo "build-images: $image" >&2
    # The legacy builder's deprecation banner is noise: show the output only when the build fails.
    if ! out=$(docker build --quiet \
        -f deployment/docker/Dockerfile \
        --target "$b" \
        --build-arg VERSION="$version" \
        --build-arg REVISION="$revision" \
        --build-arg SOURCE="$source_url" \
        --build-arg CA_CERTIFICATES_VERSION="$ca_version" \
        -t "$image" \
        "$context" 2>&1); then
        echo "$out" >&2
        exit 1
    fi
done

for b in "${images[@]}"; do
    docker image inspect --format "{{index .RepoTags 0}} {{.Size}}" "$prefix/$b:$tag"
done | awk '{printf "%-40s %6.1f MB\n", $1, $2/1000000}'

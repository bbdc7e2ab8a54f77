# shellcheck shell=bash
# cargo_tool CRATE VERSION: installs the cargo subcommand CRATE (cargo-foo) at exactly VERSION from
# crates.io (cargo install --locked) unless cargo's install list already has that version (some
# subcommands, cargo-auditable among them, answer --version with cargo's own version).
# Needs a log function.

# The pins, one home: the image build (cargo-auditable) and the container and security areas
# (cargo-audit) install these versions.
# shellcheck disable=SC2034  # read by the scripts that source this file
cargo_auditable_version=0.7.7 cargo_audit_version=0.22.2

cargo_tool() {
    local crate=$1 version=$2
    if cargo install --list 2>/dev/null | grep -qx "$crate v$version:"; then
        return 0
    fi
    log "installing $crate $version from crates.io (cargo install --locked)"
    cargo install --locked --quiet --version "$version" "$crate"
}

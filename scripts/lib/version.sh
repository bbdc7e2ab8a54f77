# shellcheck shell=bash
# workspace_version: version = "x.y.z" under [workspace.package] in the root Cargo.toml, the tag
# of the images and the charts' appVersion. Source from the repository root.
workspace_version() {
    awk '/^\[/{section=$0} section=="[workspace.package]" && $1=="version" {gsub(/"/,"",$3); print $3; exit}' Cargo.toml
}

# shellcheck shell=bash
# need_engine AREA: the Docker engine's version in $engine; when no engine answers within 20 s,
# prints "AREA: SKIPPED" with docker's reason and exits 77, so the area is reported as skipped,
# never as passed.
need_engine() {
    if ! engine=$(timeout 20 docker info --format '{{.ServerVersion}}' 2>&1); then
        echo "$1: SKIPPED: no Docker engine answers (docker info: $(echo "$engine" | tail -1))"
        exit 77
    fi
}

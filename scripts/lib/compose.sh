# shellcheck shell=bash disable=SC2034
# find_compose: sets the array `compose` to the Compose command installed (`docker compose`, the
# v2 plugin, else Debian's docker-compose 1.29, which reads the same files); returns 1 if neither.
# (SC2034 off: `compose` is for the caller.)
# Used by scripts/check-containers.sh and scripts/alert-demo-compose.sh.
find_compose() {
    if docker compose version >/dev/null 2>&1; then
        compose=(docker compose)
    elif command -v docker-compose >/dev/null 2>&1; then
        compose=(docker-compose)
    else
        return 1
    fi
}

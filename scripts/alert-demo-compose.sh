#!/usr/bin/env bash
# The direct alerting path end to end over the compose stack (deployment/docker/compose.yaml, with
# the images already built: scripts/build-images.sh). health-check serve, in its container, is
# given an alerting config whose webhook receiver runs here on the host, bound to the compose
# network's gateway address (the host as the containers see it); then the backend-api container
# is stopped: a "down" notification arrives; started again: an "up" one.
#
#   scripts/alert-demo-compose.sh        # or: make alert-demo-compose
#
# Environment: ABN_IMAGE_TAG (the images' tag, 0.1.0), ABN_DEMO_PROJECT (the compose project,
# abn-alert-demo-<pid>). Ports are published on ephemeral 127.0.0.1 ports, so a running stack is
# not disturbed. Every wait is bounded (30 s; compose's own start waits for healthy services);
# the project's containers, network and volumes and the temporary folder are removed at the end.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
log() { printf 'alert-demo-compose: %s\n' "$*" >&2; }

# shellcheck source=scripts/lib/compose.sh
source scripts/lib/compose.sh
find_compose || { log "neither 'docker compose' nor 'docker-compose' is installed"; exit 2; }
project=${ABN_DEMO_PROJECT:-abn-alert-demo-$$}
dir=$(mktemp -d /tmp/alert-demo-compose.XXXXXX)
# Readable by the containers' user (uid 65532): compose 1.29 bind-mounts files as they are.
chmod 0755 "$dir"
pids=()
compose_project() { "${compose[@]}" -p "$project" -f deployment/docker/compose.yaml -f "$dir/alerting.yaml" "$@"; }
cleanup() {
    compose_project logs --no-color --tail 20 health-check >"$dir/health-check.log" 2>&1 || true
    [[ ${failed:-1} == 0 ]] || tail -n 20 "$dir/health-check.log" >&2
    compose_project down --volumes --remove-orphans --timeout 5 >/dev/null 2>&1 || true
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

# shellcheck source=scripts/lib/alert-receiver.sh
source scripts/lib/alert-receiver.sh

# The stack's own needs: the integration key and the callers' tokens (compose secrets, readable
# by uid 65532) and ephemeral ports.
head -c 32 /dev/urandom | base64 | tr -d '/+=' >"$dir/integration-key"
printf 'demo:%s\n' "$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >"$dir/api-tokens"
chmod 0444 "$dir/integration-key" "$dir/api-tokens"
export ABN_INTEGRATION_KEY_FILE=$dir/integration-key ABN_API_TOKENS_FILE=$dir/api-tokens
export ABN_LOG_PROVIDER_PORT='' ABN_BACKEND_PORT='' ABN_DATA_API_PORT='' ABN_HEALTH_CHECK_PORT=''
# A probe a second: the notification follows the stop within seconds.
export ABN_HEALTHCHECK_INTERVAL=1s

# health-check's alerting, as a compose file on top: the config and the receiver's URL (a secret
# in real use: a Slack hook's path is its credential) as compose secrets, files under /run/secrets.
cat >"$dir/alerting.yaml" <<YAML
services:
  health-check:
    environment:
      HEALTHCHECK_CONFIG: /run/secrets/health_check_config
    secrets: [health_check_config, alert_webhook_url]
secrets:
  health_check_config:
    file: $dir/health-check.yaml
  alert_webhook_url:
    file: $dir/webhook-url
YAML
cat >"$dir/health-check.yaml" <<'YAML'
# The targets stay compose.yaml's HEALTHCHECK_TARGETS; this adds the alerting.
targets: []
alerting:
  down_after: 2
  up_after: 1
  receivers:
    - name: demo
      type: webhook
      url_file: /run/secrets/alert_webhook_url
YAML
chmod 0444 "$dir/health-check.yaml"

log "compose project $project: the services first (the network is created with them)"
compose_project up -d log-provider backend-api data-api >"$dir/compose-up.log" 2>&1 || { cat "$dir/compose-up.log" >&2; exit 1; }
network=$(docker network ls -q --filter "label=com.docker.compose.project=$project")
gateway=$(docker network inspect --format '{{range .IPAM.Config}}{{.Gateway}}{{end}}' "$network")
[[ -n $gateway ]] || { log "FAILED: no gateway address on the project's network"; exit 1; }
receiver_port=$(free_port "$gateway")
log "webhook receiver on the network's gateway, $gateway:$receiver_port"
start_receiver "$gateway" "$receiver_port"
printf 'http://%s:%s/hook\n' "$gateway" "$receiver_port" >"$dir/webhook-url"
chmod 0444 "$dir/webhook-url"
wait_for "the receiver listening" python3 -c 'import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 2)' "$gateway" "$receiver_port"

log "health-check serve, probing every 1s, with the alerting config"
compose_project up -d health-check >>"$dir/compose-up.log" 2>&1 || { cat "$dir/compose-up.log" >&2; exit 1; }
# The container's id once (a compose call per try would stretch the 30 s bound).
health_check=$(compose_project ps -q health-check)
health_up() { [[ $(docker inspect --format '{{.State.Health.Status}}' "$health_check") == healthy ]]; }
wait_for "health-check healthy" health_up

log "stopping the backend-api container: health-check notifies after 2 failed probes"
compose_project stop --timeout 20 backend-api >/dev/null 2>&1
wait_for "a down notification" received down
show_received down

log "starting backend-api again: health-check notifies after 1 good probe"
compose_project start backend-api >/dev/null 2>&1
wait_for "an up notification" received up
show_received up

downs=$(received down) ups=$(received up)
[[ $downs -eq 1 && $ups -eq 1 ]] || { log "FAILED: expected one down and one up, got $downs and $ups"; cat "$dir/received.jsonl" >&2; exit 1; }
python3 - "$dir/received.jsonl" <<'PY' || { log "FAILED: the notifications are not backend-api's"; exit 1; }
import json, sys
bodies = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
assert [(b["target"], b["state"]) for b in bodies] == [("backend-api", "down"), ("backend-api", "up")], bodies
PY
failed=0
log "ok: the backend-api container stopped and started: one down and one up notification, from the container to the host"

#!/usr/bin/env bash
# Ansible deployment check, offline, no cluster:
#   1. ansible-playbook --syntax-check for every environment,
#   2. ansible-lint --offline --profile production (0 violations),
#   3. pytest deployment/ansible/tests: the playbook's render-only path (--tags render, which runs
#      kubernetes.core.helm_template against tools/helm-sdk) for dev and prod, compared with what
#      helm-python-sdk renders directly from the same chart and values files; the helm-sdk command
#      itself; the pre-flight failures (unknown app_env, missing kube context, missing key); the
#      committed dev vault opening with its documented throwaway password; the verify step's
#      bounded wait on backend-api's secret reload metric (tools/wait-secret-reload) against the
#      real backend-api binary (built here, debug) and a kubelet-style key swap.
#
# Usage, from anywhere in the repository:  scripts/check-ansible.sh
# Creates (or reuses, when its pins are unchanged) the venv build/ansible-venv.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

envs=(dev prod)

log() { printf 'check-ansible: %s\n' "$*" >&2; }

# shellcheck source=scripts/lib/ansible-env.sh
source scripts/lib/ansible-env.sh

for env in "${envs[@]}"; do
    log "ansible-playbook --syntax-check (app_env=$env)"
    ansible-playbook "$ansible_dir/playbooks/app-deploy.yaml" --syntax-check -e "app_env=$env"
done

log "ansible-lint --offline --profile production"
(cd "$ansible_dir" && ansible-lint -c .ansible-lint --offline --profile production --nocolor)

# The verify step's wait on backend-api's reload metric is tested against the real binary.
log "cargo build -p backend-api (tools/wait-secret-reload's test)"
cargo build --locked --quiet -p backend-api
export BACKEND_API_BIN="$repo_root/target/debug/backend-api"

log "pytest $ansible_dir/tests"
python -m pytest -p no:cacheprovider "$ansible_dir/tests"

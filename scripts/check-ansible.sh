#!/usr/bin/env bash
# Ansible deployment check, offline, no cluster:
#   1. ansible-playbook --syntax-check for every environment,
#   2. ansible-lint --offline --profile production (0 violations),
#   3. pytest deployment/ansible/tests: the playbook's render-only path (--tags render, which runs
#      kubernetes.core.helm_template against tools/helm-sdk) for dev and prod, compared with what
#      helm-python-sdk renders directly from the same chart and values files; the helm-sdk command
#      itself; the pre-flight failures (unknown app_env, missing kube context, missing key); the
#      committed dev vault opening with its documented throwaway password.
#
# Usage, from anywhere in the repository:  scripts/check-ansible.sh
# Creates (or reuses, when its pins are unchanged) the venv build/ansible-venv.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

venv=build/ansible-venv
ansible_dir=deployment/ansible
envs=(dev prod)

log() { printf 'check-ansible: %s\n' "$*" >&2; }

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    log "needs Python >= 3.11 for ansible-core 2.19 (found: $("$python" --version 2>&1)); set PYTHON=/path/to/python3.11+"
    exit 1
fi

# The venv is rebuilt when the pins change; the stamp holds the pins it was built from.
stamp="$venv/.abn-stack-pins"
pins=$(cat "$ansible_dir/requirements.txt" "$ansible_dir/constraints.txt")
if [[ ! -x "$venv/bin/ansible-playbook" ]] || [[ "$(cat "$stamp" 2>/dev/null)" != "$pins" ]]; then
    log "installing $ansible_dir/requirements.txt into $venv"
    "$python" -m venv --clear "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        -r "$ansible_dir/requirements.txt" -c "$ansible_dir/constraints.txt"
    printf '%s' "$pins" >"$stamp"
fi

export PATH="$repo_root/$venv/bin:$PATH"
export ANSIBLE_CONFIG="$repo_root/$ansible_dir/ansible.cfg"
export ANSIBLE_NOCOLOR=1
# Keep ansible's temp and cache files inside the build directory.
export ANSIBLE_LOCAL_TEMP="$repo_root/build/ansible-tmp"
export ANSIBLE_HOME="$repo_root/build/ansible-home"

for env in "${envs[@]}"; do
    log "ansible-playbook --syntax-check (app_env=$env)"
    ansible-playbook "$ansible_dir/playbooks/app-deploy.yaml" --syntax-check -e "app_env=$env"
done

log "ansible-lint --offline --profile production"
(cd "$ansible_dir" && ansible-lint -c .ansible-lint --offline --profile production --nocolor)

log "pytest $ansible_dir/tests"
python -m pytest -p no:cacheprovider "$ansible_dir/tests"

#!/usr/bin/env bash
# Deploy rehearsal: the umbrella chart rendered for default, dev and prod values, and what the
# Ansible playbook's render path hands Helm for dev and prod, run the way Helm and a kubelet would
# on the Docker engine with the real images (deployment/rehearsal/README.md): hooks first, every
# pod with its exact environment, security context, volumes and limits, probes as the kubelet
# runs them, Services as names on a private network, then the checks a user makes after install
# and a SIGTERM rollout. Plus the rehearsal's own regressions (a container that exits, a probe on
# the wrong port, a bad value stopped by the config-check hook).
#
# Usage, from anywhere in the repository:  scripts/check-deploy.sh
# Where no Docker engine answers it prints SKIPPED with the reason and exits 77 (scripts/test
# reports the area as skipped). The images are scripts/build-images.sh's, shared with the
# containers area (the same commit gives the same images: cargo has nothing to build, the IDs stay).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

log() { printf 'check-deploy: %s\n' "$*" >&2; }

# shellcheck source=scripts/lib/engine.sh
source scripts/lib/engine.sh
need_engine check-deploy
log "engine $engine"

# shellcheck source=scripts/lib/venv.sh
source scripts/lib/venv.sh
need_python 3.10
# The chart checks' venv: the same renderer, plus the Docker SDK.
make_venv build/charts-venv deployment/helm/tests/requirements.txt kubernetes-validate

log "images (scripts/build-images.sh)"
scripts/build-images.sh >&2

log "the playbook's render path for dev and prod -> build/ansible-render/"
# shellcheck source=scripts/lib/ansible-env.sh
source scripts/lib/ansible-env.sh
for env in dev prod; do
    ansible-playbook "$ansible_dir/playbooks/app-deploy.yaml" -e "app_env=$env" --tags render \
        -e "render_output_dir=$repo_root/build/ansible-render" >/dev/null
done

log "pytest deployment/rehearsal"
# test_upgrade.py and test_release.py are the upgrade area's (scripts/check-upgrade.sh: the base
# release built, then make release).
build/charts-venv/bin/python -m pytest -p no:cacheprovider -v -s deployment/rehearsal \
    --ignore=deployment/rehearsal/test_upgrade.py --ignore=deployment/rehearsal/test_release.py

# shellcheck shell=bash
# The Ansible toolchain of the repository, for the areas that run the playbook (ansible, deploy):
# the venv build/ansible-venv from deployment/ansible/requirements.txt and constraints.txt (rebuilt
# when the pins change; the stamp holds them), on PATH, with ansible's config, temp and cache
# files inside build/. Source it from the repository root; needs a log function.
# shellcheck source=scripts/lib/venv.sh
source scripts/lib/venv.sh
need_python 3.11

venv=build/ansible-venv
ansible_dir=deployment/ansible
stamp="$venv/.abn-stack-pins"
pins=$(cat "$ansible_dir/requirements.txt" "$ansible_dir/constraints.txt")
if [[ ! -x "$venv/bin/ansible-playbook" ]] || [[ "$(cat "$stamp" 2>/dev/null)" != "$pins" ]]; then
    log "installing $ansible_dir/requirements.txt into $venv"
    "$python" -m venv --clear "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        -r "$ansible_dir/requirements.txt" -c "$ansible_dir/constraints.txt"
    printf '%s' "$pins" >"$stamp"
fi

export PATH="$PWD/$venv/bin:$PATH"
export ANSIBLE_CONFIG="$PWD/$ansible_dir/ansible.cfg"
export ANSIBLE_NOCOLOR=1
# Keep ansible's temp and cache files inside the build directory.
export ANSIBLE_LOCAL_TEMP="$PWD/build/ansible-tmp"
export ANSIBLE_HOME="$PWD/build/ansible-home"

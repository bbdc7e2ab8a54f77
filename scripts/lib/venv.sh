# shellcheck shell=bash
# make_venv DIR REQUIREMENTS PROBE: (re)builds the venv DIR from a fully pinned REQUIREMENTS file
# (installed with --no-deps, then `pip check`) when the pins changed or bin/PROBE is missing.
# The stamp DIR/.abn-stack-pins holds the pins it was built from, so areas share one venv.
# Needs a log function; need_python sets $python.

# need_python MAJOR.MINOR: $python (PYTHON, default python3) must be at least that version.
need_python() {
    python=${PYTHON:-python3}
    if ! "$python" -c "import sys; sys.exit(sys.version_info < tuple(map(int, '$1'.split('.'))))" 2>/dev/null; then
        log "needs Python >= $1 (found: $("$python" --version 2>&1)); set PYTHON=/path/to/python3"
        return 1
    fi
}

make_venv() {
    local venv=$1 requirements=$2 probe=$3
    local stamp="$venv/.abn-stack-pins"
    if [[ ! -x "$venv/bin/$probe" ]] || ! cmp -s "$requirements" "$stamp"; then
        log "installing $requirements into $venv"
        "$python" -m venv --clear "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$requirements"
        "$venv/bin/pip" check >/dev/null || { "$venv/bin/pip" check >&2; return 1; }
        cp "$requirements" "$stamp"
    fi
}

#!/usr/bin/env bash
# Helm chart check, offline, no cluster, no helm binary:
#   1. helm dependency build from the committed Chart.locks: the abn-common library into backend-api
#      and data-api, then those and the library into the umbrella (all file://),
#   1b. the values docs and shared schema are what deployment/helm/tools/values_docs.py writes
#      (README tables from the `# --` comments of values.yaml; fails on drift),
#   2. render the umbrella for default, dev and prod values, and dev plus every extension point
#      of the shared pod template (deployment/helm/tests/values/extensions.yaml), and prod with
#      health-check's direct alerting (deployment/helm/tests/values/alerting.yaml), and prod with
#      data-api's scheduled backup (deployment/helm/tests/values/backup.yaml), and prod with traces
#      on (deployment/helm/tests/values/otel.yaml: global.otel and the collector's egress), with
#      helm-python-sdk (Helm's Go SDK) into build/charts/rendered/<env>.yaml,
#   3. kubernetes-validate --strict of every rendered object for Kubernetes 1.30 and 1.37
#      (the oldest and newest supported; kubernetes-validate 1.37.0 ships 1.25..1.37),
#   4. checkov on the rendered manifests: 0 failed checks (exceptions are in-template
#      checkov.io/skipN annotations, each with its reason),
#   5. pytest deployment/helm/tests: helm lint --strict --with-subcharts per environment and
#      Kubernetes version, the render assertions, schema rejections, every rendered container's
#      environment through its binary's --check-config, and the monitoring/ rules and
#      dashboard sanity (YAML/JSON parse, balanced PromQL, only exposed metric names).
#
# Usage, from anywhere in the repository:  scripts/check-charts.sh
# Creates (or reuses, when their pins are unchanged) the venvs build/charts-venv and
# build/checkov-venv (checkov pins many libraries of its own, so it lives apart).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

tests=deployment/helm/tests
umbrella=deployment/helm/abn-stack
out=build/charts/rendered
kube_versions=(1.30.0 1.37.0)

log() { printf 'check-charts: %s\n' "$*" >&2; }

# shellcheck source=scripts/lib/venv.sh
source scripts/lib/venv.sh
need_python 3.10
make_venv build/charts-venv "$tests/requirements.txt" kubernetes-validate
make_venv build/checkov-venv "$tests/requirements-checkov.txt" checkov
py=build/charts-venv/bin/python

log "helm dependency build $umbrella"
"$py" -c "import sys; sys.path.insert(0, '$tests'); import render; render.build_dependencies('$umbrella')"

log "values docs and shared schema (deployment/helm/tools/values_docs.py --check)"
"$py" deployment/helm/tools/values_docs.py --check

rm -rf "$out" && mkdir -p "$out"
for env in default dev prod extensions alerting backup otel; do
    args=(--no-dependency-build --release abn-stack)
    if [[ $env == default ]]; then
        args+=(--namespace abn-stack)
    elif [[ $env == extensions ]]; then
        args+=(--namespace abn-stack-dev -f deployment/configuration/dev/values.yaml -f "$tests/values/extensions.yaml")
    elif [[ $env == alerting ]]; then
        args+=(--namespace abn-stack-prod -f deployment/configuration/prod/values.yaml -f "$tests/values/alerting.yaml")
    elif [[ $env == backup ]]; then
        args+=(--namespace abn-stack-prod -f deployment/configuration/prod/values.yaml -f "$tests/values/backup.yaml")
    elif [[ $env == otel ]]; then
        args+=(--namespace abn-stack-prod -f deployment/configuration/prod/values.yaml -f "$tests/values/otel.yaml")
    else
        args+=(--namespace "abn-stack-$env" -f "deployment/configuration/$env/values.yaml")
    fi
    log "render $env"
    "$py" "$tests/render.py" "${args[@]}" >"$out/$env.yaml"
    log "  $(grep -c '^kind:' "$out/$env.yaml") objects: $(grep '^kind:' "$out/$env.yaml" | sort | uniq -c | awk '{printf "%s %s, ", $1, $3}')"
done

for version in "${kube_versions[@]}"; do
    log "kubernetes-validate --strict -k $version"
    build/charts-venv/bin/kubernetes-validate --strict --quiet -k "$version" "$out"/*.yaml
done

log "checkov (kubernetes framework) on $out"
# --skip-download: no Prisma Cloud calls (no network here); the checks ship with the package.
build/checkov-venv/bin/checkov --directory "$out" --framework kubernetes --skip-download \
    --compact --quiet --output cli

# The render test hands every rendered container's environment to the real binaries'
# --check-config (test_check_config.py): build them (a no-op after the rust area).
log "cargo build --workspace --bins (the binaries the render test checks the charts against)"
cargo build --workspace --bins --locked --quiet

log "pytest $tests"
"$py" -m pytest -p no:cacheprovider "$tests"

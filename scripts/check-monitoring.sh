#!/usr/bin/env bash
# Monitoring checks with the real tools (Debian's prometheus 2.42 and prometheus-alertmanager
# 0.25; .ci/run installs them):
#   1. promtool check rules on monitoring/prometheus/abn-stack-rules.yaml and on the
#      PrometheusRule the umbrella chart renders from its copy,
#   2. promtool test rules monitoring/prometheus/tests/*.yaml (every alert fires after its for:,
#      stays silent at the edges),
#   3. pytest monitoring/tests: the live test (monitoring/README.md): the service binaries, a real
#      Prometheus scraping them every second with a derived copy of the rules, a real
#      Alertmanager; promtool check metrics on every classic /metrics page, target health, metadata
#      types, every dashboard panel's series after load, each feasible fault fired and resolved.
#
# Binaries: ABN_BIN_DIR, else the debug build of the rust and charts areas (kept current here).
# Exits 77 (skipped, with the reason) when promtool, prometheus or Alertmanager is missing.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
out=build/monitoring

log() { printf 'check-monitoring: %s\n' "$*" >&2; }

for tool in promtool prometheus prometheus-alertmanager; do
    if ! command -v "$tool" >/dev/null; then
        log "SKIPPED: $tool not found (apt-get install prometheus prometheus-alertmanager; .ci/run installs them)"
        exit 77
    fi
done

# shellcheck source=scripts/lib/venv.sh
source scripts/lib/venv.sh
need_python 3.10
# The charts area's venv (PyYAML, pytest, the Helm SDK for the render): shared, not rebuilt.
make_venv build/charts-venv deployment/helm/tests/requirements.txt kubernetes-validate
py=build/charts-venv/bin/python
rm -rf "$out" && mkdir -p "$out"

log "render the umbrella's PrometheusRule (monitoring.coreos.com/v1 available)"
"$py" deployment/helm/tests/render.py --release abn-stack --namespace abn-stack \
    --api-versions monitoring.coreos.com/v1/PrometheusRule >"$out/umbrella.yaml"
"$py" - "$out/umbrella.yaml" "$out/chart-rules.yaml" <<'EOF'
import sys, yaml
rules = [d for d in yaml.safe_load_all(open(sys.argv[1], encoding="utf-8")) if d and d["kind"] == "PrometheusRule"]
assert len(rules) == 1, f"expected one PrometheusRule, rendered {len(rules)}"
with open(sys.argv[2], "w", encoding="utf-8") as handle:
    yaml.safe_dump(rules[0]["spec"], handle, sort_keys=False)
EOF

log "promtool check rules (the shipped file, the chart's PrometheusRule)"
promtool check rules monitoring/prometheus/abn-stack-rules.yaml "$out/chart-rules.yaml"

log "promtool test rules monitoring/prometheus/tests/"
promtool test rules monitoring/prometheus/tests/*.yaml

if [[ -z ${ABN_BIN_DIR:-} ]]; then
    # The debug build, which cargo keeps current (a no-op after the rust area): a release build
    # left in target/static by an earlier image build may be of an older commit.
    log "cargo build --bins (debug)"
    cargo build --workspace --bins --locked --quiet
    ABN_BIN_DIR=target/debug
fi
ABN_BIN_DIR=$(cd "$ABN_BIN_DIR" && pwd)
export ABN_BIN_DIR
log "live test with the binaries in $ABN_BIN_DIR"
rc=0
"$py" -m pytest -p no:cacheprovider -q monitoring/tests || rc=$?
[[ -f $out/report.md ]] && cat "$out/report.md"
exit "$rc"

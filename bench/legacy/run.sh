#!/usr/bin/env bash
# Starts one legacy app under gunicorn with sync workers, as the legacy containers did.
#
#   bench/legacy/run.sh APP [PORT] [WORKERS]    APP: backend_api or data_api; PORT 5000,
#                                               WORKERS 4 (the legacy containers' -w 4)
#   INSTALL_ONLY=1 bench/legacy/run.sh          only make the venv
#
# Environment: VENV (default build/baseline-venv in the repository), HOST (127.0.0.1),
# LOG_DIR and SIMULATED_DELAY_SCALE (read by the apps).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${VENV:-$HERE/../../build/baseline-venv}"
STAMP="$VENV/.legacy-requirements"

# (Re)make the venv when it is missing or its pins changed.
if [ ! -x "$VENV/bin/gunicorn" ] || ! cmp -s "$HERE/requirements.txt" "$STAMP"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
  cp "$HERE/requirements.txt" "$STAMP"
fi
[ "${INSTALL_ONLY:-0}" = 1 ] && exit 0

APP="${1:?usage: bench/legacy/run.sh APP [PORT] [WORKERS]}"
PORT="${2:-5000}"
WORKERS="${3:-4}"
case "$APP" in
  backend_api|data_api) ;;
  *) echo "bench/legacy/run.sh: unknown app $APP (backend_api or data_api)" >&2; exit 2 ;;
esac
exec "$VENV/bin/gunicorn" --chdir "$HERE" -w "$WORKERS" -b "${HOST:-127.0.0.1}:$PORT" "$APP:app"

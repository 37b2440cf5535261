#!/usr/bin/env bash
# Set up a virtualenv with the core and every vendor plugin, then run `smsgate demo`:
# each vendor against its simulator on 127.0.0.1, send then delivery report.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
"$PYTHON" -m venv "$VENV"
log="$VENV/install.log"
install() {  # pip's and the build backend's chatter goes to $log; shown only when it fails
  "$VENV/bin/python" -m pip install --disable-pip-version-check "$@" >>"$log" 2>&1 \
    || { cat "$log" >&2; echo "install failed (log: $log)" >&2; exit 1; }
}
: >"$log"
echo "setting up $VENV (pip log: $log)" >&2
install --upgrade pip
install -e ".[serve]" \
  $(for p in plugins/*/; do [ -f "$p/pyproject.toml" ] && printf -- '-e %s ' "$p"; done)
exec "$VENV/bin/smsgate" demo "$@"

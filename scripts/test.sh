#!/usr/bin/env bash
# Set up a virtualenv with the core, every plugin and the test tools, then run every test.
#   PYTHON=python3.10 VENV=.venv-310 bash scripts/test.sh [pytest args]
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
install -e ".[test,serve,recipes]" \
  $(for p in plugins/*/ examples/*/; do [ -f "$p/pyproject.toml" ] && printf -- '-e %s ' "$p"; done)
exec "$VENV/bin/python" -m pytest "$@"

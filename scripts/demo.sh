#!/usr/bin/env bash
# Set up a virtualenv with the core and every vendor plugin, then run `smsgate demo`:
# each vendor against its simulator on 127.0.0.1, send then delivery report.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[serve]" \
  $(for p in plugins/*/; do [ -f "$p/pyproject.toml" ] && printf -- '-e %s ' "$p"; done)
exec "$VENV/bin/smsgate" demo "$@"

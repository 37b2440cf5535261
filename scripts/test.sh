#!/usr/bin/env bash
# Set up a virtualenv with the core, every plugin and the test tools, then run every test.
#   PYTHON=python3.10 VENV=.venv-310 bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[test,serve,recipes]" \
  $(for p in plugins/*/ examples/*/; do [ -f "$p/pyproject.toml" ] && printf -- '-e %s ' "$p"; done)
exec "$VENV/bin/python" -m pytest "$@"

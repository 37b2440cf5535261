#!/usr/bin/env bash
# Set up a virtualenv with the core, every plugin and the test tools, then run every test.
#   PYTHON=python3.10 VENV=.venv-310 bash scripts/test.sh [pytest args]
source "$(dirname "$0")/_setup.sh"
install -e ".[test,serve,recipes,metrics,otel,celery,speedups]" $(editable_tests plugins/*/ examples/*/)
exec "$VENV/bin/python" -m pytest "$@"

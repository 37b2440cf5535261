# Sourced by demo.sh and test.sh: make $VENV with $PYTHON and define `install`, which keeps pip's
# and the build backend's output in $VENV/install.log and shows it only when an install fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
"$PYTHON" -m venv "$VENV"
log="$VENV/install.log"
# Editable installs in setuptools' "compat" mode: a plain path in a .pth file per project. The
# default ("lenient") mode gives each plugin, whose package sits beside its tests, an import-hook
# finder module that every interpreter start loads (with pathlib, re and fnmatch): about 55 million
# instructions, more than `python -c pass` itself (docs/performance.md, "Start-up"). compat also puts
# the plugin's folder on sys.path, which exposes nothing importable but the package (tests/ has no
# __init__.py and no module of its own).
install() {
  "$VENV/bin/python" -m pip install --disable-pip-version-check --config-settings editable_mode=compat "$@" >>"$log" 2>&1 \
    || { cat "$log" >&2; echo "install failed (log: $log)" >&2; exit 1; }
}
: >"$log"
echo "setting up $VENV (pip log: $log)" >&2
install --upgrade pip
# every folder under $1... with a pyproject.toml, as `-e DIR` arguments
editable() { for p in "$@"; do [ -f "$p/pyproject.toml" ] && printf -- '-e %s ' "$p"; done; return 0; }
# the same, as `-e DIR[test]` for a folder that declares a `test` extra (its test-only dependencies)
editable_tests() {
  for p in "$@"; do
    [ -f "$p/pyproject.toml" ] || continue
    if grep -q '^test *=' "$p/pyproject.toml"; then printf -- '-e %s[test] ' "${p%/}"; else printf -- '-e %s ' "$p"; fi
  done
  return 0
}

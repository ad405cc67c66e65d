#!/usr/bin/env bash
# Build the JupyterLab extension (labextension/) into lvsal_nb/labextension/, which the wheel maps to
# share/jupyter/labextensions/lvsal-nb-labextension. Idempotent: npm ci only when the lock changed,
# a rebuild only when sources are newer than the output (FORCE=1 rebuilds anyway).
# Needs Node >= 18 and npm; jupyter-builder comes from $PYTHON's env (default .venv; jupyterlab >= 4.6
# depends on it, else it is pip-installed there).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY=$(command -v python3)
export PATH="$(dirname "$PY"):$PATH"
[ -x "$(dirname "$PY")/jupyter-builder" ] || "$PY" -m pip install -q "jupyter-builder>=1.2"

cd labextension
stamp=node_modules/.lvsal-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi

npm run --silent lint          # tsc --noEmit, strict, sources and tests
log=$(mktemp)
if npm test --silent >"$log" 2>&1; then grep -E '^# (pass|fail)' "$log"; else cat "$log"; exit 1; fi
rm -f "$log"

out="$ROOT/lvsal_nb/labextension/static/style.js"
newest_src=$(find src style package.json -type f -newer "$out" 2>/dev/null | head -1 || true)
if [ "${FORCE:-0}" = 1 ] || [ ! -f "$out" ] || [ -n "$newest_src" ]; then
  npm run --silent build:prod
fi
PYTHON="$PY" node scripts/copy-bokehjs.js  # (again: the kernel env's bokeh may have changed without a rebuild)
test -f "$ROOT/lvsal_nb/labextension/package.json"
echo "labextension built: $ROOT/lvsal_nb/labextension"

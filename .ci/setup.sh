#!/usr/bin/env bash
# Sets up everything from nothing, idempotently: .venv with the CPU torch wheel (before the project,
# so `torch>=2.4` adds nothing), the project's dependencies (notebook + dev extras), the JupyterLab
# extension build with its BokehJS copy (Node/npm, from apt where missing), the project (installed
# once), and (where apt works) Debian chromium + Playwright for the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
can_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }
apt_install() { DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv || { can_apt && apt_install python3-venv && rm -rf .venv && python3 -m venv .venv; }
fi
PY=.venv/bin/python
"$PY" -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
"$PY" -c "import torch" 2>/dev/null || "$PY" -m pip install -q torch==2.13.0 2>&1 | grep -v "^WARNING: Location" || true
"$PY" -c "import torch; print('torch', torch.__version__)"
# the dependencies first (notebook + dev extras), the project once, last: the extension build copies
# BokehJS from the installed bokeh into the build, and the install then carries the finished build
deps=$(mktemp)
"$PY" .ci/project_deps.py dev >"$deps"
"$PY" -m pip install -q -r "$deps" 2>&1 | grep -v "^WARNING: Location" || true
rm -f "$deps"
command -v npm >/dev/null 2>&1 || ! can_apt || apt_install nodejs npm || echo "could not install Node.js/npm"
if command -v npm >/dev/null 2>&1; then
  bash .ci/labextension.sh   # builds, then copies .venv's BokehJS into it (scripts/copy-bokehjs.js)
else
  echo "npm not found: skipping the JupyterLab extension build (install Node.js >= 18 to build it)"
fi
"$PY" -m pip install -q -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
"$PY" -c "import lvsal_nb; print('lvsal-nb', lvsal_nb.__version__)"
if can_apt; then
  bash .ci/browser-deps.sh || echo "browser test dependencies not installed; browser tests will skip"
fi

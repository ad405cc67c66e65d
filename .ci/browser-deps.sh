#!/usr/bin/env bash
# Browser-test dependencies: Debian chromium (+ fonts) and Python Playwright (driver only).
# Idempotent. Never runs `playwright install`: tests launch /usr/bin/chromium directly.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3

if ! command -v chromium >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core fonts-liberation >/dev/null
fi
chromium --version

"$PY" -c "import playwright" 2>/dev/null || "$PY" -m pip install -q "playwright>=1.45"
"$PY" -c "from importlib.metadata import version; print('playwright', version('playwright'))"

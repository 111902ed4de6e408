#!/usr/bin/env bash
# The project's test command: every notebook (one pytest test each, in a Jupyter kernel with the inline backend, every
# figure checked), the end-to-end tests in tests/, and, last, the browser tests (the static site and the μ explorer in
# JupyterLab, in headless Chromium; skipped when chromium is missing, unless CENTRIPETAL_BROWSER=1).
set -eo pipefail
cd "$(dirname "$0")/.."
# MPLBACKEND=Agg is for the test processes themselves: the notebook kernels (tools/nbexec.py, JupyterLab) drop it, so
# that notebooks run with the inline backend a reader gets.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} MPLBACKEND=Agg
# `bash scripts/test.sh` runs everything; `bash scripts/test.sh tests/test_browser.py [-k ...]` only the files given.
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  python -m pytest -q -p no:cacheprovider "$@"
else
  python -m pytest tests -q -p no:cacheprovider "$@"
fi

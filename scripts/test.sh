#!/usr/bin/env bash
# The project's test command: every notebook (nbdev tests, one process each) plus the end-to-end tests in tests/.
set -eo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} MPLBACKEND=Agg
python -m pytest tests -q -p no:cacheprovider "$@"

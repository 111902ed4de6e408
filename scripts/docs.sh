#!/usr/bin/env bash
# Build the static site of the project, offline: `bash scripts/docs.sh` -> _site/ (open _site/index.html).
# One page per notebook of nbs/, executed (reusing _build/executed/ from `bash scripts/test.sh` when it is up to date),
# the results pages, and an index in reading order. Options: --no-exec (fail instead of executing), --out DIR.
set -eo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
python tools/build_site.py "$@"

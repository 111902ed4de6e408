#!/usr/bin/env bash
# Prepares, HERE (where pip reaches a package index), the folder of wheels that benchmarks/gpu_check.sh installs on a
# bare, offline GPU machine: the distributions listed in benchmarks/gpu_wheels.txt (what the check imports beyond
# torch and torchvision), each at the version installed in this environment, as binary wheels for CPython 3.12 on
# manylinux x86-64 (the lent machines' Python) and for this interpreter's version (so that the check and its tests
# also install from the folder here). About 2 MB; the size of each wheel is listed. The folder is git-ignored (.whl/);
# the device tool takes it along with `carry: [".whl"]`.
#
#   bash benchmarks/gpu_wheels.sh                          # -> .whl/
#   bash benchmarks/gpu_wheels.sh --dest /tmp/w --python-version 3.11   # another folder, one Python version
set -u -o pipefail

die() { echo "gpu_wheels.sh: $1" >&2; exit "${2:-1}"; }
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$(command -v python || command -v python3)}"
DEST="$ROOT/.whl" VERSIONS=() LIMIT_MB=60
while [ $# -gt 0 ]; do
  case "$1" in
    --dest) DEST="$2"; shift 2 ;;
    --python-version) VERSIONS+=("$2"); shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) die "unknown option '$1' (see --help)" 2 ;;
  esac
done
if [ ${#VERSIONS[@]} -eq 0 ]; then
  VERSIONS=(3.12 "$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')")
fi
mkdir -p "$DEST" || die "cannot create $DEST"

# `distribution==version` for each line of gpu_wheels.txt: the version installed here, else the newest the index has
mapfile -t SPECS < <("$PY" - "$ROOT/benchmarks/gpu_wheels.txt" <<'EOF'
import sys, importlib.metadata as md
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].split()
    if not line: continue
    dist = line[1]
    try: print(f"{dist}=={md.version(dist)}")
    except md.PackageNotFoundError: print(dist)
EOF
) || die "cannot read benchmarks/gpu_wheels.txt"
[ ${#SPECS[@]} -gt 0 ] || die "benchmarks/gpu_wheels.txt lists no distribution"

PLATFORMS=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
         manylinux1_x86_64; do PLATFORMS+=(--platform "$p"); done
for v in $(printf '%s\n' "${VERSIONS[@]}" | sort -u); do
  echo "== wheels for CPython $v: ${SPECS[*]}"
  "$PY" -m pip download --quiet --no-deps --only-binary=:all: --implementation cp --python-version "$v" \
    "${PLATFORMS[@]}" -d "$DEST" "${SPECS[@]}" || die "pip download failed for Python $v"
done

echo "== $DEST"
total=0
for f in "$DEST"/*.whl; do
  [ -e "$f" ] || continue
  b=$(stat -c %s "$f"); total=$((total + b))
  printf '%10s  %s\n' "$(awk "BEGIN { printf \"%.2f MB\", $b / 1e6 }")" "$(basename "$f")"
done
printf '%10s  in all\n' "$(awk "BEGIN { printf \"%.2f MB\", $total / 1e6 }")"
[ "$total" -le $((LIMIT_MB * 1024 * 1024)) ] ||
  die "the wheels take more than $LIMIT_MB MiB: the device tool carries 64 MiB with the tree"

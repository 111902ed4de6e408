#!/usr/bin/env bash
# One call on a lent GPU machine (bare and offline: python and torch, not pycocotools nor the project's other
# dependencies) that measures what issue #21 asks of the GPU path, most important first, inside a 480-s budget.
#
# Before the stages (budget included): the INSTALL step, from a folder of wheels prepared here, where pip reaches an
# index, by `bash benchmarks/gpu_wheels.sh` (-> .whl/, ~3 MB, git-ignored; the device tool takes it along with
# carry: [".whl"]): whatever of benchmarks/gpu_wheels.txt does not import is installed with pip --no-index --no-deps
# into a folder of the work directory put on PYTHONPATH, then every module the stages use is imported; the package
# itself is this checkout, on PYTHONPATH (nothing is built). Then shapes images are generated for the stages.
#
#   #  stage (a subcommand of benchmarks/gpu_stages.py)                               limit
#   1  step: Hourglass-104 bf16 + channels_last, batch 6 x 511²: s/step, FLOPs of a      100 s
#      step counted with FlopCounterMode, % of the card's dense bf16 peak
#   2  step --compile: the same with the network torch.compile'd (compile timed apart)  160 s
#   3  sync: one step under torch.cuda.set_sync_debug_mode("warn"): the count, by line   50 s
#   4  deform: the deformable conv at 6 x 256 x 128x128, fp32 vs bf16 autocast: time,    50 s
#      max relative difference
#   5  loader: the training data loader at 511 px: images/s per worker                   50 s
#      + install <= 40 s (imports torch cold), data <= 10 s, report ~5 s: 465 s of the 480-s budget at most
# Each stage runs under min(its limit, what is left of --budget), so a slow stage cannot push the call past the budget;
# a stage that fails or times out is reported, and the next one runs.
#
# In --out (at most 4 files, as the device tool brings back 8): gpu_check.md (everything), benchmarks_section.md (the
# summary for results/benchmarks.md), stages.json (the figures) and logs.tar.gz (each stage's log). The work files
# (wheels installed, images, logs) go to --work (default: a temporary folder, removed at the end). On a GPU the report
# is also published into this checkout's results/ (results/utilisation/gpu_<card>.md + a section appended to
# results/benchmarks.md); after a run on a lent machine, publish the files it brought back here with --publish.
#
#   bash benchmarks/gpu_wheels.sh                               # here, once: the wheels -> .whl/
#   bash benchmarks/gpu_check.sh --out "$OUT"                   # on the GPU machine (device tool: carry [".whl"])
#   bash benchmarks/gpu_check.sh --publish /path/to/fetched/files   # here: into results/
#   bash benchmarks/gpu_check.sh --install-only --work DIR      # the install step alone (DIR/site kept)
#   bash benchmarks/gpu_check.sh --device cpu --tiny            # the same stages at tiny sizes on the CPU (< 60 s;
#                                                               # the compile stage with dynamo's eager backend)
set -u -o pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { echo "gpu_check.sh: $1" >&2; exit "${2:-1}"; }
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT_DIR="${OUT:-$ROOT/gpu_check_out}"
PY="${PYTHON:-$(command -v python || command -v python3)}"
DEVICE=cuda TINY=0 BUDGET=480 WORK="" KEEP_WORK=0 WHEELS="$ROOT/.whl" PUBLISH=auto PUBLISH_RUN=""
RESULTS="$ROOT/results" MODEL="" INSTALL_ONLY=0
ARGS=("$@")
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT_DIR="$2"; shift 2 ;;
    --work) WORK="$2"; KEEP_WORK=1; shift 2 ;;
    --device) DEVICE="$2"; shift 2 ;;
    --tiny) TINY=1; shift ;;
    --model) MODEL="$2"; shift 2 ;;
    --budget) BUDGET="$2"; shift 2 ;;
    --wheels) WHEELS="$2"; shift 2 ;;
    --no-publish) PUBLISH=0; shift ;;
    --install-only) INSTALL_ONLY=1; shift ;;
    --publish) PUBLISH_RUN="$2"; shift 2 ;;
    --results) RESULTS="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" 2 ;;
  esac
done
STAGES="$ROOT/benchmarks/gpu_stages.py"
if [ -n "$PUBLISH_RUN" ]; then
  exec "$PY" "$STAGES" publish --run "$PUBLISH_RUN" --results "$RESULTS"
fi
case "$DEVICE" in cuda|cpu) ;; *) die "--device must be cuda or cpu, got '$DEVICE'" 2 ;; esac
[[ "$BUDGET" =~ ^[0-9]+$ ]] || die "--budget takes a whole number of seconds" 2
[ -z "$MODEL" ] && { [ "$TINY" = 1 ] && MODEL=small || MODEL=hourglass104; }
case "$MODEL" in hourglass104|small) ;; *) die "--model must be hourglass104 or small, got '$MODEL'" 2 ;; esac

if [ "$INSTALL_ONLY" = 0 ]; then
  mkdir -p "$OUT_DIR" || die "cannot create --out $OUT_DIR"
  OUT_DIR="$(cd "$OUT_DIR" && pwd)"
fi
if [ -z "$WORK" ]; then WORK="$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")" || die "cannot make a work folder"
else mkdir -p "$WORK" || die "cannot create --work $WORK"; WORK="$(cd "$WORK" && pwd)"; fi
[ "$INSTALL_ONLY" = 1 ] && KEEP_WORK=1
[ "$KEEP_WORK" = 1 ] || trap 'rm -rf "$WORK"' EXIT
START=$(date +%s)
RESERVE=8                                         # seconds kept for the report (and a killed stage's grace period)
left() { echo $(( BUDGET - RESERVE - ($(date +%s) - START) )); }
STATUS_FILE="$WORK/status.tsv"; : >"$STATUS_FILE"

# ------------------------------------------------------------------------------------------------------- install
export PYTHONPATH="$WORK/site:$ROOT${PYTHONPATH:+:$PYTHONPATH}"   # the installed wheels, this checkout's package
export PYTHONNOUSERSITE=1
echo "== install: what $PY lacks, from $WHEELS (pip --no-index)"
if ! timeout 40 "$PY" "$STAGES" install --wheels "$WHEELS" --site "$WORK/site" >"$WORK/install.log" 2>&1; then
  cat "$WORK/install.log" >&2; die "the install step failed (above)"
fi
sed 's/^/   /' "$WORK/install.log"
if [ "$INSTALL_ONLY" = 1 ]; then
  echo "== install only: done; the stages run with PYTHONPATH=$PYTHONPATH"; exit 0
fi
if [ "$DEVICE" = cuda ] && ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  die "--device cuda but torch.cuda.is_available() is False; on a machine without a GPU use --device cpu --tiny"
fi

# ------------------------------------------------------------------------------------------------------- sizes
if [ "$TINY" = 1 ]; then
  SIZE=(--batch 2 --size 64); STEP=(--steps 1 --warmup 0 --peak-size 256); COMPILE_BACKEND=eager
  DEFORM=(--batch 1 --channels 16 --hw 16 --reps 1 --tiny); LOADER=(--size 128 --workers 0 1); N_IMAGES=8 IMG=128
else
  SIZE=(); STEP=(--steps 10 --warmup 2); COMPILE_BACKEND=inductor
  DEFORM=(); LOADER=(--size 511 --workers 0 1 4 8); N_IMAGES=96 IMG=511
fi
[ "$MODEL" = small ] && [ "$TINY" = 0 ] && SIZE=(--batch 8 --size 160)
THREADS=()
[ "$DEVICE" = cpu ] && THREADS=(--threads "$(nproc)")           # nproc honours OMP_NUM_THREADS
COMMON=(--device "$DEVICE" "${THREADS[@]}")
DATA="$WORK/shapes"
echo "== data: $N_IMAGES generated shapes images of $IMG px"
timeout 10 "$PY" -c "import sys; from centripetal.shapes import generate_shapes
generate_shapes(sys.argv[1], n_train=int(sys.argv[2]), n_val=0, size=int(sys.argv[3]), seed=0, progress=False)" \
  "$DATA" "$N_IMAGES" "$IMG" >"$WORK/data.log" 2>&1 || { cat "$WORK/data.log" >&2; die "generating the images failed"; }

# ------------------------------------------------------------------------------------------------------- stages
N=0
# run_stage KEY TITLE MAX_SECONDS CMD...: CMD under min(MAX_SECONDS, what is left of the budget); its Markdown and
# figures in $WORK/KEY.{md,json}, its output in $WORK/KEY.log; a line of $STATUS_FILE
run_stage() {
  local key="$1" title="$2" max="$3"; shift 3
  N=$((N + 1))
  local lim; lim=$(left); [ "$lim" -gt "$max" ] && lim=$max
  if [ "$lim" -lt 10 ]; then
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$N" "$key" "$title" "$max" "skipped: budget spent" "" >>"$STATUS_FILE"
    echo "== $N/5 $title: skipped (budget spent)"; return 1
  fi
  echo "== $N/5 $title (limit ${lim} s)"
  local t0 rc dt result; t0=$(date +%s.%N)
  timeout --kill-after=3 "$lim" "$@" --markdown "$WORK/$key.md" --json "$WORK/$key.json" >"$WORK/$key.log" 2>&1
  rc=$?
  dt=$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $t0 }")
  case $rc in
    0) result=ok ;;
    124|137) result="timed out after ${lim} s" ;;
    *) result="failed (exit $rc)" ;;
  esac
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$N" "$key" "$title" "$lim" "$result" "$dt" >>"$STATUS_FILE"
  echo "   $result in $dt s"; [ $rc = 0 ] || tail -n 5 "$WORK/$key.log" | sed 's/^/   /'
  return $rc
}
SHAPE="$([ "$TINY" = 1 ] && echo '1 x 16 x 16x16' || echo '6 x 256 x 128x128')"
run_stage step "$MODEL bf16 + channels_last: step time, % of dense bf16 peak" 100 \
  "$PY" "$STAGES" step "${COMMON[@]}" --model "$MODEL" --data "$DATA" "${SIZE[@]}" "${STEP[@]}"
run_stage compile "$MODEL bf16 + channels_last, torch.compile ($COMPILE_BACKEND)" 160 \
  "$PY" "$STAGES" step "${COMMON[@]}" --model "$MODEL" --data "$DATA" "${SIZE[@]}" "${STEP[@]}" --compile \
  --compile-backend "$COMPILE_BACKEND" --flops-from "$WORK/step.json"
run_stage sync "one $MODEL step under set_sync_debug_mode('warn')" 50 \
  "$PY" "$STAGES" sync "${COMMON[@]}" --model "$MODEL" --data "$DATA" "${SIZE[@]}"
run_stage deform "deformable conv $SHAPE: fp32 vs bf16 autocast" 50 \
  "$PY" "$STAGES" deform "${COMMON[@]}" "${DEFORM[@]}"
run_stage loader "data loader at ${LOADER[1]} px: images/s per worker" 50 \
  "$PY" "$STAGES" loader --data "$DATA" "${LOADER[@]}"

# ------------------------------------------------------------------------------------------------------- report
USED=$(( $(date +%s) - START ))
FLAGS="${ARGS[*]}"
"$PY" "$STAGES" report --work "$WORK" --out "$OUT_DIR" --status "$STATUS_FILE" --device "$DEVICE" \
  --flags "$FLAGS" --budget "$BUDGET" --used "$USED" || die "the report failed"
(cd "$WORK" && tar -czf "$OUT_DIR/logs.tar.gz" status.tsv $(ls -- *.log *.json 2>/dev/null))
if [ "$DEVICE" = cuda ] && [ "$PUBLISH" = auto ]; then
  "$PY" "$STAGES" publish --run "$OUT_DIR" --results "$RESULTS" | sed 's/^/   /'
fi
echo "== written $OUT_DIR/gpu_check.md ($(( $(date +%s) - START )) s of the ${BUDGET}-s budget)"
ls "$OUT_DIR"

#!/usr/bin/env bash
# One call on a lent GPU (under 10 minutes) that gives every figure issue #13 asks of it, as Markdown in OUT:
#   1. bench_utilisation.py: the small model (cpu profile, batch 8 × 160) in fp32 and bf16 autocast, and
#      Hourglass-104 (paper profile, batch 6 × 511) in bf16 autocast and fp32: FLOPs, achieved FLOP/s vs the same
#      run's matmul peak, the breakdown of a step and the share of step time in CUDA kernels;
#   2. a short small-model training: centripetal train --profile cpu --device cuda --max-steps N on freshly generated
#      shapes data (the 200 validation images are the profile's; fewer training images, which does not change speed);
#   3. the evaluation of the 200 validation images with the cpu profile's test settings (flip, masks), timed;
#   4. if time is left: Hourglass-104 bf16 with channels-last and cudnn.benchmark (what issue #13's item 2 would use).
# The stages run in order of priority (small fp32, Hourglass-104 bf16 then fp32, training, evaluation, small bf16,
# then 4.), each under what is left of --budget seconds, so a slow stage cannot push the whole call past the device's
# limit; a stage that fails or times out is reported and the next one runs. The data is generated in the background.
#
#   bash benchmarks/gpu_check.sh                        # on the GPU machine: writes $OUT (or ./gpu_check_out)
#   bash benchmarks/gpu_check.sh --out /tmp/gc --train-steps 400
#   bash benchmarks/gpu_check.sh --device cpu --tiny    # the same stages, tiny sizes, on the CPU (~80 s of CPU time)
#   bash benchmarks/gpu_check.sh --device cpu --tiny --with-hg104   # + Hourglass-104 fp32 at 2 × 128 (~4 min, 2 cores)
set -u -o pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { echo "gpu_check.sh: $1" >&2; exit "${2:-1}"; }
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT_DIR="${OUT:-$ROOT/gpu_check_out}"
PY="${PYTHON:-$(command -v python || command -v python3)}"
DEVICE=cuda TINY=0 WITH_HG104=auto BUDGET=540 TRAIN_STEPS=300
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT_DIR="$2"; shift 2 ;;
    --device) DEVICE="$2"; shift 2 ;;
    --tiny) TINY=1; shift ;;
    --with-hg104) WITH_HG104=1; shift ;;
    --no-hg104) WITH_HG104=0; shift ;;
    --budget) BUDGET="$2"; shift 2 ;;
    --train-steps) TRAIN_STEPS="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" 2 ;;
  esac
done
case "$DEVICE" in cuda|cpu) ;; *) die "--device must be cuda or cpu, got '$DEVICE'" 2 ;; esac
[[ "$BUDGET" =~ ^[0-9]+$ && "$TRAIN_STEPS" =~ ^[0-9]+$ ]] || die "--budget and --train-steps take whole numbers" 2
# Hourglass-104 on a CPU takes ~35-70 s per step even at batch 2 × 128: left out at --device cpu unless asked for
[ "$WITH_HG104" = auto ] && { [ "$DEVICE" = cuda ] && WITH_HG104=1 || WITH_HG104=0; }

export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"    # this checkout's package, whatever is installed
mkdir -p "$OUT_DIR" || die "cannot create --out $OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
START=$(date +%s)
CLI=("$PY" -c "import sys; from centripetal.cli import main; sys.exit(main(sys.argv[1:]))")

deps="torch, torchvision, yaml, pycocotools, PIL, centripetal.train, centripetal.evaluate"
if ! err=$("$PY" -c "import $deps" 2>&1); then
  die "$PY cannot import one of $deps ($(echo "$err" | tail -n 1)); install them (pip install -e .)"
fi
if [ "$DEVICE" = cuda ] && ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  die "--device cuda but torch.cuda.is_available() is False; on a machine without a GPU use --device cpu --tiny"
fi

left() { echo $(( BUDGET - ($(date +%s) - START) )); }
STATUS=()
# run_stage NAME MAX_SECONDS LOGFILE CMD...: CMD under min(MAX_SECONDS, what is left of the budget), output to LOGFILE
run_stage() {
  local name="$1" max="$2" logf="$3"; shift 3
  local lim; lim=$(left); [ "$lim" -gt "$max" ] && lim=$max
  if [ "$lim" -lt 10 ]; then
    STATUS+=("| $name | skipped: budget spent | |"); echo "== $name: skipped (budget spent)"; return 1
  fi
  echo "== $name (limit ${lim} s)"
  local t0 rc dt; t0=$(date +%s.%N)
  timeout --kill-after=10 "$lim" "$@" >"$logf" 2>&1; rc=$?
  dt=$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $t0 }")
  case $rc in
    0) STATUS+=("| $name | ok | $dt |") ;;
    124|137) STATUS+=("| $name | timed out after ${lim} s | $dt |") ;;
    *) STATUS+=("| $name | failed (exit $rc, see $(basename "$logf")) | $dt |") ;;
  esac
  echo "   exit $rc in $dt s"; tail -n 3 "$logf" | sed 's/^/   /'
  return $rc
}
# bench RUN_ID MAX_SECONDS LABEL ARGS...: a bench_utilisation.py stage writing utilisation_RUN_ID.{md,log}
bench() {
  local id="$1" max="$2" label="$3"; shift 3
  run_stage "utilisation: $label" "$max" "$OUT_DIR/utilisation_$id.log" "$PY" "$ROOT/benchmarks/bench_utilisation.py" \
    --device "$DEVICE" "$@" --markdown "$OUT_DIR/utilisation_$id.md"
}

if [ "$TINY" = 1 ]; then
  SMALL=(--batch 2 --size 64 --steps 1 --warmup 0 --profile-steps 1)
  HG=(--batch 2 --size 128 --steps 1 --warmup 0 --profile-steps 0)
  SHAPES=(--n-train 16 --n-val 8); TRAIN=(--max-steps 2 --batch-size 4); NVAL=8; TRAIN_STEPS=2
else
  SMALL=(--steps 10 --warmup 3 --profile-steps 3)
  HG=(--batch 6 --size 511 --steps 5 --warmup 2 --profile-steps 2)
  SHAPES=(--n-train 800 --n-val 200); TRAIN=(--max-steps "$TRAIN_STEPS"); NVAL=200
fi
[ "$DEVICE" = cpu ] && SMALL+=(--threads "$(nproc)")

# the data for training and evaluation, generated in the background while the GPU benchmarks run
DATA="$OUT_DIR/shapes"
"${CLI[@]}" shapes --out "$DATA" "${SHAPES[@]}" --no-progress >"$OUT_DIR/shapes.log" 2>&1 &
SHAPES_PID=$!

bench small_fp32 120 "small fp32" --model small --precision fp32 "${SMALL[@]}"
if [ "$WITH_HG104" = 1 ]; then
  if [ "$DEVICE" = cuda ]; then
    bench hourglass104_bf16 150 "hourglass104 bf16" --model hourglass104 --precision bf16 "${HG[@]}"
  else   # a CPU without bf16 units runs bf16 autocast ~20x slower than fp32 (results/benchmarks.md)
    STATUS+=("| utilisation: hourglass104 bf16 | left out on the CPU (fp32 only) | |")
  fi
  bench hourglass104_fp32 150 "hourglass104 fp32" --model hourglass104 --precision fp32 "${HG[@]}"
else
  STATUS+=("| utilisation: hourglass104 | left out on the CPU (--with-hg104: batch 2 × 128, fp32 only) | |")
fi

wait "$SHAPES_PID"; SHAPES_RC=$?
if [ "$SHAPES_RC" = 0 ]; then STATUS+=("| data: centripetal shapes ${SHAPES[*]} (in the background) | ok | |")
else STATUS+=("| data: centripetal shapes ${SHAPES[*]} | failed (exit $SHAPES_RC, see shapes.log) | |"); fi

TRAIN_OUT="$OUT_DIR/train_small"
if [ "$SHAPES_RC" = 0 ] && run_stage "train: small, cpu profile, $TRAIN_STEPS steps" 200 "$OUT_DIR/train.log" \
     "${CLI[@]}" train --profile cpu --device "$DEVICE" --data-root "$DATA" --out "$TRAIN_OUT" "${TRAIN[@]}" \
     --no-progress; then
  run_stage "evaluate: $NVAL val images (flip, masks)" 150 "$OUT_DIR/evaluate.log" \
    "${CLI[@]}" evaluate "$TRAIN_OUT/last.pt" --profile cpu --data-root "$DATA" --device "$DEVICE" \
    --out "$OUT_DIR/eval_small" --no-progress
fi
if [ "$DEVICE" = cuda ] || [ "$TINY" = 1 ]; then
  bench small_bf16 120 "small bf16" --model small --precision bf16 "${SMALL[@]}"
fi
# what item 2 of the issue would switch on (channels-last, cuDNN autotuning), if the budget still allows
if [ "$WITH_HG104" = 1 ] && [ "$DEVICE" = cuda ]; then
  bench hourglass104_bf16_cl 120 "hourglass104 bf16, channels-last + cudnn.benchmark" --model hourglass104 \
    --precision bf16 "${HG[@]}" --channels-last on --cudnn-benchmark --profile-steps 0
fi

# -------------------------------------------------------------------------------------------------------- the summary
{
  echo "# gpu_check.sh ($(date -u '+%Y-%m-%d %H:%M UTC'))"
  echo
  flags="--device $DEVICE$([ "$TINY" = 1 ] && echo ' --tiny')"
  echo "\`bash benchmarks/gpu_check.sh $flags\`, budget $BUDGET s, $(( $(date +%s) - START )) s used."
  echo
  "$PY" - "$DEVICE" <<'EOF'
import os, platform, sys, torch
cpu = platform.machine()
if os.path.exists("/proc/cpuinfo"):
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), cpu)
line = f"Machine: CPU {cpu} ({os.cpu_count()} cores), torch {torch.__version__}"
if sys.argv[1] == "cuda" and torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    line += f", CUDA {torch.version.cuda}, card {p.name} ({p.total_memory / 2**30:.0f} GiB)"
print(line + f"; 1-min load average {os.getloadavg()[0]:.2f} at the end.")
EOF
  echo
  echo "| stage | result | seconds |"
  echo "|---|---|---:|"
  printf '%s\n' "${STATUS[@]}"
  echo
  if [ -f "$OUT_DIR/train.log" ]; then
    echo "## Training (small model, cpu profile, --device $DEVICE)"
    echo
    echo '```'
    grep -E "trained to step|stopped at step" "$OUT_DIR/train.log" || echo "(no summary line: see train.log)"
    echo '```'
    echo
  fi
  if [ -f "$OUT_DIR/eval_small/metrics.json" ]; then
    echo "## Evaluation ($NVAL val images, the cpu profile's test settings)"
    echo
    "$PY" - "$OUT_DIR/eval_small/metrics.json" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
ap = ", ".join(f"{t} AP {100 * s['AP']:.1f}" for t, s in m["metrics"].items())
print(f"{m['images']} images, flip={m['flip']}: prediction {m['seconds']:.1f} s ({m['images_per_s']:.2f} images/s; "
      f"COCOeval not included, see the stage's seconds above for the whole command); {ap} "
      f"(a {m['step']}-step model: speed, not accuracy).")
EOF
    echo
  fi
  for run in small_fp32 hourglass104_bf16 hourglass104_fp32 small_bf16 hourglass104_bf16_cl; do
    f="$OUT_DIR/utilisation_$run.md"
    [ -f "$f" ] || continue
    echo; sed -n '/^## /,$p' "$f"
  done
} >"$OUT_DIR/gpu_check.md"
echo "== written $OUT_DIR/gpu_check.md ($(( $(date +%s) - START )) s)"
ls "$OUT_DIR"

#!/usr/bin/env bash
# The GPU recipe: one session (H100/H200) that trains srgan_x2, srgan_x4, srgan_x8 and fast_x2 at
# once on the broad training data (issue 13), optionally an SRGAN (stage 2) candidate for 2x, then
# benchmarks them.
#
# Data: `bash weights/train_gpu.sh prepare` (here, before the device call) lays out .data (git-ignored):
#   .data/real_train   the real pages of ../shared/data/scans and ../shared/data/colour, except
#                      the three scans with ground-truth text (8071_093.3B, phototest, linn)
#   .data/scans_eval   those three held-out scans
# Synthetic office documents are rendered by the trainer itself (srgan/training/synth.py): SYN pages
# in the training type families, body x-heights spread over LR 2.5..16 px, and HOF pages in the
# held-out families added to the evaluation (srgan/training/fonts.py). LR crops come from the
# `mix` degradation (bicubic, scan-like, RVL-CDIP-like bitonal scan + area downsampling).
#
# Each stage also writes its repository checkpoint (G + optimiser + EMA, no D) to
# $RUN/checkpoints/<name>/checkpoint.pt; they come back packed, for weights/checkpoints/.
# Resume from earlier ones with RESUME=1 (reads weights/checkpoints/<name>/checkpoint.pt when present).
#
# Results go to $OUT as a few .tgz files (the device tool returns at most 8 files).
# Dry run on a CPU (tiny steps, tiny networks, a few small pages): bash weights/train_gpu.sh dry
set -u
export PYTHONUNBUFFERED=1

if [ "${1:-}" = prepare ]; then  # run here, before the device call: lays out .data (git-ignored)
  rm -rf .data && mkdir -p .data/real_train .data/scans_eval
  for f in ../shared/data/scans/* ../shared/data/colour/*; do
    case $(basename "$f") in
      8071_093.3B.*|phototest.*|linn.*) cp "$f" .data/scans_eval/ ;;
      *.txt|*.md) ;;
      *) cp "$f" .data/real_train/ ;;
    esac
  done
  exit 0
fi
if [ "${1:-}" = dry ]; then  # the whole recipe on the CPU in a minute or two: every stage, tiny
  export T2=8 T4=8 T8=8 TF=8 TG=8 GAN=1 GAN_PRE_STEPS=3 BATCH=2 WORKERS=0 DEVICE=cpu NUM_FEAT=4 NUM_BLOCK=1
  export SYN=3 HOF=1 MAX_SIDE=400 DRY=1 BENCH=0 OUT=${OUT:-/tmp/train_gpu_dry} PY=${PY:-python3}
  [ -d .data/real_train ] || { echo "dry run: run 'bash weights/train_gpu.sh prepare' first"; exit 2; }
fi
OUT=${OUT:-/tmp/gpu-out}
PY=${PY:-python3}
T2=${T2:-270} T4=${T4:-270} T8=${T8:-270} TF=${TF:-200} TG=${TG:-120} GAN=${GAN:-0} GAN_PRE_STEPS=${GAN_PRE_STEPS:-6000}
BATCH=${BATCH:-32} WORKERS=${WORKERS:-3} DEVICE=${DEVICE:-cuda}
NUM_FEAT=${NUM_FEAT:-64} NUM_BLOCK=${NUM_BLOCK:-16}
SYN=${SYN:-240} HOF=${HOF:-8} MAX_SIDE=${MAX_SIDE:-2400} DRY=${DRY:-0} BENCH=${BENCH:-1} RESUME=${RESUME:-0}
RUN=runs/gpu
W=$RUN/weights
mkdir -p "$OUT" "$W"

{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1; \
  $PY -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"; } \
  > "$RUN/machine.txt" 2>&1

real=(.data/real_train)
eval_data=(.data/scans_eval)
if [ "$DRY" = 1 ]; then  # the smallest training page and phototest: the dry run checks the wiring, not the data
  rm -rf .data/dry_train .data/dry_eval && mkdir -p .data/dry_train .data/dry_eval
  cp "$(ls -S .data/real_train/* | tail -n 1)" .data/dry_train/ && cp .data/scans_eval/phototest.tif .data/dry_eval/
  real=(.data/dry_train) eval_data=(.data/dry_eval)
fi
common=(--data "${real[@]}" --eval-data "${eval_data[@]}" --synthetic-pages "$SYN" --held-out-family-pages "$HOF"
        --synthetic-max-side "$MAX_SIDE" --workers "$WORKERS" --batch-size "$BATCH" --weights-dir "$W"
        --device "$DEVICE" --save-every 2000 --eval-every 1000 --lr-schedule cosine)  # cosine over each --max-seconds

pack() {  # pack a finished stage so partial results come back even if a later stage runs out of time
  local name=$1; shift
  tar czf "$OUT/$name.tgz" "$@" 2>/dev/null || true
}

stage() {  # name, weights name, then srgan.training arguments
  local name=$1 wname=$2; shift 2
  local resume=()
  if [ "$RESUME" = 1 ] && [ -f "weights/checkpoints/$wname/checkpoint.pt" ]; then
    resume=(--resume "weights/checkpoints/$wname/checkpoint.pt")
  fi
  echo "== $name $(date -u +%T) ${resume[*]}"
  $PY -m srgan.training "${common[@]}" "${resume[@]}" --keep-checkpoint "$RUN/checkpoints/$wname" \
    --weights-name "$wname" "$@" > "$RUN/$name.log" 2>&1
  echo "   $name rc=$? $(date -u +%T)"; tail -n 3 "$RUN/$name.log"
}

# The trainings share the GPU at once: one small generator leaves most of an H100/H200 idle.
stage x2 srgan_x2 --pretrain-steps 1000000 --scale 2 --crop 96 --max-seconds "$T2" \
  --num-feat "$NUM_FEAT" --num-block "$NUM_BLOCK" --out "$RUN/x2" &
stage x4 srgan_x4 --pretrain-steps 1000000 --scale 4 --crop 128 --max-seconds "$T4" \
  --num-feat "$NUM_FEAT" --num-block "$NUM_BLOCK" --out "$RUN/x4" &
stage x8 srgan_x8 --pretrain-steps 1000000 --scale 8 --crop 192 --max-seconds "$T8" \
  --num-feat "$NUM_FEAT" --num-block "$NUM_BLOCK" --out "$RUN/x8" &
stage fast fast_x2 --pretrain-steps 1000000 --scale 2 --crop 96 --max-seconds "$TF" --num-feat 16 --num-block 4 \
  --out "$RUN/fast" &
if [ "$GAN" = 1 ]; then  # SRGAN: its own stage 1 (capped by steps and time), then stage 2 for TG s; a candidate only
  stage x2gan srgan_x2_gan --scale 2 --crop 96 --max-seconds "$TG" --num-feat "$NUM_FEAT" --num-block "$NUM_BLOCK" \
    --pretrain-steps "$GAN_PRE_STEPS" --gan-steps 1000000 --out "$RUN/x2gan" --no-promote &
fi
wait
pack x2 "$W"/srgan_x2.* "$RUN"/x2.log "$RUN"/x2/losses.* "$RUN"/machine.txt "$RUN"/checkpoints/srgan_x2
pack x4 "$W"/srgan_x4.* "$RUN"/x4.log "$RUN"/x4/losses.* "$RUN"/checkpoints/srgan_x4
pack x8 "$W"/srgan_x8.* "$RUN"/x8.log "$RUN"/x8/losses.* "$RUN"/checkpoints/srgan_x8
pack fast "$W"/fast_x2.* "$RUN"/fast.log "$RUN"/fast/losses.* "$RUN"/checkpoints/fast_x2
[ "$GAN" = 1 ] && pack gan "$RUN"/x2gan/srgan_x2_gan.* "$RUN"/x2gan.log "$RUN"/x2gan/losses.*

if [ "$BENCH" = 1 ]; then
  echo "== bench $(date -u +%T)"
  cp "$W"/*.pt "$W"/*.json weights/ 2>/dev/null
  timeout 70 $PY -m srgan.bench --device "$DEVICE" --models srgan_x2,fast_x2,srgan_x4,srgan_x8 --pages 16 \
    --cases model,pipeline,naive --json "$RUN/bench.json" > "$RUN/bench.log" 2>&1
  timeout 40 $PY -m srgan.bench --device "$DEVICE" --models srgan_x2 --pages 32 --tile 256 --batch-size 32 \
    --cases model,pipeline --json "$RUN/bench_big.json" > "$RUN/bench_big.log" 2>&1
  pack bench "$RUN"/bench*.json "$RUN"/bench*.log "$RUN"/machine.txt
fi
echo "== done $(date -u +%T)"

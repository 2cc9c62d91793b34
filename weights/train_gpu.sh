#!/usr/bin/env bash
# The recipe behind the shipped weights: one GPU session (H100/H200, ~9 minutes) that trains
# srgan_x2, srgan_x4, fast_x2 and an SRGAN (stage 2) candidate for 2x at once, then benchmarks them.
#
# Data (git-ignored, copied in before the run): .data/scans_train (13 real 300 dpi scans from
# ../shared/data/scans), .data/scans_eval (3 held-out scans with ground-truth text: 8071_093.3B,
# phototest, linn) and .data/synth (24 synthetic 300 dpi pages from srgan.sample.synthetic_page).
#
# Results go to $OUT as a few .tgz files (the device tool returns at most 8 files).
# Dry run on a CPU: T2=5 T4=5 TF=5 TG=5 GAN_PRE_STEPS=3 BATCH=2 WORKERS=1 DEVICE=cpu NUM_FEAT=8 NUM_BLOCK=1 OUT=/tmp/o bash weights/train_gpu.sh
set -u
export PYTHONUNBUFFERED=1

if [ "${1:-}" = prepare ]; then  # run here, before the device call: lays out .data (git-ignored)
  rm -rf .data && mkdir -p .data/scans_train .data/scans_eval .data/synth
  for f in ../shared/data/scans/*; do
    case $(basename "$f") in
      8071_093.3B.*|phototest.*|linn.*) cp "$f" .data/scans_eval/ ;;
      *.txt) ;;
      *) cp "$f" .data/scans_train/ ;;
    esac
  done
  ${PY:-.venv/bin/python} -c "
from PIL import Image
from srgan.sample import synthetic_page
for i in range(24):
    img, _ = synthetic_page(1000 + i, dpi=300)
    Image.fromarray(img).save(f'.data/synth/synth_{i:03d}.png', dpi=(300, 300))
"
  exit 0
fi
OUT=${OUT:-/tmp/gpu-out}
PY=${PY:-python3}
T2=${T2:-270} T4=${T4:-270} TF=${TF:-200} TG=${TG:-120} GAN_PRE_STEPS=${GAN_PRE_STEPS:-6000}
BATCH=${BATCH:-32} WORKERS=${WORKERS:-3} DEVICE=${DEVICE:-cuda}
NUM_FEAT=${NUM_FEAT:-64} NUM_BLOCK=${NUM_BLOCK:-16}
RUN=runs/gpu
W=$RUN/weights
mkdir -p "$OUT" "$W"

{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1; \
  $PY -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"; } \
  > "$RUN/machine.txt" 2>&1

common=(--data .data/scans_train .data/synth --eval-data .data/scans_eval --synthetic-pages 0
        --workers "$WORKERS" --batch-size "$BATCH" --weights-dir "$W" --device "$DEVICE" --save-every 2000
        --eval-every 1000 --lr-schedule cosine)  # cosine to lr_min over each stage's --max-seconds

pack() {  # pack a finished stage so partial results come back even if a later stage runs out of time
  local name=$1; shift
  tar czf "$OUT/$name.tgz" "$@" 2>/dev/null || true
}

stage() {  # name, then srgan.training arguments
  local name=$1; shift
  echo "== $name $(date -u +%T)"
  $PY -m srgan.training "${common[@]}" "$@" > "$RUN/$name.log" 2>&1
  echo "   $name rc=$? $(date -u +%T)"; tail -n 3 "$RUN/$name.log"
}

# The four trainings share the GPU at once: one small generator leaves most of an H100/H200 idle.
stage x2 --pretrain-steps 1000000 --scale 2 --crop 96 --text-height 9.5 --max-seconds "$T2" --num-feat "$NUM_FEAT" --num-block "$NUM_BLOCK" \
  --out "$RUN/x2" --weights-name srgan_x2 &
stage x4 --pretrain-steps 1000000 --scale 4 --crop 128 --text-height 4.75 --max-seconds "$T4" --num-feat "$NUM_FEAT" --num-block "$NUM_BLOCK" \
  --out "$RUN/x4" --weights-name srgan_x4 &
stage fast --pretrain-steps 1000000 --scale 2 --crop 96 --text-height 9.5 --max-seconds "$TF" --num-feat 32 --num-block 4 \
  --out "$RUN/fast" --weights-name fast_x2 &
# SRGAN: its own stage 1 (capped by steps and time), then stage 2 for TG seconds; a candidate only.
stage x2gan --scale 2 --crop 96 --text-height 9.5 --max-seconds "$TG" --num-feat "$NUM_FEAT" --num-block "$NUM_BLOCK" \
  --pretrain-steps "$GAN_PRE_STEPS" --gan-steps 1000000 --out "$RUN/x2gan" --weights-name srgan_x2_gan --no-promote &
wait
pack x2 "$W"/srgan_x2.* "$RUN"/x2.log "$RUN"/x2/losses.* "$RUN"/machine.txt
pack x4 "$W"/srgan_x4.* "$RUN"/x4.log "$RUN"/x4/losses.*
pack fast "$W"/fast_x2.* "$RUN"/fast.log "$RUN"/fast/losses.*
pack gan "$RUN"/x2gan/srgan_x2_gan.* "$RUN"/x2gan.log "$RUN"/x2gan/losses.*

echo "== bench $(date -u +%T)"
cp "$W"/*.pt "$W"/*.json weights/ 2>/dev/null
timeout 70 $PY -m srgan.bench --device "$DEVICE" --models srgan_x2,fast_x2,srgan_x4 --pages 16 \
  --cases model,pipeline,naive --json "$RUN/bench.json" > "$RUN/bench.log" 2>&1
timeout 40 $PY -m srgan.bench --device "$DEVICE" --models srgan_x2 --pages 32 --tile 256 --batch-size 32 \
  --cases model,pipeline --json "$RUN/bench_big.json" > "$RUN/bench_big.log" 2>&1
timeout 60 $PY -m srgan.bench --device "$DEVICE" --models srgan_x2 --pages 32 --tile 256 --batch-size 32 \
  --compile --cases model --json "$RUN/bench_compile.json" > "$RUN/bench_compile.log" 2>&1
pack bench "$RUN"/bench*.json "$RUN"/bench*.log "$RUN"/machine.txt
echo "== done $(date -u +%T)"

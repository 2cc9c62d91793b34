#!/usr/bin/env bash
# The GPU proof of the throughput targets (issue 14): run it as it is in a session with a GPU
# (H100/H200; about 6 minutes, most of it torch.compile). Nothing to prepare: it generates its pages.
#   model-only >= 150 pages/s, pipeline >= 100 pages/s, >= 5x naive, 1000x768 pages at 2x.
# Each step: python -m srgan.bench, rows in $OUT/<step>.json, its log in $OUT/<step>.log.
#   eager    srgan_x2 and fast_x2, bf16, 256 px tiles in batches of 32: model, pipeline, naive
#   compile  the same with torch.compile (model, pipeline)
#   graphs   torch.compile mode reduce-overhead: CUDA graphs (model, pipeline)
# The pipeline rows spread the CPU stages over the host's cores (engine.cpu_workers 0 = one per core
# less one) and give cpu_ms_per_page per stage and cpu_bound_pages_per_s.
# Dry run on a CPU (tiny sizes, a minute):
#   DEVICE=cpu PAGES=2 SIZE=160x120 TILE=64 BATCH=2 MODELS=fast_x2 OUT=/tmp/gpu-dry bash weights/bench_gpu.sh
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu-bench}
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda} PAGES=${PAGES:-256} SIZE=${SIZE:-1000x768} MODELS=${MODELS:-srgan_x2,fast_x2}
TILE=${TILE:-256} BATCH=${BATCH:-32} STEP_S=${STEP_S:-170}
mkdir -p "$OUT"

{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1; echo "cores: $(nproc)"; \
  lscpu 2>/dev/null | grep 'Model name'; \
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; } > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"

step() {  # name, then python -m srgan.bench arguments
  local name=$1; shift
  echo "== $name $(date -u +%T)"
  timeout "$STEP_S" $PY -m srgan.bench --device "$DEVICE" --models "$MODELS" --size "$SIZE" --pages "$PAGES" \
    --tile "$TILE" --batch-size "$BATCH" "$@" --json "$OUT/$name.json" > "$OUT/$name.log" 2>&1
  echo "   $name rc=$? $(date -u +%T)"; grep -E '^(model|pipeline|naive)' "$OUT/$name.log" | sed 's/^/   /'
}

step eager --cases model,pipeline,naive
step compile --compile --cases model,pipeline
step graphs --cuda-graphs --cases model,pipeline
echo "== done $(date -u +%T)"

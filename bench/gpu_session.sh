#!/usr/bin/env bash
# The GPU measurements still open for issue #6, in the order that answers the most first, within a lent machine's
# 30 minutes (about 12 on an H100). Run it there from the repository root, carrying the wheels the machine lacks:
#
#     run(command='bash bench/gpu_session.sh "$OUT"', carry=[".cache/gpu-wheels"])
#
# Appends every JSON line, tagged with the step's name, to $1/gpu-<date>.jsonl (default bench/results/).
set -euo pipefail
out=${1:-bench/results}
mkdir -p "$out"
site=/tmp/site
if ! python3 -c "import FlagEmbedding" 2>/dev/null; then
  python3 -m pip install --quiet --no-index --no-deps --target "$site" .cache/gpu-wheels/*.whl
fi
export PYTHONPATH="$site:$PWD" HF_HUB_OFFLINE=1
file="$out/gpu-$(date -u +%F).jsonl"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

step() {  # step NAME SCRIPT ARGS...: run one benchmark, tag its JSON lines with NAME
  local name=$1
  shift
  echo "== $name" >&2
  timeout 900 python3 "$@" | python3 -c '
import json, sys
for line in sys.stdin:
    if line.startswith("{"):
        print(json.dumps({**json.loads(line), "run_note": sys.argv[1]}), flush=True)
' "$name" | tee -a "$file"
}

# 1. Training: packed studio vs FlagEmbedding (the 2x target), then the default (length chunks, joint pass).
step "train, studio packed vs FlagEmbedding" bench/train_throughput.py --bf16 --batch 8 --group 8 --steps 50 \
  --warmup 6 --packing on
step "train, studio default (chunks + joint pass)" bench/train_throughput.py --bf16 --batch 8 --group 8 --steps 50 \
  --warmup 6 --impl studio
# 2. Encoding: default (background tokenization), then packed (the 1.5x dense target).
step "encode, studio default" bench/encode_throughput.py --fp16
step "encode, studio packed" bench/encode_throughput.py --fp16 --packing on --tasks m3_dense,m3_all
# 3. Memory: batch 32 packed with activation checkpointing (must stay within 80 GB).
step "train, batch 32 packed, checkpointing" bench/train_throughput.py --bf16 --batch 32 --group 8 --steps 12 \
  --warmup 3 --impl studio --packing on --checkpointing
echo "wrote $file" >&2

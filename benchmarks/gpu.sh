#!/usr/bin/env bash
# GPU timings at Llama-2-7B shape with random weights (no download): full (flash-attn when installed) vs
# window vs LongHeads. Peak memory is torch.cuda.max_memory_allocated.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-docs/eval}
longdoc bench --shape llama2-7b --device cuda --methods full,window,longheads --lengths 4k,8k,16k,32k,64k \
  --set chunk_size=256 --set chunks=16 --max-full-length 65536 --decode-tokens 32 \
  --json "$OUT/bench-llama2-7b-gpu.json" --png "$OUT/bench-llama2-7b-gpu.png"
python benchmarks/tables.py "$OUT/bench-llama2-7b-gpu.json"

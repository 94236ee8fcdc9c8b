#!/usr/bin/env bash
# Window and chunk size vs accuracy, hit rate, prefill and decode time: the table the default is chosen from.
# Each variant is a method label, so all of them land side by side in one JSON and one table.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2}
OUT=${OUT:-docs/eval}
LENGTHS=${LENGTHS:-8k,16k,32k}
VARIANTS='window,longheads[chunk_size=128,chunks=8],longheads[chunk_size=128,chunks=16],longheads[chunk_size=256,chunks=8],longheads[chunk_size=256,chunks=16],longheads[chunk_size=512,chunks=8],longheads[score=keybound],paper'
longdoc eval passkey --threads "$THREADS" --methods "$VARIANTS" --lengths "$LENGTHS" --trials 10 \
  --json "$OUT/tradeoff-passkey.json" --png "$OUT/tradeoff-passkey.png"
longdoc bench --threads "$THREADS" --methods "full,$VARIANTS" --lengths "$LENGTHS" --max-full-length 16384 \
  --decode-tokens 16 --json "$OUT/tradeoff-bench.json" --png "$OUT/tradeoff-bench.png"
python benchmarks/tables.py "$OUT/tradeoff-passkey.json" "$OUT/tradeoff-bench.json"

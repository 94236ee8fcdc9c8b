"""How many torch threads prefill and decode want, on an idle and on a loaded machine.

    python benchmarks/threads.py --length 8192 --json docs/eval/threads.json

One LongHeads prefill of `--length` random tokens (the embedded model, default settings), then for each machine
state (idle; "loaded": one other process spinning on one core, as a laptop running a browser) and each thread
count (and auto, longdoc/threads.py): decode ms/token from that cache, and prefill s of a fresh
`--prefill-tokens` prompt. Conditions are
interleaved over `--rounds` rounds and the median is reported, so a burst of other work hits every condition
alike. Prints a table and writes JSON (with the machine record and the load average at the start).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch

from longdoc import threads
from longdoc.eval.machine import machine_info
from longdoc.generate import decode_one, prefill
from longdoc.longheads.config import LongHeadsConfig
from longdoc.longheads.patch import enable_longheads
from longdoc.models import load_model
from longdoc.prefix import new_cache

SPIN = "import time\nt = time.time()\nwhile time.time() - t < 3600: pass\n"


def decode_ms(model, cache, steps: int) -> float:
    start = cache.get_seq_length()
    tok = torch.tensor([[1234]])
    decode_one(model, cache, tok)  # warm-up at this thread count
    t0 = time.perf_counter()
    for i in range(steps):
        if i % threads.DECODE_EVERY == 0:
            threads.adapt()  # what generate.decode does (a no-op unless auto)
        decode_one(model, cache, tok)
    ms = (time.perf_counter() - t0) / steps * 1000
    cache.crop(start)  # the next condition decodes from the same context length
    return ms


def prefill_s(model, ids) -> float:
    t0 = time.perf_counter()
    prefill(model, new_cache(model), ids)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--length", type=int, default=8192, help="context the decode steps attend over")
    ap.add_argument("--prefill-tokens", type=int, default=1024, help="prompt of the timed prefills")
    ap.add_argument("--threads", default="1,2,auto", help="thread counts to compare (auto: longdoc/threads.py)")
    ap.add_argument("--steps", type=int, default=12, help="decode steps per measurement")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    counts = [x if x == "auto" else int(x) for x in args.threads.split(",")]
    top = max(c for c in counts if c != "auto") if any(c != "auto" for c in counts) else threads.allowed_cores()

    load_at_start = os.getloadavg()
    threads.use_fixed(top)
    model = load_model(None).model
    enable_longheads(model, LongHeadsConfig())
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(100, 40000, (1, args.length), generator=gen)
    cache = new_cache(model)
    prefill(model, cache, ids, exact_from=args.length - 1)
    short = torch.randint(100, 40000, (1, args.prefill_tokens), generator=gen)
    prefill(model, new_cache(model), short[:, :256])  # warm-up

    rows: dict[tuple[str, int], dict[str, list[float]]] = {}
    for _ in range(args.rounds):
        for state in ("idle", "loaded"):
            spin = subprocess.Popen([sys.executable, "-c", SPIN]) if state == "loaded" else None
            try:
                if spin:
                    time.sleep(0.5)
                for n in counts:
                    if n == "auto":
                        threads.use_fixed(top)
                        threads.enable_auto()  # starts its first interval now, with this machine state
                        time.sleep(0.5)
                    else:
                        threads.use_fixed(n)
                    r = rows.setdefault((state, n), {"decode_ms": [], "prefill_s": []})
                    r["decode_ms"].append(decode_ms(model, cache, args.steps))
                    r["prefill_s"].append(prefill_s(model, short))
            finally:
                if spin:
                    spin.kill()
                    spin.wait()
    threads.use_fixed(top)

    results = []
    print(f"context {args.length} tokens (LongHeads default), prefill of {args.prefill_tokens} tokens; "
          f"median of {args.rounds} rounds; load average at start {load_at_start[0]:.2f}")
    print(f"{'machine':8} {'threads':>7} {'decode ms/token':>16} {'prefill s':>10}")
    for (state, n), r in rows.items():
        d, p = statistics.median(r["decode_ms"]), statistics.median(r["prefill_s"])
        results.append({"machine_state": state, "threads": n, "decode_ms_per_token": round(d, 1),
                        "prefill_s": round(p, 2), "decode_ms_all": [round(x, 1) for x in r["decode_ms"]],
                        "prefill_s_all": [round(x, 2) for x in r["prefill_s"]]})
        print(f"{state:8} {str(n):>7} {d:>16.1f} {p:>10.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"task": "threads", "length": args.length, "prefill_tokens": args.prefill_tokens,
                       "rounds": args.rounds, "load_average_at_start": load_at_start, "machine": machine_info(),
                       "results": results}, f, indent=1)


if __name__ == "__main__":
    main()

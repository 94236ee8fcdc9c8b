"""Where LongHeads spends its time: torch.profiler over one prefill and a few decode steps on the embedded model.

    python benchmarks/profile_engine.py --length 8192 --threads 2            # prefill + decode, op table
    python benchmarks/profile_engine.py --length 4096 --set score=keybound   # any LongHeadsConfig override
    python benchmarks/profile_engine.py --length 8192 --full                 # the unpatched model, same prompt

Prints the prefill time, the decode time per token (timed without the profiler) and the top ops by self time.
Run it alone on the machine: the numbers are wall-clock.
"""

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from longdoc.longheads.config import LongHeadsConfig
from longdoc.eval.methods import parse_overrides
from longdoc.generate import decode_one, prefill
from longdoc.prefix import new_cache
from longdoc.models import load_model
from longdoc.longheads.patch import enable_longheads


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--length", type=int, default=8192)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--decode", type=int, default=16, help="decode steps timed after the prefill")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--full", action="store_true", help="profile the unpatched model instead")
    ap.add_argument("--rows", type=int, default=20)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    model = load_model(None).model
    cfg = None if args.full else LongHeadsConfig(**parse_overrides(args.overrides))
    if cfg is not None:
        enable_longheads(model, cfg)
    ids = torch.randint(100, model.config.vocab_size - 100, (1, args.length), generator=torch.Generator().manual_seed(0))
    prefill(model, new_cache(model), ids[:, :512])  # warm-up: first-call overheads out of the numbers

    cache = new_cache(model)
    exact_from = args.length - cfg.exact_tail if cfg is not None else None
    block = None if cfg is not None else args.length  # full attention: one plain forward, as `longdoc bench`
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        logits = prefill(model, cache, ids, exact_from=exact_from, block=block)
        prefill_s = time.perf_counter() - t0
    token = logits.argmax(-1, keepdim=True)
    decode_one(model, cache, token)
    t0 = time.perf_counter()
    for _ in range(args.decode):
        decode_one(model, cache, token)
    decode_ms = (time.perf_counter() - t0) / args.decode * 1000
    print(f"{'full' if cfg is None else cfg}\nlength {args.length}: prefill {prefill_s:.2f} s (profiled), "
          f"decode {decode_ms:.1f} ms/token (not profiled)")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()

"""Stored ingest size per stored format of keys and values (longdoc/store.py, KV_DTYPES), on the embedded model.

One document (default: the first ~8k tokens of README.md, in `ask`'s prompt frame) is prefilled ONCE; its cache
is then stored in each format (float32, bfloat16, float16, int8) and loaded back. Per format: the bytes of
cache.safetensors, bytes per 1k document tokens, the ratio to float32, the load time (checksum + read + convert
to the compute dtype; a shared machine: indicative only), and a short greedy answer (LongHeads decode, no
re-read) from the loaded cache against the live prefill's: the same tokens, and the largest logit difference
(teacher-forced on the live tokens).

    nice -n 19 python benchmarks/store_size.py                 # prints a table, writes docs/eval/store-size.json
    python benchmarks/store_size.py --tokens 2000 --out /tmp/s.json   # a quicker look
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from longdoc.engine import Engine
from longdoc.generate import decode_one, prefill
from longdoc.longheads.cache import LongHeadsCache
from longdoc.qa import prompting
from longdoc.store import KV_DTYPES, Store

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "What does the ingest store keep on disk?"
ORDER = ["float32", "bfloat16", "float16", "int8"]  # the table's rows: the reference first


def document(engine: Engine, path: Path, n_tokens: int) -> str:
    ids = engine.encode(path.read_text())
    if len(ids) < n_tokens:
        raise SystemExit(f"{path} has only {len(ids):,} tokens; give --tokens {len(ids)} or another --file")
    return engine.tokenizer.decode(ids[:n_tokens])


def answer(engine: Engine, cache, question_ids: list[int], steps: int, forced: list[int] | None = None):
    """Greedy tokens after the question and the logits of every step (teacher-forced on `forced` if given)."""
    n = cache.get_seq_length() + len(question_ids)
    with torch.inference_mode():
        logits = prefill(engine.model, cache, torch.tensor([question_ids]), exact_from=n - engine.config.exact_tail)
        out, all_logits = [], [logits.float()]
        for i in range(steps):
            out.append(int(logits.argmax(-1)))
            token = forced[i] if forced else out[-1]
            logits = decode_one(engine.model, cache, torch.tensor([[token]]))
            all_logits.append(logits.float())
    return out, torch.cat(all_logits)


def breakdown(state: dict[str, torch.Tensor]) -> dict[str, int]:
    """Bytes of the in-memory (compute dtype) state: keys + values vs everything else."""
    kv = sum(t.numel() * t.element_size() for n, t in state.items() if n.endswith((".keys", ".values")))
    rest = sum(t.numel() * t.element_size() for n, t in state.items() if not n.endswith((".keys", ".values")))
    return {"keys_values": kv, "other": rest}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=8192, help="document tokens (default 8192)")
    ap.add_argument("--file", type=Path, default=ROOT / "README.md", help="the document's text (default README.md)")
    ap.add_argument("--steps", type=int, default=16, help="greedy answer tokens compared per format")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "eval" / "store-size.json")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    engine = Engine(None)  # the embedded SmolLM2-135M, fp32 on the CPU
    text = document(engine, args.file, args.tokens)
    prefix = prompting.build_prefix(engine.tokenizer, text)
    full = prompting.build(engine.tokenizer, text, QUESTION)
    assert full.ids[: full.prefix_len] == prefix.prefix_ids
    question_ids = full.ids[full.prefix_len:]
    t0 = time.perf_counter()
    live, _ = engine.prefill_prefix(prefix.prefix_ids)
    prefill_s = time.perf_counter() - t0
    n = len(prefix.prefix_ids)
    print(f"prefilled {n:,} tokens ({args.file.name}, {engine.config}) in {prefill_s:.1f} s")

    state = live.state_dict()
    parts = breakdown(state)
    ref_tokens, ref_logits = answer(engine, LongHeadsCache.from_state_dict(state), question_ids, args.steps)
    del state
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kv in sorted(KV_DTYPES, key=ORDER.index):
            store = Store(Path(tmp) / kv, kv_dtype=kv, max_bytes="1TB")
            t0 = time.perf_counter()
            entry = store.save("doc", prefix.prefix_ids, live)
            save_s = time.perf_counter() - t0
            size = entry.manifest["tensor_bytes"]
            t0 = time.perf_counter()
            ids, loaded = store.load("doc", dtype=engine.model.dtype)
            load_s = time.perf_counter() - t0
            assert ids == prefix.prefix_ids
            tokens, _ = answer(engine, LongHeadsCache.from_state_dict(loaded.state_dict()), question_ids, args.steps)
            _, forced = answer(engine, loaded, question_ids, args.steps, forced=ref_tokens)
            rows.append({"kv_dtype": kv, "tensor_bytes": size, "entry_bytes": entry.size,
                         "bytes_per_1k_tokens": round(size / n * 1000), "save_s": round(save_s, 3),
                         "load_s": round(load_s, 3), "same_answer_tokens": tokens == ref_tokens,
                         "max_logit_diff": float((forced - ref_logits).abs().max())})
            del loaded
    base = next(r["tensor_bytes"] for r in rows if r["kv_dtype"] == "float32")
    for r in rows:
        r["ratio_to_float32"] = round(r["tensor_bytes"] / base, 4)

    print(f"\n| stored format | cache.safetensors | bytes / 1k tokens | vs float32 | load s | same {args.steps} "
          "answer tokens | max logit diff |")
    print("|---|---:|---:|---:|---:|---|---:|")
    for r in rows:
        print(f"| {r['kv_dtype']} | {r['tensor_bytes'] / 1e6:,.1f} MB | {r['bytes_per_1k_tokens'] / 1e6:,.2f} MB | "
              f"{r['ratio_to_float32']:.3f} | {r['load_s']:.2f} | {'yes' if r['same_answer_tokens'] else 'NO'} | "
              f"{r['max_logit_diff']:.3g} |")
    out = {"model": engine.name, "document": args.file.name, "tokens": n, "question": QUESTION,
           "longheads": engine.config.to_dict(), "compute_dtype": str(engine.model.dtype).removeprefix("torch."),
           "prefill_s": round(prefill_s, 2), "in_memory_state_bytes": parts, "answer_steps": args.steps,
           "reference_answer": engine.tokenizer.decode(ref_tokens), "rows": rows,
           "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                       "torch": torch.__version__, "note": "a shared machine: times are indicative only"},
           "command": "nice -n 19 python benchmarks/store_size.py"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()

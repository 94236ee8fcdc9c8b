"""What a user waits for: `longdoc ask` on a real ~32k-token document, the default answer path (the LongHeads-guided
re-read) against LongHeads alone (`--no-reread`), side by side in one process.

    python benchmarks/answer_speed.py --tokens 32768 --threads 2 --json docs/eval/answer-speed.json

The document is longdoc's own source (the .py files of the package in sorted order, cut at `--tokens`): a
codebase, one of the things longdoc is for. The first question prefills the document (timed once); each later
question reuses that prefill from the pool, so its time is the question's own: its prefill tail, the re-read's
chunk scoring and dense pass, and the decode. Greedy, `--answer-tokens` tokens per answer (ignore_eos, no
stop-on-repeat: the same length for every row). Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from longdoc.eval.machine import machine_info
from longdoc.generate import SamplingParams
from longdoc.qa.session import DocumentSession, text_document
from longdoc.settings import EngineSettings

QUESTIONS = ["Which function registers the LongHeads attention with transformers?",
             "What does the store do when an entry's checksum does not match?",
             "How are the chunks of a head selected?"]


def source_text(engine, tokens: int) -> str:
    root = Path(__file__).resolve().parents[1] / "longdoc"
    parts, n = [], 0
    for path in sorted(root.rglob("*.py")):
        text = f"# file: {path.relative_to(root.parent)}\n{path.read_text()}\n"
        n += len(engine.encode(text))
        parts.append(text)
        if n >= tokens:
            break
    ids = engine.encode("".join(parts))[:tokens]
    return engine.tokenizer.decode(ids)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=32768)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--answer-tokens", type=int, default=32)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    engine = EngineSettings(threads=args.threads).build()
    document = text_document(source_text(engine, args.tokens), "longdoc-source")
    params = SamplingParams(max_new_tokens=args.answer_tokens, ignore_eos=True, stop_on_repeat=False)
    rows = []
    for reread in (True, False):
        engine.clear_prefixes()
        session = DocumentSession(engine, document, reread=reread)
        for i, q in enumerate(QUESTIONS):
            t0 = time.perf_counter()
            reply = session.reply(q, params)
            first = None
            for _ in reply:
                if first is None:
                    first = time.perf_counter() - t0
            total = time.perf_counter() - t0
            u = reply.usage
            rows.append({"path": "re-read (default)" if reread else "LongHeads only (--no-reread)",
                         "question": i, "document_prefilled": i == 0, "prompt_tokens": u.prompt_tokens,
                         "cached_tokens": u.cached_tokens, "time_to_first_token_s": round(first or total, 2),
                         "total_s": round(total, 2), "completion_tokens": u.completion_tokens,
                         "decode_ms_per_token": round(1000 * u.decode_s / max(u.completion_tokens, 1), 1)})
    print(f"document {args.tokens} tokens (longdoc's source), {args.threads} threads, {args.answer_tokens}-token answers")
    print(f"{'path':30} {'q':>2} {'doc prefilled':>13} {'first token s':>13} {'total s':>8} {'decode ms/tok':>13}")
    for r in rows:
        print(f"{r['path']:30} {r['question']:>2} {str(r['document_prefilled']):>13} {r['time_to_first_token_s']:>13.2f} "
              f"{r['total_s']:>8.2f} {r['decode_ms_per_token']:>13.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"task": "answer_speed", "tokens": args.tokens, "threads": args.threads,
                       "answer_tokens": args.answer_tokens, "machine": machine_info(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()

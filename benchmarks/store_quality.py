"""Do stored formats change answers? Each question answered from an ingest loaded from the store, per format.

    python benchmarks/store_quality.py --questions examples/pdf_questions/freefem.json --max-questions 20 \
        --formats float32,float16,int8 --json docs/eval/store-quality.json

The real PDF question set (`longdoc eval pdfqa`'s FreeFEM manual, fetched as that command does): per format the
document is prefilled once and stored; then every question starts from an empty pool, so its session loads the
stored entry (the path a later `longdoc ask` takes), and answers with the default reader (the attention re-read),
greedy, 48 tokens. Reports per format: answers identical to float32's, the score (string match against the gold
answers, as pdfqa scores), the stored bytes. Writes JSON after every answer (rerunning resumes).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from longdoc.documents import load
from longdoc.eval import pdfqa as pq
from longdoc.eval.machine import machine_info
from longdoc.generate import SamplingParams
from longdoc.qa.session import DocumentSession
from longdoc.settings import EngineSettings
from longdoc.store import Store


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", default="examples/pdf_questions/freefem.json")
    ap.add_argument("--max-questions", type=int, default=20)
    ap.add_argument("--formats", default="float32,float16,int8")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", default="store-quality.json")
    args = ap.parse_args()

    qset = pq.load_questions(args.questions)
    document = pq.physical_pages(load([str(pq.fetch_pdf(qset.source))]))
    questions = qset.questions[: args.max_questions]
    path = Path(args.json)
    done = json.loads(path.read_text()) if path.exists() else {"rows": []}
    have = {(r["format"], r["question"]) for r in done["rows"]}
    done.update({"task": "store_quality", "questions": args.questions, "machine": machine_info()})
    engine = EngineSettings(threads=args.threads).build()
    params = SamplingParams(max_new_tokens=48)
    root = Path(tempfile.mkdtemp(prefix="store-quality-"))
    for fmt in args.formats.split(","):
        store = Store(root / fmt, kv_dtype=fmt)
        for q in questions:
            if (fmt, q.id) in have:
                continue
            engine.clear_prefixes()  # no pooled prefill: the session reads the stored entry (or makes it, once)
            session = DocumentSession(engine, document, store=store)
            text = "".join(session.reply(q.question, params)).strip()
            ingest = session.ingest
            done["rows"].append({"format": fmt, "question": q.id, "answer": text, **pq.score(q, text, []),
                                 "from_store": bool(ingest.reused),
                                 "stored_bytes": sum(e.size for e in store.entries())})
            path.write_text(json.dumps(done, indent=1))
    rows = done["rows"]
    base = {r["question"]: r["answer"] for r in rows if r["format"] == "float32"}
    print(f"{'format':9} {'answers':>7} {'from store':>10} {'same as float32':>15} {'correct':>8} {'stored MB':>10}")
    summary = {}
    for fmt in args.formats.split(","):
        rs = [r for r in rows if r["format"] == fmt]
        same = sum(base.get(r["question"]) == r["answer"] for r in rs)
        correct = sum(bool(r.get("correct")) for r in rs)
        summary[fmt] = {"answers": len(rs), "from_store": sum(r["from_store"] for r in rs), "same_as_float32": same,
                        "correct": correct, "stored_mb": round(max((r["stored_bytes"] for r in rs), default=0) / 1e6, 1)}
        s = summary[fmt]
        print(f"{fmt:9} {s['answers']:>7} {s['from_store']:>10} {same:>15} {correct:>8} {s['stored_mb']:>10}")
    done["summary"] = summary
    path.write_text(json.dumps(done, indent=1))


if __name__ == "__main__":
    main()

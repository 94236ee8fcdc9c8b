"""How should the re-read rank chunks? Scoring variants of the question's attention mass, compared on a real PDF.

For every question of a pdfqa question set, the document is prefilled once (LongHeads, the default config) and
the question once on top of it; `longdoc.reread.attention_mass` gives each head's attention mass per chunk.
Each variant turns that (heads, chunks) matrix into chunk scores, and we measure where the gold page lands:
whether a gold-page chunk is among the `room` best chunks (what a re-read of the default budget reads), its
reciprocal rank, and how often the top chunk sits on the most common top page ("hub share": the issue's "pages
24 and 44 for every question"). No answer is generated, so a variant costs seconds, not a pdfqa run.

Variants:
  peaked<share>   mean over the `share` most peaked heads (the default: 0.1)
  bg<share>       peaked / (mean over all heads + its mean): chunks every head looks at lose their lead
  pmi<share>      peaked / (the same score for neutral questions + its mean): chunks any question draws lose it
  headpmi<share>  per head mass / (that head's neutral mass + its mean), then the peaked heads' mean
                  (-1q: the first neutral question only)

    python benchmarks/reread_scoring.py --questions examples/pdf_questions/freefem.json --json docs/eval/reread-scoring.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter

import torch

from longdoc.reread import NEUTRAL_QUESTIONS

NEUTRAL = [*NEUTRAL_QUESTIONS, "Summarize the text.", "What does it say?"]  # the library's first, two more


def chunk_pages(document, prompt, chunk_size: int, n_chunks: int) -> list[set[int]]:
    """The pages each chunk's tokens lie on."""
    from longdoc.qa.citations import OTHER, token_labels

    labels = token_labels(document, prompt)
    pages = []
    for c in range(n_chunks):
        ps = set()
        for lab in labels[c * chunk_size : (c + 1) * chunk_size]:
            if lab != OTHER and " p. " in lab:
                ps.add(int(lab.rsplit(" p. ", 1)[1]))
        pages.append(ps)
    return pages


def variants(mass: torch.Tensor, neutral: torch.Tensor, neutral1: torch.Tensor) -> dict[str, torch.Tensor]:
    """(heads, C-1) question mass and neutral mass (all neutral questions; the first only) -> {variant: (C-1,)}."""
    from longdoc.reread import contrast, peaked_votes

    out = {}
    for share in (0.05, 0.1):
        out[f"headpmi{share}-1q"] = peaked_votes(contrast(mass, neutral1), share)[1:]  # the library's default
    for share in (0.05, 0.1, 0.2, 1.0):
        base = peaked_votes(mass, share)[1:]
        out[f"peaked{share}"] = base
        bg = mass.mean(dim=0)
        out[f"bg{share}"] = base / (bg + bg.mean())
        prior = peaked_votes(neutral, share)[1:]
        out[f"pmi{share}"] = base / (prior + prior.mean())
        out[f"headpmi{share}"] = peaked_votes(contrast(mass, neutral), share)[1:]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--questions", default="examples/pdf_questions/freefem.json")
    ap.add_argument("--room", type=int, default=7, help="chunks a re-read of the default budget reads")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    from longdoc.documents import load
    from longdoc.engine import Engine
    from longdoc.eval import pdfqa as pq
    from longdoc.eval.machine import machine_info
    from longdoc.generate import Usage
    from longdoc.longheads.patch import longheads_rope
    from longdoc.prefix import entry_for
    from longdoc.qa.session import DocumentSession
    from longdoc.reread import attention_mass
    from longdoc.settings import EngineSettings
    from longdoc.store import Store

    qset = pq.load_questions(args.questions)
    document = pq.physical_pages(load([str(pq.fetch_pdf(qset.source))]))
    settings = EngineSettings(threads=args.threads)
    lm = settings.load()
    engine = Engine(lm, settings.longheads_config(lm.model.config))
    cfg, rope = engine.config, longheads_rope(engine.model)
    session = DocumentSession(engine, document, store=Store())
    t0 = time.perf_counter()
    session.prepare()
    print(f"document: {session.ingest.tokens} tokens, ready in {time.perf_counter() - t0:.1f} s")

    def mass_of(question: str):
        prompt = session.prompt(question)
        cache, _ = engine._prefill(prompt.ids, prompt.prefix_len, Usage(), None, [])
        try:
            return prompt, attention_mass(cache, rope, cfg, prompt.prefix_len)
        finally:
            engine._give_back(entry_for(cfg, prompt.ids, cache, prompt.prefix_len))

    each = [mass_of(q)[1] for q in NEUTRAL]
    neutral, neutral1 = torch.stack(each).mean(dim=0), each[0]
    rows: dict[str, list[dict]] = {}
    for q in qset.questions:
        prompt, mass = mass_of(q.question)
        pages = chunk_pages(document, prompt, cfg.chunk_size, mass.shape[1] + 1)[1:]
        gold = set(q.pages)
        for name, s in variants(mass, neutral, neutral1).items():
            order = torch.argsort(s, descending=True).tolist()
            ranks = [i for i, c in enumerate(order) if pages[c] & gold]
            top_pages = sorted(pages[order[0]]) or [None]
            rows.setdefault(name, []).append({"id": q.id, "in_room": bool(ranks and ranks[0] < args.room),
                                              "rr": 1 / (ranks[0] + 1) if ranks else 0.0, "top_page": top_pages[0]})
    from longdoc.eval.suite import wilson

    table = []
    for name, rs in rows.items():
        k, n = sum(r["in_room"] for r in rs), len(rs)
        hub, hub_n = Counter(r["top_page"] for r in rs).most_common(1)[0]
        lo, hi = wilson(k, n)
        table.append({"variant": name, "gold_in_room": k, "questions": n, "rate": round(k / n, 4),
                      "ci95": [round(lo, 4), round(hi, 4)], "mrr": round(sum(r["rr"] for r in rs) / n, 4),
                      "distinct_top_pages": len({r["top_page"] for r in rs}), "hub_page": hub,
                      "hub_share": round(hub_n / n, 4)})
    print(f"| variant | gold page in the {args.room} re-read chunks [95% CI] | MRR | distinct top pages | hub page (share) |")
    print("|---|---|---:|---:|---|")
    for t in table:
        print(f"| {t['variant']} | {t['gold_in_room']}/{t['questions']} · {t['rate']:.2f} [{t['ci95'][0]:.2f}, "
              f"{t['ci95'][1]:.2f}] | {t['mrr']:.3f} | {t['distinct_top_pages']} | p. {t['hub_page']} ({t['hub_share']:.2f}) |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"task": "reread-scoring", "questions": qset.name, "room": args.room, "neutral": NEUTRAL,
                       "machine": machine_info(), "config": cfg.__dict__ if hasattr(cfg, "__dict__") else str(cfg),
                       "results": table, "trials": rows}, f, indent=1, default=str)


if __name__ == "__main__":
    main()

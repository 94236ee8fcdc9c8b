"""What makes the model answer from a re-read's dense prompt? Layouts of that prompt compared on the suite's `qa`
task with the chunks chosen by hand (no LongHeads prefill: seconds per sample, not minutes).

The re-read finds the fact's chunk every time on `qa` (re-read hit 1.00 in `docs/eval/suite.json`) and still
answered 3/20 at 16k: most misses repeat the question ("In which city did X work as a Y?"). Each layout below
reads chunk 0, then the fact's chunk and as many other chunks as a `--budget`-token re-read has room for, in
text order, then the question tail — exactly the prompt `reread.plan` builds — and differs in one thing:

  needle+distractors   the other chunks hold the three look-alike facts ("Z worked as a Y in W ...")
  needle+random        the other chunks are random haystack chunks
  qfirst+distractors   as needle+distractors, with the question also read right after chunk 0 (the `-qf` reader,
                       `reread.plan(lead=...)`: "query-aware contextualization", Liu et al. 2023, arXiv 2307.03172);
                       the question's tokens count in the budget, so there may be room for one chunk less
  qfirst-same+...      the same chunks as needle+distractors, and the question first (over the budget by its tokens)
  ban-q4+distractors   as needle+distractors, greedy decoding never completing one of the question's 4-grams

    python benchmarks/reread_layout.py --samples 20 --budget 1024 --json docs/eval/reread-layout.json

Prints a table (correct and question echoes per layout, with 95% Wilson intervals) and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import re

import torch

from longdoc.eval.corpus import essays
from longdoc.eval.machine import machine_info
from longdoc.eval.suite import build_prompt, question_lead, wilson
from longdoc.eval.tasks import make_samples, score
from longdoc.generate import decode_one, prefill
from longdoc.models import load_model
from longdoc.prefix import new_cache

LAYOUTS = ("needle+distractors", "needle+random", "qfirst+distractors", "qfirst-same+distractors",
           "ban-q4+distractors")
FACT = re.compile(r"worked as an? [a-z ]+ in [A-Z]")


def question_ngrams(ids: list[int], n: int = 4) -> dict[tuple[int, ...], set[int]]:
    """{(n-1)-gram of the question: the tokens that would complete one of its n-grams}."""
    ban: dict[tuple[int, ...], set[int]] = {}
    for i in range(len(ids) - n + 1):
        ban.setdefault(tuple(ids[i:i + n - 1]), set()).add(ids[i + n - 1])
    return ban


@torch.inference_mode()
def greedy(model, tok, ids: torch.Tensor, max_new_tokens: int, ban=None) -> str:
    """Plain-attention greedy answer to `ids` (1, n); ban: `question_ngrams` never completed."""
    cache = new_cache(model)
    logits = prefill(model, cache, ids)
    out: list[int] = []
    stops = {tok.eos_token_id, tok.convert_tokens_to_ids("<|im_end|>")}
    for _ in range(max_new_tokens):
        lg = logits[0].float().clone()
        for k, nexts in (ban or {}).items():
            if len(out) >= len(k) and tuple(out[-len(k):]) == k:
                lg[list(nexts)] = float("-inf")
        t = int(lg.argmax())
        if t in stops:
            break
        out.append(t)
        logits = decode_one(model, cache, torch.tensor([[t]]))
    return tok.decode(out, skip_special_tokens=True).strip()


def layouts(tok, sample, chunk_size: int, budget: int, rng: random.Random) -> dict[str, tuple[torch.Tensor, dict]]:
    """The dense prompts of one sample: {layout: (ids (1, n), decoding ban or None)}."""
    p = build_prompt(tok, sample)
    ids, l = p.ids, chunk_size
    n_full = p.question_start // l
    tail = ids[:, n_full * l:]
    needle = sorted({c for a, b in p.needle_tokens for c in range(a // l, (b - 1) // l + 1)})
    text = lambda c: tok.decode(ids[0, c * l:(c + 1) * l])  # noqa: E731
    look_alike = [c for c in range(1, n_full) if c not in needle and FACT.search(text(c))]
    others = [c for c in range(1, n_full) if c not in needle and c not in look_alike]
    lead = question_lead(tok, sample.question)

    def build(chunks, first=False, in_budget=True):
        room = (budget - l - tail.shape[1] - (lead.shape[1] if first and in_budget else 0)) // l
        chosen = sorted(set(chunks[:max(room, 1)]))
        return torch.cat([ids[:, :l], *([lead] if first else []), *[ids[:, c * l:(c + 1) * l] for c in chosen], tail], 1)

    with_look_alike = needle + look_alike
    with_random = needle + rng.sample(others, min(len(others), 8))
    q_ids = tok(sample.question.split("Question: ")[-1], add_special_tokens=False).input_ids
    return {"needle+distractors": (build(with_look_alike), None), "needle+random": (build(with_random), None),
            "qfirst+distractors": (build(with_look_alike, first=True), None),
            "qfirst-same+distractors": (build(with_look_alike, first=True, in_budget=False), None),
            "ban-q4+distractors": (build(with_look_alike), question_ngrams(q_ids))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--budget", type=int, default=1024, help="Tokens of the dense prompt (the default re-read's).")
    ap.add_argument("--length", type=int, default=16384, help="Haystack length the samples are generated at.")
    ap.add_argument("--chunk-size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    lm = load_model(None)
    model, tok = lm.model, lm.tokenizer
    rng = random.Random(0)
    rows = []
    for i, sample in enumerate(make_samples("qa", tok, essays(), args.length, args.samples, 0)):
        row = {"sample": i, "answers": sample.answers}
        for name, (ids, ban) in layouts(tok, sample, args.chunk_size, args.budget, rng).items():
            answer = greedy(model, tok, ids, sample.max_new_tokens, ban)
            row[name] = {"answer": answer, "correct": score(sample, answer) == 1.0, "tokens": int(ids.shape[1]),
                         "echo": answer.lower().startswith(sample.question.split("Question: ")[-1][:14].lower())}
        rows.append(row)
        print(i, {k: (v["correct"], v["answer"][:40]) for k, v in row.items() if k in LAYOUTS}, flush=True)
    table = ["| layout | correct [95% CI] | question repeated | dense tokens (mean) |", "|---|---:|---:|---:|"]
    summary = {}
    for name in LAYOUTS:
        k, n = sum(r[name]["correct"] for r in rows), len(rows)
        lo, hi = wilson(k, n)
        echo = sum(r[name]["echo"] for r in rows)
        summary[name] = {"correct": k, "n": n, "ci95": [round(lo, 4), round(hi, 4)], "echo": echo}
        table.append(f"| {name} | {k}/{n} · {k / n:.2f} [{lo:.2f}, {hi:.2f}] | {echo}/{n} | "
                     f"{sum(r[name]['tokens'] for r in rows) / n:.0f} |")
    print("\n".join(table))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"task": "reread_layout", "model": lm.name, "machine": machine_info(), "config": vars(args),
                       "results": summary, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()

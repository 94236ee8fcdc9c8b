"""The summary task, scored without a judge model: how much of a multi-section document a summary draws on.

`longdoc ask report.pdf "summarize"` is where top-k retrieval fails by design: a summary should use every
section, not the k that look most like the word "summarize". Scores:

- section coverage: a section counts as drawn on when at least `min_hits` of its `k` most distinctive terms
  (tf-idf over the document's sections) appear in the summary; coverage = sections drawn on / sections;
- heads per section (LongHeads only): the share of the answer's non-mandatory chunk selections that fall in
  each section, and how many sections got any;
- ROUGE-1 / ROUGE-2 (Lin 2004) against the document's own abstract or section headings, when it has them.

Documents: the Paul Graham essays (one essay = one section, its title the heading), concatenated to the asked
length; or any text with Markdown-style headings.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

_WORD = re.compile(r"[a-z][a-z'-]{3,}")
STOPWORDS = set("""
about above after again against also among another because been before being below between both cannot could
does doing down during each even every from further have having here hers herself himself into itself just
more most much must myself never only other ought ours ourselves over same shall should some such than that
their theirs them themselves then there these they this those through thus under until very were what when
where which while whom will with would your yours yourself yourselves like think thing things people make made
really something want well good know going many first time still
""".split())


@dataclass
class Section:
    title: str
    text: str


def terms(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


def distinctive_terms(sections: list[Section], k: int = 12) -> list[list[str]]:
    """Per section, its k terms of highest tf-idf (idf over the sections)."""
    counts = [Counter(terms(s.title + " " + s.text)) for s in sections]
    df = Counter(w for c in counts for w in c)
    n = len(sections)
    out = []
    for c in counts:
        ranked = sorted(c, key=lambda w: (-c[w] * math.log((1 + n) / (1 + df[w])), w))
        out.append(ranked[:k])
    return out


def coverage(summary: str, sections: list[Section], k: int = 12, min_hits: int = 2) -> list[bool]:
    """Which sections the summary draws on (>= min_hits of the section's k distinctive terms appear in it)."""
    have = set(terms(summary))
    return [sum(w in have for w in ts) >= min_hits for ts in distinctive_terms(sections, k)]


def _ngrams(text: str, n: int) -> Counter:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def rouge_n(candidate: str, reference: str, n: int = 1) -> dict[str, float]:
    """ROUGE-N precision, recall and F1 over lowercase word n-grams."""
    c, r = _ngrams(candidate, n), _ngrams(reference, n)
    overlap = sum((c & r).values())
    p = overlap / max(1, sum(c.values()))
    rec = overlap / max(1, sum(r.values()))
    return {"precision": p, "recall": rec, "f1": 2 * p * rec / (p + rec) if p + rec else 0.0}


def section_spans(sections: list[Section], joiner: str = "\n\n") -> tuple[str, list[tuple[int, int]]]:
    """The document text ("# title\\n\\ntext" per section) and each section's character span in it."""
    parts, spans, at = [], [], 0
    for s in sections:
        block = f"# {s.title}\n\n{s.text}"
        spans.append((at, at + len(block)))
        parts.append(block)
        at += len(block) + len(joiner)
    return joiner.join(parts), spans


def heads_per_section(selections, cfg, token_spans: list[tuple[int, int]], from_pos: int) -> list[float]:
    """Share of the non-mandatory chunk selections at positions >= from_pos (the answer) in each section.
    token_spans: each section's token range [a, b); a chunk is credited to the sections it overlaps, by overlap."""
    from ..longheads.layout import SlotLayout

    l, selected = cfg.chunk_size, SlotLayout.of(cfg).selected
    per = [0.0] * len(token_spans)
    total = 0
    for rec in selections:
        rows = rec.positions >= from_pos
        if not bool(rows.any()):
            continue
        chosen = rec.chunks[0][:, rows][..., selected].flatten().tolist()
        total += len(chosen)
        for c in chosen:
            lo, hi = c * l, (c + 1) * l
            for i, (a, b) in enumerate(token_spans):
                o = min(hi, b) - max(lo, a)
                if o > 0:
                    per[i] += o / l
    return [x / total if total else 0.0 for x in per]


def window_share(cfg, token_spans: list[tuple[int, int]], n: int) -> list[float]:
    """The sink+recent window's reading of a prompt of n tokens (LM-Infinite; `selection="window"`): the share of
    the tokens it sees from the last position (the first chunk and the last window - chunk_size tokens) that
    fall in each section. token_spans: each section's token range [a, b)."""
    seen = [(0, min(cfg.chunk_size, n)), (max(cfg.chunk_size, n - (cfg.window - cfg.chunk_size)), n)]
    total = sum(b - a for a, b in seen)
    return [sum(max(0, min(b, y) - max(a, x)) for x, y in seen) / total for a, b in token_spans]


MIN_SECTIONS = 4  # sections a generated document has at least (long essays are cut to fit)


def _cut(title: str, body: str, cap: int, count_tokens) -> tuple[str, int]:
    """The longest run of body's first lines that keeps title + body within cap tokens (at least one line)."""
    lines = [x for x in body.split("\n") if x.strip()]
    lo, hi = 1, len(lines)  # binary search: the token count grows with the number of lines kept
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count_tokens(title + "\n" + "\n".join(lines[:mid])) <= cap:
            lo = mid
        else:
            hi = mid - 1
    text = "\n".join(lines[:lo])
    return text, count_tokens(title + "\n" + text)


def essay_sections(essays_text: str, n_tokens: int, count_tokens, start: int = 0) -> list[Section]:
    """Whole essays (title = first line) until about n_tokens tokens, from the `start`-th essay on (wrapping
    around: document i of a multi-document run starts at essay i)."""
    out, used = [], 0
    blocks = [b.strip() for b in re.split(r"\n{3,}|\n\n(?=[A-Z][^\n]{3,80}\n\n)", essays_text)]
    blocks = [b for b in blocks if len(b) >= 200]
    if blocks:
        start %= len(blocks)
        blocks = blocks[start:] + blocks[:start]
    cap = max(64, n_tokens // MIN_SECTIONS)  # a long essay is cut (at a paragraph) so a document has sections
    for block in blocks:
        title, _, body = block.partition("\n")
        t = count_tokens(block)
        if t > cap:
            body, t = _cut(title, body, cap, count_tokens)
            block = title + "\n" + body
        if used + t > n_tokens and out:
            break
        out.append(Section(title.strip()[:80], body.strip()))
        used += t
    if len(out) < 2:
        from ..errors import InputError

        raise InputError("the summary task needs a text of at least two sections (blocks separated by two blank "
                         "lines, the title on the first line).")
    return out


QUESTION = "Summarize the document above: one sentence for each of its sections."


RAG = "rag"  # the vector-RAG baseline's method name (`longdoc.eval.rag`; reader "top-<k>")


def _row(key: dict, answer: str, sections: list[Section], headings: str, share, dec: dict, **extra) -> dict:
    cov = coverage(answer, sections)
    return {**key, "answer": answer, "sections": len(sections), "covered": sum(cov),
            "coverage": round(sum(cov) / len(sections), 4),
            "heads_sections": None if share is None else sum(x > 0 for x in share),
            "heads_share": None if share is None else [round(x, 4) for x in share],
            "rouge1_headings": round(rouge_n(answer, headings, 1)["recall"], 4),
            "correct": False, "score": round(sum(cov) / len(sections), 4), "gold_logprob": 0.0, **dec, **extra}


def run_summary(lm, methods, readers, sections: list[Section], results, *, max_new_tokens: int = 200,
                common: dict | None = None, on_trial=None, trial: int = 0, rag_top_k: int | None = None,
                chunk_tokens: int = 256, embeddings=None) -> list[dict]:
    """Summarize one multi-section document (trial: its index in a multi-document run) with every method x
    reader (readers branch from one prefill, as in `longdoc.eval.suite`: the same re-read plans, -pmi included;
    a reader's +decoding modifiers set its SamplingParams); record coverage, the sections the heads (direct) or
    the re-read (its chunks) drew on, ROUGE against the section headings, answer tokens and whether the answer
    repeated a sentence (stopped at one, or, with +norep, contains one).

    rag_top_k: also the vector-RAG baseline: the question retrieves its rag_top_k nearest chunks of chunk_tokens
    tokens (`longdoc.eval.rag`, one segment per section) and the same weights summarize them with plain
    attention, once per direct reader's decoding (reader "top-<k>[+mods]"); its "sections read" are the
    sections of the retrieved chunks."""
    import torch

    from ..generate import Usage, decode, prefill
    from ..prefix import new_cache
    from ..repetition import RepeatGuard
    from .methods import activate, checked_configs
    from .results import config_id
    from .suite import Reader, build_prompt, prefill_sample, question_lead, reader_plan
    from .tasks import Sample

    model, tok = lm.model, lm.tokenizer
    text, spans = section_spans(sections)
    sample = Sample("summary", text, QUESTION, "", [], list(spans), max_new_tokens=max_new_tokens)
    p = build_prompt(tok, sample)
    length = p.ids.shape[1]
    headings = " ".join(s.title for s in sections)
    configs = checked_configs(methods, model.config, common)

    @torch.inference_mode()
    def greedy(cache, logits, reader, record=None):  # the generation loop of longdoc/generate.py
        usage = Usage()
        text = "".join(decode(model, tok, cache, logits, reader.params(max_new_tokens), usage=usage,
                              record=record)).strip()
        repeated = usage.repeat_stopped or RepeatGuard().check(text)[1]
        return text, {"answer_tokens": usage.completion_tokens, "repeated": bool(repeated),
                      "finish_reason": usage.finish_reason}

    def save(row):
        results.add_trial(row)
        if on_trial:
            on_trial(row)
        results.save()

    for m in methods:
        cfg = configs[m.label]
        activate(model, cfg, m.rope(length, model.config))
        rs = [r for r in readers if r.budget is None or m.selects]
        keys = {r.name: dict(task="summary", method=m.label, reader=r.name, config_id=config_id(cfg),
                             length=length, trial=trial, seed=0) for r in rs}
        todo = [r for r in rs if results.done(**keys[r.name]) is None]
        if not todo:
            continue
        with torch.inference_mode():
            state = prefill_sample(model, tok, sample, cfg, todo)
        cache, logits = state.cache, state.logits
        snap = cache.snapshot()
        for r in todo:
            cache.restore(snap)
            if r.budget is None:
                n0 = cache.get_seq_length()
                answer_sel: list = []
                answer, dec = greedy(cache, logits, r, record=answer_sel if m.selects else None)
                share = heads_per_section(answer_sel, cfg, p.needle_tokens, n0) if m.selects else \
                    window_share(cfg, p.needle_tokens, length) if cfg is not None else None
                save(_row(keys[r.name], answer, sections, headings, share, dec))
                continue
            with torch.inference_mode():
                plan = reader_plan(model, state, cfg, r, lead=question_lead(tok, QUESTION))
            if plan is None:
                continue
            activate(model, None)  # the dense pass: plain attention over [chunk 0 | chosen chunks | question]
            try:
                dense = new_cache(model)
                with torch.inference_mode():
                    answer, dec = greedy(dense, prefill(model, dense, plan.ids), r)
            finally:
                activate(model, cfg)
            l = cfg.chunk_size
            read = [0, *plan.chunks]
            share = [sum(max(0, min((c + 1) * l, b) - max(c * l, a)) for c in read) / (len(read) * l)
                     for a, b in p.needle_tokens]
            save(_row(keys[r.name], answer, sections, headings, share, dec, reread_chunks=plan.chunks,
                      reread_tokens=int(plan.ids.shape[1])))
        cache.restore(snap)
        del state, cache
    activate(model, None)
    decodings = [r for r in readers if r.budget is None] or [Reader("direct")]  # rag answers as each direct reader
    rag_keys = {r.name: dict(task="summary", method=RAG, reader="+".join([f"top-{rag_top_k}", *r.mods]),
                             config_id=config_id(None), length=length, trial=trial, seed=0) for r in decodings}
    rag_todo = [r for r in decodings if rag_top_k and results.done(**rag_keys[r.name]) is None]
    if rag_todo:
        from . import rag

        segments = [(f"# {s.title}\n\n{s.text}", {"section": i}) for i, s in enumerate(sections)]
        index = rag.build_index(segments, lambda t: tok(t, add_special_tokens=False).input_ids,
                                chunk_tokens=chunk_tokens, embeddings=embeddings)
        hits = index.search(QUESTION, rag_top_k)
        retrieved = Sample("summary", rag.context(hits), QUESTION, "", [], [], max_new_tokens=max_new_tokens)
        q = build_prompt(tok, retrieved)
        got = [h.metadata["section"] for h in hits]
        share = [got.count(i) / len(got) for i in range(len(sections))]
        for r in rag_todo:
            dense = new_cache(model)
            with torch.inference_mode():
                answer, dec = greedy(dense, prefill(model, dense, q.ids), r)
            save(_row(rag_keys[r.name], answer, sections, headings, share, dec, retrieved_sections=got,
                      reread_tokens=int(q.ids.shape[1])))
    rows = [t for t in results.trials if t.get("task") == "summary"]
    results.set_results(rows)
    return rows


def summary_table(rows: list[dict]) -> str:
    """Markdown table of run_summary rows, one line per method x reader (documents differ in length: their mean is
    shown): documents, mean section coverage, share of sections read (by the heads' selections for a direct
    LongHeads answer, the re-read's chunks, the sink+recent window's tokens, the retrieved chunks for rag), ROUGE-1 recall of the headings, answer
    tokens, answers that repeated a sentence (with the 95% Wilson interval) and answers cut at the token limit."""
    from .suite import wilson

    cells: dict[tuple, list[dict]] = {}
    for t in rows:
        cells.setdefault((t["method"], t["reader"]), []).append(t)
    lines = ["| method | reader | documents | mean tokens | coverage | sections read | ROUGE-1 (headings) "
             "| answer tokens | repeated [95% CI] | hit the limit |", "|---|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for (method, reader), ts in sorted(cells.items()):
        n = len(ts)
        mean = lambda key: sum(t.get(key) or 0 for t in ts) / n  # noqa: E731
        rep = sum(bool(t.get("repeated")) for t in ts)
        lo, hi = wilson(rep, n)
        heads = [t["heads_sections"] / t["sections"] for t in ts if t.get("heads_sections") is not None]
        lines.append(f"| `{method}` | {reader} | {n} | {mean('length'):.0f} | {mean('coverage'):.2f} | "
                     f"{f'{sum(heads) / len(heads):.2f}' if heads else '–'} | {mean('rouge1_headings'):.2f} | "
                     f"{mean('answer_tokens'):.0f} | {rep}/{n} [{lo:.2f}, {hi:.2f}] | "
                     f"{sum(t.get('finish_reason') == 'length' for t in ts)}/{n} |")
    return "\n".join(lines)

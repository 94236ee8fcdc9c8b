"""Where did the answer come from: the chunks LongHeads' heads chose while generating, mapped to pages / files.

Input: the `Selection`s an answer recorded (`Engine.stream(..., selections=[])`): per attention call, per query
head, the K chunk indices it attended to, in slot order (longdoc/longheads/layout.py). Only decode steps count
(positions >= prompt length: the answer's tokens), and only the layout's *selected* slots: the first chunk, the
query's own chunk and, with `keep_previous`, the one before it are always there whatever the question, so they
say nothing.

A chunk covers tokens [c*l, (c+1)*l) of the prompt; its count is spread evenly over its tokens, each document
token is mapped to a character offset (the tokenizer's offset mapping) and through `Document.locate` to a source
label: the PDF page ("report.pdf p. 3"), else the file. Tokens of the prompt frame or the question go to
`OTHER`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from longdoc.longheads.layout import Selection, SlotLayout

OTHER = "(prompt frame and question)"


@dataclass
class Source:
    label: str
    share: float  # of all selections at decode steps, 0..1


def chunk_counts(selections: list[Selection], prompt_len: int, config, *, per_head: bool = False):
    """Counter {chunk: times selected} over layers, heads and decode steps (mandatory slots excluded).

    per_head=True returns {(layer, head): Counter} instead.
    """
    selected = SlotLayout.of(config).selected
    total: Counter = Counter()
    heads: dict[tuple[int, int], Counter] = {}
    for rec in selections:
        decode = rec.positions >= prompt_len  # (g,)
        if not bool(decode.any()):
            continue
        chosen = rec.chunks[0][:, decode][..., selected]  # (Hq, g', selected slots)
        if per_head:
            for h in range(chosen.shape[0]):
                heads.setdefault((rec.layer, h), Counter()).update(chosen[h].flatten().tolist())
        else:
            total.update(chosen.flatten().tolist())
    return heads if per_head else total


def token_labels(document, prompt) -> list[str]:
    """A source label per prompt token (OTHER outside the document)."""
    labels = [OTHER] * len(prompt.ids)
    for i, (a, _) in enumerate(prompt.doc_offsets):
        span = document.locate(a)
        if span is None:  # framing text between files
            continue
        labels[prompt.doc_start + i] = source_label(document, span)
    return labels


def source_label(document, span) -> str:
    """Page for PDFs ("report.pdf p. 3"), section of a converted file ("deck.pptx slide 2"); the file otherwise."""
    if span.page is not None or span.section is not None:
        return document.label(span)
    return span.source


def chunk_label_weights(chunk: int, chunk_size: int, labels: list[str]) -> Counter:
    """How a chunk's tokens split over source labels (fractions summing to 1)."""
    toks = labels[chunk * chunk_size : (chunk + 1) * chunk_size]
    out: Counter = Counter()
    for lab in toks:
        out[lab] += 1 / len(toks)
    return out


def sources(selections: list[Selection], document, prompt, config, top: int | None = 5, *,
            prior=None) -> list[Source]:
    """The sources the heads read most while answering, with their share, most read first.

    prior (C,): the document's chunk prior (`longdoc.reread.chunk_prior`: how much more than chance its own
    tokens select each chunk). Counts are divided by (1 + prior), so a "hub" chunk that every query selects
    (measured on a 33k-token manual: the same two pages for every question) does not top every answer's list.
    """
    return weighted_sources(chunk_counts(selections, len(prompt.ids), config), document, prompt, config, top,
                            prior=prior)


def weighted_sources(counts: dict, document, prompt, config, top: int | None = 5, *, prior=None) -> list[Source]:
    """Sources from chunk weights {chunk: weight} (selection counts, or the chunks a re-read read)."""
    labels = token_labels(document, prompt)
    by_label: Counter = Counter()
    for chunk, n in counts.items():
        if prior is not None and chunk < len(prior):
            n = n / (1.0 + float(prior[chunk]))
        if chunk * config.chunk_size >= len(labels):
            continue
        for lab, frac in chunk_label_weights(chunk, config.chunk_size, labels).items():
            by_label[lab] += n * frac
    total = sum(by_label.values())
    if not total:
        return []
    ranked = [Source(lab, w / total) for lab, w in by_label.most_common()]
    return ranked[:top] if top else ranked


def format_sources(found: list[Source]) -> str:
    if not found:
        return "Sources: none (the answer was too short, or the whole document fit in the mandatory chunks)."
    lines = ["Sources (share of the chunks the heads selected while answering):"]
    width = max(len(s.label) for s in found)
    for s in found:
        lines.append(f"  {s.label:<{width}}  {s.share:6.1%}")
    return "\n".join(lines)


def citation_dicts(found: list[Source] | None) -> list[dict]:
    """Citations as plain data (the CLI's --json, LangChain's response_metadata, LlamaIndex's metadata)."""
    return [{"source": s.label, "share": round(s.share, 4)} for s in found or []]

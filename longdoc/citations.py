"""Where did the answer come from: the chunks LongHeads' heads chose while generating, mapped to pages / files.

Input: `Engine.last_selections` after `stream(..., record_selections=True)`: per attention call, per query head,
the K chunk indices it attended to. Only decode steps count (positions >= prompt length: the answer's tokens),
and only the *selected* slots: slot 0 (the first chunk), the last slot (the query's own chunk) and, with
`keep_previous`, the one before it are always there whatever the question, so they say nothing.

A chunk covers tokens [c*l, (c+1)*l) of the prompt; its count is spread evenly over its tokens, each document
token is mapped to a character offset (the tokenizer's offset mapping) and through `Document.locate` to a source
label: the PDF page ("report.pdf p. 3"), else the file. Tokens of the prompt frame or the question go to
`OTHER`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

OTHER = "(prompt frame and question)"


@dataclass
class Source:
    label: str
    share: float  # of all selections at decode steps, 0..1


def chunk_counts(selections: list[dict], prompt_len: int, config, *, per_head: bool = False):
    """Counter {chunk: times selected} over layers, heads and decode steps (mandatory slots excluded).

    per_head=True returns {(layer, head): Counter} instead.
    """
    lo = 1  # slot 0: the mandatory first chunk
    hi_drop = 1 + int(getattr(config, "keep_previous", False))  # current (+ previous) chunk at the end
    total: Counter = Counter()
    heads: dict[tuple[int, int], Counter] = {}
    for rec in selections:
        decode = rec["positions"] >= prompt_len  # (g,)
        if not bool(decode.any()):
            continue
        chosen = rec["chunks"][0][:, decode][..., lo : rec["chunks"].shape[-1] - hi_drop]  # (Hq, g', K - mandatory)
        if per_head:
            for h in range(chosen.shape[0]):
                heads.setdefault((rec["layer"], h), Counter()).update(chosen[h].flatten().tolist())
        else:
            total.update(chosen.flatten().tolist())
    return heads if per_head else total


def token_labels(document, prompt) -> list[str]:
    """A source label per prompt token (OTHER outside the document)."""
    labels = [OTHER] * len(prompt.ids)
    multi = len(document.sources) > 1
    for i, (a, _) in enumerate(prompt.doc_offsets):
        span = document.locate(a)
        if span is None:  # framing text between files: credit the file whose header it is
            continue
        labels[prompt.doc_start + i] = source_label(document, span, multi)
    return labels


def source_label(document, span, multi: bool = True) -> str:
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


def sources(selections: list[dict], document, prompt, config, top: int | None = 5) -> list[Source]:
    """The sources the heads read most while answering, with their share, most read first."""
    counts = chunk_counts(selections, len(prompt.ids), config)
    labels = token_labels(document, prompt)
    by_label: Counter = Counter()
    for chunk, n in counts.items():
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

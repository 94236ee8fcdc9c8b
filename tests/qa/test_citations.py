"""Citations from recorded selections: decode steps only, mandatory slots excluded, chunks -> pages."""

from __future__ import annotations

import pytest
import torch

from longdoc.qa.citations import OTHER, chunk_counts, format_sources, sources
from longdoc.longheads.config import LongHeadsConfig
from longdoc.longheads.layout import Selection
from longdoc.documents import Document, Span
from longdoc.qa.prompting import Prompt

CFG = LongHeadsConfig(chunk_size=4, chunks=5, keep_previous=True)  # slots: first, 2 selected, previous, current


def record(layer, positions, chunks):
    """chunks: per head, per position, the K slot chunk ids."""
    return Selection(layer, torch.tensor(positions), torch.tensor([chunks]))


def two_page_doc():
    """Page 1 = chars 0..40, page 2 = chars 40..80; one token per 2 characters; prompt = document only."""
    text = "a" * 80
    spans = [Span(0, 40, "r.pdf", 1, "1", None), Span(40, 80, "r.pdf", 2, "2", None)]
    doc = Document(text, spans, ["r.pdf"])
    prompt = Prompt(ids=list(range(44)), prefix_len=40, doc_start=0, doc_offsets=[(2 * i, 2 * i + 2) for i in range(40)])
    return doc, prompt  # tokens 0-19 page 1 (chunks 0-4), 20-39 page 2 (chunks 5-9), 40-43 the question


def test_only_decode_steps_and_selected_slots_count():
    sel = [
        record(0, [30], [[[0, 7, 8, 6, 7]]]),  # prefill position (< 44): ignored
        record(0, [44], [[[0, 7, 8, 9, 10]]]),  # decode: 7 and 8 selected; 0, 9 and 10 mandatory
        record(1, [44, 45], [[[0, 2, 8, 9, 10], [0, 2, 3, 9, 10]]]),
    ]
    assert chunk_counts(sel, 44, CFG) == {7: 1, 8: 2, 2: 2, 3: 1}
    heads = chunk_counts(sel, 44, CFG, per_head=True)
    assert heads[(1, 0)] == {2: 2, 8: 1, 3: 1}


def test_keep_previous_false_keeps_one_more_slot():
    cfg = LongHeadsConfig(chunk_size=4, chunks=4, keep_previous=False)  # first, 2 selected, current
    sel = [record(0, [44], [[[0, 3, 6, 10]]])]
    assert chunk_counts(sel, 44, cfg) == {3: 1, 6: 1}


def test_shares_by_page():
    doc, prompt = two_page_doc()
    sel = [record(0, [44], [[[0, 6, 7, 9, 10]], [[0, 6, 2, 9, 10]]])]  # 2 heads: page 2 three times, page 1 once
    found = sources(sel, doc, prompt, CFG)
    assert [(s.label, round(s.share, 3)) for s in found] == [("r.pdf p. 2", 0.75), ("r.pdf p. 1", 0.25)]
    assert "r.pdf p. 2" in format_sources(found) and "75.0%" in format_sources(found)


def test_a_chunk_straddling_a_page_break_splits_its_weight_and_the_question_is_other():
    doc, prompt = two_page_doc()
    prompt.doc_offsets = [(2 * i, 2 * i + 2) for i in range(38)]  # tokens 38-43: frame/question
    sel = [record(0, [44], [[[0, 9, 4, 9, 10]]])]  # chunk 9 = tokens 36-39: 2 on page 2, 2 outside
    shares = {s.label: s.share for s in sources(sel, doc, prompt, CFG)}
    assert shares == pytest.approx({"r.pdf p. 2": 0.25, OTHER: 0.25, "r.pdf p. 1": 0.5})


def test_no_decode_selections_gives_no_sources():
    doc, prompt = two_page_doc()
    assert sources([record(0, [10], [[[0, 1, 2, 3, 4]]])], doc, prompt, CFG) == []


def test_a_hub_chunk_loses_its_lead_under_the_document_prior():
    doc, prompt = two_page_doc()
    # page 2's chunk 6 is selected by both heads; page 1's chunk 2 by one; but chunk 6 is a hub: the document's
    # own tokens pick it 9x more than chance
    sel = [record(0, [44], [[[0, 6, 2, 9, 10]], [[0, 6, 7, 9, 10]]])]
    prior = torch.ones(10)
    prior[6] = prior[7] = 9.0
    plain = sources(sel, doc, prompt, CFG)
    corrected = sources(sel, doc, prompt, CFG, prior=prior)
    assert plain[0].label == "r.pdf p. 2" and corrected[0].label == "r.pdf p. 1"

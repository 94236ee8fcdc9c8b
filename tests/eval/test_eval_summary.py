"""The summary task's judge-free scores: section coverage, ROUGE, heads per section."""

import torch

from longdoc import LongHeadsConfig
from longdoc.longheads.layout import Selection
from longdoc.eval import summary as sm

SECTIONS = [
    sm.Section("Harbour", "The harbour keeps fishing boats. Fishermen sell salmon and herring at the harbour market "
               "every morning; the harbour master counts the boats."),
    sm.Section("Orchard", "The orchard grows apples and pears. Pickers climb ladders in the orchard; cider presses "
               "turn the apples into cider in autumn."),
    sm.Section("Observatory", "The observatory telescope tracks comets. Astronomers photograph nebulae and measure "
               "comets from the observatory dome at night."),
]


def test_distinctive_terms_are_the_sections_own_words():
    ts = sm.distinctive_terms(SECTIONS, k=4)
    assert "harbour" in ts[0] and "orchard" in ts[1] and "comets" in ts[2]
    assert not set(ts[0]) & set(ts[1])


def test_coverage_counts_the_sections_a_summary_draws_on():
    both = "Boats fill the harbour and its market sells salmon; the orchard presses apples into cider."
    assert sm.coverage(both, SECTIONS, k=6) == [True, True, False]
    assert sm.coverage("A text about nothing in particular.", SECTIONS) == [False, False, False]


def test_rouge_matches_hand_counts():
    r = sm.rouge_n("the cat sat on the mat", "the cat lay on the mat", 1)
    assert r["precision"] == r["recall"] == 5 / 6
    r2 = sm.rouge_n("the cat sat", "the cat lay", 2)
    assert r2["recall"] == 0.5 and sm.rouge_n("", "x")["f1"] == 0.0


def test_section_spans_and_heads_per_section():
    text, spans = sm.section_spans(SECTIONS)
    assert [text[a:b].splitlines()[0] for a, b in spans] == ["# Harbour", "# Orchard", "# Observatory"]
    cfg = LongHeadsConfig(chunk_size=4, chunks=5)  # slots [first, sel, sel, previous, current]
    chunks = torch.zeros(1, 2, 1, 5, dtype=torch.long)
    chunks[0, :, 0, 1:3] = torch.tensor([1, 4])  # tokens 4-7 (section 0) and 16-19 (section 1)
    rec = Selection(0, torch.tensor([40]), chunks)
    share = sm.heads_per_section([rec], cfg, [(0, 8), (16, 24), (24, 40)], from_pos=40)
    assert share == [0.5, 0.5, 0.0]


def test_window_share_is_the_sink_and_the_recent_tokens():
    cfg = LongHeadsConfig(chunk_size=4, chunks=4, selection="window")  # window 16: the first 4 tokens, the last 12
    share = sm.window_share(cfg, [(0, 10), (10, 30), (30, 40)], 40)
    assert share == [4 / 16, 2 / 16, 10 / 16]

"""The suite's re-read hit: a needle counts as read only when all of its tokens were in the dense pass."""

import torch

from longdoc.eval.suite import Prompt, Reader, parse_readers, reread_hit
from longdoc.reread import RereadPlan


def _plan(spans):
    return RereadPlan([a // 8 for a, _ in spans], torch.zeros(1, 1), torch.zeros(10), spans)


def test_a_needle_cut_by_a_chunk_boundary_and_read_half_is_a_miss():
    prompt = Prompt(torch.arange(90)[None], question_start=80, needle_tokens=[(30, 35)])  # chunks 3 and 4 (l=8)
    assert reread_hit(_plan([(32, 40)]), 8, prompt) is False  # chunk 4 alone: tokens 30..31 not read
    assert reread_hit(_plan([(28, 36)]), 8, prompt) is True  # the window moved onto the needle
    assert reread_hit(_plan([(24, 32), (32, 40)]), 8, prompt) is True  # both chunks, adjacent spans merged
    tail = Prompt(torch.arange(90)[None], question_start=80, needle_tokens=[(82, 85)])
    assert reread_hit(_plan([(32, 40)]), 8, tail) is True  # in the tail, read anyway
    none = Prompt(torch.arange(90)[None], question_start=80, needle_tokens=[])
    assert reread_hit(_plan([(32, 40)]), 8, none) is None


def test_the_peak_reader_is_parsed():
    (r,) = parse_readers("reread-1024-pmi-qf-peak")
    assert r.peak and r.contrast and r.question_first and r.budget == 1024
    assert not Reader("reread-1024-pmi-qf").peak

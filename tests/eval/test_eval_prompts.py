"""Prompt construction: the needle sits at the depth asked for, the prompt has the length asked for."""

import random

import pytest

from longdoc.eval.needle import DISTRACTOR, Haystack, make_needle_prompt, needle_cells
from longdoc.eval.passkey import NEEDLE, QUESTION, make_prompt, token_span

WORDS = "alpha beta gamma delta river stone house garden light quiet morning paper window table".split()


@pytest.fixture(scope="module")
def prose():
    rng = random.Random(0)
    sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 12))).capitalize() + "." for _ in range(900)]
    return " ".join(sentences)


@pytest.fixture(scope="module")
def hay(tokenizer, prose):
    return Haystack(tokenizer, prose, min_tokens=4096)


def _needle_position(tokenizer, p):
    ids = tokenizer(p.text).input_ids
    start, _ = token_span(tokenizer, p.text, p.needle_start, p.needle_end)
    intro = len(tokenizer(p.text[: p.text.index("\n\n") + 2]).input_ids)
    question = len(tokenizer(QUESTION, add_special_tokens=False).input_ids)
    haystack_tokens = len(ids) - intro - question - (p.needle_end - p.needle_start) // 3
    return ids, (start - intro) / haystack_tokens


@pytest.mark.parametrize("depth", [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0])
@pytest.mark.parametrize("length", [1024, 3000])
def test_needle_sits_at_the_asked_depth(tokenizer, hay, depth, length):
    p = make_needle_prompt(hay, length, depth, "12345")
    ids, where = _needle_position(tokenizer, p)
    assert abs(len(ids) - length) <= 24, "prompt length"
    assert abs(where - depth) < 0.03, f"needle at {where:.3f}, asked {depth}"
    assert p.text[p.needle_start : p.needle_end] == NEEDLE.format(key="12345")
    assert p.text.endswith(QUESTION) and p.text.count("12345") == 2


def test_needle_goes_between_sentences(hay):
    p = make_needle_prompt(hay, 2000, 0.4, "12345")
    before = p.text[: p.needle_start].rstrip()
    assert before.endswith(".")
    assert p.text[p.needle_end :].lstrip()[0].isupper()


def test_distractor_is_half_a_document_away(tokenizer, hay):
    p = make_needle_prompt(hay, 2000, 0.2, "12345", distractor="67890")
    d = p.text.index(DISTRACTOR.format(key="67890"))
    assert p.distractor == "67890" and "67890" not in p.text[p.needle_start : p.needle_end]
    frac = lambda c: len(tokenizer(p.text[:c]).input_ids) / len(tokenizer(p.text).input_ids)
    assert abs(frac(d) - frac(p.needle_start) - 0.5) < 0.05


def test_cells_are_reproducible_and_have_distinct_keys(hay):
    a = needle_cells(hay, [1024, 2048], [0.0, 0.5, 1.0], trials=3, seed=7, distractor=True)
    b = needle_cells(hay, [1024, 2048], [0.0, 0.5, 1.0], trials=3, seed=7, distractor=True)
    assert [(c.length, c.depth) for c in a] == [(n, d) for n in (1024, 2048) for d in (0.0, 0.5, 1.0)]
    assert [p.text for c in a for p in c.prompts] == [p.text for c in b for p in c.prompts]
    assert all(p.key != p.distractor for c in a for p in c.prompts)
    assert len({p.key for c in a for p in c.prompts}) > 10


def test_short_haystack_is_repeated_to_reach_the_length(tokenizer):
    hay = Haystack(tokenizer, "One short sentence here. Another one there.", min_tokens=500)
    p = make_needle_prompt(hay, 400, 0.5, "12345")
    assert abs(len(tokenizer(p.text).input_ids) - 400) <= 24


@pytest.mark.parametrize("depth", [0.0, 0.3, 0.8, 1.0])
def test_passkey_prompt_puts_the_needle_at_the_depth(tokenizer, depth):
    p = make_prompt(tokenizer, 2048, depth, "54321")
    ids = tokenizer(p.text).input_ids
    start, _ = token_span(tokenizer, p.text, p.needle_start, p.needle_end)
    assert abs(len(ids) - 2048) <= 32
    assert abs(start / len(ids) - depth) < 0.06

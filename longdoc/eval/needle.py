"""Needle in a haystack (paper appendix G, after gkamradt 2023): the passkey sentence hidden at a chosen depth of
real prose (the Paul Graham essays), over a depth x length grid. The harder variant adds a distractor: a
similar sentence with another number, placed half the document away from the needle.

Depth is the share of the haystack's tokens that come before the needle (0 = right after the instruction,
1 = right before the question). Needle and distractor go between sentences, as in the original test.
"""

from __future__ import annotations

import bisect
import random
import re
from dataclasses import dataclass

from .passkey import INTRO, NEEDLE, QUESTION, PasskeyPrompt
from .retrieval import Cell

DISTRACTOR = " The pass code for the back door is {key}. Remember it."
_SENTENCE_END = re.compile(r"[.!?][\"')\]]?\s+")  # the essays wrap lines mid-sentence: a newline is no end
DEFAULT_DEPTHS = tuple(i / 10 for i in range(11))


@dataclass
class NeedlePrompt(PasskeyPrompt):
    distractor: str | None = None  # the distractor's number, when there is one


class Haystack:
    """A long text with its token boundaries, cut to any token budget at a sentence end."""

    def __init__(self, tokenizer, text: str, min_tokens: int = 0):
        self.tokenizer = tokenizer
        ends = self._token_ends(text)
        while len(ends) < min_tokens:  # too short for the longest prompt: read it again
            text = text + "\n\n" + text
            ends = self._token_ends(text)
        self.text, self.ends = text, ends  # ends[i] = character offset right after token i

    def _token_ends(self, text: str) -> list[int]:
        enc = self.tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
        return [b for _, b in enc.offset_mapping]

    def chars_for(self, n_tokens: int) -> int:
        """Character offset at the end of the first n_tokens tokens."""
        if n_tokens <= 0:
            return 0
        return self.ends[min(n_tokens, len(self.ends)) - 1]

    def tokens_in(self, n_chars: int) -> int:
        return bisect.bisect_right(self.ends, n_chars)


def sentence_start(text: str, at: int, reach: int = 400) -> int:
    """The start of the sentence that holds character `at` (or `at` if no sentence end lies within reach)."""
    if at <= 0 or at >= len(text):
        return max(0, min(at, len(text)))
    lo = max(0, at - reach)
    ends = [m.end() for m in _SENTENCE_END.finditer(text, lo, at)]
    return ends[-1] if ends else at


def make_needle_prompt(hay: Haystack, n_tokens: int, depth: float, key: str,
                       distractor: str | None = None) -> NeedlePrompt:
    """A prompt of about n_tokens tokens: instruction, haystack with the needle at `depth`, question."""
    tok = hay.tokenizer
    extra = [DISTRACTOR.format(key=distractor)] if distractor else []
    fixed = len(tok(INTRO + "\n\n" + NEEDLE.format(key=key) + "".join(extra) + QUESTION,
                    add_special_tokens=False).input_ids)
    budget = max(1, n_tokens - fixed - 1)  # -1: the BOS token the tokenizer may add
    body = hay.text[: sentence_start(hay.text, hay.chars_for(budget))].rstrip()
    if not body:
        body = hay.text[: hay.chars_for(budget)]
    n_body = hay.tokens_in(len(body))
    inserts = [(_place(hay, body, n_body, depth), NEEDLE.format(key=key))]
    if distractor:
        inserts.append((_place(hay, body, n_body, (depth + 0.5) % 1.0), DISTRACTOR.format(key=distractor)))
    head = INTRO + "\n\n"
    text, needle_at, cursor = head, None, 0
    for at, sentence in sorted(inserts, key=lambda x: x[0]):
        text += body[cursor:at].rstrip(" ")
        if sentence.startswith(" The pass key"):
            needle_at = len(text)
        text += sentence + (" " if at < len(body) and not body[at].isspace() else "")
        cursor = at
    text += body[cursor:] + QUESTION
    needle = NEEDLE.format(key=key)
    return NeedlePrompt(text, key, depth, needle_at, needle_at + len(needle), distractor)


def _place(hay: Haystack, body: str, n_body: int, depth: float) -> int:
    """Character offset in body where a sentence at `depth` goes (a sentence start)."""
    if depth <= 0:
        return 0
    if depth >= 1:
        return len(body)
    return sentence_start(body, hay.chars_for(round(n_body * depth)))


def needle_cells(hay: Haystack, lengths: list[int], depths: list[float], trials: int, seed: int,
                 distractor: bool = False) -> list[Cell]:
    """The depth x length grid; keys are drawn from a seed, so every method and every rerun sees the same."""
    cells = []
    for length in lengths:
        for j, depth in enumerate(depths):
            rng = random.Random(f"needle/{seed}/{length}/{j}")
            prompts = []
            for _ in range(trials):
                key = str(rng.randint(10000, 99999))
                other = str(rng.randint(10000, 99999)) if distractor else None
                while other == key:
                    other = str(rng.randint(10000, 99999))
                prompts.append(make_needle_prompt(hay, length, depth, key, other))
            cells.append(Cell(length, depth, prompts))
    return cells

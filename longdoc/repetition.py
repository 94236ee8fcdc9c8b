"""Answers that stop: the decoding rules against a small model's loops.

A small model asked about a long document often falls into a loop: one sentence again and again up to the
token limit (seen with `longdoc ask` on a 10-page manual: one sentence ~20 times, 21 minutes of decoding).
Three rules, each a `SamplingParams` field (longdoc/generate.py), chosen by measurement (README, "Answers that
stop"):

- stop at a repeated sentence (`stop_on_repeat`, default on): when a sentence of the answer (>= MIN_WORDS words,
  compared without case, spacing and list numbering) ends exactly as an earlier one did, decoding stops and the
  repeat is not shown. Text that could be the start of such a repeat is held back until it either completes
  the repeat (dropped) or departs from it (shown), so a stream never shows half a repeated sentence.
  A loop without sentence ends (LOOP_TOKENS tokens that already occurred in the answer) also stops.
- `repetition_penalty` (CTRL, Keskar et al. 2019, as in transformers): logits of tokens already in the answer
  are divided by it (multiplied where negative). 1.0 = off.
- `no_repeat_ngram` (Paulus et al. 2017, as in transformers): a token that would complete an n-gram already in
  the answer is banned. 0 = off.
"""

from __future__ import annotations

import re

import torch

MIN_WORDS = 3  # shorter "sentences" (a list marker, "Yes.") may repeat legitimately
LOOP_TOKENS = 24  # this many tokens again, in the same order: a loop, with or without sentence ends

_END = re.compile(r"[.!?](?=\s)|\n")
_MARKER = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)]|[a-z][.)])\s+", re.I)


def _norm(sentence: str) -> str:
    return " ".join(_MARKER.sub("", sentence).lower().split())


class RepeatGuard:
    """Watches the answer text as it grows: `check(text)` -> (how much of text may be shown, stop now?)."""

    def check(self, text: str) -> tuple[int, bool]:
        seen: set[str] = set()
        start = 0
        for m in _END.finditer(text):
            s = _norm(text[start : m.end()])
            if len(s.split()) >= MIN_WORDS and s in seen:
                return start, True  # this sentence repeats an earlier one: stop before it
            seen.add(s)
            start = m.end()
        current = _norm(text[start:])
        if current and any(len(s.split()) >= MIN_WORDS and s.startswith(current) for s in seen):
            return start, False  # could be the start of a repeat: hold it back
        return len(text), False


def is_token_loop(ids: list[int], n: int = LOOP_TOKENS) -> bool:
    """The last n tokens already occurred, in the same order, earlier in the answer (a loop of any period,
    with or without sentence ends)."""
    if len(ids) <= n:
        return False
    tail = ids[-n:]
    first = tail[0]
    return any(ids[i] == first and ids[i : i + n] == tail for i in range(len(ids) - n))


def adjust_logits(logits: torch.Tensor, answer_ids: list[int], repetition_penalty: float = 1.0,
                  no_repeat_ngram: int = 0) -> torch.Tensor:
    """logits (1, vocab) of the next token given the answer so far -> adjusted logits (a new tensor when changed).

    repetition_penalty > 1 lowers every token already in the answer (CTRL); no_repeat_ngram = n bans each
    token that would repeat an n-gram of the answer.
    """
    if not answer_ids or (repetition_penalty == 1.0 and no_repeat_ngram <= 0):
        return logits
    logits = logits.clone()
    if repetition_penalty != 1.0:
        seen = torch.tensor(sorted(set(answer_ids)), device=logits.device)
        vals = logits[0, seen]
        logits[0, seen] = torch.where(vals > 0, vals / repetition_penalty, vals * repetition_penalty)
    n = no_repeat_ngram
    if n > 0 and len(answer_ids) >= n:
        prefix = tuple(answer_ids[len(answer_ids) - n + 1 :]) if n > 1 else ()
        banned = {answer_ids[i + n - 1] for i in range(len(answer_ids) - n + 1)
                  if tuple(answer_ids[i : i + n - 1]) == prefix}
        if banned:
            logits[0, torch.tensor(sorted(banned), device=logits.device)] = float("-inf")
    return logits

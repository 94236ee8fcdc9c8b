"""Passkey retrieval (paper §3.3, prompt of Table 6): greedy accuracy, teacher-forced key log-prob, hit rate.

The hit rate (paper Table 3) is the share of layer x head pairs whose selection at the answer position includes
a chunk holding the key.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from ..cache import LongHeadsCache
from ..generate import cache_kw, crop_to, new_cache, prefill
from ..patch import longheads_config

INTRO = ("There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. "
         "I will quiz you about the important information there.")
FILLER = " The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
NEEDLE = " The pass key is {key}. Remember it. {key} is the pass key."
QUESTION = "\n\nWhat is the pass key? The pass key is"


@dataclass
class PasskeyPrompt:
    text: str
    key: str
    depth: float  # where the needle sits, 0 = start of the filler, 1 = end
    needle_start: int  # character offsets of the needle sentence in text
    needle_end: int


def make_prompt(tokenizer, n_tokens: int, depth: float, key: str) -> PasskeyPrompt:
    """A prompt of about n_tokens tokens with the needle at `depth` of the filler."""
    fixed = len(tokenizer(INTRO + NEEDLE.format(key=key) + QUESTION).input_ids)
    per_filler = len(tokenizer(FILLER * 20).input_ids) / 20
    n_fill = max(1, round((n_tokens - fixed) / per_filler))
    before = round(n_fill * depth)
    head = INTRO + FILLER * before
    needle = NEEDLE.format(key=key)
    text = head + needle + FILLER * (n_fill - before) + QUESTION
    return PasskeyPrompt(text, key, depth, len(head), len(head) + len(needle))


def make_trials(tokenizer, n_tokens: int, trials: int, seed: int) -> list[PasskeyPrompt]:
    rng = random.Random(seed * 1_000_003 + n_tokens)
    return [make_prompt(tokenizer, n_tokens, rng.random(), str(rng.randint(10000, 99999))) for _ in range(trials)]


def token_span(tokenizer, text: str, start: int, end: int) -> tuple[int, int]:
    """Token index range covering characters [start, end)."""
    enc = tokenizer(text, return_offsets_mapping=True)
    idx = [i for i, (a, b) in enumerate(enc.offset_mapping) if b > start and a < end]
    return idx[0], idx[-1] + 1


@torch.inference_mode()
def run_trial(model, tokenizer, prompt: PasskeyPrompt, max_new_tokens: int = 8) -> dict:
    """One prompt: greedy answer, key log-prob (teacher forced) and hit rate."""
    device = next(model.parameters()).device
    ids = tokenizer(prompt.text, return_tensors="pt").input_ids.to(device)
    N = ids.shape[1]
    cfg = longheads_config(model)
    cache = new_cache(model, record_selections=cfg is not None)
    if isinstance(cache, LongHeadsCache):
        cache.exact_from = N - cfg.exact_tail
    logits = prefill(model, cache, ids)
    hit = hit_rate(cache, cfg, tokenizer, prompt, N) if cfg is not None else None
    if isinstance(cache, LongHeadsCache):
        cache.record_selections = False
    snap = cache.snapshot() if isinstance(cache, LongHeadsCache) else None
    # teacher-forced log-prob of " <key>"
    key_ids = tokenizer(" " + prompt.key, add_special_tokens=False).input_ids
    logp = torch.log_softmax(logits.float(), dim=-1)[0, key_ids[0]].item()
    for a, b in zip(key_ids[:-1], key_ids[1:]):
        step = model(input_ids=torch.tensor([[a]], device=device), **cache_kw(model, cache), use_cache=True,
                     logits_to_keep=1).logits[:, -1]
        logp += torch.log_softmax(step.float(), dim=-1)[0, b].item()
    if snap is not None:
        cache.restore(snap)
    else:
        crop_to(cache, N)
    # greedy answer from the same prefill: re-feed nothing, decode from `logits`
    answer = "".join(_decode_from(model, tokenizer, cache, logits, max_new_tokens))
    return {"length": N, "depth": prompt.depth, "key": prompt.key, "answer": answer.strip(),
            "correct": prompt.key in answer[: len(prompt.key) + 4], "key_logprob": logp, "hit_rate": hit}


def _decode_from(model, tokenizer, cache, logits, max_new_tokens):
    from ..generate import TextStream, decode_one

    text = TextStream(tokenizer, [])
    for i in range(max_new_tokens):
        token = logits.argmax(dim=-1, keepdim=True)
        piece = text.push(int(token))
        if piece:
            yield piece
        logits = decode_one(model, cache, token)
    yield text.flush()


def hit_rate(cache: LongHeadsCache, cfg, tokenizer, prompt: PasskeyPrompt, N: int) -> float | None:
    """Share of layer x head pairs whose chunks at the last prompt position include the key's chunk."""
    t0, t1 = token_span(tokenizer, prompt.text, prompt.needle_start, prompt.needle_end)
    key_chunks = set(range(t0 // cfg.chunk_size, (t1 - 1) // cfg.chunk_size + 1))
    hits = total = 0
    for rec in cache.selections:
        rows = (rec["positions"] == N - 1).nonzero().flatten()
        if len(rows) == 0:
            continue
        chosen = rec["chunks"][0, :, int(rows[0])]  # (Hq, K)
        for head in chosen.tolist():
            total += 1
            hits += bool(key_chunks & set(head))
    return hits / total if total else None

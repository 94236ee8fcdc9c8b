"""Prefill in blocks, then decode, streaming text pieces (gpt-fast style: small functions, explicit cache).

Works with LongHeads on (a LongHeadsCache) and off (a DynamicCache, plain full attention), so evaluations can
run both through the same code.
"""

from __future__ import annotations

import functools
import inspect
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
from transformers import DynamicCache

from .cache import LongHeadsCache
from .patch import longheads_config

ProgressFn = Callable[[int, int], None]  # (tokens done, tokens total)


@dataclass
class SamplingParams:
    max_new_tokens: int = 256
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)


@dataclass
class Usage:
    prompt_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens whose prefill was reused
    completion_tokens: int = 0
    prefill_s: float = 0.0
    decode_s: float = 0.0
    finish_reason: str | None = None  # "stop" (eos or stop string) or "length"

    @property
    def prefill_tokens_per_s(self) -> float:
        n = self.prompt_tokens - self.cached_tokens
        return n / self.prefill_s if self.prefill_s > 0 else 0.0

    @property
    def decode_tokens_per_s(self) -> float:
        return self.completion_tokens / self.decode_s if self.decode_s > 0 else 0.0


def new_cache(model, record_selections: bool = False):
    return LongHeadsCache(record_selections) if longheads_config(model) is not None else DynamicCache()


def crop_to(cache, length: int) -> None:
    """Roll any cache back to `length` tokens (transformers' crop takes a negative count to remove)."""
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)


@functools.lru_cache(maxsize=None)
def _cache_arg(model_class) -> str:
    params = inspect.signature(model_class.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def cache_kw(model, cache) -> dict:
    """The forward keyword that takes the KV cache: `cache` where the model's forward has it (newer transformers
    5.x deprecate `past_key_values` with a FutureWarning on every call), else `past_key_values`."""
    return {_cache_arg(type(model)): cache}


DECODE_HEADROOM = 1024  # tokens of answer the cache makes room for at prefill, beyond the prompt


def prefill_block_size(model) -> int:
    cfg = longheads_config(model)
    return cfg.window if cfg is not None else 2048


@torch.inference_mode()
def prefill(model, cache, input_ids: torch.Tensor, *, block: int | None = None, progress: ProgressFn | None = None,
            exact_from: int | None = None) -> torch.Tensor:
    """Feed input_ids (1, N) into the cache in blocks; returns the logits of the last token (1, vocab).

    Blocks are multiples of the chunk size so that block-shared selections equal a one-shot prefill's.
    `exact_from`: absolute position from which queries select chunks per token (the question tail).
    """
    block = block or prefill_block_size(model)
    N = input_ids.shape[1]
    if isinstance(cache, LongHeadsCache):
        if exact_from is not None:
            cache.exact_from = exact_from
        cache.reserve_hint = cache.get_seq_length() + N + DECODE_HEADROOM
    logits = None
    done = 0
    while done < N:
        piece = input_ids[:, done : done + block]
        out = model(input_ids=piece, **cache_kw(model, cache), use_cache=True, logits_to_keep=1)
        logits = out.logits[:, -1]
        done += piece.shape[1]
        if progress:
            progress(done, N)
    if logits is None:
        raise ValueError("prefill needs at least one new token")
    return logits


@torch.inference_mode()
def decode_one(model, cache, token: torch.Tensor) -> torch.Tensor:
    """One decode step: token (1, 1) -> logits (1, vocab)."""
    return model(input_ids=token, **cache_kw(model, cache), use_cache=True, logits_to_keep=1).logits[:, -1]


def sample(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator | None) -> torch.Tensor:
    """logits (1, vocab) -> token (1, 1)."""
    if params.temperature <= 0:
        return logits.argmax(dim=-1, keepdim=True)
    probs = torch.softmax(logits.float() / params.temperature, dim=-1)
    if params.top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        drop = sorted_p.cumsum(dim=-1) - sorted_p > params.top_p  # keep the smallest set reaching top_p
        sorted_p[drop] = 0
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
    return torch.multinomial(probs, 1, generator=generator)


class TextStream:
    """Turns token ids into text deltas; holds back text that might be the start of a stop string."""

    def __init__(self, tokenizer, stop: list[str]):
        self.tokenizer, self.stop = tokenizer, [s for s in stop if s]
        self.ids: list[int] = []
        self.emitted = 0  # characters of the decoded text already emitted
        self.stopped = False

    def push(self, token_id: int) -> str:
        self.ids.append(token_id)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):  # an incomplete multi-byte character: wait for the next token
            return ""
        for s in self.stop:
            at = text.find(s, max(0, self.emitted - len(s)))
            if at != -1:
                self.stopped = True
                return self._emit(text[:at])
        hold = max((k for s in self.stop for k in range(1, len(s)) if text.endswith(s[:k])), default=0)
        return self._emit(text[: len(text) - hold])

    def flush(self) -> str:
        if self.stopped:
            return ""
        return self._emit(self.tokenizer.decode(self.ids, skip_special_tokens=True))

    def _emit(self, upto: str) -> str:
        piece = upto[self.emitted :]
        self.emitted = max(self.emitted, len(upto))
        return piece


def eos_ids(model, tokenizer) -> set[int]:
    ids = set()
    for src in (getattr(model.generation_config, "eos_token_id", None), tokenizer.eos_token_id):
        if isinstance(src, int):
            ids.add(src)
        elif src:
            ids.update(src)
    return ids


def stream(model, tokenizer, input_ids: torch.Tensor, params: SamplingParams | None = None, *, cache=None,
           usage: Usage | None = None, progress: ProgressFn | None = None, exact_tail: bool = True,
           on_token: Callable[[int], None] | None = None,
           on_prefill_done: Callable[[], None] | None = None) -> Iterator[str]:
    """Generate from input_ids (1, N), yielding text pieces as they are decoded.

    `cache` may already hold a prefix of input_ids (reused prefill); only the rest is prefilled. `usage` is
    filled in as generation goes (timings, token counts, finish reason).
    """
    params = params or SamplingParams()
    usage = usage if usage is not None else Usage()
    cache = cache if cache is not None else new_cache(model)
    N = input_ids.shape[1]
    cached = cache.get_seq_length()
    usage.prompt_tokens, usage.cached_tokens = N, cached
    generator = None
    if params.seed is not None:
        generator = torch.Generator(device=input_ids.device).manual_seed(params.seed)
    cfg = longheads_config(model)
    exact_from = N - cfg.exact_tail if (cfg is not None and exact_tail) else None
    t0 = time.perf_counter()
    if cached >= N:
        raise ValueError("the cache already holds the whole prompt: keep at least its last token to prefill")
    logits = prefill(model, cache, input_ids[:, cached:], progress=progress, exact_from=exact_from)
    usage.prefill_s = time.perf_counter() - t0
    if on_prefill_done:
        on_prefill_done()
    text = TextStream(tokenizer, params.stop)
    stops = eos_ids(model, tokenizer)
    t1 = time.perf_counter()
    usage.finish_reason = "length"
    for i in range(params.max_new_tokens):
        token = sample(logits, params, generator)
        tid = int(token)
        if tid in stops:
            usage.finish_reason = "stop"
            break
        usage.completion_tokens += 1
        if on_token:
            on_token(tid)
        piece = text.push(tid)
        if piece:
            yield piece
        if text.stopped:
            usage.finish_reason = "stop"
            break
        if i + 1 < params.max_new_tokens:
            logits = decode_one(model, cache, token)
        usage.decode_s = time.perf_counter() - t1
    rest = text.flush()
    usage.decode_s = time.perf_counter() - t1
    if rest:
        yield rest

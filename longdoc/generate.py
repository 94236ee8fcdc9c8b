"""Prefill in blocks, then decode, streaming text pieces (gpt-fast style: small functions, explicit cache).

The one generation loop: the Engine (CLI, LangChain, LlamaIndex) and the evaluations all prefill with
`prefill` and decode with `decode`. Works with LongHeads on (a LongHeadsCache) and off (full attention, a
FullCache), so evaluations run both through the same code. With LongHeads on, every forward call gets a
`ForwardPlan` (longdoc/longheads/plan.py): the per-token tail and where to record selections travel as
arguments, never as state on the cache.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch

from .longheads.layout import Selection
from .longheads.patch import is_enabled, longheads_config
from .longheads.plan import ForwardPlan, cache_kwargs
from .prefix import new_cache
from .repetition import RepeatGuard, adjust_logits, is_token_loop
from .threads import DECODE_EVERY
from .threads import adapt as adapt_threads

ProgressFn = Callable[[int, int], None]  # (tokens done, tokens total)


@dataclass
class SamplingParams:
    max_new_tokens: int = 256
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    ignore_eos: bool = False  # keep decoding past the end-of-sequence token (fixed-length evaluation answers)
    stop_on_repeat: bool = True  # stop at a sentence the answer already said (longdoc/repetition.py)
    repetition_penalty: float = 1.0  # > 1 lowers tokens already in the answer (1.0: off)
    no_repeat_ngram: int = 0  # ban tokens completing an n-gram already in the answer (0: off)


@dataclass
class Usage:
    prompt_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens whose prefill was reused
    completion_tokens: int = 0
    prefill_s: float = 0.0
    decode_s: float = 0.0
    finish_reason: str | None = None  # "stop" (eos, stop string, repeat) or "length"
    repeat_stopped: bool = False  # the answer stopped at a repeated sentence (longdoc/repetition.py)

    @property
    def prefill_tokens_per_s(self) -> float:
        n = self.prompt_tokens - self.cached_tokens
        return n / self.prefill_s if self.prefill_s > 0 else 0.0

    @property
    def decode_tokens_per_s(self) -> float:
        return self.completion_tokens / self.decode_s if self.decode_s > 0 else 0.0


DECODE_HEADROOM = 1024  # tokens of answer the cache makes room for at prefill, beyond the prompt


def prefill_block_size(model) -> int:
    cfg = longheads_config(model)
    return cfg.window if cfg is not None else 2048


def forward_kwargs(model, cache, exact_from: int | None = None, record: list[Selection] | None = None) -> dict:
    """The `model(...)` keyword arguments of one forward call over `cache` (prefill, decode and the evaluations
    all call the model through this): the cache under the keyword the model's forward takes (`cache_kwargs`),
    and a ForwardPlan with LongHeads on."""
    if not is_enabled(model):
        return cache_kwargs(model, cache)
    return ForwardPlan(cache, exact_from, record).model_kwargs(model)


@torch.inference_mode()
def prefill(model, cache, input_ids: torch.Tensor, *, block: int | None = None, progress: ProgressFn | None = None,
            exact_from: int | None = None, record: list[Selection] | None = None) -> torch.Tensor:
    """Feed input_ids (1, N) into the cache in blocks; returns the logits of the last token (1, vocab).

    Blocks are multiples of the chunk size so that block-shared selections equal a one-shot prefill's.
    exact_from: absolute position from which queries select chunks per token (the question tail; None: the
    last `exact_tail` of every block). record: a list the selections are appended to.
    """
    block = block or prefill_block_size(model)
    N = input_ids.shape[1]
    cache.reserve(cache.get_seq_length() + N + DECODE_HEADROOM)
    logits = None
    done = 0
    while done < N:
        adapt_threads()  # the cores other processes leave free (longdoc/threads.py; nothing unless auto)
        piece = input_ids[:, done : done + block]
        out = model(input_ids=piece, use_cache=True, logits_to_keep=1, **forward_kwargs(model, cache, exact_from, record))
        logits = out.logits[:, -1]
        done += piece.shape[1]
        if progress:
            progress(done, N)
    if logits is None:
        raise ValueError("prefill needs at least one new token")
    return logits


@torch.inference_mode()
def decode_one(model, cache, token: torch.Tensor, record: list[Selection] | None = None) -> torch.Tensor:
    """One decode step: token (1, 1) -> logits (1, vocab)."""
    return model(input_ids=token, use_cache=True, logits_to_keep=1, **forward_kwargs(model, cache, None, record)).logits[:, -1]


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

    def __init__(self, tokenizer, stop: list[str], guard: RepeatGuard | None = None):
        self.tokenizer, self.stop, self.guard = tokenizer, [s for s in stop if s], guard
        self.ids: list[int] = []
        self.emitted = 0  # characters of the decoded text already emitted
        self.stopped = False
        self.repeated = False  # stopped by the guard (a repeated sentence or token loop)

    def push(self, token_id: int) -> str:
        self.ids.append(token_id)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):  # an incomplete multi-byte character: wait for the next token
            return ""
        for s in self.stop:
            at = text.find(s, max(0, self.emitted - len(s)))
            if at != -1:
                self.stopped = True
                return self._emit(self._unrepeated(text[:at]))
        hold = max((k for s in self.stop for k in range(1, len(s)) if text.endswith(s[:k])), default=0)
        return self._emit(self._unrepeated(text[: len(text) - hold]))

    def _unrepeated(self, text: str) -> str:
        """text less a repeated sentence (then stop) or what may start one (held back)."""
        if self.guard is None:
            return text
        n, repeat = self.guard.check(text)
        if repeat or is_token_loop(self.ids):
            self.stopped = self.repeated = True
        return text[:n]

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


def decode(model, tokenizer, cache, logits: torch.Tensor, params: SamplingParams | None = None, *,
           usage: Usage | None = None, record: list[Selection] | None = None) -> Iterator[str]:
    """Decode from the logits (1, vocab) of the last prompt token, yielding text pieces as they are decoded.

    Stops at an end-of-sequence token (unless params.ignore_eos), a stop string, a repeated sentence
    (params.stop_on_repeat; finish_reason "stop", usage.repeat_stopped) or params.max_new_tokens;
    usage.completion_tokens / decode_s / finish_reason are filled in as it goes.
    """
    params = params or SamplingParams()
    usage = usage if usage is not None else Usage()
    generator = None
    if params.seed is not None:
        generator = torch.Generator(device=logits.device).manual_seed(params.seed)
    text = TextStream(tokenizer, params.stop, RepeatGuard() if params.stop_on_repeat else None)
    stops = set() if params.ignore_eos else eos_ids(model, tokenizer)
    t1 = time.perf_counter()
    usage.finish_reason = "length"
    for i in range(params.max_new_tokens):
        if i % DECODE_EVERY == 0:
            adapt_threads()
        logits = adjust_logits(logits, text.ids, params.repetition_penalty, params.no_repeat_ngram)
        token = sample(logits, params, generator)
        tid = int(token)
        if tid in stops:
            usage.finish_reason = "stop"
            break
        usage.completion_tokens += 1
        piece = text.push(tid)
        if piece:
            yield piece
        if text.stopped:
            usage.finish_reason = "stop"
            usage.repeat_stopped = text.repeated
            break
        if i + 1 < params.max_new_tokens:
            logits = decode_one(model, cache, token, record)
        usage.decode_s = time.perf_counter() - t1
    rest = text.flush()
    usage.decode_s = time.perf_counter() - t1
    if rest:
        yield rest


def stream(model, tokenizer, input_ids: torch.Tensor, params: SamplingParams | None = None, *, cache=None,
           usage: Usage | None = None, progress: ProgressFn | None = None, record: list[Selection] | None = None,
           on_prefill_done: Callable[[], None] | None = None) -> Iterator[str]:
    """Generate from input_ids (1, N), yielding text pieces as they are decoded.

    `cache` may already hold a prefix of input_ids (reused prefill); only the rest is prefilled, the last
    `exact_tail` prompt tokens selecting per token. `usage` is filled in as generation goes.
    """
    usage = usage if usage is not None else Usage()
    cache = cache if cache is not None else new_cache(model)
    N = input_ids.shape[1]
    cached = cache.get_seq_length()
    usage.prompt_tokens, usage.cached_tokens = N, cached
    cfg = longheads_config(model)
    t0 = time.perf_counter()
    if cached >= N:
        raise ValueError("the cache already holds the whole prompt: keep at least its last token to prefill")
    logits = prefill(model, cache, input_ids[:, cached:], progress=progress, record=record,
                     exact_from=N - cfg.exact_tail if cfg is not None else None)
    usage.prefill_s = time.perf_counter() - t0
    if on_prefill_done:
        on_prefill_done()
    yield from decode(model, tokenizer, cache, logits, params, usage=usage, record=record)

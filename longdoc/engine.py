"""The Engine: a loaded model with LongHeads on, its tokenizer, and a pool of reusable prefilled prefixes.

This is the one object the document sessions (longdoc/qa/session.py), the CLI and the LangChain / LlamaIndex
classes talk to. Asking several questions about the same document prefills the document once: every prompt
reuses as much of a pooled prefill as gives the same logits as a fresh prefill (longdoc/prefix.py).

Sharing: the engine is held per model step (a prefill, one decode step: longdoc/lease.py), never while a
consumer holds a streamed piece, so a stream that is abandoned, peeked at, closed, garbage-collected or
cancelled leaves it free for any other call. A stream takes its cache out of the pool and owns it until it
ends; it hands the prefix back through a mailbox without taking a blocking lock (safe from a finaliser in any
thread). A call waits at most `wait_s` seconds for another call's step, then raises EngineBusyError.
"""

from __future__ import annotations

import threading
import time
from typing import Iterator

import torch

from .chat_template import render
from .errors import TooLongError
from .generate import ProgressFn, SamplingParams, Usage, decode, prefill
from .lease import DEFAULT_WAIT_S, Mailbox, StepLock, stepwise
from .longheads.config import LongHeadsConfig
from .longheads.layout import Selection
from .longheads.patch import disable_longheads, enable_longheads, longheads_rope
from .memory import check_kv_memory
from .models import LoadedModel, load_model
from .prefix import PrefixEntry, crop_to, entry_for, new_cache, reusable_length
from .prompt_checks import check_max_tokens, check_prompt_ids, encodable

DEFAULT_REACH = 131_072  # tokens; the paper shows passkey retrieval to 128k


SCORES = ("votes", "attention", "contrast")  # how a re-read ranks chunks (`Engine.reread_stream`)
ORDERS = ("text", "score")  # where its chosen chunks sit (`reread.plan`)
NEUTRAL_MEMO = 8  # documents whose neutral attention mass an engine remembers


class Engine:
    """`Engine()` loads the embedded SmolLM2 model with the default LongHeads settings.

    model: a LoadedModel, or a source for `load_model` (None = embedded, a hub id, a HF folder, a .gguf file).
    config: LongHeads settings (default: per-model defaults); longheads=False runs plain full attention.
    wait_s: seconds a call waits for another call's model step before EngineBusyError (None: no limit).
    Build one from user-facing settings (window, threads, ...) with `longdoc.settings.EngineSettings`.
    """

    def __init__(self, model: LoadedModel | str | None = None, config: LongHeadsConfig | None = None, *,
                 longheads: bool = True, dtype=None, device: str | None = None, max_input_tokens: int | None = None,
                 prefix_slots: int = 2, wait_s: float | None = DEFAULT_WAIT_S):
        self.lm = model if isinstance(model, LoadedModel) else load_model(model, dtype=dtype, device=device)
        self.model, self.tokenizer, self.name = self.lm.model, self.lm.tokenizer, self.lm.name
        if longheads:
            self.config = enable_longheads(self.model, config or LongHeadsConfig.for_model(self.model.config))
        else:
            disable_longheads(self.model)
            self.config = None
        self.max_input_tokens = max_input_tokens or self._default_reach()
        self.prefix_slots = prefix_slots
        self._pool: list[PrefixEntry] = []
        self._neutral: dict[str, torch.Tensor | None] = {}  # neutral prompts' attention mass per document
        self._lock = StepLock(wait_s)  # one model step at a time, free between streamed pieces (lease.py)
        self._pool_lock = threading.Lock()  # the prefix pool's list; never taken by a stream's finaliser
        self._returned: Mailbox[PrefixEntry] = Mailbox()  # prefixes handed back by finished or abandoned streams

    # -- text <-> tokens -------------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        return self.tokenizer(encodable(text), add_special_tokens=False).input_ids

    def chat_ids(self, messages: list[dict], add_generation_prompt: bool = True) -> list[int]:
        """Token ids of `messages` ([{"role", "content"}]) through the tokenizer's own chat template (system turns
        merged or folded into the first user turn where the template rejects them: chat_template.py)."""
        out = render(self.tokenizer, messages, add_generation_prompt=add_generation_prompt, tokenize=True)
        return list(out["input_ids"] if isinstance(out, dict) or hasattr(out, "keys") else out)

    # -- generation ------------------------------------------------------------------------------------------
    def stream(self, prompt_ids: list[int], params: SamplingParams | None = None, *, prefix_len: int = 0,
               usage: Usage | None = None, progress: ProgressFn | None = None,
               selections: list[Selection] | None = None) -> Iterator[str]:
        """Stream the answer to `prompt_ids`, reusing what the pool holds of it.

        prefix_len: the first prefix_len ids are a reusable prefix (a document, longdoc/qa/prompting.py),
            prefilled on their own so that every question about it can reuse them exactly.
        selections: a list every attention call's `Selection` is appended to (citations, Figure 5), and, first,
            the document prefix's own block-prefill choices (positions < prefix_len) from the cache, whichever
            way the prefix was made (prefilled now, pooled, stored): the input of its hub prior.
        Raises, before any work: InputError for an empty prompt, ConfigError for max_new_tokens < 1, TooLongError
        when the prompt is longer than `max_input_tokens` or its KV cache would not fit in memory; EngineBusyError
        when another call's step keeps the engine busy past `wait_s`.
        The engine is held for the prefill and for each decode step only (lease.py); the prompt's cache is this
        stream's own until the stream ends (finished, break, close(), garbage collection, cancellation).
        """
        check_prompt_ids(prompt_ids)
        check_max_tokens((params or SamplingParams()).max_new_tokens)
        self.check_length(len(prompt_ids))
        usage = usage if usage is not None else Usage()
        with self._lock.hold("this stream"):
            cache, logits = self._prefill(prompt_ids, prefix_len, usage, progress, selections)
            if selections is not None and prefix_len:
                selections[:0] = cache.document_selections(before=prefix_len)
        snap = cache.snapshot()
        try:  # the engine is held only while a piece is computed, never while the consumer holds one
            yield from stepwise(self._lock, decode(self.model, self.tokenizer, cache, logits, params, usage=usage,
                                                   record=selections))
        finally:  # also on break, close(), garbage collection, cancellation: only this stream's cache is touched
            cache.restore(snap)  # back to the prompt: a finished prefill, worth keeping
            self._give_back(entry_for(self.config, prompt_ids, cache, prefix_len))

    def reread_stream(self, prompt_ids: list[int], params: SamplingParams | None = None, *, prefix_len: int = 0,
                      question_start: int, budget: int, hub_correction: bool = True, scores: str = "votes",
                      neutral_prompts: list[list[int]] = (), order: str = "text", lead_ids: list[int] = (),
                      peak_spans: bool = False, usage: Usage | None = None,
                      progress: ProgressFn | None = None, on_plan=None,
                      selections: list[Selection] | None = None) -> Iterator[str]:
        """Stream the answer of a LongHeads-guided re-read (longdoc/reread.py): prefill `prompt_ids` through the
        pool as `stream` does, recording the question's chunk selections; then answer from a dense pass over
        [chunk 0 | the chunks the heads chose | question] of at most `budget` tokens, in a cache of its own (the
        pooled document prefix stays as it was).

        question_start: the question's first token in prompt_ids. hub_correction: rank chunks by vote / (1 +
        lift), the lift from the document's own choices that its cache carries (`LongHeadsCache.
        document_selections`), so the plan is the same from a fresh prefill, the pool or the store.
        scores: "votes" ranks chunks by the heads' selections (`reread.chunk_votes`), "attention" by the question's
        token-level attention mass over every chunk (`reread.attention_votes`), "contrast" by that mass per head
        over the mass the `neutral_prompts` (the same document prefix, then a neutral question each; see
        `reread.contrast`) give each chunk: computed once per document and remembered (`neutral_mass`).
        order: "text" or "score" (the chosen chunks in document order, or the best next to the question).
        lead_ids: tokens read right after chunk 0, before the chosen chunks (the question asked first too,
        `reread.plan(lead=...)`); they count in the budget.
        peak_spans: with "attention" or "contrast" scores, read each chosen chunk as the l-token window where the
        question's attention peaks, up to half a chunk into a neighbour (`reread.place_spans`).
        on_plan(RereadPlan | None) is called before the first piece; None: the question left no room for a
        chunk in the budget, or no head voted, and LongHeads answers as in `stream` (recording into `selections`
        for citations, as `stream` does).
        Raises as `stream` does; ConfigError when LongHeads is off, the budget exceeds the window, or
        "contrast" comes without neutral prompts.
        """
        from . import reread
        from .errors import ConfigError

        if scores not in SCORES:
            raise ConfigError(f"re-read scores are {', '.join(repr(x) for x in SCORES)}, not {scores!r}.")
        if scores == "contrast" and not neutral_prompts:
            raise ConfigError("re-read scores 'contrast' need neutral prompts (the document, then a neutral question).")
        if scores == "contrast" and any(list(p[:prefix_len]) != list(prompt_ids[:prefix_len]) or len(p) <= prefix_len
                                        for p in neutral_prompts):
            raise ConfigError("each neutral prompt must start with the prompt's document prefix and add a question.")
        if order not in ORDERS:
            raise ConfigError(f"re-read order is {' or '.join(repr(o) for o in ORDERS)}, not {order!r}.")
        if self.config is None or budget > self.config.window:
            raise ConfigError(f"a re-read needs LongHeads on and a budget of at most the window "
                              f"({self.config.window if self.config else 0} tokens); {budget} asked.")
        check_prompt_ids(prompt_ids)
        check_max_tokens((params or SamplingParams()).max_new_tokens)
        self.check_length(len(prompt_ids))
        usage = usage if usage is not None else Usage()
        record: list[Selection] = []
        with self._lock.hold("this stream"):
            t0 = time.perf_counter()
            neutral = self._neutral_mass(neutral_prompts, prefix_len, question_start) if scores == "contrast" else None
            neutral_s = time.perf_counter() - t0  # the neutral question's pass (once per document), part of prefill
            cache, _ = self._prefill(prompt_ids, prefix_len, usage, progress, record)
            usage.prefill_s += neutral_s
            self._give_back(entry_for(self.config, prompt_ids, cache, prefix_len))
            votes = tokens = None
            if scores in ("attention", "contrast"):
                att = reread.attention_scores(cache, longheads_rope(self.model), self.config, question_start,
                                              neutral=neutral)
                if att is not None:
                    votes, tokens = att.chunks, att.tokens if peak_spans else None
            prior = None
            if hub_correction and votes is None:
                doc = cache.document_selections(before=question_start)
                prior = reread.chunk_prior(doc, self.config, question_start // self.config.chunk_size + 1,
                                           question_start)
            try:
                plan = reread.plan(torch.tensor([prompt_ids]), record, self.config, question_start, budget,
                                   hub_correction=hub_correction, prior=prior, votes=votes, order=order,
                                   lead=torch.tensor([list(lead_ids)]) if len(lead_ids) else None,
                                   token_scores=tokens)
            except ValueError:  # the question leaves no room for a chunk: answer with LongHeads itself
                plan = None
        if plan is None or not plan.chunks:
            if on_plan is not None:
                on_plan(None)
            yield from self.stream(prompt_ids, params, prefix_len=prefix_len, usage=usage, selections=selections)
            return
        with self._lock.hold("this stream"):
            dense = new_cache(self.model)  # in-window: exact causal attention, LongHeads selects nothing
            t0 = time.perf_counter()
            logits = self._prefill_ids(dense, plan.ids[0].tolist())
            usage.prefill_s += time.perf_counter() - t0
        if on_plan is not None:
            on_plan(plan)
        yield from stepwise(self._lock, decode(self.model, self.tokenizer, dense, logits, params, usage=usage))

    def _neutral_mass(self, prompts: list[list[int]], prefix_len: int, question_start: int) -> torch.Tensor | None:
        """Mean `reread.attention_mass` (heads, C - 1) of the neutral prompts (each: the document prefix, then a
        neutral question from token question_start), prefilled through the pool like any prompt; remembered per
        prompts and config (NEUTRAL_MEMO documents), so a document pays for it once. Call with the engine held."""
        import hashlib

        from . import reread

        if prefix_len <= 0:
            return None  # no document prefix: nothing to contrast with
        h = hashlib.sha256(repr((self.config, prefix_len, question_start)).encode())
        for ids in prompts:
            h.update(len(ids).to_bytes(8, "little"))
            h.update(torch.tensor(ids, dtype=torch.int64).numpy().tobytes())
        key = h.hexdigest()
        if key in self._neutral:
            self._neutral[key] = self._neutral.pop(key)  # most recently used last
            return self._neutral[key]
        masses = []
        rope = longheads_rope(self.model)
        for ids in prompts:  # prefilled as `_prefill` does, but the pool gets the bare document prefix back
            cache, reused = self._take(ids, prefix_len, limit=prefix_len)
            if reused < prefix_len:
                self._prefill_ids(cache, ids[reused:prefix_len], exact_from=prefix_len)
            snap = cache.snapshot()
            try:
                self._prefill_ids(cache, ids[prefix_len:], exact_from=len(ids) - self.config.exact_tail)
                m = reread.attention_mass(cache, rope, self.config, question_start)
            finally:
                cache.restore(snap)
                self._give_back(entry_for(self.config, ids[:prefix_len], cache, prefix_len))
            if m is not None:
                masses.append(m)
        mass = torch.stack(masses).mean(dim=0) if masses else None
        self._neutral[key] = mass
        while len(self._neutral) > NEUTRAL_MEMO:
            self._neutral.pop(next(iter(self._neutral)))
        return mass

    def complete(self, prompt_ids: list[int], params: SamplingParams | None = None, **kw) -> tuple[str, Usage]:
        usage = Usage()
        text = "".join(self.stream(prompt_ids, params, usage=usage, **kw))
        return text, usage

    def logits(self, prompt_ids: list[int], *, prefix_len: int = 0, usage: Usage | None = None) -> torch.Tensor:
        """The next-token logits (1, vocab) after `prompt_ids`, through the prefix pool as `stream` does (usage:
        prompt and reused token counts)."""
        check_prompt_ids(prompt_ids)
        self.check_length(len(prompt_ids))
        with self._lock.hold("this call"):
            cache, logits = self._prefill(prompt_ids, prefix_len, usage if usage is not None else Usage(), None, None)
            self._give_back(entry_for(self.config, prompt_ids, cache, prefix_len))
            return logits

    def prefill_prefix(self, ids: list[int], progress: ProgressFn | None = None):
        """Prefill `ids` (e.g. a document) as a reusable prefix into a cache kept in the pool.
        Returns (the cache, how many of the ids were reused from the pool rather than prefilled)."""
        check_prompt_ids(ids)
        self.check_length(len(ids))
        with self._lock.hold("this prefill"):
            cache, reused = self._take(ids, len(ids), limit=len(ids))
            if reused < len(ids):
                self._prefill_ids(cache, ids[reused:], exact_from=len(ids), progress=progress)
            self._give_back(entry_for(self.config, ids, cache, len(ids)))
            return cache, reused

    def holds_prefix(self, ids: list[int]) -> bool:
        """Whether the pool can reuse all of the prefix `ids` (so nothing needs loading or prefilling)."""
        with self._pool_lock:
            self._returned.drain(self._keep)
            return any(reusable_length(self.config, e, ids, len(ids), len(ids)) == len(ids) for e in self._pool)

    def add_prefix(self, ids: list[int], cache) -> None:
        """Put an externally restored cache of the prefix `ids` (e.g. a stored ingest) into the pool."""
        self._give_back(entry_for(self.config, ids, cache, len(ids)))

    def clear_prefixes(self) -> None:
        with self._pool_lock:
            self._returned.drain(lambda entry: None)
            self._pool.clear()

    # -- limits ----------------------------------------------------------------------------------------------
    def check_length(self, n: int) -> None:
        """TooLongError for an `n`-token prompt past the reach, or whose KV cache would not fit in memory now."""
        if n > self.max_input_tokens:
            what = "LongHeads can reach" if self.config else "full attention handles"
            raise TooLongError(
                f"The prompt is {n:,} tokens; {what} at most {self.max_input_tokens:,} with this model: "
                "shorten the document or split it."
            )
        check_kv_memory(n, self._kv_bytes_per_token())

    def _kv_bytes_per_token(self) -> int:
        cfg = self.model.config
        return 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * _head_dim(cfg) * self.model.dtype.itemsize

    def _default_reach(self) -> int:
        """The reach as a property of the model and settings (stable across runs and machines, so metadata and
        cache keys built from it are too): the paper's 128k for LongHeads, the trained length without it. Memory
        is checked per prompt instead (`check_length`)."""
        if self.config is None:
            return int(self.model.config.max_position_embeddings)
        return int(max(self.config.window, DEFAULT_REACH))

    # -- prefill through the pool ----------------------------------------------------------------------------
    def _prefill(self, ids: list[int], prefix_len: int, usage: Usage, progress, selections):
        """(cache holding ids, logits of the last token): the pooled part reused, the prefix (if not pooled)
        prefilled on its own, then the rest with the question's per-token tail."""
        t0 = time.perf_counter()
        cache, reused = self._take(ids, prefix_len, limit=len(ids) - 1)
        usage.prompt_tokens, usage.cached_tokens = len(ids), reused
        if reused < prefix_len < len(ids):
            self._prefill_ids(cache, ids[reused:prefix_len], exact_from=prefix_len, progress=progress)
        done = cache.get_seq_length()
        tail = self.config.exact_tail if self.config is not None else 0
        logits = self._prefill_ids(cache, ids[done:], exact_from=len(ids) - tail if self.config else None,
                                   progress=progress, record=selections)
        usage.prefill_s = time.perf_counter() - t0
        return cache, logits

    def _prefill_ids(self, cache, ids: list[int], **kw) -> torch.Tensor:
        return prefill(self.model, cache, torch.tensor([ids], device=self.lm.device), **kw)

    def _take(self, ids: list[int], prefix_len: int, limit: int):
        """Remove from the pool and return (cache, n): the entry that may reuse most of ids, cropped to n tokens
        (or a new cache and 0). Prefixes handed back since the last look are taken in first."""
        with self._pool_lock:
            self._returned.drain(self._keep)
            best, best_n = None, 0
            for entry in self._pool:
                n = reusable_length(self.config, entry, ids, prefix_len, limit)
                if n > best_n:
                    best, best_n = entry, n
            if best is None:
                return new_cache(self.model), 0
            self._pool.remove(best)
        crop_to(best.cache, best_n)  # the caller's own cache from here on
        return best.cache, best_n

    def _keep(self, entry: PrefixEntry) -> None:
        """Put `entry` first in the pool (caller holds `_pool_lock`), dropping the least recently used."""
        self._pool.insert(0, entry)
        del self._pool[self.prefix_slots :]

    def _give_back(self, entry: PrefixEntry) -> None:
        """Hand a prefix back to the pool without ever blocking (safe from a finaliser in any thread): posted to
        the mailbox, taken in now if the pool is free, else by the next `_take`."""
        self._returned.post(entry)
        if self._pool_lock.acquire(blocking=False):
            try:
                self._returned.drain(self._keep)
            finally:
                self._pool_lock.release()


def _head_dim(cfg) -> int:
    return getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads


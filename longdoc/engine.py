"""The Engine: a loaded model with LongHeads on, its tokenizer, and a pool of reusable prefilled prefixes.

This is the one object the CLI and the LangChain / LlamaIndex classes talk to. Asking several questions about
the same document prefills the document once: every prompt reuses the longest prefix already in the pool.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Iterator

import torch

from .cache import LongHeadsCache
from .chat_template import render
from .config import LongHeadsConfig
from .errors import TooLongError
from .generate import ProgressFn, SamplingParams, Usage, crop_to, new_cache, stream
from .lease import DEFAULT_WAIT_S, Mailbox, StepLock, stepwise
from .memory import check_kv_memory
from .prompt_checks import check_max_tokens, check_prompt_ids
from .models import LoadedModel, load_model
from .patch import disable_longheads, enable_longheads

DEFAULT_REACH = 131_072  # tokens; the paper shows passkey retrieval to 128k


@dataclass
class PrefixEntry:
    ids: list[int]
    cache: object


class Engine:
    """`Engine()` loads the embedded SmolLM2 model with the default LongHeads settings.

    model: a LoadedModel, or a source for `load_model` (None = embedded, a HF folder, a .gguf file).
    config: LongHeads settings (default: per-model defaults); longheads=False runs plain full attention.
    """

    def __init__(self, model: LoadedModel | str | None = None, config: LongHeadsConfig | None = None, *,
                 longheads: bool = True, dtype=None, device: str | None = None, max_input_tokens: int | None = None,
                 prefix_slots: int = 2, threads: int | None = None, wait_s: float | None = DEFAULT_WAIT_S):
        if threads:
            torch.set_num_threads(threads)
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
        self._lock = StepLock(wait_s)  # one model step at a time, free between streamed pieces (lease.py)
        self._pool_lock = threading.Lock()  # the prefix pool's list; never taken by a stream's finaliser
        self._returned: Mailbox[PrefixEntry] = Mailbox()  # prefixes handed back by finished or abandoned streams
        self.last_selections: list[dict] = []

    # -- text <-> tokens -------------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def count_tokens(self, text: str) -> int:
        return len(self.encode(text))

    def chat_ids(self, messages: list[dict], add_generation_prompt: bool = True) -> list[int]:
        """Token ids of `messages` ([{"role", "content"}]) through the tokenizer's own chat template (system turns
        merged or folded into the first user turn where the template rejects them: chat_template.py)."""
        out = render(self.tokenizer, messages, add_generation_prompt=add_generation_prompt, tokenize=True)
        return list(out["input_ids"] if isinstance(out, dict) or hasattr(out, "keys") else out)

    # -- generation ------------------------------------------------------------------------------------------
    def stream(self, prompt_ids: list[int], params: SamplingParams | None = None, *, usage: Usage | None = None,
               progress: ProgressFn | None = None, record_selections: bool = False) -> Iterator[str]:
        """Stream the answer to `prompt_ids`, reusing the longest prefilled prefix in the pool."""
        check_prompt_ids(prompt_ids)
        check_max_tokens((params or SamplingParams()).max_new_tokens)
        self.check_length(len(prompt_ids))
        usage = usage if usage is not None else Usage()
        with self._lock.hold("this stream"):
            cache = self._take_prefix(prompt_ids)  # this stream's own cache from here on
        if isinstance(cache, LongHeadsCache):
            cache.record_selections = record_selections
            cache.selections.clear()
        ids = torch.tensor([prompt_ids], device=self.lm.device)
        snap = {}

        def remember_prompt_state():
            if isinstance(cache, LongHeadsCache):
                snap["s"] = cache.snapshot()

        try:  # the engine is held only while a piece is computed, never while the consumer holds one
            yield from stepwise(self._lock, stream(self.model, self.tokenizer, ids, params, cache=cache, usage=usage,
                                                   progress=progress, on_prefill_done=remember_prompt_state))
        finally:  # also on break, close(), garbage collection, cancellation: only this stream's cache is touched
            if isinstance(cache, LongHeadsCache):
                self.last_selections = list(cache.selections)
                cache.record_selections = False
                cache.selections.clear()
            if "s" in snap:
                cache.restore(snap["s"])
            elif not isinstance(cache, LongHeadsCache):
                crop_to(cache, len(prompt_ids))
            if cache.get_seq_length() == len(prompt_ids):  # a finished prefill: worth keeping
                self._give_back(PrefixEntry(list(prompt_ids), cache))

    def complete(self, prompt_ids: list[int], params: SamplingParams | None = None, **kw) -> tuple[str, Usage]:
        usage = Usage()
        text = "".join(self.stream(prompt_ids, params, usage=usage, **kw))
        return text, usage

    def prefill_prefix(self, ids: list[int], progress: ProgressFn | None = None):
        """Prefill `ids` (e.g. a document) into a cache kept in the pool; returns the cache."""
        from .generate import prefill

        check_prompt_ids(ids)
        self.check_length(len(ids))
        with self._lock.hold("this prefill"):
            cache = self._take_prefix(ids + [-1])  # never reuse past the end of ids
            if isinstance(cache, LongHeadsCache):
                cache.exact_from = None
            todo = ids[cache.get_seq_length():]
            if todo:
                prefill(self.model, cache, torch.tensor([todo], device=self.lm.device), progress=progress,
                        exact_from=1 << 62)
            self._give_back(PrefixEntry(list(ids), cache))
            return cache

    def add_prefix(self, ids: list[int], cache) -> None:
        """Put an externally restored cache (e.g. a stored ingest) into the pool."""
        self._give_back(PrefixEntry(list(ids), cache))

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

    # -- prefix pool -----------------------------------------------------------------------------------------
    def _take_prefix(self, ids: list[int]):
        """Remove and return the pooled cache sharing the longest prefix with ids, cropped to it (or a new one)."""
        with self._pool_lock:
            self._returned.drain(self._keep)
            best, best_len = None, 0
            for entry in self._pool:
                n = _common_prefix(entry.ids, ids)
                if n > best_len:
                    best, best_len = entry, n
            if best is None:
                return new_cache(self.model)
            self._pool.remove(best)
        cache = best.cache
        keep = min(best_len, len(ids) - 1)
        if isinstance(cache, LongHeadsCache):
            keep = cache.croppable_length(keep)
        crop_to(cache, keep)
        return cache

    def _keep(self, entry: PrefixEntry) -> None:
        """Put `entry` first in the pool (caller holds `_pool_lock`), dropping the least recently used."""
        self._pool.insert(0, entry)
        del self._pool[self.prefix_slots :]

    def _give_back(self, entry: PrefixEntry) -> None:
        """Hand a prefix back to the pool without ever blocking (safe from a finaliser in any thread)."""
        self._returned.post(entry)
        if self._pool_lock.acquire(blocking=False):
            try:
                self._returned.drain(self._keep)
            finally:
                self._pool_lock.release()


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    ta, tb = torch.tensor(a[:n]), torch.tensor(b[:n])
    diff = (ta != tb).nonzero()
    return int(diff[0]) if len(diff) else n


def _head_dim(cfg) -> int:
    return getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads

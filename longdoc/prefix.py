"""Prefilled prefixes kept for reuse: the cache interface the Engine needs, and the rule saying how much of a
kept prefill a new prompt may reuse so that its logits equal a fresh prefill's.

The interface (`PrefixCache`) has one implementation per attention: `LongHeadsCache` with LongHeads on,
`FullCache` (transformers' DynamicCache) with it off, so the Engine never asks which one it holds.

How a prompt is computed (its "plan"), with or without reuse: a prompt with a reusable document prefix of
`prefix_len` tokens is prefilled as [0, prefix_len) with no per-token tail, then [prefix_len, N) with the last
`exact_tail` positions selecting per token; a prompt without one as [0, N) with that tail. In "block" prefill
(the default) the queries of a chunk share one selection, so a kept cache equals a fresh prefill only where it
was grouped the same way: whole chunks before any per-token tail, or exactly the same prefix boundary. The
rule below reuses only such a length; `tests/test_engine.py` checks the logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from transformers import DynamicCache

from longdoc.longheads.cache import LongHeadsCache
from longdoc.longheads.patch import is_enabled, longheads_config


class PrefixCache(Protocol):
    """What the Engine does with a cache (transformers `Cache` methods plus these)."""

    def get_seq_length(self, layer_idx: int = 0) -> int: ...

    def croppable_length(self, length: int) -> int:
        """The longest length <= `length` this cache can be cropped to."""

    def crop(self, max_length: int) -> None: ...

    def snapshot(self): ...

    def restore(self, snapshot) -> None: ...

    def reserve(self, tokens: int) -> None:
        """Make room for `tokens` at the next growth (a hint; may do nothing)."""


class FullCache(DynamicCache):
    """transformers' DynamicCache with the prefix-cache interface, for LongHeads off (full attention): any
    length can be kept, and a snapshot is just a length."""

    def croppable_length(self, length: int) -> int:
        return min(length, self.get_seq_length())

    def snapshot(self) -> int:
        return self.get_seq_length()

    def restore(self, snapshot: int) -> None:
        crop_to(self, snapshot)

    def reserve(self, tokens: int) -> None:  # DynamicCache concatenates per step: nothing to preallocate
        return None


def new_cache(model) -> PrefixCache:
    """An empty cache for `model`: a LongHeadsCache (keys and values offloaded as its config asks) or, LongHeads
    off, a full-attention cache."""
    if not is_enabled(model):
        return FullCache()
    offload = longheads_config(model).offload
    return LongHeadsCache(offload=None if offload == "none" else offload)


def crop_to(cache, length: int) -> None:
    """Roll any cache back to `length` tokens (transformers' crop takes a negative count to remove)."""
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)


@dataclass
class PrefixEntry:
    """A kept prefill. ids: its tokens; stable: its first `stable` tokens equal a fresh prefill of any prompt
    starting with them (whole chunks before any per-token tail); split: the document-prefix boundary it was
    computed with (reusable exactly by a prompt with the same prefix boundary), or None."""

    ids: list[int]
    cache: PrefixCache
    stable: int
    split: int | None = None


def entry_for(config, ids: list[int], cache, prefix_len: int) -> PrefixEntry:
    """The pool entry of a cache holding `ids`, computed with the plan of a prompt with `prefix_len`."""
    n = len(ids)
    split = prefix_len if 0 < prefix_len <= n else None
    if _grouping_free(config):
        return PrefixEntry(list(ids), cache, n, split)
    l = config.chunk_size
    tail_from = max(0, n - config.exact_tail) if prefix_len < n else n  # a bare prefix has no per-token tail
    if split is not None and split % l:
        stable = split // l * l  # the chunk cut at the prefix boundary was grouped in two: only for this split
    else:
        stable = max(split or 0, tail_from) // l * l
    return PrefixEntry(list(ids), cache, stable, split)


def reusable_length(config, entry: PrefixEntry, ids: list[int], prefix_len: int, limit: int) -> int:
    """How many tokens of `entry` a prompt `ids` (with `prefix_len`) may reuse, at most `limit`, so that its
    computation equals a fresh one."""
    n = min(_common_prefix(entry.ids, ids), limit)
    if _grouping_free(config):
        return entry.cache.croppable_length(n)
    l = config.chunk_size
    if entry.split is not None and entry.split == prefix_len and prefix_len <= n:
        if entry.cache.croppable_length(prefix_len) == prefix_len:
            return prefix_len
    own_block_region = prefix_len if prefix_len else max(0, len(ids) - config.exact_tail)
    return entry.cache.croppable_length(min(n, entry.stable, own_block_region) // l * l)


def _grouping_free(config) -> bool:
    """Full attention, per-token selection and the fixed window: no query's result depends on which other
    queries share its forward call, so any croppable length is exact."""
    return config is None or config.prefill_selection == "token" or config.selection == "window"


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n

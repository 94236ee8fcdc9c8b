"""ForwardPlan: what one forward call asks of LongHeads attention, passed in the open.

gpt-fast threads `input_pos` from its generate loop down to `KVCache.update`; transformers forwards extra
`model(...)` keyword arguments to every layer's attention function (and to `Cache.update`). longdoc does the
same: generation (longdoc/generate.py) builds one ForwardPlan per forward call and passes it as

    model(input_ids=ids, cache=plan.cache, longheads_plan=plan)     # `plan.model_kwargs(model)`

so nothing is left on the cache between calls. The cache goes in under the keyword the model's forward takes
(`cache_kwargs`: `cache` in newer transformers, which deprecate `past_key_values` with a FutureWarning on every
call; `past_key_values` before). A forward call without a plan (transformers' own `generate()`,
a plain `model(ids)`) gets the defaults below.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass

from .cache import PLAN_KWARG, LongHeadsCache, LongHeadsLayer
from .layout import Selection


@dataclass(frozen=True)
class ForwardPlan:
    """cache: the LongHeadsCache this call reads and appends to (the model's `cache` / `past_key_values`).
    exact_from: absolute position from which queries select chunks per token (the question tail, config
        `exact_tail`); None: the last `exact_tail` queries of this call (what a plain forward does). A document
        prefix that questions will follow passes its own length: no query of the call selects per token.
    record: a list to append a `Selection` to for every attention call (citations, hit rate, Figure 5), or None.
    """

    cache: LongHeadsCache
    exact_from: int | None = None
    record: list[Selection] | None = None

    def layer(self, layer_idx: int) -> LongHeadsLayer:
        return self.cache.layers[layer_idx]

    def model_kwargs(self, model) -> dict:
        """The keyword arguments of `model(...)` that carry this plan (and its cache) to every layer."""
        return {**cache_kwargs(model, self.cache), PLAN_KWARG: self}


@functools.lru_cache(maxsize=None)
def _cache_arg(model_class) -> str:
    params = inspect.signature(model_class.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def cache_kwargs(model, cache) -> dict:
    """{keyword: cache} for `model(...)`: `cache` where the model's forward takes it, else `past_key_values`."""
    return {_cache_arg(type(model)): cache}

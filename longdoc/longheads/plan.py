"""ForwardPlan: what one forward call asks of LongHeads attention, passed in the open.

gpt-fast threads `input_pos` from its generate loop down to `KVCache.update`; transformers forwards extra
`model(...)` keyword arguments to every layer's attention function (and to `Cache.update`). longdoc does the
same: generation (longdoc/generate.py) builds one ForwardPlan per forward call and passes it as

    model(input_ids=ids, past_key_values=plan.cache, longheads_plan=plan)     # `plan.model_kwargs()`

so nothing is left on the cache between calls. A forward call without a plan (transformers' own `generate()`,
a plain `model(ids)`) gets the defaults below.
"""

from __future__ import annotations

from dataclasses import dataclass

from .cache import PLAN_KWARG, LongHeadsCache, LongHeadsLayer
from .layout import Selection


@dataclass(frozen=True)
class ForwardPlan:
    """cache: the LongHeadsCache this call reads and appends to (the model's `past_key_values`).
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

    def model_kwargs(self) -> dict:
        """The keyword arguments of `model(...)` that carry this plan to every layer."""
        return {"past_key_values": self.cache, PLAN_KWARG: self}

"""One prefill of a cell's haystack, shared by its trials.

The samples of one task x length cell are the same haystack with needles at different depths, so two prompts
agree token for token up to the earlier of their first needles. `KeptPrefill` keeps one trial's prefill and lets
the next trial reuse its longest exact prefix (`longdoc.prefix.reusable_length`: whole chunks before the
question, so block-shared chunk selections are grouped as in a fresh prefill), prefilling only the rest. It keeps
the prompt whose first needle sits deepest, since a later prompt can reuse at most min(its needle, the kept
one's): with needles at uniform depths, about half of each prefill is reused after the first few trials.

    trial 1: [haystack ........ needle ....... question]    prefilled whole, kept
    trial 2: [haystack ... needle ............ question]    [0, reuse) copied from trial 1, the rest prefilled

Reuse is exact up to floating-point summation order (the reused region's keys, values, chunk summaries and
block selections equal a fresh prefill's; `tests/eval/test_eval_haystack.py` checks the answers and log-probs).
Methods whose RoPE depends on the prompt's length (dynamic NTK recomputes its frequencies per forward call)
never reuse, nor does per-token prefill selection (`prefill_selection="token"`, the paper's): its cache keeps no
block selections for the reused part, so the hub prior of a selection-vote re-read would differ
(`KeptPrefill(enabled=False)`). Full attention reuses any length, not only whole chunks.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from ..prefix import PrefixEntry, crop_to, entry_for, new_cache, reusable_length


@dataclass
class Reused:
    """What a trial starts from: cache (holding `tokens` tokens of its prompt, to be prefilled from there)."""

    cache: object
    tokens: int


class KeptPrefill:
    """The kept prefill of one cell. cfg: the method's LongHeadsConfig (None: full attention)."""

    def __init__(self, cfg, enabled: bool = True):
        self.cfg, self.enabled = cfg, enabled
        self._entry: PrefixEntry | None = None
        self._reach = -1  # the kept prompt's first needle token: no other prompt can share more than this

    def start(self, model, ids: list[int], question_start: int) -> Reused:
        """A cache holding the longest exact prefix of `ids` (1-D token list) that the kept prefill shares,
        and its length (0 and an empty cache when nothing is shared). The kept entry itself is not changed."""
        if not self.enabled or self._entry is None:
            return Reused(new_cache(model), 0)
        n = reusable_length(self.cfg, self._entry, ids, question_start, question_start)
        if n <= 0:
            return Reused(new_cache(model), 0)
        cache = copy.deepcopy(self._entry.cache)
        crop_to(cache, n)
        return Reused(cache, n)

    def offer(self, ids: list[int], cache, question_start: int, reach: int) -> None:
        """After a trial: keep its prefill (`cache`, rolled back to the prompt by the caller) if its first needle
        (token `reach`) sits deeper than the kept one's."""
        if self.enabled and reach > self._reach:
            self._entry = entry_for(self.cfg, ids, cache, question_start)
            self._reach = reach

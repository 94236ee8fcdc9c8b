"""Long-context perplexity (paper Table 1): how well each method predicts the end of a long book given more and
more of the text before it.

For every context length L the *same* tail tokens are scored (the last `tail` tokens before a fixed end point,
by default 256 as the paper's S), with the L - tail tokens before them as context. Only the context grows, so
a method that uses long context well gets flat or falling perplexity, and one that breaks past its trained
length explodes. `samples` > 1 scores several end points spread over the book and pools their tokens.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from .methods import Method, activate, checked_configs
from .results import ResultsFile, config_id


def end_points(n_text: int, max_length: int, samples: int) -> list[int]:
    """Token offsets where the scored tail ends, spread evenly over the text after the first max_length tokens."""
    if n_text < max_length:
        raise ValueError(f"the text has {n_text} tokens, fewer than the longest context {max_length}")
    if samples <= 1:
        return [max_length]
    stride = (n_text - max_length) // (samples - 1)
    return [max_length + k * stride for k in range(samples)]


@torch.inference_mode()
def tail_nll(model, ids: torch.Tensor, tail: int) -> tuple[float, int]:
    """Sum of the negative log-likelihoods of the last `tail` tokens of ids (1, L) given the tokens before them."""
    from ..generate import forward_kwargs, prefill
    from ..prefix import new_cache

    L = ids.shape[1]
    if not 0 < tail < L:
        raise ValueError(f"tail {tail} must be between 1 and the context length {L}")
    cache = new_cache(model)
    first = prefill(model, cache, ids[:, : L - tail])  # (1, V): predicts ids[L - tail]
    rest = model(input_ids=ids[:, L - tail : L - 1], use_cache=True, **forward_kwargs(model, cache)).logits[0]  # (tail-1, V)
    logits = torch.cat([first, rest], dim=0).float()  # (tail, V)
    targets = ids[0, L - tail :]  # (tail,)
    nll = torch.nn.functional.cross_entropy(logits, targets, reduction="sum")
    return float(nll), tail


def run_ppl(lm, methods: list[Method], ids: list[int], lengths: list[int], results: ResultsFile, *, tail: int = 256,
            samples: int = 1, common: dict | None = None, max_full_length: int | None = None,
            on_trial: Callable[[dict], None] | None = None) -> list[dict]:
    """Perplexity of the tail at every length for every method; saves after each measurement."""
    model = lm.model
    ends = end_points(len(ids), max(lengths), samples)
    configs = checked_configs(methods, model.config, common)
    skipped: dict[tuple, str] = {}
    device = lm.device

    def table(trials):
        return aggregate(trials, methods, lengths, skipped)

    def score(end: int, length: int) -> dict:
        window = torch.tensor([ids[end - length : end]], device=device)
        nll, n = tail_nll(model, window, tail)
        return {"end": end, "tail": tail, "nll": round(nll, 4), "tokens_scored": n, "ppl": round(math.exp(nll / n), 4)}

    for length in lengths:
        for m in methods:
            cfg = configs[m.label]
            if m.is_full and max_full_length and length > max_full_length:
                skipped[(m.label, length)] = f"length > --max-full-length {max_full_length}"
                results.set_results(table(results.trials))
                continue
            activate(model, cfg)
            for k, end in enumerate(ends):
                key = dict(method=m.label, config_id=config_id(cfg), length=length, depth=None, trial=k, seed=None)
                results.measure(key, lambda: score(end, length), table, on_trial)
    activate(model, None)
    records = table(results.trials)
    results.set_results(records)
    return records


def aggregate(trials: list[dict], methods: list[Method], lengths: list[int], skipped: dict | None = None) -> list[dict]:
    """One record per method x length: perplexity over all scored tokens of all samples."""
    skipped = skipped or {}
    records = []
    for length in lengths:
        for m in methods:
            if (m.label, length) in skipped:
                records.append({"method": m.label, "length": length, "ppl": None, "samples": 0,
                                "skipped": skipped[(m.label, length)]})
                continue
            ts = [t for t in trials if t["method"] == m.label and t["length"] == length]
            if not ts:
                continue
            nll, n = math.fsum(t["nll"] for t in ts), sum(t["tokens_scored"] for t in ts)
            records.append({"method": m.label, "length": length, "ppl": round(math.exp(nll / n), 4),
                            "nll_per_token": round(nll / n, 5), "tokens_scored": n, "samples": len(ts)})
    return records

"""Retrieval heads: the few attention heads whose chunk selections follow the question to the passage holding
the answer (Wu et al. 2024, "Retrieval Head Mechanistically Explains Long-Context Factuality", arXiv 2404.15574:
a sparse, model-intrinsic set of heads that copy from far away; DuoAttention, arXiv 2410.10819, finds them by
optimisation instead).

We find them the way Wu et al. do, adapted to chunk selection: plant key -> value needles in a prose haystack,
prefill with LongHeads, and count, per (layer, head), how often the chunks it selects for the question's tokens
include the needle's chunk. That rate is the head's *retrieval score*; `longdoc.reread` weighs each head's votes
by it, so the ~5% of heads that retrieve outvote the ~95% that select by position or topic.

The scores depend on the model and on the LongHeads config (chunk size, scoring); they are cached per
(model, config) as JSON in the user cache folder. Calibration costs `samples` prefills of `length` tokens.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path

import torch

from .longheads.config import LongHeadsConfig
from .longheads.layout import Selection, SlotLayout

CALIBRATION = "retrieval-heads-v1"  # bump when the calibration recipe changes (stored scores become stale)


def head_rates(selections: list[Selection], cfg: LongHeadsConfig, query_from: int, targets: set[int],
               n_layers: int, n_heads: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per (layer, head): how many of its choices at positions >= query_from included a target chunk, and how
    many choices it made. Returns (hits, total), both (n_layers, n_heads) float."""
    hits = torch.zeros(n_layers, n_heads, dtype=torch.float64)
    total = torch.zeros(n_layers, n_heads, dtype=torch.float64)
    t = torch.tensor(sorted(targets))
    for rec in selections:
        rows = rec.positions >= query_from
        if not bool(rows.any()):
            continue
        chosen = rec.chunks[0][:, rows][..., SlotLayout.of(cfg).selected]  # (Hq, g', n_sel)
        hit = torch.isin(chosen, t).any(dim=-1)  # (Hq, g')
        hits[rec.layer] += hit.sum(dim=1).double()
        total[rec.layer] += hit.shape[1]
    return hits, total


def calibration_text(n_sentences: int, rng: random.Random) -> str:
    """A prose-like haystack built from the task word list (no download): varied sentences, no needles."""
    from .eval.tasks import CITIES, WORDS

    verbs = "keeps finds shows carries follows holds meets builds paints watches".split()
    out = []
    for _ in range(n_sentences):
        a, b, c = rng.sample(WORDS, 3)
        out.append(f"The {a} {rng.choice(verbs)} the {b} near the {c} in {rng.choice(CITIES)}.")
    return " ".join(out)


@torch.inference_mode()
def calibrate(model, tokenizer, cfg: LongHeadsConfig, *, prose: str | None = None, samples: int = 8,
              length: int = 4096, seed: int = 1234, progress=None) -> torch.Tensor:
    """Retrieval score of every (layer, query head): (n_layers, n_heads) float in [0, 1], the rate at which its
    choices for the question include the needle's chunk, rescaled so that chance (random candidates) is 0.

    prose: the haystack text (real prose: in a haystack of generated sentences the needle stands out to every
    head and the scores say nothing); None = generated sentences (for tests).
    Needs LongHeads enabled on `model` with `cfg`; length must exceed the window (else nothing is selected).
    """
    from .eval.suite import build_prompt
    from .eval.tasks import Budget, _niah
    from .generate import prefill
    from .prefix import new_cache

    if length <= cfg.window:
        raise ValueError(f"calibration length {length} must exceed the window {cfg.window}: nothing is selected")
    n_layers = model.config.num_hidden_layers
    n_heads = model.config.num_attention_heads
    hits = torch.zeros(n_layers, n_heads, dtype=torch.float64)
    total = torch.zeros_like(hits)
    chance = []  # share of choices that would hit the needle if heads picked candidates at random
    rng = random.Random(seed)
    budget = Budget(tokenizer)
    for i in range(samples):
        if prose:  # real prose, from its second half (the evaluations' haystacks start at its beginning)
            start = rng.randrange(len(prose) // 2, max(len(prose) // 2 + 1, len(prose) - 8 * length))
            text = prose[start:]
            text = text[text.find(". ") + 2 :] if ". " in text[:2000] else text
        else:
            text = calibration_text(40 * length // 16, rng)
        body = budget.prose(text, length - 160)
        sample = _niah("calibration", body, rng)
        p = build_prompt(tokenizer, sample)
        selections: list[Selection] = []
        prefill(model, new_cache(model), p.ids, exact_from=p.question_start, record=selections)
        l = cfg.chunk_size
        targets = {c for a, b in p.needle_tokens for c in range(a // l, (b - 1) // l + 1)}
        h, t = head_rates(selections, cfg, p.question_start, targets, n_layers, n_heads)
        hits += h
        total += t
        n_cand = max(1, p.question_start // l - 2 - int(cfg.keep_previous))
        chance.append(min(1.0, len(targets) * cfg.selected_per_head / n_cand))
        if progress:
            progress(i + 1, samples)
    rate = hits / total.clamp(min=1)
    base = sum(chance) / len(chance)
    return ((rate - base) / (1 - base)).clamp(min=0).float()  # 0 = chance, 1 = always finds the needle


def _store_path(model_name: str, cfg: LongHeadsConfig) -> Path:
    from .eval.results import config_id
    from .models import cache_dir

    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in model_name)
    return cache_dir() / "retrieval-heads" / f"{safe}-{config_id(cfg)}-{CALIBRATION}.json"


def load_or_calibrate(model, tokenizer, model_name: str, cfg: LongHeadsConfig, **kw) -> torch.Tensor:
    """The stored retrieval scores of (model, cfg), calibrating and storing them (atomically) on first use.
    An unwritable cache folder only costs the calibration again next time."""
    path = _store_path(model_name, cfg)
    try:
        data = json.loads(path.read_text())
        return torch.tensor(data["scores"], dtype=torch.float32)
    except (OSError, ValueError, KeyError):
        pass
    scores = calibrate(model, tokenizer, cfg, **kw)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".rh.", dir=path.parent)
        with os.fdopen(fd, "w") as f:
            json.dump({"model": model_name, "config": cfg.to_dict(), "calibration": CALIBRATION,
                       "scores": [[round(x, 4) for x in row] for row in scores.tolist()]}, f)
        os.replace(tmp, path)
    except OSError:
        pass
    return scores

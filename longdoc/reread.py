"""A LongHeads-guided re-read: the heads' own chunk selections choose what a short dense pass reads.

After a LongHeads prefill of document + question, every head of every layer has selected chunks for the
question's tokens (eq. 3). Those selections are votes. The chunks with the most votes, corrected for how often
the document's own tokens select each chunk anyway ("hub" chunks, as in nearest-neighbour search: a few chunk
summaries score high for any query), are read once more by plain causal attention, in text order, between the
first chunk and the question:

    dense prompt = [chunk 0 | best chunks in text order ... | tail: partial chunk + question]   (<= budget tokens)

With token-level scores (the question's attention mass on every key, `attention_scores`), each chosen chunk is
read as the l-token window where that mass peaks, moved up to half a chunk into a neighbour that was not chosen
(`place_spans`): a fact cut by a chunk boundary is read whole.

Every position of the dense prompt lies inside the model's trained length, so it answers with the attention
it was trained for. This is InfiniRetri's idea (arXiv 2502.12962: attention scores choose the tokens to keep),
with LongHeads' per-head chunk selections as the scores; no external retriever.

Notation: C chunks, l chunk size, Hq query heads, n_sel selected (non-mandatory) slots per head.
Selection records are the `longdoc.longheads.layout.Selection`s a prefill recorded (`prefill(..., record=[])`):
layer, positions (g,) the last position of each query group, chunks (B, Hq, g, K) in the slot layout
[first, selected (n_sel)..., previous (if kept), current] (`longdoc/longheads/layout.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .longheads.config import LongHeadsConfig
from .longheads.layout import Selection, SlotLayout
from .longheads.rope import Rope


@dataclass(frozen=True)
class RereadPlan:
    """What the dense pass reads. chunks: chosen chunk indices in reading order; ids: the dense prompt (1, n);
    spans: the token range [a, b) of the prompt read for each chosen chunk, in the same order (the chunk itself,
    or an l-token window moved up to l / 2 into a neighbour that was not chosen, where the question's attention
    peaks: `place_spans`)."""

    chunks: list[int]
    ids: torch.Tensor
    scores: torch.Tensor  # (C,) the corrected vote of every chunk (-inf: not a candidate)
    spans: list[tuple[int, int]]


def _selected_slots(cfg: LongHeadsConfig, chunks: torch.Tensor) -> torch.Tensor:
    """(B, Hq, g, K) slot layout -> (B, Hq, g, n_sel): the chunks chosen by score (mandatory slots dropped)."""
    return chunks[..., SlotLayout.of(cfg).selected]


def chunk_votes(selections: list[Selection], cfg: LongHeadsConfig, n_chunks: int, query_from: int,
                head_weights: torch.Tensor | None = None) -> torch.Tensor:
    """How often heads selected each chunk for queries at positions >= query_from (the question, the answer).

    head_weights (n_layers, Hq): each head's vote counts this much (retrieval scores,
    `longdoc.retrieval_heads`); None = every head counts 1.
    Returns (C,) float: weighted selections per chunk divided by the weighted number of (layer, head, query
    group) choices, i.e. the (weighted) share of choices that picked the chunk.
    """
    votes = torch.zeros(n_chunks, dtype=torch.float64)
    choices = 0.0
    for rec in selections:
        rows = rec.positions >= query_from  # (g,)
        if not bool(rows.any()):
            continue
        chosen = _selected_slots(cfg, rec.chunks[0][:, rows])  # (Hq, g', n_sel)
        Hq, g = chosen.shape[:2]
        w = torch.ones(Hq, dtype=torch.float64) if head_weights is None else head_weights[rec.layer].double()
        keep = chosen < n_chunks
        weights = w[:, None, None].expand_as(chosen)[keep]
        votes += torch.bincount(chosen[keep], weights=weights, minlength=n_chunks)[:n_chunks]
        choices += float(w.sum()) * g
    return votes / max(choices, 1e-12)


def chunk_prior(selections: list[Selection], cfg: LongHeadsConfig, n_chunks: int, query_to: int) -> torch.Tensor:
    """How much more often than chance the document's own queries (positions < query_to) select each chunk.

    A group in chunk q may choose n_sel of its candidates 1..q-1-keep_previous; chance is n_sel / #candidates.
    Returns (C,) float: mean over the groups that could choose the chunk of picked / chance (1.0 = average;
    a hub chunk is far above 1). Chunks no group could choose get 1.0.
    """
    lift = torch.zeros(n_chunks, dtype=torch.float64)
    eligible = torch.zeros(n_chunks, dtype=torch.float64)
    n_sel, l = cfg.selected_per_head, cfg.chunk_size
    for rec in selections:
        rows = rec.positions < query_to
        if not bool(rows.any()):
            continue
        pos = rec.positions[rows]
        chosen = _selected_slots(cfg, rec.chunks[0][:, rows])  # (Hq, g', n_sel)
        last = pos // l - 1 - int(cfg.keep_previous)  # (g',) last candidate chunk of each group
        n_cand = last.clamp(min=1).double()  # candidates 1..last
        inv_chance = (n_cand / n_sel)[None, :, None].expand_as(chosen)  # weight of one pick
        lift.index_add_(0, chosen.flatten(), inv_chance.flatten())
        # every (head, group) could pick any chunk 1..last: eligible[c] += Hq for each group with last >= c
        per_group = torch.zeros(n_chunks + 1, dtype=torch.float64)
        per_group.index_add_(0, last.clamp(min=0, max=n_chunks - 1), torch.ones(len(last), dtype=torch.float64))
        counts = per_group[:n_chunks].flip(0).cumsum(0).flip(0)  # groups with last >= c
        counts[0] = 0  # chunk 0 is never a candidate
        eligible += counts * chosen.shape[0]
    prior = torch.ones(n_chunks, dtype=torch.float64)
    ok = eligible > 0
    prior[ok] = lift[ok] / eligible[ok]
    return prior


HEAD_SHARE = 0.1  # heads kept by attention_votes: 8k essay needles ranked 2-3 of 31 with 0.1, 4-6 with all heads


@torch.inference_mode()
def attention_mass(cache, rope: Rope, cfg: LongHeadsConfig, question_start: int, *, queries: int | None = None,
                   distance: int = 0, per_token: bool = False) -> torch.Tensor | None:
    """Per head, how much attention the question's last queries give each chunk's keys (InfiniRetri's measure,
    arXiv 2502.12962, computed on the LongHeads cache).

    Per layer, the question's queries (the cache's pending queries from question_start on, or the last `queries`
    of them; rotated at their positions) attend over every key of chunks 1 .. question_start // l - 1 with each
    chunk moved to one fixed distance (the chunk at 0..l-1, the query at l + distance: every distance the model
    sees lies inside its trained length, whatever the chunk's real position; distance 0 = right after it,
    measured best of 0, l, 4l). The softmax over those keys is summed per chunk and averaged over the queries.
    Shapes: keys (B, Hk, L, d) per layer, queries (B, Hq, r, d); returns (layers * Hq, C - 1) float64, C =
    question_start // l (column j is chunk j + 1), or None when the cache holds no pending queries or C < 2;
    per_token=True: (layers * Hq, C - 1, l) float32, the mass on every key (summed over l: the chunk's mass).
    """
    l = cfg.chunk_size
    C = question_start // l
    if C < 2:
        return None
    heads = []  # per layer (Hq, C-1): each head's mass per candidate chunk
    for layer in cache.layers:
        q = getattr(layer, "pending_q", None)
        if q is None or q.shape[2] == 0:
            continue
        n = layer.get_seq_length()
        m = min(q.shape[2], n - question_start, queries or n)
        if m < 1:
            continue
        q = q[0, :, -m:]  # (Hq, m, d)
        Hq, _, d = q.shape
        pos = n - m + torch.arange(m)  # positions of those queries
        q_loc = rope.rotate(q, (l + distance) - pos)  # each query at l + distance
        k = layer.keys[0, :, l : C * l]  # (Hk, (C-1) * l, d), chunks 1 .. C-1
        Hk = k.shape[0]
        k_loc = rope.rotate(k.reshape(Hk, C - 1, l, d), -(torch.arange(1, C) * l)[:, None]).reshape(Hk, -1, d)
        logits = torch.einsum("hgmd,hkd->hgmk", q_loc.reshape(Hk, Hq // Hk, m, d).float(), k_loc.float())
        mass = torch.softmax(logits * d ** -0.5, dim=-1).reshape(Hq, m, C - 1, l).mean(dim=1)  # (Hq, C-1, l)
        heads.append(mass.float() if per_token else mass.sum(dim=-1).double())
    return torch.cat(heads) if heads else None


def peaked_heads(mass: torch.Tensor, head_share: float = HEAD_SHARE) -> torch.Tensor:
    """(heads, C - 1) attention mass -> indices of the `head_share` most peaked heads (largest mass on one chunk:
    the heads that retrieve, Wu et al. 2024); head_share=1: all."""
    keep = max(1, round(head_share * mass.shape[0]))
    return mass.amax(dim=1).topk(keep).indices


def peaked_votes(mass: torch.Tensor, head_share: float = HEAD_SHARE) -> torch.Tensor:
    """(heads, C - 1) attention mass -> (C,) chunk scores: the mean over the `peaked_heads`; chunk 0 scored 0."""
    peaked = peaked_heads(mass, head_share)
    total = torch.zeros(mass.shape[1] + 1, dtype=torch.float64)
    total[1:] = mass[peaked].mean(dim=0)
    return total


NEUTRAL_QUESTIONS = ("What is this document about?",)
# asked of the document once to learn what any question draws (`contrast`); generic on purpose, not tuned. One
# question ranked the gold pages as well as three (benchmarks/reread_scoring.py: MRR 0.875 vs 0.864) at a third
# of the cost


def contrast(mass: torch.Tensor, neutral: torch.Tensor) -> torch.Tensor:
    """Per head, the question's attention mass over the mass neutral questions give the same chunks of the same
    document: mass / (neutral + that head's mean neutral mass). A "hub" chunk that a head looks at for any
    question (a licence page, the introduction) loses its lead; the added mean (1 / (C - 1) for `attention_mass`
    rows, which sum to 1) keeps a chunk neutral questions never look at from being blown up by noise (a
    pointwise-mutual-information-like ratio, smoothed).
    Shapes: mass, neutral (heads, C - 1) from `attention_mass`; returns (heads, C - 1).
    Measured on a 50-page manual (benchmarks/reread_scoring.py): the gold page among the 7 best chunks (what a
    2k re-read reads; the default 1k reads about 3) 29/40 -> 38/40, the top chunk on the most common page 0.62 ->
    0.10 of the questions; with the 1k default the gold page is cited 36/40 (README, "Reading")."""
    return mass / (neutral + neutral.mean(dim=1, keepdim=True))


@dataclass(frozen=True)
class AttentionScores:
    """The question's attention over the document, from the peaked heads (`attention_scores`).
    chunks: (C,) float64 chunk scores (chunk 0 scored 0); tokens: (C * l,) float32 the same heads' mean
    (contrasted) mass on every token of chunks 0 .. C - 1 (chunk 0's tokens 0), summing to `chunks` per chunk."""

    chunks: torch.Tensor
    tokens: torch.Tensor


@torch.inference_mode()
def attention_scores(cache, rope: Rope, cfg: LongHeadsConfig, question_start: int, *, queries: int | None = None,
                     distance: int = 0, head_share: float = HEAD_SHARE,
                     neutral: torch.Tensor | None = None) -> AttentionScores | None:
    """Chunk and token scores: `peaked_votes` of `attention_mass` (see both), contrasted per head with `neutral`
    (heads, C - 1), the mass neutral questions give the same document (`contrast`), when given; the token scores
    are the same heads' mass on each key, scaled by the same per-head, per-chunk contrast.
    Returns None when the cache holds no pending queries or no candidate. Raises ValueError when `neutral` was
    computed for another document length."""
    tok = attention_mass(cache, rope, cfg, question_start, queries=queries, distance=distance, per_token=True)
    if tok is None:
        return None
    mass = tok.sum(dim=-1).double()  # (heads, C - 1)
    if neutral is not None:
        if neutral.shape != mass.shape:
            raise ValueError(f"neutral mass {tuple(neutral.shape)} does not match the question's {tuple(mass.shape)}")
        scale = contrast(torch.ones_like(mass), neutral)  # 1 / (neutral + mean): `contrast` as a factor
        mass, tok = mass * scale, tok * scale[..., None].float()
    peaked = peaked_heads(mass, head_share)
    chunks = torch.zeros(mass.shape[1] + 1, dtype=torch.float64)
    chunks[1:] = mass[peaked].mean(dim=0)
    l = tok.shape[-1]
    tokens = torch.zeros((mass.shape[1] + 1) * l, dtype=torch.float32)
    tokens[l:] = tok[peaked].mean(dim=0).flatten()
    return AttentionScores(chunks, tokens)


@torch.inference_mode()
def attention_votes(cache, rope: Rope, cfg: LongHeadsConfig, question_start: int, *, queries: int | None = None,
                    distance: int = 0, head_share: float = HEAD_SHARE,
                    neutral: torch.Tensor | None = None) -> torch.Tensor | None:
    """(C,) the chunk scores of `attention_scores` (see it), or None."""
    s = attention_scores(cache, rope, cfg, question_start, queries=queries, distance=distance,
                         head_share=head_share, neutral=neutral)
    return None if s is None else s.chunks


def place_spans(chosen: list[int], token_scores: torch.Tensor, chunk_size: int, n_full: int,
                step: int | None = None) -> list[tuple[int, int]]:
    """Where each chosen chunk is read: the l-token window [a, a + l) with the most `token_scores` among those
    that start from c*l - l/2 to c*l + l/2 (every `step` tokens, l / 8 by default), and that reach into a
    neighbour only when it is not chosen itself, is not chunk 0 (read anyway) and lies before the question's
    chunk (read as the tail). A fact cut by a chunk boundary is read whole even when only one chunk fits (paper
    Table 7 reads the neighbours for this, at twice the tokens). The chunk itself wins ties, so scores that are
    flat inside it leave it where it is. Windows of different chosen chunks never overlap (each moves at most
    l / 2 into a neighbour no other chunk owns).
    token_scores: (>= n_full * l,) per-token scores (`AttentionScores.tokens`). Returns [(a, a + l)] in the
    order of `chosen`."""
    l = chunk_size
    step = max(1, step or l // 8)
    picked = set(chosen)
    t = token_scores[: n_full * l].double()
    csum = torch.cat([torch.zeros(1, dtype=torch.float64), t.cumsum(0)])
    out = []
    for c in chosen:
        lo = c * l - (l // 2 if c - 1 >= 1 and c - 1 not in picked else 0)
        hi = c * l + (l // 2 if c + 1 < n_full and c + 1 not in picked else 0)
        best, best_sum = c * l, float(csum[(c + 1) * l] - csum[c * l])
        for a in range(lo, hi + 1, step):
            w = float(csum[a + l] - csum[a])
            if w > best_sum * (1 + 1e-6) + 1e-12:
                best, best_sum = a, w
        out.append((best, best + l))
    return out


def plan(ids: torch.Tensor, selections: list[dict], cfg: LongHeadsConfig, question_start: int, budget: int, *,
         hub_correction: bool = True, neighbours: bool = False, head_weights: torch.Tensor | None = None,
         diverse: bool = True, prior: torch.Tensor | None = None, votes: torch.Tensor | None = None,
         order: str = "text", lead: torch.Tensor | None = None,
         token_scores: torch.Tensor | None = None) -> RereadPlan:
    """Choose the chunks of a dense re-read and build its prompt.

    ids (1, N): the prompt the LongHeads prefill read (document, then the question from token `question_start`).
    budget: tokens of the dense prompt (must fit the model's trained length; the caller checks).
    hub_correction: rank by vote / (1 + lift), lift = how much more than chance the document's own queries pick
        the chunk (`chunk_prior`): a chunk every query picks loses its advantage; the +1 keeps a chunk the
        document never picks from being ranked up by one stray vote.
    prior: (C',) the document's `chunk_prior`, when its selections are not in `selections` (a stored or
        pooled document prefix); None = computed from `selections`.
    votes: (C',) chunk scores to rank by instead of the selections' votes (e.g. `attention_votes`); the hub
        correction does not apply to them.
    head_weights: (n_layers, Hq) retrieval scores weighing each head's votes (`longdoc.retrieval_heads`).
    diverse: skip a candidate whose token 4-grams overlap more than MAX_OVERLAP with a chunk already read
        (maximal-marginal-relevance style; repeated boilerplate or filler is read once).
    neighbours: also read the chunk after each chosen chunk when the budget allows (a fact cut by a chunk
        boundary; paper Table 7).
    order: where the chosen chunks sit between chunk 0 and the question: "text" (document order) or "score"
        (best last, next to the question; the paper's `chunk_order="score"`).
    lead: (1, m) tokens read right after chunk 0, before the chosen chunks (the question asked first as well as
        last: "query-aware contextualization", Liu et al. 2023, "Lost in the Middle", arXiv 2307.03172); they count
        in the budget. Not added when the question starts in chunk 0 (the whole prompt is read as it is).
    token_scores: (C * l,) per-token scores (`AttentionScores.tokens`): each chosen chunk is read as the l-token
        window where they peak, up to l / 2 into a neighbour (`place_spans`); None = the chunks as they are.
    Raises ValueError if the question leaves no room for a single chunk in the budget, or for another order.
    """
    l = cfg.chunk_size
    N = ids.shape[1]
    n_full = question_start // l  # chunks wholly before the question's first token... and the partial one
    tail_from = n_full * l  # the partial chunk holding the question's start, then the question
    tail = ids[:, tail_from:]
    n_lead = 0 if lead is None or n_full == 0 else lead.shape[1]
    room = (budget - min(l, N) - tail.shape[1] - n_lead) // l
    if room < 1:
        raise ValueError(f"re-read budget {budget} leaves no room for a chunk next to a {tail.shape[1]}-token tail")
    C = max(n_full, 1)
    given = votes is not None
    if given:
        votes = torch.cat([votes.double()[:C], torch.zeros(max(0, C - len(votes)), dtype=torch.float64)])
    else:
        votes = chunk_votes(selections, cfg, C, question_start, head_weights)
    scores = votes.clone()
    if hub_correction and not given:
        if prior is None:
            prior = chunk_prior(selections, cfg, C, question_start)
        else:  # a prefix's prior covers its own chunks; later ones are neutral
            prior = torch.cat([prior.double()[:C], torch.ones(max(0, C - len(prior)), dtype=torch.float64)])
        scores = votes / (1.0 + prior)  # smoothed: a chunk the document never picks is not blown up by noise
    scores[0] = float("-inf")  # chunk 0 is always read
    candidates = [c for c in torch.argsort(scores, descending=True, stable=True).tolist()
                  if c >= 1 and scores[c] > float("-inf") and votes[c] > 0]
    chosen: list[int] = []
    seen = [_shingles(ids[0, :l])]  # chunk 0 is read anyway
    for c in candidates:
        if len(chosen) >= room:
            break
        if c in chosen:
            continue
        if diverse:
            sh = _shingles(ids[0, c * l : (c + 1) * l])
            if any(_overlap(sh, o) > MAX_OVERLAP for o in seen):
                continue  # near-duplicate of text already read: reading it twice adds nothing
            seen.append(sh)
        chosen.append(c)
        if neighbours and len(chosen) < room and c + 1 < n_full and (c + 1) not in chosen:
            chosen.append(c + 1)
    if order == "text":
        chosen.sort()
    elif order == "score":
        chosen.sort(key=lambda c: (float(scores[c]), c))  # ascending: the best chunk right before the question
    else:
        raise ValueError(f"re-read order is 'text' or 'score', not {order!r}")
    spans = place_spans(chosen, token_scores, l, n_full) if token_scores is not None \
        else [(c * l, (c + 1) * l) for c in chosen]
    parts = [ids[:, : min(l, N)]] + ([lead.to(ids.dtype)] if n_lead else []) + [ids[:, a:b] for a, b in spans] + [tail]
    if n_full == 0:  # the question starts in chunk 0: the whole prompt is the dense prompt
        parts, chosen, spans = [ids], [], []
    return RereadPlan(chosen, torch.cat(parts, dim=1), scores, spans)


MAX_OVERLAP = 0.95  # share of a chunk's token 4-grams also in a chunk already read


def _shingles(ids: torch.Tensor, n: int = 4) -> set[tuple[int, ...]]:
    t = ids.tolist()
    return {tuple(t[i : i + n]) for i in range(len(t) - n + 1)}


def _overlap(a: set, b: set) -> float:
    """Share of a's shingles also in b (asymmetric: a short chunk inside a long one counts as a duplicate)."""
    return len(a & b) / len(a) if a else 1.0

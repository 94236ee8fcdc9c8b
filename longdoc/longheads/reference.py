"""A plain, obviously-correct LongHeads: loops over query tokens, heads and chunks; no batching tricks.

It re-derives everything from scratch: raw (un-rotated) keys and queries, explicit softmaxes for eq. 1-2,
explicit remapped positions. It is slow and exists to test the fast path in `attention.py` against.
"""

from __future__ import annotations

import torch

from .config import LongHeadsConfig
from .rope import Rope


def reference_attention(cfg: LongHeadsConfig, rope: Rope, q_all, k, v, T: int, scale: float, exact_from=None):
    """Outputs for the last T queries. q_all (B, Hq, L, d): queries of *every* position (rotated at their
    absolute positions, as transformers produces them); k, v (B, Hk, L, d). Returns (B, Hq, T, d)."""
    B, Hq, L, d = q_all.shape
    n_rep = Hq // k.shape[1]
    l, K = cfg.chunk_size, cfg.chunks
    P = L - T
    out = torch.zeros(B, Hq, T, d, dtype=q_all.dtype)
    groups = _reference_groups(cfg, P, L, exact_from)
    for b in range(B):
        for h in range(Hq):
            kh, vh = k[b, h // n_rep], v[b, h // n_rep]  # (L, d)
            summaries = [chunk_summary(cfg, rope, q_all[b, h, c * l : (c + 1) * l], kh[c * l : (c + 1) * l],
                                       vh[c * l : (c + 1) * l], c, scale) for c in range(L // l)]
            for p in range(P, L):
                cj, r = divmod(p, l)
                if cj < K:  # everything fits: ordinary causal attention at the original positions
                    w = torch.softmax((kh[: p + 1] @ q_all[b, h, p]) * scale, dim=0)
                    out[b, h, p - P] = w @ vh[: p + 1]
                    continue
                slots = chosen_chunks(cfg, rope, q_all[b, h], summaries, groups[p], cj)
                keys, values = [], []
                for s, c in enumerate(slots):
                    n = r + 1 if c == cj else l
                    for o in range(n):
                        raw = rope.rotate(kh[c * l + o], torch.tensor(-(c * l + o)))
                        keys.append(rope.rotate(raw, torch.tensor(s * l + o)))  # remapped position s*l + o
                        values.append(vh[c * l + o])
                q_raw = rope.rotate(q_all[b, h, p], torch.tensor(-p))
                q_new = rope.rotate(q_raw, torch.tensor((K - 1) * l + r))
                w = torch.softmax((torch.stack(keys) @ q_new) * scale, dim=0)
                out[b, h, p - P] = w @ torch.stack(values)
    return out


def chunk_summary(cfg, rope, Qc, Kc, Vc, c: int, scale: float):
    """Eq. 1-2 for one head and one chunk (or key bounds). Qc, Kc, Vc (l, d) rotated at absolute positions."""
    l = cfg.chunk_size
    k_loc = torch.stack([rope.rotate(Kc[o], torch.tensor(-c * l)) for o in range(l)])  # chunk-local positions
    if cfg.score == "keybound":
        return k_loc.min(dim=0).values, k_loc.max(dim=0).values
    O = torch.softmax((Qc @ Kc.T) * scale, dim=-1) @ Vc  # eq. 2, bidirectional
    q_c = O.mean(dim=0)
    w = torch.softmax((k_loc @ q_c) * scale, dim=0)  # eq. 1
    return w @ k_loc


def chunk_score(cfg, rope, q_abs, p: int, summary) -> float:
    l = cfg.chunk_size
    shift = -p if cfg.score_rope == "none" else -(p // l - 1) * l
    qs = rope.rotate(q_abs, torch.tensor(shift))
    if cfg.score == "keybound":
        kmin, kmax = summary
        return float(torch.maximum(qs * kmin, qs * kmax).sum())
    return float(qs @ summary)


def chosen_chunks(cfg, rope, q_head, summaries, group, cj) -> list[int]:
    """Slot order chunk list for a query of chunk cj; `group` = positions sharing the selection."""
    K = cfg.chunks
    if cfg.selection == "window":
        return [0] + list(range(cj - K + 2, cj + 1))
    last = cj - 1 - int(cfg.keep_previous)
    scores = {c: sum(chunk_score(cfg, rope, q_head[p], p, summaries[c]) for p in group) / len(group)
              for c in range(1, last + 1)}
    best = sorted(scores, key=lambda c: -scores[c])[: cfg.selected_per_head]
    top = sorted(best) if cfg.chunk_order == "text" else best[::-1]
    return [0] + top + ([cj - 1] if cfg.keep_previous else []) + [cj]


def _reference_groups(cfg, P: int, L: int, exact_from=None) -> dict[int, list[int]]:
    """Which positions share a selection: per token, or per chunk for positions before `exact_from` (default:
    the last `exact_tail` positions of the call select per token)."""
    if exact_from is None:
        exact_from = L - cfg.exact_tail
    if cfg.prefill_selection == "token" or L - P == 1:
        exact_from = 0
    exact_from = max(exact_from, P)
    groups = {}
    for p in range(P, L):
        if p >= exact_from:
            groups[p] = [p]
        else:
            groups[p] = [x for x in range(P, exact_from) if x // cfg.chunk_size == p // cfg.chunk_size]
    return groups

"""Chunk summaries, chunk scores and per-head chunk selection (paper §2.2-2.3).

Notation: B batch, Hq query heads, Hk key/value heads, n_rep = Hq // Hk, C chunks, l chunk size, d head dim,
G query groups (a group is one query token, or the queries of one chunk sharing a selection), K chunks per head.

Choices where the paper is silent (measured in README, "Choices"):
- Keys enter the summaries rotated at chunk-local positions 0..l-1, as in the authors' code: a summary then
  describes the chunk's content, not where it sits, so distant chunks are not penalised by RoPE's decay.
- The scoring query is, by default, rotated as if it sat right after the chunk (local position l + r, r its
  offset in its own chunk): scores then mirror the logits a head would give the chunk were it adjacent.
  score_rope="none" un-rotates the query instead (the authors' code): it found the needle in fewer heads and
  lost the pass key at 16k (README, "Choices").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .backends import expand_kv
from .config import LongHeadsConfig
from .layout import SlotLayout
from .rope import Rope


def local_keys(rope: Rope, k_chunks: torch.Tensor, first_chunk: int, l: int) -> torch.Tensor:
    """Keys rotated at absolute positions -> chunk-local positions. k_chunks (B, Hk, C, l, d)."""
    shifts = -(torch.arange(k_chunks.shape[2], device=k_chunks.device) + first_chunk) * l  # (C,)
    return rope.rotate(k_chunks, shifts[:, None])  # (B, Hk, C, l, d)


def summarize(cfg: LongHeadsConfig, rope: Rope, q_chunks, k_chunks, v_chunks, first_chunk: int, scale: float):
    """Summaries of complete chunks, stored per chunk and used for scoring.

    q_chunks (B, Hq, C, l, d); k_chunks, v_chunks (B, Hk, C, l, d), all rotated at absolute positions.
    Returns (B, Hq, C, 1, d) for score="rep" and (B, Hk, C, 2, d) (min, max) for score="keybound".
    """
    l = cfg.chunk_size
    k_loc = local_keys(rope, k_chunks, first_chunk, l)  # (B, Hk, C, l, d)
    if cfg.score == "keybound":
        return torch.stack([k_loc.amin(dim=3), k_loc.amax(dim=3)], dim=3)  # (B, Hk, C, 2, d)
    B, Hq, C, _, d = q_chunks.shape
    k_abs, v = _expand_heads(k_chunks, Hq), _expand_heads(v_chunks, Hq)  # (B, Hq, C, l, d)
    # eq. 2: bidirectional attention inside the chunk (same scores at absolute or local positions: RoPE is
    # relative), mean-pooled into one chunk query per head. Heads and chunks merge into one 4-d batch dim: SDPA's
    # fused CPU kernel takes 4-d inputs only (5-d fell back to the unfused math path, 3x slower, measured).
    out = F.scaled_dot_product_attention(q_chunks.reshape(B, Hq * C, l, d), k_abs.reshape(B, Hq * C, l, d),
                                         v.reshape(B, Hq * C, l, d), scale=scale)  # (B, Hq*C, l, d)
    chunk_q = out.mean(dim=2, keepdim=True)  # (B, Hq*C, 1, d)
    # eq. 1: the chunk query attends over the chunk's (chunk-local) keys, with the keys as values.
    k_loc = _expand_heads(k_loc, Hq).reshape(B, Hq * C, l, d)
    rep = F.scaled_dot_product_attention(chunk_q, k_loc, k_loc, scale=scale)  # (B, Hq*C, 1, d)
    return rep.view(B, Hq, C, 1, d)


def scoring_queries(cfg: LongHeadsConfig, rope: Rope, q: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Rotate queries (B, Hq, ..., N, d), rotated at `positions` (..., N), into the frame used for scoring."""
    if cfg.score_rope == "none":
        shifts = -positions
    else:  # local: chunk at 0..l-1, query at l + r  =>  shift by -(chunk_of_query - 1) * l
        shifts = -(positions // cfg.chunk_size - 1) * cfg.chunk_size
    return rope.rotate(q, shifts)


def score(cfg: LongHeadsConfig, q_score: torch.Tensor, summaries: torch.Tensor) -> torch.Tensor:
    """Score every chunk for every query. q_score (B, Hq, N, d); summaries as `summarize` -> (B, Hq, N, C)."""
    Hq = q_score.shape[1]
    if cfg.score == "keybound":
        kmin, kmax = summaries[:, :, :, 0], summaries[:, :, :, 1]  # (B, Hk, C, d)
        kmin, kmax = expand_kv(kmin, Hq), expand_kv(kmax, Hq)
        # sum_d max(q_d * min_d, q_d * max_d), split by the sign of q_d into two matmuls
        return q_score.clamp(min=0) @ kmax.transpose(-1, -2) + q_score.clamp(max=0) @ kmin.transpose(-1, -2)
    return q_score @ summaries[:, :, :, 0].transpose(-1, -2)  # (B, Hq, N, C)


def select(cfg: LongHeadsConfig, scores: torch.Tensor | None, group_chunk: torch.Tensor) -> torch.Tensor:
    """Chunk indices each head attends to, in slot order (eq. 3; the slots are drawn in layout.py).

    scores (B, Hq, G, C) or None for selection="window"; group_chunk (G,), each >= K (the query's chunk).
    Returns (B, Hq, G, K): [first chunk, selected..., previous (if kept), current].
    """
    layout = SlotLayout.of(cfg)
    if cfg.selection == "window":  # sink + recent: chunk 0 and the K-1 most recent chunks
        idx = layout.window_chunks(group_chunk)
        return idx if scores is None else idx.expand(*scores.shape[:2], *idx.shape)
    C = scores.shape[-1]
    last_candidate = layout.last_candidate(group_chunk)  # (G,) candidates are chunks 1..last (inclusive)
    chunk_ids = torch.arange(C, device=scores.device)
    allowed = (chunk_ids[None, :] >= 1) & (chunk_ids[None, :] <= last_candidate[:, None])  # (G, C)
    masked = scores.masked_fill(~allowed, float("-inf"))
    top = masked.topk(layout.n_selected, dim=-1).indices  # (B, Hq, G, n_sel), best first
    chosen = top.sort(dim=-1).values if cfg.chunk_order == "text" else top.flip(-1)  # score: best nearest the query
    return layout.assemble(chosen, group_chunk)


def _expand_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(B, Hk, C, l, d) -> (B, Hq, C, l, d)."""
    B, Hk, C, l, d = x.shape
    n_rep = n_heads // Hk
    if n_rep == 1:
        return x
    return x[:, :, None].expand(B, Hk, n_rep, C, l, d).reshape(B, Hk * n_rep, C, l, d)

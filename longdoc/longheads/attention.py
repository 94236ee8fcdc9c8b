"""The LongHeads attention function, registered with transformers' AttentionInterface (fast, vectorised path).

Notation: B batch, Hq query heads, Hk kv heads, T new query tokens, L = cached + new tokens, P = L - T (position
of the first new query), l chunk size, K chunks per head, G query groups, Tg queries per group, d head dim.

Per layer and forward call:
 1. The new queries complete zero or more chunks; each completed chunk gets its summary (eq. 1-2).
 2. Queries in chunks 0..K-1 see at most K chunks: plain causal attention, identical to the unpatched model.
 3. Later queries are grouped (one token, or the queries of one chunk sharing a selection); each head of each
    group selects K chunks (eq. 3), gathers their keys/values and attends to them at remapped, contiguous
    positions: slot s holds positions [s*l, (s+1)*l), the query sits in the last slot.

Position remapping without re-rotating at every step: cached keys are rotated at their absolute positions, and
RoPE is relative, so a chunk c placed in slot s only needs an extra rotation by (query_chunk - (K-1) + s - c)*l,
one multiple of l per gathered chunk. The two most recent slots keep their absolute positions (shift 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from . import backends, chunks
from .cache import LongHeadsLayer, bound_layer
from .config import LongHeadsConfig
from longdoc.errors import ConfigError
from .rope import Rope

ATTN_NAME = "longheads"
GATHER_BUDGET_BYTES = 64 * 2**20  # gathered keys+values per batch of groups (bounds peak memory)


@dataclass
class Runtime:
    """What the attention function needs beyond what transformers passes: set on each attention module."""

    config: LongHeadsConfig
    rope: Rope
    _workspace: dict = field(default_factory=dict)

    def workspace(self, name: str, shape: tuple, like: torch.Tensor) -> torch.Tensor:
        """A reusable buffer. Gathered keys are tens of MB per layer: fresh allocations that size go straight to
        mmap and page-fault on first touch, which cost 10x the gather itself on CPU (measured)."""
        n = 1
        for x in shape:
            n *= x
        buf = self._workspace.get(name)
        if buf is None or buf.numel() < n or buf.dtype != like.dtype or buf.device != like.device:
            buf = torch.empty(n, dtype=like.dtype, device=like.device)
            self._workspace[name] = buf
        return buf[:n].view(shape)


def longheads_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """transformers attention function. query (B, Hq, T, d); key, value (B, Hk, L, d) -> ((B, T, Hq, d), None)."""
    rt: Runtime = module.longheads
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    layer = bound_layer(module.layer_idx, key)
    if layer is None:
        if key.shape[2] != query.shape[2]:
            raise ConfigError(
                "LongHeads needs its own cache for incremental decoding: pass past_key_values=LongHeadsCache()."
            )
        layer = _ephemeral_layer(key, value)
    out = attend(rt, layer, query, key, value, scale, module.layer_idx)
    return out.transpose(1, 2).contiguous(), None


def attend(rt: Runtime, layer: LongHeadsLayer, q, k, v, scale: float, layer_idx: int = 0) -> torch.Tensor:
    """LongHeads attention of the T newest queries. Returns (B, Hq, T, d)."""
    cfg, l, K = rt.config, rt.config.chunk_size, rt.config.chunks
    T, L = q.shape[2], k.shape[2]
    P = L - T
    if cfg.selection == "longheads":
        _summarize_completed(rt, layer, q, P, scale)
    n_in = max(0, min(T, K * l - P))  # queries whose chunk index is < K: everything fits in the window
    if n_in == T:
        return backends.causal_attention(q, k, v, scale)
    out = q.new_empty(q.shape)  # (B, Hq, T, d)
    if n_in:
        out[:, :, :n_in] = backends.causal_attention(q[:, :, :n_in], k[:, :, : P + n_in], v[:, :, : P + n_in], scale)
    positions = torch.arange(P + n_in, L)
    exact_from = getattr(layer.cache, "exact_from", None)
    if exact_from is None:
        exact_from = L - cfg.exact_tail
    if cfg.prefill_selection == "token" or T == 1:
        exact_from = 0
    for group_pos, group_len in _groups(cfg, positions, exact_from):
        _attend_groups(rt, layer, q, out, P, group_pos, group_len, scale, layer_idx)
    return out


def _groups(cfg: LongHeadsConfig, positions: torch.Tensor, exact_from: int):
    """Split query positions into groups: yields (group_pos (G, Tg) positions padded by repeating the last,
    group_len (G,)). Queries at positions >= exact_from are token groups (Tg = 1); the others are grouped by
    chunk and share one selection."""
    block_pos, token_pos = positions[positions < exact_from], positions[positions >= exact_from]
    if len(block_pos):
        chunk_of = block_pos // cfg.chunk_size
        starts = torch.cat([torch.tensor([0]), torch.nonzero(chunk_of[1:] != chunk_of[:-1]).flatten() + 1])
        lens = torch.diff(torch.cat([starts, torch.tensor([len(block_pos)])]))
        offs = torch.arange(int(lens.max()))
        idx = torch.minimum(starts[:, None] + offs[None, :], (starts + lens - 1)[:, None])  # (G, Tg)
        yield block_pos[idx], lens
    if len(token_pos):
        yield token_pos[:, None], torch.ones(len(token_pos), dtype=torch.long)


def _attend_groups(rt, layer, q, out, P, group_pos, group_len, scale, layer_idx):
    cfg, l, K = rt.config, rt.config.chunk_size, rt.config.chunks
    B, Hq, _, d = q.shape
    G, Tg = group_pos.shape
    k_chunks, v_chunks = layer.key_chunks(l)  # (B, Hk, cap/l, l, d)
    per_group = 2 * B * Hq * K * l * d * k_chunks.element_size()
    step = max(1, GATHER_BUDGET_BYTES // per_group)
    for g0 in range(0, G, step):  # batches of groups bound the memory of gathered keys, not a loop over tokens
        pos, lens = group_pos[g0 : g0 + step], group_len[g0 : g0 + step]
        g = pos.shape[0]
        q_idx = (pos - P).to(q.device)
        qg = q[:, :, q_idx]  # (B, Hq, g, Tg, d)
        gchunk = pos[:, 0] // l  # (g,)
        valid = torch.arange(Tg)[None, :] < lens[:, None]  # (g, Tg)
        if cfg.selection == "longheads":
            qs = chunks.scoring_queries(cfg, rt.rope, qg, pos.to(q.device))
            s = chunks.score(cfg, qs.reshape(B, Hq, g * Tg, d), layer.summaries)  # (B, Hq, g*Tg, C)
            s = s.view(B, Hq, g, Tg, -1)
            w = valid.to(s.dtype).to(s.device)[None, None, :, :, None]
            s = (s * w).sum(dim=3) / lens.to(s.dtype).to(s.device)[None, None, :, None]  # (B, Hq, g, C)
            idx = chunks.select(cfg, s, gchunk.to(s.device))  # (B, Hq, g, K)
        else:
            idx = chunks.select(cfg, None, gchunk).to(q.device).expand(B, Hq, g, K)
        if layer.cache is not None and getattr(layer.cache, "record_selections", False):
            layer.cache.selections.append(
                {"layer": layer_idx, "positions": pos[torch.arange(g), lens - 1].clone(), "chunks": idx.cpu()}
            )
        kg, vg = gather_chunks(k_chunks, v_chunks, idx, Hq, rt)  # (B, Hq, g, K, l, d)
        # slots holding chunks away from their text position move by whole chunks: slot s, chunk c -> shift
        # (query_chunk - (K-1) + s - c) * l. The last slots (current, previous, recent window) do not move.
        n_far = 1 if cfg.selection == "window" else K - 1 - int(cfg.keep_previous)
        shift = (gchunk.to(idx.device)[None, None, :, None] - (K - 1) + torch.arange(K, device=idx.device) - idx) * l
        if Tg == 1:  # one query per group (decode, exact tail, per-token prefill): rotate it per slot instead
            og = _slot_rotated_attention(rt, qg[:, :, :, 0], kg, vg, shift, n_far, pos[:, 0] % l, scale)
        else:  # a chunk of queries shares the window: rotate the keys once, then one fused kernel
            rotate_inplace(rt, kg[:, :, :, :n_far], shift[..., :n_far, None])
            kg, vg = kg.view(B, Hq * g, K * l, d), vg.view(B, Hq * g, K * l, d)  # groups join the head dim
            og = _window_attention(qg.reshape(B, Hq * g, Tg, d), kg, vg, pos % l, lens, l, scale)
        og = og.view(B, Hq, g, Tg, d)
        keep = valid.flatten()
        out[:, :, q_idx.flatten()[keep]] = og.reshape(B, Hq, g * Tg, d)[:, :, keep]


def _window_attention(q, k, v, r, lens, l: int, scale: float):
    """Attention inside the remapped window: every slot is visible except the future of the last slot.

    q (B, N, Tg, d) with N = Hq * g; k, v (B, N, K*l, d); r (g, Tg) query offsets in their chunk.
    Picks the cheapest exact form: a whole chunk of queries is a lower-right causal mask (a fused kernel);
    a single query just drops the future keys; anything else gets an explicit mask.
    """
    g, Tg = r.shape
    S = k.shape[2]
    if Tg == l and bool((lens == l).all()) and bool((r[:, 0] == 0).all()):
        return backends.lower_right_causal_attention(q, k, v, scale)
    if g == 1 and Tg == 1:
        n = S - l + int(r[0, 0]) + 1
        return backends.masked_attention(q, k[:, :, :n], v[:, :, :n], None, scale)
    visible = torch.arange(S)[None, None, :] < (S - l + r + 1)[:, :, None]  # (g, Tg, S)
    bias = torch.zeros(visible.shape, dtype=q.dtype).masked_fill(~visible, float("-inf"))
    bias = bias[None].expand(q.shape[1] // g, g, Tg, S).reshape(1, q.shape[1], Tg, S).to(q.device)
    return backends.masked_attention(q, k, v, bias, scale)


def _slot_rotated_attention(rt: Runtime, q, kg, vg, shift, n_far: int, r, scale: float) -> torch.Tensor:
    """Window attention of single queries, moving the query instead of the keys.

    q (B, Hq, g, d); kg, vg (B, Hq, g, K, l, d) as gathered (keys at their absolute positions); shift (B, Hq, g, K)
    how far each slot's keys should move; r (g,) the query's offset in its chunk -> (B, Hq, g, d).
    RoPE is relative: q . R(shift) k == R(-shift) q . k, so each slot costs one query rotation instead of l key
    rotations (the paper's recipe re-rotated every gathered key, which cost more than the attention itself).
    """
    B, Hq, g, K, l, d = kg.shape
    q_slots = q[:, :, :, None].expand(B, Hq, g, K, d).clone()  # (B, Hq, g, K, d)
    rotate_inplace(rt, q_slots[:, :, :, :n_far], -shift[..., :n_far])
    logits = torch.matmul(q_slots.unsqueeze(-2), kg.transpose(-1, -2)).squeeze(-2)  # (B, Hq, g, K, l)
    future = torch.arange(l, device=q.device)[None, :] > r.to(q.device)[:, None]  # (g, l): after the query
    logits[:, :, :, -1].masked_fill_(future[None, None], float("-inf"))
    probs = torch.softmax(logits.view(B, Hq, g, K * l).float() * scale, dim=-1).to(vg.dtype)
    return torch.matmul(probs.unsqueeze(-2), vg.view(B, Hq, g, K * l, d)).squeeze(-2)  # (B, Hq, g, d)


def rotate_inplace(rt: Runtime, x: torch.Tensor, shifts: torch.Tensor) -> None:
    """x (..., d) rotated in place by `shifts` positions (broadcast over x's leading dims), on the two halves
    directly: no rotate_half concatenation, no fresh full-size tensors."""
    h = x.shape[-1] // 2
    cos, sin = rt.rope.cos_sin(shifts, x.dtype, x.device)  # (..., d) with repeated halves
    cos, sin = cos[..., :h], sin[..., :h]
    x1, x2 = x[..., :h], x[..., h:]
    tmp = rt.workspace("rot_tmp", x1.shape, x)
    tmp.copy_(x1)
    x1.mul_(cos).addcmul_(x2, sin, value=-1)  # x1 cos - x2 sin
    x2.mul_(cos).addcmul_(tmp, sin)  # x2 cos + x1 sin


def gather_chunks(k_chunks, v_chunks, idx, n_heads, rt: Runtime | None = None):
    """Gather chunks per query head. k_chunks (B, Hk, N, l, d); idx (B, Hq, g, K) -> (B, Hq, g, K, l, d) x2."""
    B, Hk, N, l, d = k_chunks.shape
    n_rep = n_heads // Hk
    kv_head = torch.arange(n_heads, device=idx.device) // n_rep  # (Hq,)
    base = (torch.arange(B, device=idx.device)[:, None] * Hk + kv_head[None, :]) * N  # (B, Hq)
    flat = (base[:, :, None, None] + idx).reshape(-1)
    shape = (flat.numel(), l, d)
    kg = rt.workspace("kg", shape, k_chunks) if rt else k_chunks.new_empty(shape)
    vg = rt.workspace("vg", shape, v_chunks) if rt else v_chunks.new_empty(shape)
    torch.index_select(k_chunks.reshape(B * Hk * N, l, d), 0, flat, out=kg)
    torch.index_select(v_chunks.reshape(B * Hk * N, l, d), 0, flat, out=vg)
    return kg.view(*idx.shape, l, d), vg.view(*idx.shape, l, d)


def _summarize_completed(rt: Runtime, layer: LongHeadsLayer, q, P: int, scale: float) -> None:
    """Append summaries for every chunk the new queries complete; keep the queries of the partial chunk."""
    l = rt.config.chunk_size
    pending = layer.pending_q
    all_q = q if pending is None or pending.shape[2] == 0 else torch.cat([pending, q], dim=2)  # from chunk start
    first = layer.n_summarized
    done = (P + q.shape[2]) // l - first  # complete chunks not yet summarized
    if done > 0:
        B, Hq, _, d = all_q.shape
        k_chunks, v_chunks = layer.key_chunks(l)
        qc = all_q[:, :, : done * l].reshape(B, Hq, done, l, d)
        layer.add_summaries(
            chunks.summarize(rt.config, rt.rope, qc, k_chunks[:, :, first : first + done],
                             v_chunks[:, :, first : first + done], first, scale)
        )
    layer.pending_q = all_q[:, :, max(done, 0) * l :].clone()


def _ephemeral_layer(key, value) -> LongHeadsLayer:
    """A throwaway layer for a one-shot forward without a LongHeads cache (e.g. plain `model(input_ids)`)."""
    layer = LongHeadsLayer()
    layer.update(key, value)
    layer.cache = None
    return layer

"""The LongHeads attention function, registered with transformers' AttentionInterface (fast, vectorised path).

Notation (litgpt style):
    B batch, Hq query heads, Hk kv heads, d head dim
    T new query tokens of this call, L = cached + new tokens, P = L - T (position of the first new query)
    l chunk size, K chunks per head, q a query's chunk, r its offset in the chunk (position = q*l + r)
    G query groups (one token, or the queries of one chunk sharing a selection), Tg queries per group

A query of chunk q >= K attends to K chunks, each moved into one slot of a contiguous window (layout.py owns
this layout; chunks.select fills it, citations read it):

        slot s:     0            1   ...   K-3              K-2                K-1
                  [ first    | selected by score ...   | previous          | current      ]
        chunk c:    0            c_1 < ... < c_n            q-1                 q
        positions:  [0, l)       [s*l, (s+1)*l)             [(K-2)*l, (K-1)*l)  (K-1)*l + r for the query
        shift:      (q-K+1)*l    (q-K+1+s-c)*l              0                   0

    shift(s, c) = (q - (K-1) + s - c) * l: how far slot s's keys, cached rotated at their absolute positions,
    are rotated (RoPE is relative: one multiple of l per gathered chunk); the trailing slots never move.
    keep_previous=False: slot K-2 is one more selected slot. selection="window": slots 1..K-1 hold q-K+2..q.

Per layer and forward call (`ForwardPlan`, plan.py, says which cache layer, the per-token tail and where to
record selections):
 1. The new queries complete zero or more chunks; each completed chunk gets its summary (eq. 1-2).
 2. Queries in chunks 0..K-1 see at most K chunks: plain causal attention, identical to the unpatched model.
 3. Later queries are grouped; each head of each group selects K chunks (eq. 3), gathers their keys/values
    and attends to them at the remapped positions above.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from longdoc.errors import ConfigError

from . import backends, chunks
from .cache import LongHeadsLayer, bound_layer
from .config import LongHeadsConfig
from .layout import Selection, SlotLayout
from .plan import ForwardPlan
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
        mmap and page-fault on first touch, which cost 10x the gather itself on CPU (measured). One per device
        (a model split over GPUs runs its layers on several); pinned where `like` is (an offloaded store)."""
        n = 1
        for x in shape:
            n *= x
        key = (name, like.device)
        buf = self._workspace.get(key)
        if (buf is None or buf.numel() < n or buf.dtype != like.dtype
                or buf.is_inference() != torch.is_inference_mode_enabled()):  # inference tensors stay inside it
            pin = like.device.type == "cpu" and like.is_pinned()
            buf = torch.empty(n, dtype=like.dtype, device=like.device, pin_memory=pin)
            self._workspace[key] = buf
        return buf[:n].view(shape)


def longheads_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0,
                        longheads_plan: ForwardPlan | None = None, **kwargs):
    """transformers attention function. query (B, Hq, T, d); key, value (B, Hk, L, d) -> ((B, T, Hq, d), None).

    `longheads_plan` arrives as a `model(...)` keyword argument (plan.py); without one (transformers' own
    generate(), a plain forward) the layer is found by the key tensor its cache returned (cache.py).
    """
    rt: Runtime = module.longheads
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    plan = longheads_plan
    layer = plan.layer(module.layer_idx) if plan is not None else bound_layer(module.layer_idx, key)
    if layer is None:
        if key.shape[2] != query.shape[2]:
            raise ConfigError(
                "LongHeads needs its own cache for incremental decoding: pass cache=LongHeadsCache()."
            )
        layer = _ephemeral_layer(key, value)
    out = attend(rt, layer, query, key, value, scale, exact_from=plan.exact_from if plan else None,
                 record=plan.record if plan else None, layer_idx=module.layer_idx)
    return out.transpose(1, 2).contiguous(), None


def attend(rt: Runtime, layer: LongHeadsLayer, q, k, v, scale: float, *, exact_from: int | None = None,
           record: list[Selection] | None = None, layer_idx: int = 0) -> torch.Tensor:
    """LongHeads attention of the T newest queries. Returns (B, Hq, T, d).

    exact_from: queries at positions >= this select per token (None: the last `exact_tail` of this call);
    record: a list each group batch's `Selection` is appended to, or None.

    Host syncs: a decode step (and any per-token group) builds its positions on the queries' device and never
    reads a device value on the host (no .item(), no device->host copy, no boolean-mask indexing), so on CUDA
    the step is queued without waiting for the GPU (tests/longheads/test_no_host_sync.py). Block-prefill groups
    are laid out on the host and copied over without waiting. Offloaded caches (config `offload`) wait once
    per call for the chunk choices, which the host needs to gather the chunks it stores.
    """
    cfg, l, K = rt.config, rt.config.chunk_size, rt.config.chunks
    if cfg.offload != "none" and not layer.offloaded:
        layer.offload_to(cfg.offload)  # a cache made without the offload setting (e.g. LongHeadsCache())
    T = q.shape[2]
    L = layer.length if layer.offloaded else k.shape[2]
    P = L - T
    if cfg.selection == "longheads":
        _summarize_completed(rt, layer, q, P, scale)
    n_in = max(0, min(T, K * l - P))  # queries whose chunk index is < K: everything fits in the window
    if n_in and layer.offloaded:
        k, v = layer.head(P + n_in, q.device)  # <= K*l tokens: only while the prompt is inside the window
    if n_in == T:
        return backends.causal_attention(q, k, v, scale)
    out = q.new_empty(q.shape)  # (B, Hq, T, d)
    if n_in:
        out[:, :, :n_in] = backends.causal_attention(q[:, :, :n_in], k[:, :, : P + n_in], v[:, :, : P + n_in], scale)
    if exact_from is None:
        exact_from = L - cfg.exact_tail
    if cfg.prefill_selection == "token" or T == 1:
        exact_from = 0
    k_chunks, v_chunks = layer.key_chunks(l)  # (B, Hk, cap/l, l, d), on the store device
    B, Hq, _, d = q.shape
    per_group = 2 * B * Hq * K * l * d * k_chunks.element_size()
    step = max(1, GATHER_BUDGET_BYTES // per_group)
    for groups in _groups(cfg, P + n_in, L, exact_from, q.device):
        for host in groups.batches(step):  # bound the memory of gathered keys; not a loop over tokens
            batch = host.to(q.device)  # block groups are laid out on the host; token groups are on q's device
            q_idx = batch.pos - P  # (g, Tg)
            qg = q[:, :, q_idx]  # (B, Hq, g, Tg, d)
            idx = _select(rt, layer, qg, batch)  # (B, Hq, g, K)
            if not batch.per_token and cfg.selection == "longheads":
                layer.add_picks(batch.last_positions(), idx[0])  # the document's own choices: its hub prior
            if record is not None:
                record.append(Selection(layer_idx, to_host(batch.last_positions()), to_host(idx)))
            kg, vg = _gather(rt, layer, k_chunks, v_chunks, idx, Hq, q.device)  # (B, Hq, g, K, l, d)
            og = _window_of(rt, qg, kg, vg, idx, batch, host, scale)  # (B, Hq, g, Tg, d)
            if batch.per_token:  # every row is a real query: no mask, so no data-dependent shape
                out[:, :, q_idx[:, 0]] = og[:, :, :, 0]
            else:
                keep = torch.nonzero(host.valid.flatten()).flatten()  # integer indices, found on the host
                rows = (host.pos - P).flatten()[keep].to(q.device, non_blocking=True)
                out[:, :, rows] = og.reshape(B, Hq, -1, d)[:, :, keep.to(q.device, non_blocking=True)]
    return out


def to_host(x: torch.Tensor) -> torch.Tensor:
    """x on the CPU without waiting for the GPU: a non-blocking copy into pinned memory, complete once the
    stream reaches it (the decode loop reads its sampled token every step, which waits for the stream, before
    anyone reads a recorded Selection). A CPU tensor is returned as it is."""
    if x.device.type != "cuda":
        return x if x.device.type == "cpu" else x.cpu()
    out = torch.empty(x.shape, dtype=x.dtype, pin_memory=True)
    out.copy_(x, non_blocking=True)
    return out


@dataclass(frozen=True)
class QueryGroups:
    """Queries sharing a selection. pos (G, Tg): absolute positions, each row padded by repeating its last;
    lens (G,): real queries per row; chunk_size l; per_token: one query per group by rule (the exact tail,
    decode, prefill_selection="token"), not the queries of a chunk."""

    pos: torch.Tensor
    lens: torch.Tensor
    chunk_size: int
    per_token: bool = False

    @property
    def chunk(self) -> torch.Tensor:
        """(G,) the chunk q of each group."""
        return self.pos[:, 0] // self.chunk_size

    @property
    def valid(self) -> torch.Tensor:
        """(G, Tg) True for real (not padding) queries."""
        return torch.arange(self.pos.shape[1], device=self.pos.device)[None, :] < self.lens[:, None]

    def last_positions(self) -> torch.Tensor:
        rows = torch.arange(self.pos.shape[0], device=self.pos.device)
        return self.pos[rows, self.lens - 1].clone()

    def batches(self, step: int):
        for g0 in range(0, self.pos.shape[0], step):
            yield QueryGroups(self.pos[g0 : g0 + step], self.lens[g0 : g0 + step], self.chunk_size, self.per_token)

    def to(self, device) -> "QueryGroups":
        """The same groups on `device` (copied without waiting; itself when already there)."""
        if self.pos.device == torch.device(device):
            return self
        return QueryGroups(self.pos.to(device, non_blocking=True), self.lens.to(device, non_blocking=True),
                           self.chunk_size, self.per_token)


def _groups(cfg: LongHeadsConfig, start: int, end: int, exact_from: int, device):
    """Split query positions [start, end) into QueryGroups: positions >= exact_from are token groups (Tg = 1),
    made on `device`; the others are grouped by chunk and share one selection, laid out on the host."""
    split = min(max(exact_from, start), end)
    if split > start:
        block_pos = torch.arange(start, split)
        chunk_of = block_pos // cfg.chunk_size
        starts = torch.cat([torch.tensor([0]), torch.nonzero(chunk_of[1:] != chunk_of[:-1]).flatten() + 1])
        lens = torch.diff(torch.cat([starts, torch.tensor([len(block_pos)])]))
        offs = torch.arange(int(lens.max()))
        idx = torch.minimum(starts[:, None] + offs[None, :], (starts + lens - 1)[:, None])  # (G, Tg)
        yield QueryGroups(block_pos[idx], lens, cfg.chunk_size)
    if end > split:
        token_pos = torch.arange(split, end, device=device)
        yield QueryGroups(token_pos[:, None], torch.ones(end - split, dtype=torch.long, device=device),
                          cfg.chunk_size, per_token=True)


def _select(rt: Runtime, layer: LongHeadsLayer, qg: torch.Tensor, groups: QueryGroups) -> torch.Tensor:
    """Every head's K chunks for every group (eq. 3), in slot order. qg (B, Hq, g, Tg, d) -> (B, Hq, g, K);
    a group's score is the mean of its queries' scores. `groups` are on qg's device."""
    cfg = rt.config
    B, Hq, g, Tg, d = qg.shape
    gchunk = groups.chunk
    if cfg.selection != "longheads":
        return chunks.select(cfg, None, gchunk).expand(B, Hq, g, cfg.chunks)
    qs = chunks.scoring_queries(cfg, rt.rope, qg, groups.pos)
    s = chunks.score(cfg, qs.reshape(B, Hq, g * Tg, d), layer.summaries)  # (B, Hq, g*Tg, C)
    s = s.view(B, Hq, g, Tg, -1)
    if Tg > 1:
        w = groups.valid.to(s.dtype)[None, None, :, :, None]
        s = (s * w).sum(dim=3) / groups.lens.to(s.dtype)[None, None, :, None]  # (B, Hq, g, C)
    else:
        s = s[:, :, :, 0]
    return chunks.select(cfg, s, gchunk)


def _gather(rt: Runtime, layer: LongHeadsLayer, k_chunks, v_chunks, idx, n_heads: int, device):
    """The chunks of idx (B, Hq, g, K) from the cache's store, on `device`: (B, Hq, g, K, l, d) each.
    Offloaded: the host gathers from its (pinned) store and only the selected chunks cross to the device."""
    if not layer.offloaded:
        return gather_chunks(k_chunks, v_chunks, idx, n_heads, rt)
    host_idx = idx.to(k_chunks.device)  # the one wait of an offloaded call: the host needs the choices
    kg, vg = gather_chunks(k_chunks, v_chunks, host_idx, n_heads, rt)
    return kg.to(device), vg.to(device)  # from the pinned workspace: DMA, then the workspace is free again


def _window_of(rt: Runtime, qg, kg, vg, idx, groups: QueryGroups, host: QueryGroups, scale: float) -> torch.Tensor:
    """Attention of each group inside its remapped window. qg (B, Hq, g, Tg, d); kg, vg (B, Hq, g, K, l, d) the
    gathered chunks; idx (B, Hq, g, K); groups on qg's device, host the same groups where they were made ->
    (B, Hq, g, Tg, d)."""
    l = rt.config.chunk_size
    B, Hq, g, Tg, d = qg.shape
    layout = SlotLayout.of(rt.config)
    shift = layout.shifts(idx, groups.chunk, l)  # (B, Hq, g, K)
    n_far = layout.moving
    if Tg == 1:  # one query per group (decode, exact tail, per-token prefill): rotate it per slot instead
        og = _slot_rotated_attention(rt, qg[:, :, :, 0], kg, vg, shift, n_far, groups.pos[:, 0] % l, scale)
    else:  # a chunk of queries shares the window: rotate the keys once, then one fused kernel
        K = layout.chunks
        rotate_inplace(rt, kg[:, :, :, :n_far], shift[..., :n_far, None])
        kg, vg = kg.view(B, Hq * g, K * l, d), vg.view(B, Hq * g, K * l, d)  # groups join the head dim
        og = _window_attention(qg.reshape(B, Hq * g, Tg, d), kg, vg, host.pos % l, host.lens, l, scale)
    return og.view(B, Hq, g, Tg, d)


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
    future = torch.arange(l, device=q.device)[None, :] > r[:, None]  # (g, l): after the query
    logits[:, :, :, -1].masked_fill_(future[None, None], float("-inf"))
    probs = torch.softmax(logits.view(B, Hq, g, K * l).float() * scale, dim=-1).to(vg.dtype)
    return torch.matmul(probs.unsqueeze(-2), vg.view(B, Hq, g, K * l, d)).squeeze(-2)  # (B, Hq, g, d)


def rotate_inplace(rt: Runtime, x: torch.Tensor, shifts: torch.Tensor) -> None:
    """x (..., d) rotated in place by `shifts` positions (broadcast over x's leading dims), on the two halves
    directly: no rotate_half concatenation, no fresh full-size tensors."""
    h = rt.rope.rotary_dim // 2  # d // 2 unless the model rotates only part of the head dim (rope.py)
    cos, sin = rt.rope.cos_sin(shifts, x.dtype, x.device)  # (..., rotary_dim) with repeated halves
    cos, sin = cos[..., :h], sin[..., :h]
    x1, x2 = x[..., :h], x[..., h : 2 * h]
    tmp = x1.clone() if _autograd(x) else rt.workspace("rot_tmp", x1.shape, x).copy_(x1)
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
    if _autograd(k_chunks) or _autograd(v_chunks):  # out= is not differentiable; fresh tensors instead
        kg = torch.index_select(k_chunks.reshape(B * Hk * N, l, d), 0, flat)
        vg = torch.index_select(v_chunks.reshape(B * Hk * N, l, d), 0, flat)
        return kg.view(*idx.shape, l, d), vg.view(*idx.shape, l, d)
    kg = rt.workspace("kg", shape, k_chunks) if rt else k_chunks.new_empty(shape)
    vg = rt.workspace("vg", shape, v_chunks) if rt else v_chunks.new_empty(shape)
    torch.index_select(k_chunks.reshape(B * Hk * N, l, d), 0, flat, out=kg)
    torch.index_select(v_chunks.reshape(B * Hk * N, l, d), 0, flat, out=vg)
    return kg.view(*idx.shape, l, d), vg.view(*idx.shape, l, d)


def _autograd(x: torch.Tensor) -> bool:
    """Is autograd recording ops on x? (a forward outside no_grad/inference_mode: the reusable workspaces and
    out= kernels are skipped so the forward stays differentiable)"""
    return torch.is_grad_enabled() and x.requires_grad


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
        kc = k_chunks[:, :, first : first + done].to(q.device)  # a copy only when offloaded: the new chunks
        vc = v_chunks[:, :, first : first + done].to(q.device)
        layer.add_summaries(chunks.summarize(rt.config, rt.rope, qc, kc, vc, first, scale))
    layer.pending_q = all_q[:, :, max(done, 0) * l :].clone()


def _ephemeral_layer(key, value) -> LongHeadsLayer:
    """A throwaway layer for a one-shot forward without a LongHeads cache (e.g. plain `model(input_ids)`)."""
    layer = LongHeadsLayer()
    layer.update(key, value)
    return layer

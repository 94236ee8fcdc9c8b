"""The LongHeads KV cache: a transformers `Cache` whose layers also hold chunk summaries and the queries of the
current, not yet complete chunk (needed for eq. 2 when the chunk fills).

Keys and values live in a preallocated buffer that grows by doubling, so a decode step appends in O(1) instead
of copying the whole cache (transformers' DynamicLayer concatenates every step).

How the attention function finds its layer: longdoc's own generation passes a `ForwardPlan` (plan.py) as a
model keyword argument, which transformers hands to the attention function, and the plan names the cache.
transformers' own `generate()` (or a plain `model(ids, cache=LongHeadsCache())`) passes none, and
transformers does not pass the cache to the attention function; for those calls only, `update()` binds the layer
to the key tensor it returns (thread-local) and the attention function finds the layer by that exact tensor
object, so a stale or foreign binding is never used.

The prefix-cache interface the Engine uses (longdoc/prefix.py): get_seq_length, croppable_length, crop,
snapshot / restore, reserve.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import torch
from transformers.cache_utils import Cache, DynamicLayer

from .layout import Selection

PLAN_KWARG = "longheads_plan"  # the model keyword argument carrying a ForwardPlan (plan.py)

_bound = threading.local()


def bound_layer(layer_idx: int, key: torch.Tensor) -> "LongHeadsLayer | None":
    """The LongHeads layer whose `update()` returned exactly `key`, if any (calls made without a ForwardPlan:
    transformers' own generate())."""
    entry = getattr(_bound, "layers", {}).get(layer_idx)
    if entry is not None and entry[0] is key:
        return entry[1]
    return None


class LongHeadsLayer(DynamicLayer):
    """One layer's cache. Shapes: keys/values (B, Hk, L, d); summaries (B, Hs, C, m, d); pending_q (B, Hq, r, d);
    pick_pos (R,) and pick_chunks (Hq, R, K): the chunks every head chose for each of the R chunk-sized query
    groups the block prefill has read (batch 0, on the CPU), kept so that the document's own selection prior
    (`longdoc.reread.chunk_prior`, the hub correction) travels with the cache: through crop, snapshot/restore
    and the store, so it is the same whichever way the document was prefilled or reused.

    Devices: every buffer is made on the device of this layer's key states (the compute device; with a model
    split over GPUs, each layer's own). offload: a storage device for the keys and values ("cpu": pinned host
    memory when the compute device is CUDA, the paper's 128k setting); the compute device then holds only the
    chunk summaries and the pending queries, and the attention moves the selected chunks over per step
    (attention.py, `_gather`). Picks are recorded on the compute device and moved to the CPU when read, so
    recording them never waits for the GPU."""

    def __init__(self, offload: str | None = None):
        super().__init__()
        self.length = 0
        self.align = 1  # buffer capacity is kept a multiple of the chunk size (set by the attention function)
        self._kbuf = self._vbuf = None
        self.summaries: torch.Tensor | None = None
        self.n_summarized = 0
        self.pending_q: torch.Tensor | None = None
        self.reserved = 0  # tokens to make room for at the next growth (LongHeadsCache.reserve)
        self.offload = offload
        self.store_device: torch.device | None = None  # where keys/values live (set at the first update)
        self._picks: tuple[torch.Tensor, torch.Tensor] | None = None  # (pick_pos, pick_chunks) on the CPU
        self._pick_parts: list[tuple[torch.Tensor, torch.Tensor]] = []  # recorded, not yet moved to the CPU

    @property
    def offloaded(self) -> bool:
        return self.offload is not None

    def add_picks(self, positions: torch.Tensor, chunks: torch.Tensor) -> None:
        """Record a block prefill's choices: positions (g,) last position of each group; chunks (Hq, g, K).
        Kept where they are (no device->host wait in the prefill) until `pick_pos` / `pick_chunks` are read."""
        self._pick_parts.append((positions, chunks))

    def _host_picks(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        if self._pick_parts:
            parts = [(p.to("cpu", torch.long), c.to("cpu", torch.int32)) for p, c in self._pick_parts]
            if self._picks is not None:
                parts.insert(0, self._picks)
            self._picks = torch.cat([p for p, _ in parts]), torch.cat([c for _, c in parts], dim=1)
            self._pick_parts = []
        return self._picks

    @property
    def pick_pos(self) -> torch.Tensor | None:
        picks = self._host_picks()
        return None if picks is None else picks[0]

    @property
    def pick_chunks(self) -> torch.Tensor | None:
        picks = self._host_picks()
        return None if picks is None else picks[1]

    def drop_picks_from(self, length: int) -> None:
        """Forget the choices of groups ending at positions >= length (the cache no longer holds them)."""
        picks = self._host_picks()
        if picks is not None:
            keep = picks[0] < length
            if not bool(keep.all()):
                self._picks = picks[0][keep], picks[1][:, keep]

    def lazy_initialization(self, key_states, value_states):
        self.dtype, self.device = key_states.dtype, key_states.device
        self.store_device = torch.device(self.offload) if self.offloaded else key_states.device
        self.is_initialized = True

    def update(self, key_states, value_states, *args, **kwargs):
        """Append (B, Hk, T, d) keys and values. Returns the whole cache (B, Hk, L, d) each, or, offloaded,
        just the new ones (the attention reads the rest from the store: `head`, `key_chunks`)."""
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        T = key_states.shape[-2]
        self._reserve(self.length + T, key_states, value_states)
        self._kbuf[:, :, self.length : self.length + T] = key_states  # to the store device when offloaded
        self._vbuf[:, :, self.length : self.length + T] = value_states
        self.length += T
        self.keys = self._kbuf[:, :, : self.length]
        self.values = self._vbuf[:, :, : self.length]
        if self.offloaded:
            return key_states, value_states
        return self.keys, self.values

    def head(self, n: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of the first n tokens on `device`: (B, Hk, n, d) each (a copy when offloaded; used
        only while the prompt is inside the window, n <= K * l)."""
        return self._kbuf[:, :, :n].to(device), self._vbuf[:, :, :n].to(device)

    def offload_to(self, device: str) -> None:
        """Move keys and values to a storage device now (a cache made without `offload`, first seen by an
        attention whose config asks for it)."""
        self.offload = device
        if not self.is_initialized:
            return
        self.store_device = torch.device(device)
        if self._kbuf is not None:
            self._kbuf, self._vbuf = self._to_store(self._kbuf), self._to_store(self._vbuf)
            self.keys, self.values = self._kbuf[:, :, : self.length], self._vbuf[:, :, : self.length]

    def _to_store(self, x: torch.Tensor) -> torch.Tensor:
        buf = self._new_buffer(x.shape, x.dtype)
        buf.copy_(x)
        return buf

    def _new_buffer(self, shape, dtype) -> torch.Tensor:
        """Zeros on the store device; pinned host memory when the compute device is CUDA (fast DMA both ways)."""
        pin = self.offloaded and self.store_device.type == "cpu" and self.device.type == "cuda"
        return torch.zeros(shape, dtype=dtype, device=self.store_device, pin_memory=pin)

    def _reserve(self, needed: int, k_like: torch.Tensor, v_like: torch.Tensor) -> None:
        cap = 0 if self._kbuf is None else self._kbuf.shape[2]
        if needed > cap:
            # prefill knows the final length (LongHeadsCache.reserve): one right-sized buffer instead of doubling,
            # which at 32k allocated and copied a 2x buffer on the first decode step (3.8 s, measured)
            target = self.reserved if self.reserved >= needed else max(needed, 2 * cap, 256)
            self._grow_to(_round_up(target, self.align), k_like, v_like)

    def key_chunks(self, l: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Whole buffers viewed as chunks: (B, Hk, cap // l, l, d) each; rows past `length` are zeros."""
        if self.align != l or self._kbuf.shape[2] % l:
            self.align = l
            cap = self._kbuf.shape[2]
            if cap % l:
                self._grow_to(_round_up(cap, l))
        B, Hk, cap, d = self._kbuf.shape
        return self._kbuf.view(B, Hk, cap // l, l, d), self._vbuf.view(B, Hk, cap // l, l, d)

    def _grow_to(self, cap: int, k_like: torch.Tensor | None = None, v_like: torch.Tensor | None = None) -> None:
        for name, like in (("_kbuf", k_like), ("_vbuf", v_like)):
            old = getattr(self, name)
            ref = old if old is not None else like
            buf = self._new_buffer((*ref.shape[:2], cap, ref.shape[3]), ref.dtype)
            if old is not None:
                buf[:, :, : self.length] = old[:, :, : self.length]
            setattr(self, name, buf)
        self.keys, self.values = self._kbuf[:, :, : self.length], self._vbuf[:, :, : self.length]

    def add_summaries(self, s: torch.Tensor) -> None:
        self.summaries = s if self.summaries is None else torch.cat([self.summaries, s], dim=2)
        self.n_summarized = self.summaries.shape[2]

    def get_seq_length(self) -> int:
        return self.length

    def crop(self, max_length: int) -> None:
        """Keep the first `max_length` tokens (negative: drop that many). Chunk state is cropped with them, so
        the pending queries must cover the kept partial chunk (use LongHeadsCache.snapshot/restore)."""
        if max_length < 0:
            max_length = self.length + max_length
        if max_length >= self.length or not self.is_initialized:
            return
        self.length = max_length
        self.keys, self.values = self._kbuf[:, :, :max_length], self._vbuf[:, :, :max_length]
        self.drop_picks_from(max_length)

    def reset(self) -> None:
        self.__init__(self.offload)


@dataclass
class Snapshot:
    """What is needed to roll a cache back to an earlier length (e.g. the end of a reused document prefix)."""

    length: int
    layers: list = field(default_factory=list)  # per layer: (n_summarized, pending_q clone)


class LongHeadsCache(Cache):
    """Pass as `cache=` (`past_key_values=` before transformers 5.x) to the model or to `generate()` after
    `enable_longheads(model)`."""

    def __init__(self, offload: str | None = None):
        """offload: a storage device ("cpu") for every layer's keys and values (LongHeadsLayer), or None."""
        super().__init__(layer_class_to_replicate=LongHeadsLayer)
        self._reserved = 0
        self.offload = offload

    def reserve(self, tokens: int) -> None:
        """Make room for `tokens` in all (when they next grow) in one allocation instead of doubling."""
        self._reserved = tokens
        for layer in self.layers:
            layer.reserved = tokens

    def croppable_length(self, length: int) -> int:
        """The longest length <= `length` this cache can be cropped to: chunk state can only be rolled back to
        a chunk boundary or inside the still-pending (partial) chunk, whose queries are kept."""
        if not self.layers:
            return 0
        layer = self.layers[0]
        l = layer.align
        pending_from = layer.n_summarized * l if layer.pending_q is not None else 0
        length = min(length, self.get_seq_length())
        return length if length >= pending_from else (length // l) * l

    def crop(self, max_length: int) -> None:
        if max_length < 0:
            max_length = self.get_seq_length() + max_length
        if self.croppable_length(max_length) != max_length:
            raise ValueError(f"cannot crop a LongHeads cache to {max_length}: use croppable_length() first")
        for layer in self.layers:
            l = layer.align
            layer.crop(max_length)
            if layer.summaries is not None and layer.n_summarized * l > max_length:
                layer.summaries = layer.summaries[:, :, : max_length // l]
                layer.n_summarized = max_length // l
                layer.pending_q = layer.pending_q[:, :, :0] if layer.pending_q is not None else None
            elif layer.pending_q is not None:
                layer.pending_q = layer.pending_q[:, :, : max_length - layer.n_summarized * l]

    def update(self, key_states, value_states, layer_idx, *args, **kwargs):
        while len(self.layers) <= layer_idx:  # as Cache.update does, but sized before the first append
            layer = LongHeadsLayer(self.offload)
            layer.reserved = self._reserved
            self.layers.append(layer)
        keys, values = super().update(key_states, value_states, layer_idx, *args, **kwargs)
        if PLAN_KWARG not in (kwargs.get("kwargs") or {}):  # no plan (transformers' generate()): bind by tensor
            if not hasattr(_bound, "layers"):
                _bound.layers = {}
            _bound.layers[layer_idx] = (keys, self.layers[layer_idx])
        return keys, values

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Everything needed to resume from this cache, as plain tensors (for safetensors)."""
        out = {}
        for i, layer in enumerate(self.layers):
            out[f"{i}.keys"] = layer.keys.contiguous()
            out[f"{i}.values"] = layer.values.contiguous()
            if layer.summaries is not None:
                out[f"{i}.summaries"] = layer.summaries.contiguous()
            if layer.pending_q is not None:
                out[f"{i}.pending_q"] = layer.pending_q.contiguous()
            if layer.pick_pos is not None:
                out[f"{i}.pick_pos"] = layer.pick_pos.contiguous()
                out[f"{i}.pick_chunks"] = layer.pick_chunks.contiguous()
            out[f"{i}.align"] = torch.tensor(layer.align)
        return out

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor], device=None) -> "LongHeadsCache":
        cache = cls()
        n_layers = 1 + max(int(k.split(".")[0]) for k in state)
        for i in range(n_layers):
            layer = LongHeadsLayer()
            layer.align = int(state[f"{i}.align"])
            k, v = state[f"{i}.keys"].to(device), state[f"{i}.values"].to(device)
            layer.update(k, v)
            if f"{i}.summaries" in state:
                layer.add_summaries(state[f"{i}.summaries"].to(device))
            if f"{i}.pending_q" in state:
                layer.pending_q = state[f"{i}.pending_q"].to(device)
            if f"{i}.pick_pos" in state:
                layer.add_picks(state[f"{i}.pick_pos"], state[f"{i}.pick_chunks"])
            cache.layers.append(layer)
        return cache

    def document_selections(self, before: int) -> list[Selection]:
        """The chunk choices of the block-prefilled query groups ending before position `before`, one
        `Selection` per layer (chunks (1, Hq, R, K)): the input of `longdoc.reread.chunk_prior`. Empty where
        nothing was block-prefilled (prefill_selection="token", or a prompt inside the window)."""
        out = []
        for i, layer in enumerate(self.layers):
            if layer.pick_pos is None:
                continue
            keep = layer.pick_pos < before
            if bool(keep.any()):
                out.append(Selection(i, layer.pick_pos[keep], layer.pick_chunks[:, keep][None].long()))
        return out

    def snapshot(self) -> Snapshot:
        snap = Snapshot(length=self.get_seq_length())
        for layer in self.layers:
            pq = None if layer.pending_q is None else layer.pending_q.clone()
            snap.layers.append((layer.n_summarized, pq))
        return snap

    def restore(self, snap: Snapshot) -> None:
        """Roll back to `snap` (only valid while nothing before snap.length was overwritten: appends never do)."""
        for layer, (n_sum, pq) in zip(self.layers, snap.layers):
            layer.crop(snap.length)
            if layer.summaries is not None:
                layer.summaries = layer.summaries[:, :, :n_sum]
            layer.n_summarized = n_sum
            layer.pending_q = None if pq is None else pq.clone()


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m

"""The window a head sees once its query is past the first K chunks: one owner of the slot layout.

Notation: l chunk size, K chunks per head, q the chunk of the query (q >= K), r the query's offset in it,
G query groups, B batch, Hq query heads (see attention.py for the full legend).

    slot s:    0        1 .. n_sel            K-2          K-1
             [ first | selected ...        | previous  | current ]      keep_previous=True (default)
             [ first | selected ...                    | current ]      keep_previous=False (the paper)
             [ first | q-K+2  ...             q-1      | current ]      selection="window" (sink + recent)
    chunk:     0       chosen by score (eq. 3)  q-1         q

Slot s is given the positions [s*l, (s+1)*l); the query sits in the last slot, at (K-1)*l + r. Cached keys
are rotated at their absolute positions and RoPE is relative, so chunk c placed in slot s needs one extra
rotation of its keys by

    shift(s, c) = (q - (K-1) + s - c) * l          (a multiple of l; 0 when c already sits where s puts it)

The trailing slots hold q-1 and q at K-2 and K-1 (and, for "window", q-K+2.. at 1..K-2): their shift is 0, so
only the first `moving` slots are ever rotated.

A `Selection` records, for one attention call, which chunk every head put in every slot: citations count the
`selected` slots only (the others are there whatever the question), the pass-key hit rate looks at the whole
window.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Selection:
    """The chunks one attention call chose. positions (g,): the absolute position of the last query of each
    group; chunks (B, Hq, g, K): the chunk in each slot, in slot order, on the CPU."""

    layer: int
    positions: torch.Tensor
    chunks: torch.Tensor

    def window_at(self, position: int) -> torch.Tensor | None:
        """(Hq, K): every head's chunks, all slots, for the group ending at `position` (batch 0), or None."""
        rows = (self.positions == position).nonzero().flatten()
        return self.chunks[0, :, int(rows[0])] if len(rows) else None


@dataclass(frozen=True)
class SlotLayout:
    chunks: int  # K
    keep_previous: bool
    selection: str  # "longheads" or "window"

    @classmethod
    def of(cls, cfg) -> "SlotLayout":
        return cls(cfg.chunks, cfg.keep_previous, cfg.selection)

    @property
    def n_selected(self) -> int:
        """Slots filled by score: K minus first, current and (if kept) previous."""
        return self.chunks - 2 - int(self.keep_previous)

    @property
    def moving(self) -> int:
        """Slots 0..moving-1 may hold a chunk away from its place (shift != 0); the rest never move."""
        return 1 if self.selection == "window" else self.chunks - 1 - int(self.keep_previous)

    @property
    def selected(self) -> slice:
        """The slots between the first chunk and the mandatory tail (previous, current)."""
        return slice(1, self.chunks - 1 - int(self.keep_previous))

    def last_candidate(self, group_chunk: torch.Tensor) -> torch.Tensor:
        """(G,) the last chunk a group may select (candidates are chunks 1..last, inclusive)."""
        return group_chunk - 1 - int(self.keep_previous)

    def window_chunks(self, group_chunk: torch.Tensor) -> torch.Tensor:
        """selection="window": chunk 0 and the K-1 most recent chunks. group_chunk (G,) -> (G, K)."""
        recent = group_chunk[:, None] - torch.arange(self.chunks - 2, -1, -1, device=group_chunk.device)  # (G, K-1)
        return torch.cat([torch.zeros_like(group_chunk)[:, None], recent], dim=1)

    def assemble(self, chosen: torch.Tensor, group_chunk: torch.Tensor) -> torch.Tensor:
        """Slot order from the chunks chosen by score. chosen (B, Hq, G, n_sel), group_chunk (G,) ->
        (B, Hq, G, K): [first, chosen..., previous (if kept), current]."""
        B, Hq, G = chosen.shape[:3]
        mandatory_tail = [group_chunk - 1] if self.keep_previous else []
        tail = torch.stack(mandatory_tail + [group_chunk], dim=1)  # (G, 1 or 2)
        first = torch.zeros(B, Hq, G, 1, dtype=chosen.dtype, device=chosen.device)
        return torch.cat([first, chosen, tail.to(chosen.device).expand(B, Hq, G, -1)], dim=-1)

    def shifts(self, idx: torch.Tensor, group_chunk: torch.Tensor, chunk_size: int) -> torch.Tensor:
        """shift(s, c) in positions for every slot. idx (B, Hq, G, K) chunks in slot order, group_chunk (G,)
        -> (B, Hq, G, K)."""
        slots = torch.arange(self.chunks, device=idx.device)
        return (group_chunk.to(idx.device)[None, None, :, None] - (self.chunks - 1) + slots - idx) * chunk_size

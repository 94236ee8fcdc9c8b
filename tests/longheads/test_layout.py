"""The slot layout: chunks.select fills [first | selected | previous | current]; the shift moves every slot's
keys to its remapped positions, and the trailing slots never move."""

import torch

from longdoc.longheads import chunks
from longdoc.longheads.config import LongHeadsConfig
from longdoc.longheads.layout import SlotLayout

L = 4  # chunk size


def test_select_fills_the_slots_in_layout_order_and_shifts_remap_them():
    cfg = LongHeadsConfig(chunk_size=L, chunks=6)  # first, 3 selected, previous, current
    layout = SlotLayout.of(cfg)
    torch.manual_seed(0)
    q_chunk = torch.tensor([9, 12])  # two groups
    idx = chunks.select(cfg, torch.randn(1, 2, 2, 13), q_chunk)  # (B, Hq, G, K)
    assert (idx[..., 0] == 0).all() and (idx[..., -1] == q_chunk).all() and (idx[..., -2] == q_chunk - 1).all()
    chosen = idx[..., layout.selected]
    assert chosen.shape[-1] == layout.n_selected == 3
    assert ((chosen >= 1) & (chosen <= layout.last_candidate(q_chunk)[None, None, :, None])).all()
    shift = layout.shifts(idx, q_chunk, L)
    # a chunk c in slot s lands at window position s*l: absolute start c*l + shift == (q - (K-1) + s) * l
    slots = torch.arange(cfg.chunks)
    assert (idx * L + shift == (q_chunk[None, None, :, None] - (cfg.chunks - 1) + slots) * L).all()
    assert (shift[..., layout.moving :] == 0).all() and layout.moving == cfg.chunks - 2


def test_window_selection_and_the_papers_layout():
    window = SlotLayout.of(LongHeadsConfig(chunk_size=L, chunks=4, selection="window"))
    assert window.window_chunks(torch.tensor([7])).tolist() == [[0, 5, 6, 7]] and window.moving == 1
    paper = SlotLayout.of(LongHeadsConfig.paper(chunk_size=L, chunks=4))  # no mandatory previous chunk
    assert paper.n_selected == 2 and paper.selected == slice(1, 3) and paper.moving == 3

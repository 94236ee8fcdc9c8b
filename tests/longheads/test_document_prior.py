"""The document's own chunk choices (the input of the hub prior, longdoc/reread.py) travel in its LongHeads cache:
the same after a prefill in one call or in pieces, after a crop back to the document, a snapshot/restore, and a
round trip through the store's state dict; so the hub-corrected re-read and citations agree on every path."""

from __future__ import annotations

import pytest
import torch

from longdoc.engine import Engine
from longdoc.generate import SamplingParams, decode_one, prefill
from longdoc.longheads.cache import LongHeadsCache
from longdoc.longheads.config import LongHeadsConfig
from longdoc.prefix import crop_to, new_cache
from longdoc.reread import chunk_prior

CFG = LongHeadsConfig(chunk_size=8, chunks=4, exact_tail=5)  # window 32 on the tiny model trained to 256


def tokens(n: int, seed: int) -> list[int]:
    return torch.randint(100, 2000, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


DOC = tokens(83, 0)  # 10 chunks and 3 tokens: the document ends inside a pending chunk
QUESTION = tokens(12, 1)


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return Engine(str(tiny_model_dir), CFG)


def picks(cache: LongHeadsCache, before: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(s.positions, s.chunks) for s in cache.document_selections(before=before)]


def same(a, b) -> bool:
    return len(a) == len(b) and all(torch.equal(p, q) and torch.equal(x, y) for (p, x), (q, y) in zip(a, b))


def test_the_document_choices_are_those_the_prefill_recorded(engine):
    cache, record = new_cache(engine.model), []
    prefill(engine.model, cache, torch.tensor([DOC]), exact_from=len(DOC), record=record)
    doc = cache.document_selections(before=len(DOC))
    assert len(doc) == engine.model.config.num_hidden_layers  # every layer selected for the later chunks
    n_groups = len(DOC) // CFG.chunk_size + 1 - CFG.chunks  # chunk groups past the first K chunks
    Hq = engine.model.config.num_attention_heads
    assert all(s.positions.numel() == n_groups and s.chunks.shape == (1, Hq, n_groups, CFG.chunks) for s in doc)
    for s in doc:  # exactly the recorded selections of that layer
        rec = [r for r in record if r.layer == s.layer]
        assert torch.equal(torch.cat([r.positions for r in rec]), s.positions)
        assert torch.equal(torch.cat([r.chunks for r in rec], dim=2).long(), s.chunks)
    prior = chunk_prior(doc, CFG, len(DOC) // CFG.chunk_size + 1, len(DOC))
    assert torch.allclose(prior, chunk_prior(record, CFG, len(DOC) // CFG.chunk_size + 1, len(DOC)))
    assert not torch.allclose(prior, torch.ones_like(prior))  # the tiny model has favourite chunks too


def test_the_choices_survive_crop_restore_and_the_store(engine):
    model = engine.model
    alone = new_cache(model)
    prefill(model, alone, torch.tensor([DOC]), exact_from=len(DOC))
    want = picks(alone, len(DOC))

    longer = new_cache(model)  # the document, then a question and a decode step, then cropped back
    prefill(model, longer, torch.tensor([DOC]), exact_from=len(DOC))
    snap = longer.snapshot()
    prefill(model, longer, torch.tensor([QUESTION]), exact_from=len(DOC) + len(QUESTION) - CFG.exact_tail)
    decode_one(model, longer, torch.tensor([[5]]))
    assert len(longer.document_selections(before=10**9)[0].positions) > len(want[0][0])  # the question added rows
    longer.restore(snap)
    assert same(picks(longer, 10**9), want)

    again = new_cache(model)
    prefill(model, again, torch.tensor([DOC + QUESTION]), exact_from=len(DOC) + len(QUESTION))
    crop_to(again, len(DOC) // CFG.chunk_size * CFG.chunk_size)  # a chunk boundary: rows after it go
    assert all(bool((p < len(DOC) // CFG.chunk_size * CFG.chunk_size).all()) for p, _ in picks(again, 10**9))

    restored = LongHeadsCache.from_state_dict(alone.state_dict())
    assert same(picks(restored, 10**9), want)


def test_a_hub_corrected_reread_plans_the_same_from_a_prefill_the_pool_and_the_store(engine):
    from longdoc.store import Store

    prompt = DOC + QUESTION
    plans = []
    params = SamplingParams(max_new_tokens=3)

    def run():
        got = []
        text = "".join(engine.reread_stream(prompt, params, prefix_len=len(DOC), question_start=len(DOC),
                                            budget=CFG.window, on_plan=got.append))
        plans.append((got[0].chunks if got[0] is not None else None, text))

    engine.clear_prefixes()
    run()  # the document prefilled now
    run()  # the document from the pool
    cache, _ = engine.prefill_prefix(DOC)
    state = LongHeadsCache.from_state_dict(cache.state_dict())
    engine.clear_prefixes()
    engine.add_prefix(DOC, state)  # the document from a stored ingest
    run()
    assert plans[0][0] is not None and plans[0] == plans[1] == plans[2]

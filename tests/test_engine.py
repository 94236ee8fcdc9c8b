"""The Engine's prefix pool: a reused prefix gives the same logits as a fresh prefill, at a document boundary
inside a pending chunk, on chunk boundaries, and anywhere with per-token selection; and the reuse rule is
needed (an arbitrary crop inside a pending chunk in block prefill gives other logits)."""

from __future__ import annotations

import pytest
import torch

from longdoc.engine import Engine
from longdoc.generate import SamplingParams, Usage, prefill
from longdoc.longheads.config import LongHeadsConfig
from longdoc.prefix import crop_to, new_cache

BLOCK = LongHeadsConfig(chunk_size=8, chunks=4, exact_tail=5)  # window 32 on the tiny model trained to 256
TOKEN = BLOCK.replace(prefill_selection="token")


def tokens(n: int, seed: int) -> list[int]:
    return torch.randint(100, 2000, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


@pytest.fixture(scope="module")
def engines(tiny_model_dir):
    return {"block": Engine(str(tiny_model_dir), BLOCK), "token": Engine(str(tiny_model_dir), TOKEN)}


def fresh(engine: Engine, ids: list[int], prefix_len: int = 0) -> torch.Tensor:
    engine.clear_prefixes()
    return engine.logits(ids, prefix_len=prefix_len)


def reused(engine: Engine, ids: list[int], prefix_len: int = 0) -> tuple[torch.Tensor, int]:
    usage = Usage()
    logits = engine.logits(ids, prefix_len=prefix_len, usage=usage)
    return logits, usage.cached_tokens


DOC = tokens(67, 0)  # 8 chunks and 3 tokens: the document ends inside a pending chunk


def test_a_pooled_document_is_reused_at_its_end_inside_the_pending_chunk(engines):
    engine = engines["block"]
    prompt = DOC + tokens(6, 1)  # the question completes the chunk the document left pending
    want = fresh(engine, prompt, len(DOC))
    engine.clear_prefixes()
    engine.prefill_prefix(DOC)
    got, cached = reused(engine, prompt, len(DOC))
    assert cached == len(DOC) and len(DOC) % BLOCK.chunk_size  # the crop point is inside the pending chunk
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_a_previous_question_is_reused_up_to_the_document(engines):
    engine = engines["block"]
    second = DOC + tokens(9, 3)
    want = fresh(engine, second, len(DOC))
    engine.clear_prefixes()
    engine.logits(DOC + tokens(4, 2), prefix_len=len(DOC))  # the first question: its prompt stays pooled
    got, cached = reused(engine, second, len(DOC))
    assert cached == len(DOC)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_another_document_with_the_same_start_is_reused_to_a_chunk_boundary(engines):
    engine = engines["block"]
    other = DOC[:50] + tokens(25, 4)  # shares 50 tokens: chunk boundary 48
    prompt = DOC + tokens(6, 5)
    want = fresh(engine, prompt, len(DOC))
    engine.clear_prefixes()
    engine.prefill_prefix(other)
    got, cached = reused(engine, prompt, len(DOC))
    assert cached == 48
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_a_longer_chat_is_reused_to_a_chunk_boundary_before_its_per_token_tail(engines):
    engine = engines["block"]
    first = tokens(90, 6)
    second = first[:70] + tokens(30, 7)
    want = fresh(engine, second)
    engine.clear_prefixes()
    engine.logits(first)
    got, cached = reused(engine, second)
    assert cached == 64
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shared", [84, 80, 83], ids=["inside-pending", "boundary", "in-pending-2"])
def test_per_token_selection_reuses_any_croppable_length(engines, shared):
    engine = engines["token"]
    first = tokens(87, 8)  # 10 chunks + 7 pending tokens
    second = first[:shared] + tokens(12, 9)
    want = fresh(engine, second)
    engine.clear_prefixes()
    engine.logits(first)
    got, cached = reused(engine, second)
    assert cached == shared
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_the_rule_matters_a_block_prefill_cropped_inside_its_pending_chunk_differs(engines):
    """Why the pool reuses a pending chunk only at the same document boundary: the chunk's queries shared one
    selection over [64, 67); cut at 65 and continued, position 64 keeps a selection a fresh prefill would not make."""
    engine = engines["block"]
    model = engine.model
    prompt = DOC[:65] + tokens(12, 10)
    ids = torch.tensor([prompt])
    whole = new_cache(model)
    want = prefill(model, whole, ids[:, :65], exact_from=65)
    want = prefill(model, whole, ids[:, 65:], exact_from=len(prompt) - BLOCK.exact_tail)
    cut = new_cache(model)
    prefill(model, cut, torch.tensor([DOC]), exact_from=len(DOC))
    crop_to(cut, 65)
    got = prefill(model, cut, ids[:, 65:], exact_from=len(prompt) - BLOCK.exact_tail)
    assert (got - want).abs().max() > 1e-4


def test_answers_do_not_depend_on_what_the_pool_holds(engines):
    engine = engines["block"]
    prompt = DOC + tokens(4, 11)  # 71 tokens: the question leaves the document's last chunk pending
    params = SamplingParams(max_new_tokens=12)
    engine.clear_prefixes()
    cold, _ = engine.complete(prompt, params, prefix_len=len(DOC))
    warm, usage = engine.complete(prompt, params, prefix_len=len(DOC))
    assert usage.cached_tokens == len(DOC) and warm == cold

"""Perplexity scoring: the tail's log-likelihood equals a plain forward pass over the whole context."""

import math

import pytest
import torch

from longdoc import LongHeadsConfig, disable_longheads, enable_longheads
from longdoc.eval.methods import parse_methods
from longdoc.eval.ppl import aggregate, end_points, tail_nll
from tiny_models import make_tiny_llama


@pytest.fixture(scope="module")
def model():
    return make_tiny_llama()


def test_tail_nll_matches_a_single_forward_pass(model):
    ids = torch.randint(0, 512, (1, 200), generator=torch.Generator().manual_seed(0))
    disable_longheads(model)
    nll, n = tail_nll(model, ids, 48)
    with torch.no_grad():
        logits = model(ids).logits[0, -49:-1].float()  # (48, V): predictions of the last 48 tokens
    expected = torch.nn.functional.cross_entropy(logits, ids[0, -48:], reduction="sum").item()
    assert n == 48 and math.isclose(nll, expected, rel_tol=1e-4)


def test_longheads_inside_its_window_scores_like_full_attention(model):
    ids = torch.randint(0, 512, (1, 120), generator=torch.Generator().manual_seed(1))
    disable_longheads(model)
    full, _ = tail_nll(model, ids, 40)
    enable_longheads(model, LongHeadsConfig(chunk_size=16, chunks=8))  # window 128 > 120 tokens
    try:
        lh, _ = tail_nll(model, ids, 40)
        enable_longheads(model, LongHeadsConfig(chunk_size=16, chunks=4, selection="window"))  # window 64
        win, _ = tail_nll(model, ids, 40)
    finally:
        disable_longheads(model)
    # random weights barely use context, so the differences are small but far above float noise
    assert abs(lh - full) < 1e-3
    assert abs(win - full) > 1e-2  # a 64-token window does not see all 120 tokens


def test_end_points_spread_over_the_text():
    assert end_points(1000, 400, 1) == [400]
    assert end_points(1000, 400, 3) == [400, 700, 1000]
    with pytest.raises(ValueError):
        end_points(300, 400, 1)


def test_ppl_pools_tokens_over_samples():
    methods = parse_methods("full,longheads")
    trials = [dict(method="longheads", length=128, nll=10.0, tokens_scored=10),
              dict(method="longheads", length=128, nll=30.0, tokens_scored=10)]
    (full, lh) = aggregate(trials, methods, [128], {("full", 128): "skipped"})
    assert full["skipped"] and full["ppl"] is None
    assert lh["samples"] == 2 and lh["tokens_scored"] == 20 and math.isclose(lh["ppl"], math.exp(2.0), rel_tol=1e-4)

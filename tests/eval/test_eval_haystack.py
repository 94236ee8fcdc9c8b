"""The suite's shared haystack prefill (longdoc/eval/haystack.py) against the plain reference: every prompt
prefilled whole. Same answers, same log-probs (to float summation order), same hit rates; and it really reuses."""

from __future__ import annotations

import random

import pytest
import torch

from longdoc.eval.methods import parse_methods
from longdoc.eval.results import ResultsFile
from longdoc.eval.suite import parse_readers, run_suite
from longdoc.models import load_model


@pytest.fixture(scope="module")
def lm(tiny_model_dir):
    return load_model(str(tiny_model_dir))


@pytest.fixture(scope="module")
def prose():
    rng = random.Random(1)
    words = "alpha beta gamma delta river stone house garden light quiet morning paper".split()
    return " ".join(" ".join(rng.choice(words) for _ in range(8)).capitalize() + "." for _ in range(300))


def _run(lm, prose, methods, reuse):
    results = ResultsFile(None, task="suite", model="tiny", machine={}, config={})
    run_suite(lm, ["passkey", "qa"], parse_methods(methods), parse_readers("direct,reread-96-tok,reread-96-pmi,reread-96"), [240],
              5, results, prose=prose, common={"chunk_size": 16, "chunks": 4}, max_full_length=0,
              reuse_haystack=reuse)
    return {(t["task"], t["method"], t["reader"], t["trial"]): t for t in results.trials}


@pytest.mark.parametrize("methods", ["longheads", "full", "longheads[keep_previous=false]"])
def test_reused_haystack_equals_whole_prefills(lm, prose, methods):
    torch.manual_seed(0)
    fresh = _run(lm, prose, methods, reuse=False)
    shared = _run(lm, prose, methods, reuse=True)
    assert fresh.keys() == shared.keys() and fresh
    assert all(t["reused_tokens"] == 0 for t in fresh.values())
    assert sum(t["reused_tokens"] > 0 for t in shared.values()) >= 3  # it did reuse: needles at random depths
    for key, a in fresh.items():
        b = shared[key]
        assert b["reused_tokens"] < b["tokens"]
        assert a["answer"] == b["answer"], key
        assert a["gold_logprob"] == pytest.approx(b["gold_logprob"], abs=2e-3), key
        for f in ("hit_rate", "reread_tokens", "reread_chunks", "reread_hit", "correct"):
            assert a.get(f) == b.get(f), (key, f)


@pytest.mark.parametrize("methods", ["ntk", "paper"])
def test_rope_scaled_and_token_prefill_methods_never_reuse(lm, prose, methods):
    """Dynamic NTK recomputes its frequencies from each forward call's length, and per-token prefill selection
    (the paper's) keeps no block selections for a reused part: either way a reused prefix would differ."""
    shared = _run(lm, prose, methods, reuse=True)
    assert shared and all(t["reused_tokens"] == 0 for t in shared.values())


def test_readers_branch_from_the_prompt_not_from_each_other(lm, prose):
    """A reader's answer does not depend on which readers ran before it on the same prefill."""
    results = ResultsFile(None, task="suite", model="tiny", machine={}, config={})
    run_suite(lm, ["passkey"], parse_methods("longheads"), parse_readers("reread-96-tok"), [240], 4, results,
              prose=prose, common={"chunk_size": 16, "chunks": 4}, reuse_haystack=False)
    alone = {t["trial"]: t for t in results.trials}
    both = _run(lm, prose, "longheads", reuse=False)
    for i, t in alone.items():
        other = both[("passkey", "longheads", "reread-96-tok", i)]
        assert (t["answer"], t["reread_tokens"]) == (other["answer"], other["reread_tokens"])
        assert t["gold_logprob"] == pytest.approx(other["gold_logprob"], abs=1e-4)

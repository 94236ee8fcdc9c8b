"""The re-read through the document session (what `longdoc ask` does by default): the answer is exactly what the
model says to the dense prompt alone, the pooled document stays pooled, citations name the chunks read."""

from __future__ import annotations

import pytest
import torch

from longdoc.documents import Document, Span
from longdoc.engine import Engine
from longdoc.generate import SamplingParams, decode, prefill
from longdoc.longheads.config import LongHeadsConfig
from longdoc.prefix import new_cache
from longdoc.qa.session import DocumentSession

WORDS = "alpha beta gamma delta river stone house garden light quiet morning paper window table".split()


def _document(n_words: int = 600) -> Document:
    import random

    rng = random.Random(0)
    text = " ".join(rng.choice(WORDS) for _ in range(n_words)) + ". The door code is 4417. " + \
        " ".join(rng.choice(WORDS) for _ in range(200)) + "."
    return Document(text, [Span(0, len(text), "notes.txt", None, None, 1)], ["notes.txt"])


def test_reread_answer_is_the_dense_prompts_answer_and_the_document_stays_pooled(tiny_model_dir):
    engine = Engine(str(tiny_model_dir), LongHeadsConfig(chunk_size=16, chunks=8))  # a 128-token window
    session = DocumentSession(engine, _document(), reread=True, reread_tokens=128)
    params = SamplingParams(max_new_tokens=6)
    reply = session.reply("What is the door code?", params, cite=True)
    text = "".join(reply)
    plan = reply.reread
    assert plan is not None and plan.chunks and plan.ids.shape[1] <= 128
    # the same dense prompt through the bare model, fresh cache: the same tokens
    cache = new_cache(engine.model)
    logits = prefill(engine.model, cache, plan.ids)
    alone = "".join(decode(engine.model, engine.tokenizer, cache, logits, SamplingParams(max_new_tokens=6,
                                                                                         stop=params.stop)))
    assert text == alone.lstrip()
    cited = reply.citations()
    assert cited and abs(sum(s.share for s in cited) - 1) < 1e-6 and cited[0].label == "notes.txt"
    again = session.reply("What is the door code?", params)
    list(again)
    # the dense pass did not take the document's place in the pool: the next question reuses its prefill
    assert again.usage.cached_tokens >= len(reply.prompt.prefix_ids) // 16 * 16


def test_question_first_reads_the_question_after_chunk_0(tiny_model_dir):
    engine = Engine(str(tiny_model_dir), LongHeadsConfig(chunk_size=16, chunks=8))  # a 128-token window
    doc, q = _document(), "What is the door code?"
    plain = DocumentSession(engine, doc, reread=True, reread_tokens=128).reply(q, SamplingParams(max_new_tokens=3))
    list(plain)
    session = DocumentSession(engine, doc, reread=True, reread_tokens=128, reread_question_first=True)
    reply = session.reply(q, SamplingParams(max_new_tokens=3))
    text = "".join(reply)
    lead = engine.encode(q + "\n\n")
    ids = reply.reread.ids[0].tolist()
    assert ids[:16] == plain.reread.ids[0, :16].tolist() and ids[16:16 + len(lead)] == lead
    assert ids[-8:] == plain.reread.ids[0, -8:].tolist() and len(ids) <= 128  # the same question tail, in budget
    cache = new_cache(engine.model)  # the answer is the model's to that dense prompt
    alone = "".join(decode(engine.model, engine.tokenizer, cache, prefill(engine.model, cache, reply.reread.ids),
                           SamplingParams(max_new_tokens=3, stop=reply.params.stop)))
    assert text == alone.lstrip()


def test_a_question_too_long_to_read_twice_is_read_once(tiny_model_dir):
    engine = Engine(str(tiny_model_dir), LongHeadsConfig(chunk_size=16, chunks=8))  # a 128-token window
    q = "Which door code opens the red house by the river, and who keeps it? " * 4  # ~70 tokens
    session = DocumentSession(engine, _document(), reread=True, reread_question_first=True)
    reply = session.reply(q, SamplingParams(max_new_tokens=2))
    list(reply)
    once = DocumentSession(engine, _document(), reread=True, reread_question_first=False).reply(
        q, SamplingParams(max_new_tokens=2))
    list(once)
    assert reply.reread is not None and reply.reread.chunks  # re-read, with the question once (not a fallback)
    assert reply.reread.ids.tolist() == once.reread.ids.tolist()


def test_a_budget_without_room_answers_directly(tiny_model_dir):
    engine = Engine(str(tiny_model_dir), LongHeadsConfig(chunk_size=16, chunks=4))  # 64-token window
    session = DocumentSession(engine, _document(), reread=True, reread_tokens=64)
    long_question = "What is the door code? " * 12
    reply = session.reply(long_question, SamplingParams(max_new_tokens=4))
    direct = DocumentSession(engine, _document(), reread=False).reply(long_question, SamplingParams(max_new_tokens=4))
    assert "".join(reply) == "".join(direct) and reply.reread is None


def test_contrast_scores_are_the_question_mass_over_the_neutral_prompts_mass(tiny_model_dir):
    """The default re-read ("contrast") against a plain reference: prefill the document + each neutral question
    and the document + the question from scratch, contrast the masses, rank; the plan's scores must match. The
    neutral mass is computed once per document."""
    from longdoc import reread
    from longdoc.longheads.patch import longheads_rope

    calls = []
    real_mass = reread.attention_mass

    def counted(*a, **kw):
        calls.append(1)
        return real_mass(*a, **kw)

    engine = Engine(str(tiny_model_dir), LongHeadsConfig(chunk_size=16, chunks=8))
    session = DocumentSession(engine, _document(), reread=True, reread_tokens=128, reread_scores="contrast")
    reread.attention_mass = counted
    try:
        reply = session.reply("What is the door code?", SamplingParams(max_new_tokens=4))
        list(reply)
        assert len(calls) == 2  # the neutral question, then the question
        list(session.reply("Which word comes first?", SamplingParams(max_new_tokens=2)))
        assert len(calls) == 3  # the same document: its neutral mass was remembered, not recomputed
    finally:
        reread.attention_mass = real_mass
    assert reply.reread is not None and len(engine._neutral) == 1
    q0 = reply.prompt.prefix_len

    def mass(ids):
        cache = new_cache(engine.model)
        prefill(engine.model, cache, torch.tensor([ids[:q0]]), exact_from=q0)
        prefill(engine.model, cache, torch.tensor([ids[q0:]]), exact_from=len(ids) - engine.config.exact_tail)
        return reread.attention_mass(cache, longheads_rope(engine.model), engine.config, q0)

    neutral = torch.stack([mass(ids) for ids in session.neutral_prompts()]).mean(dim=0)
    want = reread.peaked_votes(reread.contrast(mass(reply.prompt.ids), neutral))
    got = reply.reread.scores
    assert torch.allclose(got[1 : len(want)], want[1:], rtol=1e-4, atol=1e-9)
    from longdoc.errors import ConfigError

    other = [9, 9, 9] + reply.prompt.ids[3:]
    with pytest.raises(ConfigError, match="neutral prompt"):
        list(engine.reread_stream(reply.prompt.ids, SamplingParams(max_new_tokens=1), prefix_len=q0,
                                  question_start=q0, budget=128, scores="contrast", neutral_prompts=[other]))
    with pytest.raises(ConfigError, match="order"):
        list(engine.reread_stream(reply.prompt.ids, SamplingParams(max_new_tokens=1), prefix_len=q0,
                                  question_start=q0, budget=128, order="random"))


def test_default_budget_is_half_the_window_with_room_for_a_chunk(tiny_model_dir):
    from longdoc.qa.session import REREAD_SHARE

    engine = Engine(str(tiny_model_dir), LongHeadsConfig(chunk_size=16, chunks=16))  # a 256-token window
    session = DocumentSession(engine, _document(), reread=True)
    reply = session.reply("What is the door code?", SamplingParams(max_new_tokens=2))
    list(reply)
    assert reply.reread is not None and reply.reread.ids.shape[1] <= int(256 * REREAD_SHARE)
    long_q = "What is the door code of the red house by the river? " * 8  # a tail longer than half the window
    budget = session.reread_budget(session.prompt(long_q))
    tail = len(session.prompt(long_q).ids) - session.prompt(long_q).prefix_len // 16 * 16
    assert budget == min(256, 2 * 16 + tail)


def test_a_reread_that_falls_back_still_cites(tiny_model_dir):
    engine = Engine(str(tiny_model_dir), LongHeadsConfig(chunk_size=16, chunks=4))  # 64-token window
    session = DocumentSession(engine, _document(), reread=True, reread_tokens=40)  # no room for a chunk
    reply = session.reply("What is the door code?", SamplingParams(max_new_tokens=3), cite=True)
    list(reply)
    assert reply.reread is None and reply.citations()


def test_a_question_with_undecodable_bytes_is_read_first_as_its_replacement(tiny_model_dir):
    """A command-line question that is not valid UTF-8 arrives with surrogate escapes; the lead the re-read reads
    first is the same text as the prompt's question, with U+FFFD for the bad byte (not a tokenizer error)."""
    engine = Engine(str(tiny_model_dir), LongHeadsConfig(chunk_size=16, chunks=8))
    session = DocumentSession(engine, _document(), reread=True, reread_tokens=128, reread_question_first=True)
    reply = session.reply("Caf\udce9 door code?", SamplingParams(max_new_tokens=2))
    list(reply)
    lead = engine.encode("Caf\ufffd door code?\n\n")
    assert reply.reread is not None and reply.reread.ids[0, 16:16 + len(lead)].tolist() == lead


def test_peak_spans_read_each_chunk_where_the_question_looks_and_cite_the_chunk(tiny_model_dir):
    engine = Engine(str(tiny_model_dir), LongHeadsConfig(chunk_size=16, chunks=8))
    doc, q = _document(), "What is the door code?"
    chunk = DocumentSession(engine, doc, reread=True, reread_tokens=128, reread_peak=False,
                            reread_question_first=False).reply(q, SamplingParams(max_new_tokens=2))
    list(chunk)
    peak = DocumentSession(engine, doc, reread=True, reread_tokens=128, reread_peak=True,
                           reread_question_first=False).reply(q, SamplingParams(max_new_tokens=2))
    list(peak)
    assert chunk.reread.spans == [(c * 16, (c + 1) * 16) for c in chunk.reread.chunks]
    assert peak.reread.chunks == chunk.reread.chunks  # the same chunks chosen (and cited) ...
    for c, (a, b) in zip(peak.reread.chunks, peak.reread.spans):  # ... each read within half a chunk of itself
        assert b - a == 16 and abs(a - c * 16) <= 8
    prompt = peak.prompt.ids
    read = [t for a, b in peak.reread.spans for t in prompt[a:b]]
    assert peak.reread.ids[0].tolist()[16:16 + len(read)] == read  # chunk 0, then the spans, then the tail
    assert peak.reread.ids.shape == chunk.reread.ids.shape

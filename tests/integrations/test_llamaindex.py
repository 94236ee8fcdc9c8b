"""LlamaIndex classes on the tiny model: the LLM (metadata, complete/chat, streaming, async, usage in raw),
the whole-document query engine, the reader, and the SummaryIndex recipe answering a 100k-token document in
exactly one LLM call."""

from __future__ import annotations

import asyncio

import pytest
from llama_index.core import Document, Settings, SummaryIndex
from llama_index.core.callbacks import CallbackManager, TokenCountingHandler
from llama_index.core.llms import ChatMessage, MockLLM

from longdoc.errors import TooLongError
from longdoc.integrations.llamaindex import LongDocLLM, LongDocReader, WholeDocumentQueryEngine, use_longdoc

USER = [ChatMessage(role="user", content="Tell me about the inventory.")]


@pytest.fixture
def llm(tiny_params):
    return LongDocLLM(**tiny_params, max_tokens=10)


@pytest.fixture
def settings():
    """LlamaIndex's global Settings, restored after the test."""
    saved = {k: getattr(Settings, k) for k in ("_llm", "_prompt_helper", "_chat_prompt_helper", "_tokenizer",
                                                "_callback_manager", "_node_parser")}
    yield Settings
    for k, v in saved.items():
        setattr(Settings, k, v)


def test_metadata_is_honest(llm):
    meta = llm.metadata
    assert meta.context_window == llm.engine.max_input_tokens
    assert meta.num_output == 10 and meta.is_chat_model and not meta.is_function_calling_model
    assert meta.model_name == llm.engine.name


def test_complete_chat_and_streams_agree(llm):
    done = llm.complete("Tell me about the inventory.")
    assert done.raw["completion_tokens"] == 10 and done.raw["finish_reason"] == "length"
    # complete() wraps the prompt as a user turn: the same tokens as chat() with that one message
    assert llm.chat(USER).message.content == done.text
    assert done.raw["prompt_tokens"] == len(llm.chat_prompt_ids(USER))
    parts = list(llm.stream_complete("Tell me about the inventory."))
    assert [p.text for p in parts[:-1]] == [p.text for p in parts[:-1]] and parts[-1].text == done.text
    assert all(p.raw is None for p in parts[:-1]) and parts[-1].raw["completion_tokens"] == 10
    deltas = [p.delta for p in llm.stream_chat(USER)]
    assert "".join(deltas) == done.text and len([d for d in deltas if d]) >= 3
    raw = llm.complete("Tell me about the inventory.", formatted=True)
    assert raw.raw["prompt_tokens"] == len(llm.engine.encode("Tell me about the inventory."))


def test_stream_yields_before_the_answer_is_complete(llm):
    """Each streamed response is handed over while the engine still has tokens to generate."""
    seen = []
    for r in llm.stream_complete("Tell me about the inventory."):
        seen.append((r.delta, r.raw))
    assert [raw for _, raw in seen[:-1]] == [None] * (len(seen) - 1)  # usage only arrives at the very end
    texts = [d for d, _ in seen if d]
    assert len(texts) >= 3


def test_async_paths(llm):
    want = llm.chat(USER).message.content

    async def main():
        a = await llm.achat(USER)
        b = await llm.acomplete("Tell me about the inventory.")
        gen = await llm.astream_chat(USER)
        deltas = [r.delta async for r in gen]
        gen2 = await llm.astream_complete("Tell me about the inventory.")
        last = [r async for r in gen2][-1]
        return a, b, deltas, last

    a, b, deltas, last = asyncio.run(main())
    assert a.message.content == b.text == "".join(deltas) == last.text == want
    assert a.raw["completion_tokens"] == 10 and last.raw["completion_tokens"] == 10


def test_stop_and_options(llm):
    full = llm.complete("Tell me about the inventory.").text
    stop = full[len(full) // 2 : len(full) // 2 + 3]
    cut = full[: full.find(stop)]
    assert llm.complete("Tell me about the inventory.", stop=[stop]).text == cut
    assert "".join(r.delta for r in llm.stream_complete("Tell me about the inventory.", stop=[stop])) == cut
    assert llm.complete("Tell me about the inventory.", max_tokens=3).raw["completion_tokens"] == 3


def test_repetition_options_reach_the_engine(llm, tiny_params):
    from longdoc.generate import SamplingParams

    q = "the the the the"  # the tiny model's greedy answer repeats a token
    ids = llm.engine.chat_ids([{"role": "user", "content": q}], add_generation_prompt=True)
    want = "".join(llm.engine.stream(ids, SamplingParams(max_new_tokens=48, repetition_penalty=1.5)))
    assert want != llm.complete(q, max_tokens=48).text
    assert llm.complete(q, max_tokens=48, repetition_penalty=1.5).text == want
    assert LongDocLLM(**tiny_params, max_tokens=48, repetition_penalty=1.5).complete(q).text == want


def test_whole_document_engine_one_call_and_reuse(llm, long_text):
    doc = Document(text=long_text, metadata={"file_name": "inventory.pdf", "page_label": "2"})
    engine = WholeDocumentQueryEngine.from_documents([doc], llm=llm)
    assert "[inventory.pdf p. 2]" in engine.document_text()
    llm.engine.clear_prefixes()
    first = engine.query("Which colour is item 7?")
    second = engine.query("How many boxes are green?")
    assert first.metadata["usage"]["prompt_tokens"] > len(llm.engine.encode(long_text))  # all of it, in one prompt
    assert first.metadata["usage"]["cached_tokens"] == 0
    assert second.metadata["usage"]["cached_tokens"] >= len(llm.engine.encode(long_text)) - 16
    assert [n.node.node_id for n in second.source_nodes] == [doc.doc_id]
    third = asyncio.run(engine.aquery("Which colour is item 9?"))
    assert third.metadata["usage"]["cached_tokens"] > 0


def test_whole_document_over_the_reach_is_an_error(tiny_params, long_text):
    engine = WholeDocumentQueryEngine.from_documents([Document(text=long_text)],
                                                     llm=LongDocLLM(**tiny_params, max_input_tokens=300))
    with pytest.raises(TooLongError, match="at most 300"):
        engine.query("How many boxes?")


def test_reader_metadata(three_page_pdf):
    docs = LongDocReader().load_data(three_page_pdf)
    assert [d.metadata["page_label"] for d in docs] == ["1", "2", "3"]
    assert {d.metadata["file_name"] for d in docs} == {"facts.pdf"}
    assert "code Z3" in docs[2].text


def test_summary_index_answers_100k_tokens_in_one_call(tiny_model_dir, settings):
    # window 256 = the tiny model's trained length: large chunks keep this 100k-token prefill to seconds
    llm = LongDocLLM(model=str(tiny_model_dir), chunk_size=64, chunks=4, max_tokens=4)
    text = " ".join(f"Record {i}: sensor {i % 97} read {i * 7 % 1000} units." for i in range(5700))
    n_tokens = len(llm.engine.encode(text))
    assert 100_000 <= n_tokens < llm.engine.max_input_tokens

    settings.llm = MockLLM()  # what a user had before: a 3,900-token window...
    assert settings.prompt_helper.context_window == 3900  # ...which the prompt helper caches
    settings.llm = llm
    assert settings.prompt_helper.context_window == 3900  # the trap: still the old window
    use_longdoc(llm)
    assert settings.prompt_helper.context_window == llm.engine.max_input_tokens

    counter = TokenCountingHandler(tokenizer=llm.engine.encode)
    settings.callback_manager = CallbackManager([counter])
    index = SummaryIndex.from_documents([Document(text=text)])
    assert len(index.index_struct.nodes) > 50  # LlamaIndex still splits into nodes at indexing...
    response = index.as_query_engine(response_mode="compact", llm=llm).query("Which sensor read 7 units?")
    assert len(counter.llm_token_counts) == 1  # ...but sends them all in one call
    assert counter.llm_token_counts[0].prompt_token_count >= n_tokens
    call = counter.llm_token_counts[0]
    answer = response.response.strip()
    assert answer and call.completion.endswith(answer)  # the answer is that one call's completion ("assistant: ...")

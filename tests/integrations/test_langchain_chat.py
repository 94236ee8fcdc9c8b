"""ChatLongDoc / LongDocLLM behaviour on the tiny model: streaming order, usage, stop strings, sampling options,
async, prefix reuse, limits, token counting, cache keys, the shared engine and the document loader."""

from __future__ import annotations

import asyncio
import threading

import pytest
from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langchain_core.messages import HumanMessage

from longdoc.errors import TooLongError
from longdoc.integrations.langchain import ChatLongDoc, LongDocLLM, LongDocLoader

Q = [HumanMessage(content="Tell me about the inventory.")]


class Recorder(BaseCallbackHandler):
    def __init__(self, events):
        self.events = events

    def on_llm_new_token(self, token, **kw):
        if token:  # the closing chunk (usage, finish reason) carries no text
            self.events.append(("token", token))

    def on_llm_end(self, response, **kw):
        self.events.append(("end", None))


def _greedy(chat, messages=Q, **kw) -> str:
    return chat.invoke(messages, **kw).content


# -- streaming -----------------------------------------------------------------------------------------------
def test_stream_hands_over_each_token_before_generating_the_next(chat):
    events = []
    for chunk in chat.stream(Q, config={"callbacks": [Recorder(events)]}):
        if chunk.content:
            events.append(("received", chunk.content))
    tokens = [e for e in events if e[0] == "token"]
    assert len(tokens) >= 3
    # the consumer saw piece k before the model produced piece k+1, and everything before the end
    assert [k for k, _ in events[: 2 * len(tokens)]] == ["token", "received"] * len(tokens)
    assert events[-1] == ("end", None)
    assert "".join(t for _, t in tokens) == _greedy(chat)


def test_invoke_with_streaming_handler_fires_tokens_before_end(tiny_params):
    events = []
    chat = ChatLongDoc(**tiny_params, max_tokens=6, streaming=True)
    msg = chat.invoke(Q, config={"callbacks": [Recorder(events)]})
    assert [k for k, _ in events] == ["token"] * (len(events) - 1) + ["end"]
    assert "".join(t for k, t in events if k == "token") == msg.content


def test_astream_does_not_block_the_event_loop(chat):
    """The engine is held busy (its lock taken) while astream starts: the loop must keep running meanwhile."""
    events = []

    async def consume():
        async for chunk in chat.astream(Q):
            events.append("chunk")

    async def main():
        lock = chat.engine._lock  # holding it makes the generation wait, like a long prefill would
        lock.acquire()
        safety = threading.Timer(30, lock.release)  # a blocking implementation would hang the loop: fail instead
        safety.start()
        task = asyncio.create_task(consume())
        for _ in range(20):
            await asyncio.sleep(0)
        events.append("loop ran")
        if safety.is_alive():
            safety.cancel()
            lock.release()
        await task

    asyncio.run(main())
    assert events[0] == "loop ran" and events.count("chunk") >= 2


def test_astream_matches_stream_and_reports_tokens_first(chat):
    class ARecorder(AsyncCallbackHandler):
        async def on_llm_new_token(self, token, **kw):
            if token:
                events.append(("token", token))

        async def on_llm_end(self, response, **kw):
            events.append(("end", None))

    events = []

    async def main():
        return [c async for c in chat.astream(Q, config={"callbacks": [ARecorder()]})]

    chunks = asyncio.run(main())
    assert "".join(c.content for c in chunks) == _greedy(chat)
    assert chunks[-1].chunk_position == "last" and chunks[-1].usage_metadata["output_tokens"] == 12
    assert events[-1] == ("end", None) and len(events) > 2
    assert asyncio.run(chat.ainvoke(Q)).content == _greedy(chat)


# -- usage and metadata --------------------------------------------------------------------------------------
def test_usage_and_response_metadata(chat):
    msg = chat.invoke(Q)
    n_prompt = len(chat.prompt_ids(Q))
    assert n_prompt == chat.get_num_tokens_from_messages(Q)
    assert msg.usage_metadata["input_tokens"] == n_prompt
    assert msg.usage_metadata["output_tokens"] == 12  # random weights never say eos this early here
    assert msg.usage_metadata["total_tokens"] == n_prompt + 12
    assert msg.response_metadata["finish_reason"] == "length"
    assert msg.response_metadata["model_name"] == chat.engine.name
    streamed = None
    for c in chat.stream(Q):
        streamed = c if streamed is None else streamed + c
    assert streamed.usage_metadata["input_tokens"] == n_prompt
    assert streamed.usage_metadata["output_tokens"] == 12
    assert streamed.response_metadata["finish_reason"] == "length"


def test_max_tokens_per_call_and_bound(chat):
    assert chat.invoke(Q, max_tokens=3).usage_metadata["output_tokens"] == 3
    assert chat.bind(max_tokens=5).invoke(Q).usage_metadata["output_tokens"] == 5


# -- stop strings --------------------------------------------------------------------------------------------
def _stop_in(text: str) -> str:
    """A stop string that first occurs in the middle of `text`."""
    for start in range(len(text) // 3, len(text) - 3):
        s = text[start : start + 3]
        if s.strip() and text.find(s) == start:
            return s
    raise AssertionError(f"no stop string found in {text!r}")


def test_stop_strings_on_every_path(chat, tiny_params):
    full = _greedy(chat)
    stop = _stop_in(full)
    want = full[: full.find(stop)]
    assert chat.invoke(Q, stop=[stop]).content == want
    assert chat.invoke(Q, stop=[stop]).response_metadata["finish_reason"] == "stop"
    assert "".join(c.content for c in chat.stream(Q, stop=[stop])) == want
    assert asyncio.run(chat.ainvoke(Q, stop=[stop])).content == want

    async def astream():
        return "".join([c.content async for c in chat.astream(Q, stop=[stop])])

    assert asyncio.run(astream()) == want
    assert chat.bind(stop=[stop]).invoke(Q).content == want
    assert ChatLongDoc(**tiny_params, max_tokens=12, stop=[stop]).invoke(Q).content == want

    llm = LongDocLLM(**tiny_params, max_tokens=12)
    raw = llm.invoke("The inventory")
    s2 = _stop_in(raw)
    assert llm.invoke("The inventory", stop=[s2]) == raw[: raw.find(s2)]
    assert "".join(llm.stream("The inventory", stop=[s2])) == raw[: raw.find(s2)]


def test_repetition_options_reach_the_engine(chat, tiny_params):
    """repetition_penalty / stop_on_repeat as fields and per call give the engine's answer with those
    SamplingParams (longdoc/repetition.py); the penalty changes the greedy answer."""
    from longdoc.generate import SamplingParams

    q = [HumanMessage(content="the the the the")]  # the tiny model's greedy answer repeats a token
    ids = chat.engine.chat_ids([{"role": "user", "content": q[0].content}], add_generation_prompt=True)
    want = "".join(chat.engine.stream(ids, SamplingParams(max_new_tokens=48, repetition_penalty=1.5)))
    assert want != _greedy(chat, q, max_tokens=48)
    assert ChatLongDoc(**tiny_params, repetition_penalty=1.5).invoke(q, max_tokens=48).content == want
    assert _greedy(chat, q, max_tokens=48, repetition_penalty=1.5) == want
    loose = SamplingParams(max_new_tokens=48, stop_on_repeat=False)
    assert _greedy(chat, q, max_tokens=48, stop_on_repeat=False) == "".join(chat.engine.stream(ids, loose))


def test_temperature_seed_top_p(chat):
    a = chat.invoke(Q, temperature=1.0, seed=7).content
    assert chat.invoke(Q, temperature=1.0, seed=7).content == a
    others = {chat.invoke(Q, temperature=1.0, seed=s).content for s in range(1, 4)}
    assert len(others | {a}) > 1  # sampling really samples
    assert chat.invoke(Q, temperature=1.0, top_p=1e-6, seed=3).content == _greedy(chat)  # top_p -> greedy


# -- prefix reuse --------------------------------------------------------------------------------------------
def test_second_question_reuses_the_document(tiny_params, long_text):
    chat = ChatLongDoc(**tiny_params, max_tokens=4).with_document(text=long_text)
    chat.engine.clear_prefixes()
    first = chat.invoke("Which colour is item 7?")
    second = chat.invoke("How many boxes are green?")
    doc_tokens = len(chat.engine.encode(long_text))
    assert first.usage_metadata["input_token_details"]["cache_read"] == 0
    cached = second.usage_metadata["input_token_details"]["cache_read"]
    assert doc_tokens - 16 <= cached < second.usage_metadata["input_tokens"]  # the document (to a chunk), not the question
    assert second.usage_metadata["input_tokens"] == len(chat.prompt_ids([HumanMessage("How many boxes are green?")]))


def test_document_messages_recipe_answers_as_a_system_turn_and_reuses_the_document(tiny_params, long_text):
    """The round-1 public recipe `chat.invoke(chat.document_messages(doc, q))` (regressions c09/c14 call it)."""
    from langchain_core.messages import SystemMessage

    chat = ChatLongDoc(**tiny_params, max_tokens=4)
    chat.engine.clear_prefixes()
    msgs = chat.document_messages(long_text, "Which colour is item 7?")
    assert [type(m) for m in msgs] == [SystemMessage, HumanMessage] and msgs[0].content == long_text
    first = chat.invoke(msgs)
    assert first.content == chat.invoke([("system", long_text), ("user", "Which colour is item 7?")]).content
    second = chat.invoke(chat.document_messages(long_text, "How many boxes are green?"))
    cfg = chat.engine.config  # a plain chat prompt marks no document boundary: the first prompt's per-token tail
    # (its last exact_tail tokens, to a chunk) was grouped otherwise and is prefilled again (longdoc/prefix.py)
    doc = len(chat.engine.encode(long_text))
    assert doc - cfg.exact_tail - cfg.chunk_size <= second.usage_metadata["input_token_details"]["cache_read"] <= doc


def test_a_conversation_about_the_document_sees_earlier_turns_and_reuses_the_document(tiny_params, long_text):
    from langchain_core.messages import AIMessage

    chat = ChatLongDoc(**tiny_params, max_tokens=4).with_document(text=long_text)
    chat.engine.clear_prefixes()
    first = chat.invoke("Which colour is item 7?")
    turns = [HumanMessage("Which colour is item 7?"), AIMessage(first.content), HumanMessage("And item 8?")]
    follow_up = chat.invoke(turns)
    text = chat.engine.tokenizer.decode(chat.prompt_ids(turns))
    assert "Which colour is item 7?" in text and first.content.strip() in text and text.count(long_text[:40]) == 1
    assert follow_up.usage_metadata["input_token_details"]["cache_read"] >= len(chat.engine.encode(long_text)) - 16


def test_ingest_goes_through_the_store(tiny_params, long_text):
    chat = ChatLongDoc(**tiny_params, max_tokens=4)
    chat.engine.clear_prefixes()
    assert chat.ingest(text=long_text).reused is False
    chat.engine.clear_prefixes()  # a new process: only the disk store has it
    again = chat.ingest(text=long_text)
    assert again.reused is True
    msg = chat.with_document(text=long_text).invoke("Which colour is item 7?")
    assert msg.usage_metadata["input_token_details"]["cache_read"] == again.tokens


# -- limits, tokens, identity --------------------------------------------------------------------------------
def test_prompt_over_the_reach_is_an_error(tiny_params, long_text):
    chat = ChatLongDoc(**tiny_params, max_input_tokens=200)
    assert chat.profile["max_input_tokens"] == 200 == chat.engine.max_input_tokens
    with pytest.raises(TooLongError, match="at most 200"):
        chat.invoke(long_text)
    with pytest.raises(TooLongError):
        list(chat.stream(long_text))
    with pytest.raises(TooLongError):
        asyncio.run(chat.ainvoke(long_text))


def test_token_counting_uses_the_models_tokenizer(chat):
    text = "LongHeads reads whole documents."
    assert chat.get_token_ids(text) == chat.engine.tokenizer(text, add_special_tokens=False).input_ids
    assert chat.get_num_tokens(text) == len(chat.get_token_ids(text))


def test_one_engine_per_model_and_settings(tiny_params):
    a, b = ChatLongDoc(**tiny_params), ChatLongDoc(**tiny_params, temperature=0.5)
    llm = LongDocLLM(**tiny_params)
    assert a.engine is b.engine is llm.engine
    other = ChatLongDoc(**{**tiny_params, "chunks": 8})
    assert other.engine is not a.engine and other.engine.config.chunks == 8
    assert ChatLongDoc(engine=a.engine).engine is a.engine


def test_cache_keys_change_with_every_setting(tiny_params):
    base = ChatLongDoc(**tiny_params)._get_llm_string()
    for change in ({"chunks": 8}, {"temperature": 0.5}, {"top_p": 0.9}, {"seed": 1}, {"max_tokens": 7},
                   {"stop": ["x"]}, {"max_input_tokens": 500}, {"repetition_penalty": 1.3}, {"stop_on_repeat": False}):
        assert ChatLongDoc(**{**tiny_params, **change})._get_llm_string() != base, change


def test_text_only(chat):
    from longdoc.errors import InputError

    image = HumanMessage(content=[{"type": "text", "text": "what is it?"},
                                  {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}])
    with pytest.raises(InputError, match="text only"):
        chat.invoke([image])


# -- loader --------------------------------------------------------------------------------------------------
def test_loader_pages_and_single(three_page_pdf, tmp_path):
    docs = LongDocLoader(str(three_page_pdf)).load()
    assert [d.metadata["page"] for d in docs] == [0, 1, 2]
    assert all(d.metadata["source"] == str(three_page_pdf) for d in docs)
    assert "code Z2" in docs[1].page_content and "code Z2" not in docs[0].page_content
    notes = tmp_path / "notes.txt"
    notes.write_text("line one\nline two\n")
    both = LongDocLoader([str(three_page_pdf), str(notes)]).load()
    assert both[-1].metadata == {"source": str(notes), "format": "text", "encoding": "utf-8"}
    assert both[-1].page_content.rstrip() == "line one\nline two"
    (single,) = LongDocLoader([str(three_page_pdf), str(notes)], mode="single").load()
    assert "code Z3" in single.page_content and "line two" in single.page_content

"""The real server on a loopback port, asked about a document by the real clients: the `openai` package (sync,
async, streaming), LangChain's ChatOpenAI and LlamaIndex's OpenAILike. The second request about the same
document reports the reused prefill in usage.prompt_tokens_details.cached_tokens (tiny model, greedy)."""

from __future__ import annotations

import asyncio

import pytest
from serve_helpers import DOC

Q1, Q2 = "Which crate is on line 3?", "Which crate is on line 9?"


def ask(doc_first_messages, question):
    return [*doc_first_messages, {"role": "user", "content": question}]


def test_openai_sync_second_request_reuses_the_document(base_url, model_id):
    from openai import OpenAI

    client = OpenAI(base_url=base_url + "/v1", api_key="unused", max_retries=0)
    assert [m.id for m in client.models.list().data] == [model_id]
    layout = [{"role": "system", "content": "Answer from the document."}, {"role": "user", "content": DOC}]
    first = client.chat.completions.create(model=model_id, messages=ask(layout, Q1), max_tokens=6, temperature=0)
    second = client.chat.completions.create(model=model_id, messages=ask(layout, Q2), max_tokens=6, temperature=0)
    assert first.choices[0].message.content and first.choices[0].finish_reason in ("stop", "length")
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert first.usage.completion_tokens <= 6
    doc_tokens = len(second.usage.model_dump()) and second.usage.prompt_tokens_details.cached_tokens
    assert doc_tokens >= 0.9 * first.usage.prompt_tokens, (first.usage, second.usage)
    # the document in the user's own message, before the question: the same reuse
    third = client.chat.completions.create(model=model_id, messages=[{"role": "user", "content": DOC + "\n\n" + Q1}],
                                           max_tokens=4, temperature=0)
    fourth = client.chat.completions.create(model=model_id, messages=[{"role": "user", "content": DOC + "\n\n" + Q2}],
                                            max_tokens=4, temperature=0)
    assert fourth.usage.prompt_tokens_details.cached_tokens >= 0.9 * third.usage.prompt_tokens
    # completions: same rule on a raw prompt
    c1 = client.completions.create(model=model_id, prompt=DOC + "\n\nThe crate on line 3 is", max_tokens=4, temperature=0)
    c2 = client.completions.create(model=model_id, prompt=DOC + "\n\nThe crate on line 9 is", max_tokens=4, temperature=0)
    assert c1.choices[0].text and c2.usage.prompt_tokens_details.cached_tokens >= 0.9 * c1.usage.prompt_tokens


def test_openai_streaming_matches_non_streaming_and_reports_usage(base_url, model_id):
    from openai import OpenAI

    client = OpenAI(base_url=base_url + "/v1", api_key="unused", max_retries=0)
    messages = [{"role": "user", "content": DOC}, {"role": "user", "content": Q1}]
    whole = client.chat.completions.create(model=model_id, messages=messages, max_tokens=8, temperature=0)
    stream = client.chat.completions.create(model=model_id, messages=messages, max_tokens=8, temperature=0,
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) >= 2  # really streamed
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens_details.cached_tokens > 0
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == [whole.choices[0].finish_reason]


def test_decoding_extensions_in_extra_body(base_url, model_id, tiny_engine):
    """repetition_penalty / ignore_eos / stop_on_repeat (vLLM's way: in the body) reach the engine: the answer is
    the engine's own with those SamplingParams, and the penalty changes it."""
    from openai import OpenAI

    from longdoc.generate import SamplingParams

    client = OpenAI(base_url=base_url + "/v1", api_key="unused", max_retries=0)
    messages = [{"role": "user", "content": "the the the the"}]  # the tiny model's greedy answer repeats a token
    extra = {"repetition_penalty": 1.5, "ignore_eos": True, "stop_on_repeat": False}
    plain = client.chat.completions.create(model=model_id, messages=messages, max_tokens=48, temperature=0)
    penalised = client.chat.completions.create(model=model_id, messages=messages, max_tokens=48, temperature=0,
                                               extra_body=extra)
    assert penalised.usage.completion_tokens == 48 and penalised.choices[0].finish_reason == "length"
    assert penalised.choices[0].message.content != plain.choices[0].message.content
    ids = tiny_engine.chat_ids(messages, add_generation_prompt=True)
    params = SamplingParams(max_new_tokens=48, repetition_penalty=1.5, ignore_eos=True, stop_on_repeat=False)
    assert "".join(tiny_engine.stream(ids, params)) == penalised.choices[0].message.content


def test_openai_async_client(base_url, model_id):
    from openai import AsyncOpenAI

    async def main():
        async with AsyncOpenAI(base_url=base_url + "/v1", api_key="unused", max_retries=0) as client:
            messages = [{"role": "system", "content": DOC}, {"role": "user", "content": Q1}]
            a = await client.chat.completions.create(model=model_id, messages=messages, max_tokens=5, temperature=0)
            pieces = []
            stream = await client.chat.completions.create(model=model_id, messages=messages[:1] + [
                {"role": "user", "content": Q2}], max_tokens=5, temperature=0, stream=True,
                stream_options={"include_usage": True})
            usage = None
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    pieces.append(chunk.choices[0].delta.content)
                usage = chunk.usage or usage
            return a, "".join(pieces), usage

    a, text, usage = asyncio.run(main())
    assert a.choices[0].message.content and text
    assert a.usage.prompt_tokens_details.cached_tokens == 0
    assert usage.prompt_tokens_details.cached_tokens >= 0.9 * a.usage.prompt_tokens


def test_langchain_chat_openai(base_url, model_id):
    from langchain_core.messages import HumanMessage, SystemMessage
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(base_url=base_url + "/v1", api_key="unused", model=model_id, temperature=0, max_tokens=6,
                      max_retries=0, stream_usage=True)
    first = chat.invoke([SystemMessage(DOC), HumanMessage(Q1)])
    second = chat.invoke([SystemMessage(DOC), HumanMessage(Q2)])
    assert first.content and second.content
    assert first.usage_metadata["input_token_details"]["cache_read"] == 0
    assert second.usage_metadata["input_token_details"]["cache_read"] >= 0.9 * first.usage_metadata["input_tokens"]
    streamed = list(chat.stream([SystemMessage(DOC), HumanMessage(Q1)]))
    assert "".join(c.content for c in streamed) == first.content


def test_llamaindex_openai_like(base_url, model_id):
    from llama_index.core.llms import ChatMessage
    from llama_index.llms.openai_like import OpenAILike

    llm = OpenAILike(model=model_id, api_base=base_url + "/v1", api_key="unused", is_chat_model=True,
                     context_window=4096, max_tokens=6, temperature=0, max_retries=0)
    r1 = llm.chat([ChatMessage(role="system", content=DOC), ChatMessage(role="user", content=Q1)])
    r2 = llm.chat([ChatMessage(role="system", content=DOC), ChatMessage(role="user", content=Q2)])
    assert r1.message.content and r2.message.content
    usage1, usage2 = r1.raw.usage, r2.raw.usage
    assert usage1.prompt_tokens_details.cached_tokens == 0
    assert usage2.prompt_tokens_details.cached_tokens >= 0.9 * usage1.prompt_tokens
    streamed = "".join(r.delta for r in llm.stream_chat([ChatMessage(role="system", content=DOC),
                                                         ChatMessage(role="user", content=Q1)]))
    assert streamed == r1.message.content
    completion = OpenAILike(model=model_id, api_base=base_url + "/v1", api_key="unused", is_chat_model=False,
                            max_tokens=4, temperature=0, max_retries=0).complete(DOC + "\n\nThe crate on line 3 is")
    assert completion.text


def test_an_uploaded_document_is_referred_to_by_id_and_cited(base_url, model_id, tmp_path):
    """POST /v1/longdoc/documents once; later requests send only the id (extra_body or a file content part)."""
    import httpx
    from openai import OpenAI
    from pdf_fixtures import make_pdf, zorbia_pages

    pdf = make_pdf(tmp_path / "zorbia.pdf", zorbia_pages(4))
    up = httpx.post(base_url + "/v1/longdoc/documents", files=[("files", ("zorbia.pdf", pdf.read_bytes()))],
                    timeout=120)
    assert up.status_code == 200, up.text
    info = up.json()
    assert info["id"].startswith("doc-") and info["sources"] == ["zorbia.pdf"] and info["ingest"]["stored"]
    client = OpenAI(base_url=base_url + "/v1", api_key="unused", max_retries=0)
    r = client.chat.completions.create(model=model_id, messages=[{"role": "user", "content": "What is the capital?"}],
                                       max_tokens=6, temperature=0, extra_body={"document": info["id"], "cite": True})
    assert r.usage.prompt_tokens_details.cached_tokens >= info["tokens"] - 1  # prefilled at upload
    extra = r.model_extra
    assert extra["citations"] and all(c["source"].startswith("zorbia.pdf p. ") and c["text"] for c in extra["citations"])
    figure = httpx.get(base_url + extra["longdoc"]["figure"], timeout=120)
    assert figure.status_code == 200 and figure.content[:8] == b"\x89PNG\r\n\x1a\n"
    part = client.chat.completions.create(model=model_id, max_tokens=6, temperature=0, messages=[
        {"role": "user", "content": [{"type": "file", "file": {"file_id": info["id"]}},
                                     {"type": "text", "text": "What is the capital?"}]}])
    assert part.choices[0].message.content == r.choices[0].message.content
    # uploading the same file again gives the same id, already stored
    again = httpx.post(base_url + "/v1/longdoc/documents", files=[("files", ("zorbia.pdf", pdf.read_bytes()))],
                       timeout=120).json()
    assert again["id"] == info["id"] and (again["ingest"]["pooled"] or again["ingest"]["loaded"])

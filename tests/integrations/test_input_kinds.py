"""The LangChain and LlamaIndex classes the way notebooks and web servers call them (tiny model, real base
classes): abandoned streams, empty prompts, templates that restrict system turns, loaders that skip files,
context-window metadata."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import warnings

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from llama_index.core.llms import ChatMessage

from longdoc.errors import ConfigError, InputError, SkippedFilesWarning
from longdoc.integrations.langchain import ChatLongDoc, LongDocLoader
from longdoc.integrations.langchain import LongDocLLM as LCLLM
from longdoc.integrations.llamaindex import LongDocLLM, LongDocReader, WholeDocumentQueryEngine

from restricted_templates import restricted_copy  # noqa: E402

GUARD_S = 120
Q = [HumanMessage(content="Tell me about the inventory.")]


def in_thread(fn):
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("v", fn()), daemon=True)
    t.start()
    t.join(GUARD_S)
    assert not t.is_alive(), "the call never finished: the engine is still held"
    return out["v"]


# -- abandoned streams ---------------------------------------------------------------------------------------
def test_langchain_streams_abandoned_every_way_leave_the_engine_free(chat):
    expected = chat.invoke(Q).content
    kept = chat.stream(Q)
    next(kept)  # notebook: peek, keep the iterator
    assert chat.invoke(Q).content == expected  # same thread
    assert in_thread(lambda: chat.invoke(Q).content) == expected  # web server: another request's thread
    for chunk in chat.stream(Q):
        break  # a broken for-loop

    async def abandon_async():
        agen = chat.astream(Q)
        async for _ in agen:
            break
        await agen.aclose()
        return (await asyncio.wait_for(chat.ainvoke(Q), GUARD_S)).content

    assert in_thread(lambda: asyncio.run(abandon_async())) == expected


def test_llamaindex_streams_abandoned_leave_the_engine_free(tiny_params):
    llm = LongDocLLM(**tiny_params, max_tokens=8)
    expected = llm.complete("Say hi.").text
    kept = llm.stream_complete("Count to five.")
    next(kept)
    assert in_thread(lambda: llm.complete("Say hi.").text) == expected

    async def abandon_async():
        gen = await llm.astream_chat([ChatMessage(role="user", content="Count to five.")])
        async for _ in gen:
            break
        await gen.aclose()
        return (await asyncio.wait_for(llm.acomplete("Say hi."), GUARD_S)).text

    assert in_thread(lambda: asyncio.run(abandon_async())) == expected


# -- empty and degenerate prompts -----------------------------------------------------------------------------
def test_empty_prompts_through_every_entry_point_raise_one_clear_error(chat, tiny_params):
    raw = LCLLM(**tiny_params, max_tokens=4)
    li = LongDocLLM(**tiny_params, max_tokens=4)
    cases = [
        (lambda: raw.invoke(""), InputError, "The prompt is empty"),
        (lambda: raw.invoke("   "), InputError, "The prompt is empty or only whitespace"),
        (lambda: chat.invoke([]), InputError, "There are no messages"),
        (lambda: chat.invoke(""), InputError, "Every message is empty"),
        (lambda: li.complete("", formatted=True), InputError, "The prompt is empty"),
        (lambda: li.complete(" \n"), InputError, "Every message is empty"),
        (lambda: li.chat([]), InputError, "There are no messages"),
        (lambda: chat.invoke("Hi", max_tokens=0), ConfigError, "max_tokens=0 asks for no answer"),
    ]
    expected = chat.invoke(Q).content
    for call, error, fragment in cases:
        with pytest.raises(error, match=fragment):
            call()
        assert chat.invoke(Q).content == expected  # the same shared engine answers after every refusal
    assert chat.batch([]) == []
    assert li.chat([ChatMessage(role="system", content="Doc: the sky is green.")]).message.content is not None


# -- chat templates that restrict system turns ----------------------------------------------------------------
@pytest.fixture(params=["nosys", "onesys"])
def restricted_model(request, tiny_model_dir, tmp_path_factory):
    return str(restricted_copy(tiny_model_dir, tmp_path_factory.mktemp(request.param) / "model", request.param))


def test_system_turns_on_templates_that_restrict_them(restricted_model):
    from jinja2.exceptions import TemplateError

    doc, q = "The capital of Zorbia is Quenta.", "What is the capital of Zorbia?"
    chat = ChatLongDoc(model=restricted_model, chunk_size=16, chunks=4, max_tokens=3)
    with pytest.raises(TemplateError):  # the template really refuses what the recipes send
        chat.engine.tokenizer.apply_chat_template([{"role": "user", "content": q}, {"role": "system", "content": doc}],
                                                  tokenize=False)
    on_doc = chat.with_document(text=doc)  # the document session's frame, a system line from the messages
    assert isinstance(on_doc.invoke([("system", "Answer briefly."), ("user", q)]).content, str)
    assert isinstance(chat.invoke([("system", "Answer briefly."), ("system", doc), ("user", q)]).content, str)
    llm = LongDocLLM(model=restricted_model, chunk_size=16, chunks=4, max_tokens=3)
    from llama_index.core import Document

    assert isinstance(str(WholeDocumentQueryEngine.from_documents([Document(text=doc)], llm=llm).query(q)), str)
    # the document still comes first: a second question reuses its prefill
    ids1 = on_doc.prompt_ids([SystemMessage("Answer briefly."), HumanMessage(q)])
    ids2 = on_doc.prompt_ids([SystemMessage("Answer briefly."), HumanMessage("Who is the mayor?")])
    assert chat.engine.encode(doc)[0] in ids1 and ids1[: len(ids1) // 2] == ids2[: len(ids1) // 2]


def test_the_fallback_order_merges_then_folds_system_turns():
    from longdoc.chat_template import variants

    msgs = [{"role": "system", "content": "A"}, {"role": "system", "content": "DOC"}, {"role": "user", "content": "Q"}]
    assert variants(msgs) == [
        msgs,
        [{"role": "system", "content": "A\n\nDOC"}, {"role": "user", "content": "Q"}],
        [{"role": "user", "content": "A\n\nDOC\n\nQ"}],
    ]
    assert variants([{"role": "user", "content": "Q"}]) == [[{"role": "user", "content": "Q"}]]


# -- loaders: every file arrives, or the caller is told -------------------------------------------------------
@pytest.fixture
def project(tmp_path):
    from reportlab.pdfgen import canvas

    d = tmp_path / "project"
    d.mkdir()
    (d / "notes.md").write_text("Release 2.3 ships on 4 May.\n")
    c = canvas.Canvas(str(d / "spec.pdf"))
    c.drawString(72, 770, "Spec: the API limit is 50 requests per minute.")
    c.showPage()
    c.save()
    (d / "build.log").write_bytes("build 812 failed: missing key\r\n".encode("utf-16"))
    (d / "prices.csv").write_bytes("item;price\ncaf\xe9;3,50 \x80\n".encode("latin-1"))
    (d / "blob.bin").write_bytes(b"\x00\x01\x02" * 10)
    (d / "etc").symlink_to("/etc", target_is_directory=True)
    with open(os.path.join(os.fsencode(d), b"r\xe9sum\xe9.txt"), "w") as f:
        f.write("The deploy key rotates every 30 days.\n")
    return d


ARRIVE = ["build.log", "notes.md", "prices.csv", "r\\xe9sum\\xe9.txt", "spec.pdf"]


def test_langchain_loader_reads_every_format_and_warns_about_the_rest(project):
    with pytest.warns(SkippedFilesWarning, match=r"LongDocLoader skipped 2 input\(s\): .*blob.bin: binary"):
        docs = LongDocLoader(str(project)).load()
    assert [os.path.basename(d.metadata["source"]) for d in docs] == ARRIVE
    by_name = {os.path.basename(d.metadata["source"]): d for d in docs}
    assert by_name["build.log"].metadata["encoding"] == "utf-16-le"
    assert by_name["prices.csv"].metadata["encoding"] == "cp1252" and "3,50 €" in by_name["prices.csv"].page_content
    assert by_name["spec.pdf"].metadata["page"] == 0
    assert all(len(d.metadata["skipped"]) == 2 for d in docs)
    json.dumps([d.metadata for d in docs])  # metadata a vector store can serialise (no surrogates)
    with pytest.warns(SkippedFilesWarning):
        [single] = LongDocLoader(str(project), mode="single").load()
    assert any("etc: symlink to /etc" in s for s in single.metadata["skipped"])


def test_llamaindex_reader_reads_every_format_and_warns_about_the_rest(project):
    with pytest.warns(SkippedFilesWarning, match="LongDocReader skipped 2 input"):
        docs = LongDocReader().load_data(str(project))
    assert [d.metadata["file_name"] for d in docs] == ARRIVE
    log = next(d for d in docs if d.metadata["file_name"] == "build.log")
    assert log.metadata["encoding"] == "utf-16-le" and "skipped" in log.metadata
    assert "skipped" not in log.get_content(metadata_mode="llm")  # the note is for the caller, not the prompt


def test_a_clean_folder_loads_without_warnings(tmp_path):
    (tmp_path / "a.txt").write_text("alpha\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        docs = LongDocLoader(str(tmp_path)).load()
    assert "skipped" not in docs[0].metadata


def test_sections_of_converted_files_reach_loader_metadata(tmp_path):
    from pptx import Presentation

    p = Presentation()
    for title in ("Kickoff", "Budget"):
        s = p.slides.add_slide(p.slide_layouts[1])
        s.shapes.title.text = title
    p.save(tmp_path / "deck.pptx")
    docs = LongDocLoader(str(tmp_path / "deck.pptx")).load()
    assert [(d.metadata["section"], d.metadata["format"]) for d in docs] == [("slide 1", "pptx"), ("slide 2", "pptx")]


def test_query_engine_from_paths_warns_about_skips_and_cites_sections(project, tmp_path, tiny_params):
    from pptx import Presentation

    from longdoc.qa.citations import source_label

    llm = LongDocLLM(**tiny_params, max_tokens=4)
    with pytest.warns(SkippedFilesWarning, match=r"from_paths skipped 2 input\(s\): .*blob.bin: binary"):
        WholeDocumentQueryEngine.from_paths(str(project), llm=llm)
    p = Presentation()
    for title, body in (("Kickoff", "The kickoff is in Quenta on 4 May. " * 4), ("Budget", "The budget is 40k. " * 6)):
        s = p.slides.add_slide(p.slide_layouts[1])
        s.shapes.title.text, s.placeholders[1].text = title, body
    p.save(tmp_path / "deck.pptx")
    engine = WholeDocumentQueryEngine.from_paths(str(tmp_path / "deck.pptx"), llm=llm)
    assert [n.metadata["section"] for n in engine.documents] == ["slide 1", "slide 2"]
    document = engine._longdoc_document()
    labels = {source_label(document, span) for span in document.spans}
    assert labels == {f"{tmp_path / 'deck.pptx'} slide {i}" for i in (1, 2)}
    response = engine.query("What is the budget?")
    assert response.source_nodes  # every cited slide found its node (labels with sections, not only pages)
    assert {n.node.metadata["section"] for n in response.source_nodes} <= {"slide 1", "slide 2"}


# -- context-window metadata ------------------------------------------------------------------------------------
def test_reach_is_a_property_of_model_and_settings_not_of_free_memory(tiny_model_dir, monkeypatch):
    import longdoc.memory
    from longdoc import LongHeadsConfig
    from longdoc.engine import Engine
    from longdoc.errors import TooLongError

    reaches = []
    for available in (64 * 1024, 64 * 2**30):
        monkeypatch.setattr(longdoc.memory, "available_memory", lambda a=available: a)
        engine = Engine(str(tiny_model_dir), LongHeadsConfig(chunk_size=16, chunks=4))
        reaches.append(engine.max_input_tokens)
    assert reaches == [131_072, 131_072]
    monkeypatch.setattr(longdoc.memory, "available_memory", lambda: 64 * 1024)
    with pytest.raises(TooLongError, match="keys and values need"):  # memory is checked per prompt instead
        engine.check_length(10_000)

"""One document-QA path: `longdoc ask`, ChatLongDoc and WholeDocumentQueryEngine give the same answer, byte for
byte, and cite the same pages with the same shares, for the same PDF and question (tiny model, greedy)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from pdf_fixtures import make_pdf, zorbia_pages

TINY = {"chunk_size": 16, "chunks": 4}  # a 64-token window: the 5-page PDF is many windows long
QUESTION = "What is the capital of Zorbia?"
MAX_TOKENS = 8


@pytest.fixture
def pdf(tmp_path, monkeypatch):
    monkeypatch.setenv("LONGDOC_CACHE_DIR", str(tmp_path / "cache"))
    return make_pdf(tmp_path / "zorbia.pdf", zorbia_pages(5))


def cli_answer(model_dir, pdf, *extra) -> dict:
    from longdoc.cli.main import cli

    args = ["ask", str(pdf), QUESTION, "-m", str(model_dir), "--chunk-size", "16", "--chunks", "4", "--json",
            "--cite", "--max-tokens", str(MAX_TOKENS), *extra]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_cli_langchain_and_llamaindex_give_the_same_answer_and_citations(tiny_model_dir, pdf):
    from longdoc.integrations.langchain import ChatLongDoc
    from longdoc.integrations.llamaindex import LongDocLLM, WholeDocumentQueryEngine

    cli = cli_answer(tiny_model_dir, pdf)
    chat = ChatLongDoc(model=str(tiny_model_dir), **TINY, max_tokens=MAX_TOKENS).with_document(str(pdf), cite=True)
    chat.engine.clear_prefixes()  # shared with other tests: start from a cold pool, as the CLI did
    message = chat.invoke(QUESTION)
    engine = WholeDocumentQueryEngine.from_paths(str(pdf), llm=LongDocLLM(model=str(tiny_model_dir), **TINY,
                                                                          max_tokens=MAX_TOKENS))
    response = engine.query(QUESTION)  # a warm pool now (the shared engine): the reuse must not change a byte

    assert cli["answer"] and cli["answer"] == message.content == response.response
    pages = [c for c in cli["citations"] if " p. " in c["source"]]
    assert pages, cli["citations"]
    assert message.response_metadata["citations"] == cli["citations"] == response.metadata["citations"]
    cited = [(n.node.metadata["page_label"], round(n.score, 4)) for n in response.source_nodes]
    assert cited == [(c["source"].rsplit(" p. ", 1)[1], c["share"]) for c in pages]


def test_a_stored_cli_ingest_is_what_chatlongdoc_reads(tiny_model_dir, pdf):
    """One store key scheme: `longdoc ingest` stores the prefix that ChatLongDoc(store=True) then loads."""
    from longdoc.cli.main import cli
    from longdoc.integrations.langchain import ChatLongDoc

    result = CliRunner().invoke(cli, ["ingest", str(pdf), "-m", str(tiny_model_dir), "--chunk-size", "16",
                                      "--chunks", "4"], catch_exceptions=False)
    assert result.exit_code == 0 and result.stdout.startswith("Stored "), result.output
    chat = ChatLongDoc(model=str(tiny_model_dir), **TINY, max_tokens=MAX_TOKENS)
    chat.engine.clear_prefixes()
    ingest = chat.with_document(str(pdf)).ingest()
    assert ingest.reused is True and ingest.prefilled == 0

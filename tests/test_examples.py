"""The examples run (on the tiny model, a short generated report) and report what they claim: the LlamaIndex
example counts the real LLM calls its SummaryIndex makes (LlamaIndex's own TokenCountingHandler), the LangChain
example reuses the document's prefill for its second question."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def examples_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))


def test_llamaindex_example_reports_its_llm_calls(examples_path, tiny_model_dir, capsys):
    from llama_index.core import Settings

    import llamaindex_whole_pdf

    before = Settings.callback_manager
    try:
        assert llamaindex_whole_pdf.main(["-m", str(tiny_model_dir), "--tokens", "400"]) == 0
    finally:
        Settings.callback_manager = before
    out = capsys.readouterr().out
    calls = re.search(r"-> (\d+) LLM call\(s\), ([\d,]+) prompt tokens", out)
    assert calls, out
    assert int(calls.group(1)) == 1 and int(calls.group(2).replace(",", "")) > 100  # one real call, the whole report


def test_langchain_example_reuses_the_prefill(examples_path, tiny_model_dir, capsys):
    import langchain_whole_pdf

    assert langchain_whole_pdf.main(["-m", str(tiny_model_dir), "--tokens", "400"]) == 0
    out = capsys.readouterr().out
    reused = [int(x.replace(",", "")) for x in re.findall(r"([\d,]+) reused", out)]
    assert len(reused) == 2 and reused[0] == 0 and reused[1] > 100, out

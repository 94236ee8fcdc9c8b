"""Fixtures for the LangChain / LlamaIndex tests: settings for the tiny model, a small PDF."""

from __future__ import annotations

import pytest

TINY = {"chunk_size": 16, "chunks": 4}  # window 64 on the tiny model trained to 256 tokens


@pytest.fixture(scope="session")
def tiny_params(tiny_model_dir) -> dict:
    """Constructor arguments for ChatLongDoc / LongDocLLM on the tiny random-weight model."""
    return {"model": str(tiny_model_dir), **TINY}


@pytest.fixture
def chat(tiny_params):
    from longdoc.integrations.langchain import ChatLongDoc

    return ChatLongDoc(**tiny_params, max_tokens=12)


@pytest.fixture
def long_text() -> str:
    """~1,000 tokens of distinct sentences: many LongHeads chunks on the tiny model."""
    return " ".join(f"Item {i} of the inventory is a {c} box." for i, c in
                    zip(range(120), ["red", "green", "blue", "black"] * 30))


@pytest.fixture
def three_page_pdf(tmp_path):
    """A 3-page PDF; page k says `Page k fact: code Zk`."""
    from reportlab.pdfgen import canvas

    path = tmp_path / "facts.pdf"
    c = canvas.Canvas(str(path), invariant=1)
    for k in (1, 2, 3):
        c.drawString(72, 720, f"Page {k} fact: code Z{k}.")
        c.showPage()
    c.save()
    return path

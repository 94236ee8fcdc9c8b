"""`WholeDocumentQueryEngine`: the whole document, in one call, through the document session.

Instead of an index that splits, embeds and retrieves, the query engine asks the document session
(longdoc/qa/session.py) — the path `longdoc ask` takes: the same frame, the same stored ingest and, for the same
document and question, the same answer. A second question reuses the prefilled document. With `cite=True`
(the default) the response's `source_nodes` are the pages / files the heads read most while answering, scored
by their share (metadata `page_label`, `file_name`).

    from longdoc.integrations.llamaindex import WholeDocumentQueryEngine
    engine = WholeDocumentQueryEngine.from_paths("report.pdf")      # or .from_documents(docs, llm=LongDocLLM(...))
    response = engine.query("Which section talks about pricing?")
    [(n.node.metadata["page_label"], n.score) for n in response.source_nodes]
"""

from __future__ import annotations

from typing import Any, Sequence

from llama_index.core.base.response.schema import Response
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.query_engine import CustomQueryEngine
from llama_index.core.schema import Document, NodeWithScore

from longdoc.integrations._documents import parts, report_skipped
from longdoc.integrations._shared import aiter_in_thread, document_reply, sampling, usage_dict

__all__ = ["WholeDocumentQueryEngine"]


class WholeDocumentQueryEngine(CustomQueryEngine):
    """Answers every query from all the documents, whole, in one call: no splitting, no retrieval.

    `metadata["usage"]` has the token counts (`cached_tokens`: prompt tokens reused), `metadata["citations"]`
    the cited pages with their shares.
    """

    llm: Any = Field(description="a LongDocLLM (its engine reads the whole document)")
    documents: list[Document] = Field(default_factory=list)
    system_prompt: str | None = Field(default=None, description="a system line (part of the stored ingest's key)")
    prompt_format: str = Field(default="chat", description="the frame (longdoc/qa/prompting.py)")
    cite: bool = Field(default=True, description="source_nodes = the pages the heads read most, with shares")
    store: bool = Field(default=False, description="keep the prefilled document in the CLI's ingest store")

    _document: Any = PrivateAttr(default=None)  # the longdoc Document the session reads
    _by_label: dict = PrivateAttr(default_factory=dict)  # citation label -> LlamaIndex document

    @classmethod
    def from_documents(cls, documents: Sequence[Document], llm=None, **kwargs) -> "WholeDocumentQueryEngine":
        """From LlamaIndex documents (e.g. LongDocReader's): they are joined in order, each headed by its file
        name and page label, into one document."""
        from longdoc.integrations.llamaindex.llms import LongDocLLM

        engine = cls(llm=llm or LongDocLLM(), documents=list(documents), **kwargs)
        engine._document, engine._by_label = _joined(engine.documents)
        return engine

    @classmethod
    def from_paths(cls, paths, llm=None, *, password: str | None = None, follow_links: bool = False,
                   **kwargs) -> "WholeDocumentQueryEngine":
        """From files (PDF, Office, HTML, text, directories) read by longdoc's loaders: exactly the document
        `longdoc ask` reads, so the same question gets the same answer. Skipped inputs: a SkippedFilesWarning."""
        from longdoc.documents import load
        from longdoc.integrations.llamaindex.llms import LongDocLLM

        document = load(paths, password=password, follow_links=follow_links)
        report_skipped(document, "WholeDocumentQueryEngine.from_paths")
        nodes, by_label = [], {}
        for part in parts(document):
            meta = {"file_name": part.source.rsplit("/", 1)[-1], "file_path": part.source}
            if part.page is not None:
                meta["page_label"] = part.page_label
            if part.section is not None:
                meta["section"] = part.section
            node = Document(text=part.text, metadata=meta)
            nodes.append(node)
            by_label[_label(part.source, part.page, part.page_label, part.section)] = node
        engine = cls(llm=llm or LongDocLLM(), documents=nodes, **kwargs)
        engine._document, engine._by_label = document, by_label
        return engine

    def document_text(self) -> str:
        return self._longdoc_document().text

    def _longdoc_document(self):
        if self._document is None:  # built with the constructor rather than from_documents
            self._document, self._by_label = _joined(self.documents)
        return self._document

    def _reply(self, query_str: str):
        llm = self.llm
        if not hasattr(llm, "engine"):
            from longdoc.errors import ConfigError

            raise ConfigError("WholeDocumentQueryEngine reads the whole document with a LongDocLLM: pass llm=LongDocLLM(...).")
        params = llm._params({})
        turns = ([("system", self.system_prompt)] if self.system_prompt else []) + [("user", query_str)]
        return document_reply(llm.engine, self._longdoc_document(), turns, params, fmt=self.prompt_format,
                              store=self.store, cite=self.cite)

    def custom_query(self, query_str: str) -> Response:
        reply = self._reply(query_str)
        text = "".join(reply)
        return self._response(text, reply)

    async def acustom_query(self, query_str: str) -> Response:
        reply = self._reply(query_str)
        text = "".join([piece async for piece in aiter_in_thread(lambda: iter(reply))])
        return self._response(text, reply)

    def _response(self, text: str, reply) -> Response:
        from longdoc.qa.citations import citation_dicts

        found = reply.citations() or []
        cited = [NodeWithScore(node=self._by_label[s.label], score=s.share) for s in found if s.label in self._by_label]
        metadata = {"usage": usage_dict(reply.usage)}
        if self.cite:
            metadata["citations"] = citation_dicts(found)
        nodes = cited or [NodeWithScore(node=d, score=None) for d in self.documents]
        return Response(response=text, source_nodes=nodes, metadata=metadata)


def _label(source: str, page: int | None, page_label: str | None, section: str | None = None) -> str:
    """The citation label of a page, section or file (citations.source_label / Document.label: "report.pdf p. 3",
    "deck.pptx slide 2", else the file)."""
    if section is not None:
        return f"{source} {section}"
    return f"{source} p. {page_label or page}" if page is not None else source


def _joined(documents: list[Document]):
    """(longdoc Document, label -> LlamaIndex document): the documents joined by blank lines, each headed by
    `[file p. label]` when it has them, with a span per document so citations name it."""
    from longdoc.documents import Document as LongdocDocument, Span

    text, spans, sources, by_label = "", [], [], {}
    for i, d in enumerate(documents):
        source = d.metadata.get("file_path") or d.metadata.get("file_name") or f"document {i + 1}"
        label = d.metadata.get("page_label")
        head = " ".join(str(x) for x in (d.metadata.get("file_name"), f"p. {label}" if label else None) if x)
        if text:
            text += "\n\n"
        if head:
            text += f"[{head}]\n"
        page = i + 1 if label else None
        spans.append(Span(len(text), len(text) + len(d.text), source, page, str(label) if label else None, None))
        text += d.text
        if source not in sources:
            sources.append(source)
        by_label[_label(source, page, str(label) if label else None)] = d
    return LongdocDocument(text, spans, sources), by_label

"""`LongDocReader`: LlamaIndex documents from longdoc's loaders (PDF pages, text files, directories)."""

from __future__ import annotations

import os
from typing import Any, Iterator

from llama_index.core.readers.base import BaseReader
from llama_index.core.schema import Document

from longdoc.integrations._documents import parts, report_skipped, source_metadata

__all__ = ["LongDocReader"]


class LongDocReader(BaseReader):
    """LlamaIndex documents from longdoc's loaders: one per PDF page (`file_name`, `file_path`, `page_label`,
    as LlamaIndex's own PDF reader names them) and one per text file."""

    def lazy_load_data(self, paths, password: str | None = None, follow_links: bool = False,
                       **_: Any) -> Iterator[Document]:
        """Documents with metadata `file_name`, `file_path` (+ `page_label` for PDFs, `section` for slides,
        sheets, headings; `format`, `encoding`); skipped inputs are named in a SkippedFilesWarning and listed in
        every document's `skipped` metadata (kept out of the text the LLM and embeddings see)."""
        from longdoc.documents import load

        paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        doc = load([os.fspath(p) for p in paths], password=password, follow_links=follow_links)
        skipped = report_skipped(doc, "LongDocReader")
        for part in parts(doc):
            meta = {"file_name": os.path.basename(part.source), "file_path": part.source,
                    **source_metadata(doc, part.source)}
            if part.page is not None:
                meta["page_label"] = part.page_label
            if part.section is not None:
                meta["section"] = part.section
            if skipped:
                meta["skipped"] = skipped
            hidden = [k for k in ("skipped", "format", "encoding", "ocr") if k in meta]
            yield Document(text=part.text, metadata=meta, excluded_llm_metadata_keys=hidden,
                           excluded_embed_metadata_keys=hidden)

"""`LongDocReader`: LlamaIndex documents from longdoc's loaders (PDF pages, text files, directories)."""

from __future__ import annotations

import os
from typing import Any, Iterator

from llama_index.core.readers.base import BaseReader
from llama_index.core.schema import Document

from longdoc.integrations._shared import source_pieces

__all__ = ["LongDocReader"]


class LongDocReader(BaseReader):
    """LlamaIndex documents from longdoc's loaders: one per PDF page (`file_name`, `file_path`, `page_label`,
    as LlamaIndex's own PDF reader names them) and one per text file."""

    def lazy_load_data(self, paths, password: str | None = None, **_: Any) -> Iterator[Document]:
        from longdoc.documents import load

        paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        doc = load([os.fspath(p) for p in paths], password=password)
        for source, page, label, text in source_pieces(doc):
            meta = {"file_name": os.path.basename(source), "file_path": source}
            if page is not None:
                meta["page_label"] = label
            yield Document(text=text, metadata=meta)

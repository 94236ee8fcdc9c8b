"""`LongDocLoader`: LangChain documents from longdoc's loaders (PDF, text, directories, standard input)."""

from __future__ import annotations

from typing import Any, Iterator, Sequence

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document as LCDocument

from longdoc.integrations._shared import source_pieces

__all__ = ["LongDocLoader"]


class LongDocLoader(BaseLoader):
    """LangChain documents from longdoc's loaders (PDF, text, directories, "-" for stdin).

    mode="page": one Document per PDF page (metadata `source`, `page` 0-based as LangChain's PDF loaders use,
    `page_label`) and one per text file (`source`). mode="single": one Document holding the whole prompt text,
    framed with file names when there are several files, which is what you give ChatLongDoc.
    """

    def __init__(self, paths, *, mode: str = "page", password: str | None = None):
        if mode not in ("page", "single"):
            raise ValueError(f"mode={mode!r}: use 'page' or 'single'")
        self.paths = [paths] if isinstance(paths, str) or not isinstance(paths, Sequence) else list(paths)
        self.mode, self.password = mode, password

    def lazy_load(self) -> Iterator[LCDocument]:
        from longdoc.documents import load

        doc = load(self.paths, password=self.password)
        if self.mode == "single":
            yield LCDocument(page_content=doc.text, metadata={"source": ", ".join(doc.sources),
                                                              "sources": list(doc.sources)})
            return
        for source, page, label, text in source_pieces(doc):
            meta: dict[str, Any] = {"source": source}
            if page is not None:
                meta.update(page=page - 1, page_label=label)
            yield LCDocument(page_content=text, metadata=meta)

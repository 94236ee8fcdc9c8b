"""`LongDocLoader`: LangChain documents from longdoc's loaders (PDF, Office, HTML, EPUB, notebooks, text, directories,
standard input)."""

from __future__ import annotations

from typing import Any, Iterator, Sequence

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document as LCDocument

from longdoc.integrations._documents import parts, report_skipped, source_metadata

__all__ = ["LongDocLoader"]


class LongDocLoader(BaseLoader):
    """LangChain documents from longdoc's loaders (PDF, text, directories, "-" for stdin).

    mode="page": one Document per PDF page (metadata `source`, `page` 0-based as LangChain's PDF loaders use,
    `page_label`) and one per text file (`source`). mode="single": one Document holding the whole prompt text,
    framed with file names when there are several files, which is what you give ChatLongDoc.
    """

    def __init__(self, paths, *, mode: str = "page", password: str | None = None, follow_links: bool = False):
        if mode not in ("page", "single"):
            raise ValueError(f"mode={mode!r}: use 'page' or 'single'")
        self.paths = [paths] if isinstance(paths, str) or not isinstance(paths, Sequence) else list(paths)
        self.mode, self.password, self.follow_links = mode, password, follow_links

    def lazy_load(self) -> Iterator[LCDocument]:
        """Documents with metadata `source` (+ `page`, `page_label` for PDFs; `section` for slides, sheets,
        headings; `format`, `encoding`); inputs that were skipped are named in a SkippedFilesWarning and listed
        in every document's `skipped` metadata ("path: reason")."""
        from longdoc.documents import load

        doc = load(self.paths, password=self.password, follow_links=self.follow_links)
        skipped = report_skipped(doc, "LongDocLoader")
        extra = {"skipped": skipped} if skipped else {}
        if self.mode == "single":
            yield LCDocument(page_content=doc.text, metadata={"source": ", ".join(doc.sources),
                                                              "sources": list(doc.sources), **extra})
            return
        for part in parts(doc):
            meta: dict[str, Any] = {"source": part.source, **source_metadata(doc, part.source)}
            if part.page is not None:
                meta.update(page=part.page - 1, page_label=part.page_label)
            if part.section is not None:
                meta["section"] = part.section
            yield LCDocument(page_content=part.text, metadata={**meta, **extra})

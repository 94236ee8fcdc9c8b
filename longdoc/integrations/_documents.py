"""What the LangChain and LlamaIndex loaders share: one part per PDF page / converted section / text file, the
metadata that says where it came from (encoding, format, section), and the report of skipped files (a
`SkippedFilesWarning` plus a `skipped` metadata entry), so a loader never drops a file silently."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Iterator

from longdoc.errors import SkippedFilesWarning

SHOWN = 10  # skipped files named in the warning (metadata lists all)


@dataclass
class Part:
    source: str
    page: int | None  # 1-based PDF page
    page_label: str | None
    section: str | None  # "slide 3", "sheet Prices", "§ Results", "cell 4"
    text: str


def parts(doc) -> Iterator[Part]:
    """One Part per PDF page, per section of a converted file, and per text file of a longdoc `Document`."""
    groups: dict[tuple, list] = {}
    for span in doc.spans:  # sorted: lines of one file group together, pages and sections stay apart
        groups.setdefault((span.source, span.page, span.section), []).append(span)
    for (source, page, section), spans in groups.items():
        label = (spans[0].page_label or str(page)) if page is not None else None
        yield Part(source, page, label, section, doc.text[spans[0].start : spans[-1].end])


def source_metadata(doc, source: str) -> dict:
    """{"format", "encoding", "ocr"} of `source`, where known."""
    info = doc.source_info.get(source, {})
    return {k: info[k] for k in ("format", "encoding", "ocr") if k in info}


def report_skipped(doc, loader: str) -> list[str]:
    """Warn (a SkippedFilesWarning: shown once per call site, capturable) about every skipped input; returns them as
    "path: reason" strings for the documents' metadata."""
    skipped = [f"{path}: {reason}" for path, reason in doc.skipped]
    if skipped:
        more = f"; and {len(skipped) - SHOWN} more" if len(skipped) > SHOWN else ""
        message = f"{loader} skipped {len(skipped)} input(s): " + "; ".join(skipped[:SHOWN]) + more
        warnings.warn(message, SkippedFilesWarning, stacklevel=3)
    return skipped

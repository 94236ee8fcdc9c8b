"""The loaded document: one prompt text plus a map from every character back to its source.

`SourceFile` is what a loader (pdf.py, text.py) produces for one input: its display name and its
pieces (one per PDF page, or one for a whole text file). `merge` concatenates several of them into a
`Document`, framing each with its path when asked (see framing.py), and records a `Span` per PDF page
or per text line so an offset in the prompt maps back to "report.pdf p. 3" or "src/a.py:120".
"""

from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass, field

from . import framing


@dataclass(frozen=True, slots=True)
class Span:
    """One contiguous piece of the document text and where it came from."""

    start: int  # char offset in Document.text (inclusive)
    end: int  # char offset (exclusive)
    source: str  # file path as the user gave it, or "<stdin>"
    page: int | None  # 1-based PDF page number; None for non-PDF
    page_label: str | None  # the PDF's page label (e.g. "iv"), else str(page); None for non-PDF
    line: int | None  # 1-based first line number for text files; None for PDF
    section: str | None = None  # a converted file's part: "slide 3", "sheet Prices", "§ Results", "chapter 2"


@dataclass
class Document:
    """The prompt text, its spans (sorted, non-overlapping), its sources and what a walk skipped."""

    text: str
    spans: list[Span]
    sources: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    source_info: dict[str, dict] = field(default_factory=dict)  # per source: {"format", "encoding", ...}
    _starts: list[int] = field(default_factory=list, init=False, repr=False, compare=False)

    def content_hash(self) -> str:
        """sha256 hex digest of the text (stable across runs and machines)."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def locate(self, char_offset: int) -> Span | None:
        """The span holding `char_offset`, or None (framing text, separators, out of range)."""
        if len(self._starts) != len(self.spans):
            self._starts = [s.start for s in self.spans]
        i = bisect.bisect_right(self._starts, char_offset) - 1
        if i >= 0 and self.spans[i].start <= char_offset < self.spans[i].end:
            return self.spans[i]
        return None

    def label(self, span: Span) -> str:
        """A human label for a span: "report.pdf p. 3", "deck.pptx slide 2", "src/a.py:120", or the source."""
        if span.section is not None:
            return f"{span.source} {span.section}"
        if span.page is not None:
            return f"{span.source} p. {span.page_label or span.page}"
        if span.line is not None:
            return f"{span.source}:{span.line}"
        return span.source


@dataclass(frozen=True)
class Piece:
    """Part of one source: a PDF page (page set), a converted file's section (section set: a slide, a sheet, a
    heading's section) or a whole text body (line set to its first line)."""

    text: str
    page: int | None = None
    page_label: str | None = None
    line: int | None = None
    section: str | None = None


@dataclass
class SourceFile:
    """One loaded input: its display name and its pieces, joined by `separator` in the prompt."""

    name: str
    pieces: list[Piece]
    separator: str = ""
    skipped: list[tuple[str, str]] = field(default_factory=list)  # e.g. PDF pages that failed
    info: dict = field(default_factory=dict)  # {"format": "pdf" | "text" | "docx" ..., "encoding": ...}


def merge(files: list[SourceFile], *, framed: bool, skipped: list[tuple[str, str]] | None = None) -> Document:
    """Concatenate `files` into one Document, framing each with its path when `framed`."""
    parts: list[str] = []
    spans: list[Span] = []
    pos = 0

    def emit(text: str) -> None:
        nonlocal pos
        parts.append(text)
        pos += len(text)

    for f in files:
        body_pieces = f.pieces
        if framed:
            emit(framing.header(f.name))
            body_pieces = _rstrip_last(f.pieces)
        for k, piece in enumerate(body_pieces):
            if k:
                emit(f.separator)
            if piece.section is not None:
                if piece.text:
                    spans.append(Span(pos, pos + len(piece.text), f.name, piece.page, piece.page_label, None,
                                      piece.section))
            elif piece.page is not None:
                if piece.text:
                    spans.append(Span(pos, pos + len(piece.text), f.name, piece.page, piece.page_label, None))
            else:
                spans.extend(_line_spans(piece.text, pos, f.name, piece.line or 1))
            emit(piece.text)
        if framed:
            emit(framing.FOOTER)
    all_skipped = list(skipped or []) + [s for f in files for s in f.skipped]
    info = {f.name: dict(f.info) for f in files}
    return Document("".join(parts), spans, [f.name for f in files], all_skipped, info)


def _line_spans(text: str, pos: int, source: str, first_line: int) -> list[Span]:
    """One span per line of `text` (each including its newline), starting at offset `pos`."""
    spans = []
    start, line = 0, first_line
    while start < len(text):
        nl = text.find("\n", start)
        end = len(text) if nl < 0 else nl + 1
        spans.append(Span(pos + start, pos + end, source, None, None, line))
        start, line = end, line + 1
    return spans


def _rstrip_last(pieces: list[Piece]) -> list[Piece]:
    """Drop trailing newlines of the last piece so the footer's blank line is the only one."""
    if not pieces:
        return pieces
    last = pieces[-1]
    return [*pieces[:-1], Piece(last.text.rstrip("\n"), last.page, last.page_label, last.line, last.section)]

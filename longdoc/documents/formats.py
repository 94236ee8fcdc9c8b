"""Which reader a file goes to: PDF (by name or `%PDF-` header), a converted format (by extension:
convert.py), a refused format (old binary Office files...), else text decoded by evidence (decoding.py)."""

from __future__ import annotations

from ..errors import InputError
from . import convert, pdf
from .decoding import NotTextError
from .document import SourceFile
from .text import decoded_source


def read_source(data: bytes, name: str, password: str | None = None) -> SourceFile:
    """A SourceFile from the bytes of one input called `name` (display name); InputError when unreadable."""
    if not data:
        raise NotTextError(f"{name} is empty; pass a file with some text in it", "empty")
    if pdf.is_pdf(name, data[:64]):
        return pdf.read_pdf(data, name, password)
    fmt = convert.format_of(name)
    if fmt is not None:
        return convert.convert(data, name, fmt)
    why = convert.unsupported_reason(name)
    if why is not None:
        raise NotTextError(f"{name} is {why}", why.split(":")[0])
    return decoded_source(name, data)


def is_document(name: str) -> bool:
    """A file read as a document (PDF, Office, EPUB...) rather than as text: it gets the larger size limit."""
    return name.lower().endswith(".pdf") or convert.format_of(name) is not None


def skip_reason(error: InputError, display: str) -> str:
    """The short reason a directory walk records for a file it could not read."""
    reason = getattr(error, "reason", None)
    if reason:
        return reason
    text = " ".join(str(error).split())
    if text.startswith(display):
        text = text[len(display):].strip(" :;,")
    return text or type(error).__name__

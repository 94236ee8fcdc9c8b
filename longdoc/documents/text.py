"""Text files and standard input: decode UTF-8, reject empty and binary data.

`decode` turns bytes into prompt text (BOM dropped, CRLF turned into LF) or raises a `NotTextError`
(an `InputError`) whose one-line message names the input and whose `reason` is the short form a
directory walk records in `Document.skipped`.
"""

from __future__ import annotations

import sys

from ..errors import InputError
from .document import Piece, SourceFile

BINARY_SNIFF_BYTES = 8192
STDIN_NAME = "<stdin>"


class NotTextError(InputError):
    """Bytes that are not usable text; `reason` is a short form ("binary", "empty", ...)."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def decode(data: bytes, name: str) -> str:
    """UTF-8 text of `data` (a file called `name`), or NotTextError saying what is wrong."""
    if not data:
        raise NotTextError(f"{name} is empty; pass a file with some text in it", "empty")
    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        raise NotTextError(f"{name} looks like binary data, not text; pass a text, Markdown or PDF file", "binary")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise NotTextError(
            f"{name} is not valid UTF-8 (bad byte 0x{data[e.start]:02x} at byte offset {e.start}); "
            f"convert it to UTF-8 first, e.g. with iconv -f latin1 -t utf-8",
            f"not valid UTF-8 (byte offset {e.start})",
        ) from None
    return text.removeprefix("\ufeff").replace("\r\n", "\n")


def text_source(name: str, text: str) -> SourceFile:
    """A SourceFile holding one text body whose first line is line 1."""
    return SourceFile(name, [Piece(text, line=1)])


def read_stdin(stdin=None) -> bytes:
    """All of standard input as bytes (from `.buffer` when there is one)."""
    stdin = sys.stdin if stdin is None else stdin
    if stdin is None:
        raise InputError("There is no standard input to read for '-'; pipe a document in or pass a path")
    isatty = getattr(stdin, "isatty", None)
    if isatty is not None and isatty():
        raise InputError("Standard input is a terminal, not a document; pipe one in (cat doc.txt | longdoc ... -)")
    stream = getattr(stdin, "buffer", stdin)
    data = stream.read()
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    return data

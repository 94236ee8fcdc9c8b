"""Text files and standard input: decoded by evidence (decoding.py), empty and binary data refused.

`decode` turns bytes into prompt text or raises a `NotTextError` (an `InputError`) whose one-line message names
the input and whose `reason` is the short form a directory walk records in `Document.skipped`.
"""

from __future__ import annotations

import sys

from ..errors import InputError
from .checks import DEFAULT_MAX_INPUT_BYTES, format_bytes, LIMIT_HINT
from .decoding import BINARY_SNIFF_BYTES, Decoded, NotTextError, decode_bytes  # noqa: F401  (re-exported)
from .document import Piece, SourceFile

STDIN_NAME = "<stdin>"


def decode(data: bytes, name: str) -> str:
    """The text of `data` (a file called `name`), or NotTextError saying what is wrong."""
    return decode_bytes(data, name).text


def text_source(name: str, text: str, info: dict | None = None) -> SourceFile:
    """A SourceFile holding one text body whose first line is line 1."""
    return SourceFile(name, [Piece(text, line=1)], info=dict(info or {"format": "text"}))


def decoded_source(name: str, data: bytes) -> SourceFile:
    """A text SourceFile from raw bytes, its encoding recorded in `info`."""
    d = decode_bytes(data, name)
    return text_source(name, d.text, {"format": "text", "encoding": d.encoding})


def read_stdin(stdin=None, max_bytes: int = DEFAULT_MAX_INPUT_BYTES) -> bytes:
    """All of standard input as bytes (from `.buffer` when there is one), at most `max_bytes`."""
    stdin = sys.stdin if stdin is None else stdin
    if stdin is None:
        raise InputError("There is no standard input to read for '-'; pipe a document in or pass a path")
    isatty = getattr(stdin, "isatty", None)
    if isatty is not None and isatty():
        raise InputError("Standard input is a terminal, not a document; pipe one in (cat doc.txt | longdoc ... -)")
    stream = getattr(stdin, "buffer", stdin)
    data = stream.read(max_bytes + 1)
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    if len(data) > max_bytes:
        raise InputError(f"Standard input is over the {format_bytes(max_bytes)} limit for one input; {LIMIT_HINT}")
    return data

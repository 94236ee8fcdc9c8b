"""File names as text that can always be encoded (prompts, JSON, LangChain / LlamaIndex metadata).

On POSIX a file name is bytes; Python hands names that are not valid UTF-8 (an old zip or tar extracted on
Linux, a Latin-1 `résumé.txt`) over as str with surrogate escapes, which no tokenizer or JSON encoder takes.
`display_path` shows such bytes as `\\xNN` (the way `ls --quoting-style=escape` and git do), keeping the real
path for opening the file.
"""

from __future__ import annotations

import os


def display_path(path: str | bytes) -> str:
    """`path` as encodable text: undecodable bytes become `\\xNN` (e.g. b"r\\xe9sum\\xe9.txt" -> "r\\\\xe9sum\\\\xe9.txt")."""
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")

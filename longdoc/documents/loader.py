"""`load`: turn the user's inputs (PDFs, text files, `-`, directories) into one `Document`.

A single file is the prompt as-is; several inputs, or any directory, are framed file by file with
their paths (framing.py). Every bad input raises `InputError` with a one-line message naming it.
"""

from __future__ import annotations

import os
import stat

from ..errors import InputError
from . import framing, pdf, tree
from .document import Document, SourceFile, merge
from .text import STDIN_NAME, decode, read_stdin, text_source


def load(
    paths: list[str],
    *,
    password: str | None = None,
    max_file_bytes: int = 2_000_000,
    stdin=None,
) -> Document:
    """Load `paths` ("-" is standard input) into one Document; `max_file_bytes` limits directory files."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise InputError("No input given; pass a PDF, a text file, a directory, or - for standard input")
    files: list[SourceFile] = []
    skipped: list[tuple[str, str]] = []
    any_directory = False
    for path in paths:
        if path == "-":
            files.append(_from_bytes(read_stdin(stdin), STDIN_NAME, password))
        elif os.path.isdir(path):
            any_directory = True
            found, dir_skipped = tree.walk(path, max_file_bytes=max_file_bytes)
            files += found
            skipped += dir_skipped
        else:
            files.append(_from_bytes(_read_file(path), path, password))
    return merge(files, framed=framing.needs_framing(len(paths), any_directory), skipped=skipped)


def _read_file(path: str) -> bytes:
    """The bytes of a file the user named (regular file or pipe), or InputError."""
    if not os.path.lexists(path):
        raise InputError(f"No such file: {path}; check the path")
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InputError(f"No such file: {path} (a broken symlink to {os.readlink(path)}); fix the link") from None
    except OSError as e:
        raise InputError(f"Cannot read {path}: {e.strerror}; check its permissions") from None
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
        raise InputError(f"{path} is not a regular file; pass a file, a directory, or - for standard input")
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as e:
        raise InputError(f"Cannot read {path}: {e.strerror}; check its permissions") from None


def _from_bytes(data: bytes, name: str, password: str | None) -> SourceFile:
    """A PDF or text source from the bytes of one input."""
    if not data:
        raise InputError(f"{name} is empty; pass a file with some text in it")
    if pdf.is_pdf(name, data[:64]):
        return pdf.read_pdf(data, name, password)
    return text_source(name, decode(data, name))

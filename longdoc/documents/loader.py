"""`load`: turn the user's inputs (files of any supported format, `-`, directories) into one `Document`.

A single file is the prompt as-is; several inputs, or any directory, are framed file by file with their paths
(framing.py). Every bad input raises `InputError` with a one-line message naming it; inside a directory a file
that cannot be read is skipped and recorded in `Document.skipped` as (path, reason) instead.

Before a named file is read (checks.py): it must be a regular file (a FIFO, device or socket is refused without
being opened for reading) no larger than `max_input_bytes` (from its metadata).
"""

from __future__ import annotations

import os

from ..errors import InputError
from . import framing, tree
from .checks import DEFAULT_MAX_INPUT_BYTES, read_regular_file
from .document import Document, SourceFile, merge
from .formats import read_source
from .names import display_path
from .text import STDIN_NAME, read_stdin

DEFAULT_MAX_FILE_BYTES = 2_000_000  # a text file inside a directory (bigger ones are usually generated)


def load(
    paths: list[str],
    *,
    password: str | None = None,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES,
    follow_links: bool = False,
    stdin=None,
) -> Document:
    """Load `paths` ("-" is standard input) into one Document.

    max_file_bytes: size limit of a text file inside a directory (larger ones are skipped with a note).
    max_input_bytes: size limit of a named file, standard input, and a document (PDF, Office...) in a directory.
    follow_links: inside directories, follow symbolic links that lead out of the directory named (default: skip
    them with a note, as git and ripgrep do; links inside it are followed, loops skipped).
    """
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    paths = [os.fsdecode(p) for p in paths]
    if not paths:
        raise InputError("No input given; pass a file, a directory, or - for standard input")
    files: list[SourceFile] = []
    skipped: list[tuple[str, str]] = []
    any_directory = False
    for path in paths:
        display = display_path(path)
        if path == "-":
            files.append(read_source(read_stdin(stdin, max_input_bytes), STDIN_NAME, password))
        elif os.path.isdir(path):
            any_directory = True
            found, dir_skipped = tree.walk(path, max_file_bytes=max_file_bytes, max_input_bytes=max_input_bytes,
                                           follow_links=follow_links, password=password)
            files += found
            skipped += dir_skipped
        else:
            files.append(read_source(read_regular_file(path, display, max_input_bytes), display, password))
    return merge(files, framed=framing.needs_framing(len(paths), any_directory), skipped=skipped)

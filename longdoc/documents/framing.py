"""How each file is framed in the prompt.

A single PDF or text file is the prompt as-is. When there are several files (several inputs, or a
directory), each is framed with its path the way files-to-prompt does:

    <path>
    ---
    <contents>

    ---
"""

from __future__ import annotations

FOOTER = "\n\n---\n"


def header(path: str) -> str:
    """The lines before a file's contents: its path, then a `---` rule."""
    return f"{path}\n---\n"


def frame(path: str, contents: str) -> str:
    """A whole framed file (the same text `document.merge` emits for one framed source)."""
    return header(path) + contents.rstrip("\n") + FOOTER


def needs_framing(n_inputs: int, any_directory: bool) -> bool:
    """Frame files with their paths when there is more than one input, or any input is a directory."""
    return n_inputs > 1 or any_directory

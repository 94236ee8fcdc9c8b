"""Directories (code repositories): walk them into text sources.

The walk is depth-first with entries sorted by name, so the order is stable. It always skips `.git`,
honours `.gitignore` files at the root and in subdirectories (pathspec's gitwildmatch patterns with
git's rules: a deeper file's last matching pattern wins), follows symlinks to files and directories,
and raises `InputError` on a symlink loop (a directory whose real path is one of its own ancestors).
Binary, non-UTF-8, empty, oversized and PDF files are skipped and recorded as (path, reason).
"""

from __future__ import annotations

import os
import stat
from collections import Counter

import pathspec

from ..errors import InputError
from . import pdf
from .document import SourceFile
from .text import NotTextError, decode, text_source

Skipped = list[tuple[str, str]]
_PDF_REASON = "PDF inside a directory (pass it as its own input to include it)"


class _Walk:
    def __init__(self, root: str, max_file_bytes: int):
        self.root = root
        self.max_file_bytes = max_file_bytes
        self.files: list[SourceFile] = []
        self.skipped: Skipped = []
        self.ignored = 0
        self.seen_dirs: dict[str, str] = {}  # real path -> display path
        self.seen_files: dict[str, str] = {}

    def visit_dir(self, path: str, rel: str, specs: list, ancestors: dict[str, str]) -> None:
        display = os.path.join(self.root, rel) if rel else self.root
        real = os.path.realpath(path)
        if real in ancestors:
            raise InputError(
                f"Symlink loop in {self.root}: {display} leads back to {ancestors[real]}; "
                f"remove the link or list it in .gitignore"
            )
        if real in self.seen_dirs:
            self.skipped.append((display, f"same directory as {self.seen_dirs[real]}"))
            return
        self.seen_dirs[real] = display
        ancestors = {**ancestors, real: display}
        try:
            names = sorted(os.listdir(path))
        except OSError as e:
            self.skipped.append((display, f"unreadable directory ({e.strerror})"))
            return
        prefix = f"{rel}/" if rel else ""
        if ".gitignore" in names and os.path.isfile(os.path.join(path, ".gitignore")):
            specs = [*specs, (prefix, _read_gitignore(os.path.join(path, ".gitignore")))]
        for name in names:
            if name == ".git":
                continue
            child, child_rel = os.path.join(path, name), prefix + name
            is_dir = os.path.isdir(child)
            if _ignored(specs, child_rel + ("/" if is_dir else "")):
                self.ignored += 1
            elif is_dir:
                self.visit_dir(child, child_rel, specs, ancestors)
            else:
                self.visit_file(child, os.path.join(self.root, child_rel))

    def visit_file(self, path: str, display: str) -> None:
        reason = self.add_file(path, display)
        if reason:
            self.skipped.append((display, reason))

    def add_file(self, path: str, display: str) -> str | None:
        """Add one file as a text source; return why not instead."""
        try:
            st = os.stat(path)
        except OSError:
            return "broken symlink" if os.path.islink(path) else "unreadable"
        if not stat.S_ISREG(st.st_mode):
            return "not a regular file"
        real = os.path.realpath(path)
        if real in self.seen_files:
            return f"same file as {self.seen_files[real]}"
        if pdf.is_pdf(path, b""):
            return _PDF_REASON
        if st.st_size > self.max_file_bytes:
            return f"too large ({st.st_size} bytes > max_file_bytes {self.max_file_bytes})"
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as e:
            return f"unreadable ({e.strerror})"
        if pdf.is_pdf(path, data[:64]):
            return _PDF_REASON
        try:
            text = decode(data, display)
        except NotTextError as e:
            return e.reason
        self.seen_files[real] = display
        self.files.append(text_source(display, text))
        return None


def walk(root: str, *, max_file_bytes: int = 2_000_000) -> tuple[list[SourceFile], Skipped]:
    """The text files under directory `root` (display paths joined onto `root`) and what was skipped."""
    w = _Walk(root, max_file_bytes)
    w.visit_dir(root, "", [], {})
    if not w.files:
        raise InputError(f"{root} has no readable text files ({_summary(w)}); point at a directory of text or code")
    return w.files, w.skipped


def _read_gitignore(path: str) -> pathspec.GitIgnoreSpec:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return pathspec.GitIgnoreSpec.from_lines(fh.read().splitlines())
    except OSError:
        return pathspec.GitIgnoreSpec.from_lines([])


def _ignored(specs: list, rel: str) -> bool:
    """Whether `rel` (with a trailing "/" for directories) is ignored; deeper .gitignore files win."""
    ignored = False
    for prefix, spec in specs:
        if rel.startswith(prefix):
            result = spec.check_file(rel[len(prefix) :])
            if result.include is not None:
                ignored = result.include
    return ignored


def _summary(w: _Walk) -> str:
    if not w.skipped and not w.ignored:
        return "it is empty"
    counts = Counter(reason.split(" (")[0] for _, reason in w.skipped)
    parts = [f"{n} {reason}" for reason, n in sorted(counts.items())]
    if w.ignored:
        parts.append(f"{w.ignored} matched by .gitignore")
    return "skipped: " + ", ".join(parts)

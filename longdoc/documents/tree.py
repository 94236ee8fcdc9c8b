"""Directories (code repositories, project folders): walk them into sources.

The walk is depth-first with entries sorted by name, so the order is stable. It always skips `.git` and
honours `.gitignore` files at the root and in subdirectories (pathspec's gitwildmatch patterns with git's rules:
a deeper file's last matching pattern wins). Every file goes through the same readers as a named input
(formats.py: PDFs, Office files, EPUBs, notebooks, text in any detectable encoding).

What is skipped, each recorded as (path, reason) and reported by every interface:
- symbolic links that lead out of the directory named (like git and ripgrep; `follow_links=True` follows
  them), broken links, and links back to a directory being walked (a loop: skipped, the walk goes on);
- a second path to a file or directory already read;
- anything that is not a regular file (FIFOs, sockets, devices: never opened for reading);
- text files over `max_file_bytes`, documents over `max_input_bytes` (from metadata, before reading);
- files that cannot be read (binary, no text, damaged, encrypted, unreadable).
File names that are not valid UTF-8 are shown with `\\xNN` escapes (names.py) and read by their real path.
"""

from __future__ import annotations

import os
from collections import Counter

import pathspec

from ..errors import InputError
from .checks import DEFAULT_MAX_INPUT_BYTES, format_bytes, kind_of_mode, read_regular_file
from .document import SourceFile
from .formats import is_document, read_source, skip_reason
from .names import display_path

Skipped = list[tuple[str, str]]
LINK_HINT = "pass --follow-links (follow_links=True) to include it"


class _Walk:
    def __init__(self, root: str, max_file_bytes: int, max_input_bytes: int, follow_links: bool,
                 password: str | None):
        self.root, self.root_display = root, display_path(root)
        self.root_real = os.path.realpath(root)
        self.max_file_bytes, self.max_input_bytes = max_file_bytes, max_input_bytes
        self.follow_links, self.password = follow_links, password
        self.files: list[SourceFile] = []
        self.skipped: Skipped = []
        self.ignored = 0
        self.seen_dirs: dict[str, str] = {}  # real path -> display path
        self.seen_files: dict[str, str] = {}

    def display(self, rel: str) -> str:
        return display_path(os.path.join(self.root, rel) if rel else self.root)

    def outside(self, real: str) -> bool:
        return not (real == self.root_real or real.startswith(self.root_real.rstrip(os.sep) + os.sep))

    def link_skip(self, path: str) -> str | None:
        """Why a symlink at `path` is not followed, or None to follow it."""
        if not os.path.islink(path):
            return None
        if not os.path.exists(path):
            return f"broken symlink (to {display_path(os.readlink(path))})"
        real = os.path.realpath(path)
        if self.outside(real) and not self.follow_links:
            return f"symlink to {display_path(real)}, outside {self.root_display}; {LINK_HINT}"
        return None

    def visit_dir(self, path: str, rel: str, specs: list, ancestors: dict[str, str]) -> None:
        display = self.display(rel)
        real = os.path.realpath(path)
        if real in ancestors:
            self.skipped.append((display, f"symlink loop: leads back to {ancestors[real]}"))
            return
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
                continue
            why = self.link_skip(child)
            if why is not None:
                self.skipped.append((self.display(child_rel), why))
            elif is_dir:
                self.visit_dir(child, child_rel, specs, ancestors)
            else:
                self.visit_file(child, self.display(child_rel))

    def visit_file(self, path: str, display: str) -> None:
        reason = self.add_file(path, display)
        if reason:
            self.skipped.append((display, reason))

    def add_file(self, path: str, display: str) -> str | None:
        """Add one file as a source; return why not instead."""
        try:
            st = os.stat(path)
        except OSError as e:
            return f"unreadable ({e.strerror})"
        kind = kind_of_mode(st.st_mode)
        if kind is not None:
            return f"{kind}, not a regular file"
        real = os.path.realpath(path)
        if real in self.seen_files:
            return f"same file as {self.seen_files[real]}"
        limit = self.max_input_bytes if is_document(path) else self.max_file_bytes
        if st.st_size > limit:
            which = "max_input_bytes" if limit == self.max_input_bytes else "max_file_bytes"
            return f"too large ({format_bytes(st.st_size)} > {which} {format_bytes(limit)})"
        try:
            source = read_source(read_regular_file(path, display, limit), display, self.password)
        except InputError as e:
            return skip_reason(e, display)
        self.seen_files[real] = display
        self.files.append(source)
        self.skipped += source.skipped
        source.skipped = []
        return None


def walk(root: str, *, max_file_bytes: int = 2_000_000, max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES,
         follow_links: bool = False, password: str | None = None) -> tuple[list[SourceFile], Skipped]:
    """The readable files under directory `root` (display paths joined onto `root`) and what was skipped."""
    w = _Walk(root, max_file_bytes, max_input_bytes, follow_links, password)
    w.visit_dir(root, "", [], {})
    if not w.files:
        raise InputError(f"{w.root_display} has no readable files ({_summary(w)}); point at a folder of documents, "
                         "text or code")
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
    counts = Counter(reason.split(" (")[0].split(";")[0].split(",")[0] for _, reason in w.skipped)
    parts = [f"{n} {reason}" for reason, n in sorted(counts.items())]
    if w.ignored:
        parts.append(f"{w.ignored} matched by .gitignore")
    return "skipped: " + ", ".join(parts)

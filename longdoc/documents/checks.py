"""Checks made before a file is read: what kind of file it is and how large, from its metadata.

A named pipe, a device or a socket given as a document would block `open()` or `read()` forever (or produce
data without end), so only regular files are read; the check runs on the path and again on the opened file
descriptor (opened non-blocking), so a file swapped for a pipe in between is refused too. The size limit is
checked from the file's metadata before any byte is read (a 2 GB sparse file is refused without reading it),
and reading stops one byte past the limit whatever the metadata said.
"""

from __future__ import annotations

import os
import stat

from ..errors import InputError

DEFAULT_MAX_INPUT_BYTES = 256 * 10**6  # one named input (a PDF, an Office file, a text file)
LIMIT_HINT = "raise the limit with --max-file-size (max_input_bytes= in Python)"


def format_bytes(n: float) -> str:
    """1234567 -> '1.2 MB' (decimal units, as `ls -h --si` and the size options use)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def kind_of_mode(mode: int) -> str | None:
    """What a non-regular file is ("a named pipe (FIFO)", ...), or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


def not_regular_message(display: str, kind: str) -> str:
    return (f"{display} is {kind}, not a regular file: longdoc reads only regular files (reading it could wait "
            f"forever); pipe its output in with `-` instead, e.g. cat {display} | longdoc ask - QUESTION")


def too_large_message(display: str, size: int, limit: int) -> str:
    return f"{display} is {format_bytes(size)}, over the {format_bytes(limit)} limit for one input; split it, or {LIMIT_HINT}"


def stat_input(path: str, display: str) -> os.stat_result:
    """os.stat of a named input, or InputError (missing, broken link, unreadable)."""
    if not os.path.lexists(path):
        raise InputError(f"No such file: {display}; check the path")
    try:
        return os.stat(path)
    except FileNotFoundError:
        raise InputError(f"No such file: {display} (a broken symlink to {os.readlink(path)}); fix the link") from None
    except OSError as e:
        raise InputError(f"Cannot read {display}: {e.strerror}; check its permissions") from None


def read_regular_file(path: str, display: str, max_bytes: int) -> bytes:
    """The bytes of the regular file at `path`; InputError for anything else or anything over `max_bytes`."""
    st = stat_input(path, display)
    kind = kind_of_mode(st.st_mode)
    if kind is not None:
        raise InputError(not_regular_message(display, kind))
    if st.st_size > max_bytes:
        raise InputError(too_large_message(display, st.st_size, max_bytes))
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise InputError(f"Cannot read {display}: {e.strerror}; check its permissions") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        kind = kind_of_mode(st.st_mode)
        if kind is not None:  # swapped between the checks
            raise InputError(not_regular_message(display, kind))
        try:
            data = fh.read(max_bytes + 1)
        except OSError as e:
            raise InputError(f"Cannot read {display}: {e.strerror}; check the file") from None
    if len(data) > max_bytes:
        raise InputError(too_large_message(display, len(data), max_bytes))
    return data

"""Errors a user can act on.

Every error longdoc raises for bad input or bad configuration is a `LongdocError`: its message is one line
that says what went wrong and what to do. The CLI prints exactly that line (no traceback) and exits non-zero.
"""


class LongdocError(Exception):
    """Base class: a one-line, actionable message. `exit_code` is what the CLI exits with."""

    exit_code = 1


class ConfigError(LongdocError, ValueError):
    """A LongHeads setting that cannot work with this model (the message names the fix)."""

    exit_code = 2


class InputError(LongdocError):
    """A document that cannot be read: missing, empty, binary, encrypted, malformed..."""

    exit_code = 3


class ModelError(LongdocError):
    """A model path that does not exist or is not a supported model."""

    exit_code = 4


class TooLongError(LongdocError):
    """A prompt longer than LongHeads can reach or than memory allows."""

    exit_code = 5


class EngineBusyError(LongdocError):
    """The engine stayed busy with another call's step longer than the stated wait (longdoc/lease.py)."""

    exit_code = 6


class StoreError(LongdocError):
    """The ingest store's folder cannot be written (read-only file system, full disk, permissions)."""

    exit_code = 7


class SkippedFilesWarning(UserWarning):
    """Inputs a loader skipped (binary, too large, links out of the folder...): the message lists them."""

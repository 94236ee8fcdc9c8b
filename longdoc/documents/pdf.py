"""PDF files, page by page, with pypdf.

Each page with extractable text becomes one `Piece` carrying its 1-based page number and its page
label (from the PDF's /PageLabels via `reader.page_labels`, which pypdf fills with "1", "2", ... when
the PDF defines none); pages are joined by a blank line. A page's text is its content (ligatures and
line-end hyphenation cleaned up: pdf_text.py) followed by its form-field values and annotation texts
(pdf_forms.py). A PDF with no text at all is scanned: it goes to OCR when the `ocr` extra is installed
(ocr.py), else a one-line error names the extra. Encrypted, truncated and malformed files become
`InputError`s; pypdf's own log warnings are silenced while reading.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError

from ..errors import InputError
from . import ocr
from .document import Piece, SourceFile
from .pdf_forms import page_extras
from .pdf_text import normalize_glyphs, rejoin_hyphenation, vocabulary

PAGE_SEPARATOR = "\n\n"
PDF_MAGIC = b"%PDF-"


def is_pdf(name: str, head: bytes) -> bool:
    """A `.pdf` name, or data that starts with the `%PDF-` header."""
    return name.lower().endswith(".pdf") or head.lstrip().startswith(PDF_MAGIC)


def read_pdf(data: bytes, name: str, password: str | None = None) -> SourceFile:
    """The text of the PDF `data` (called `name`), one piece per page that has text."""
    with _quiet():
        try:
            reader = PdfReader(io.BytesIO(data), strict=False)
            _unlock(reader, name, password)
            n_pages = len(reader.pages)
            labels = _labels(reader, n_pages)
        except InputError:
            raise
        except DependencyError as e:
            raise InputError(f"{name} needs an extra package to decrypt ({_short(e)}); pip install cryptography") from e
        except Exception as e:  # pypdf raises many kinds of error on damaged files
            raise InputError(_damaged(name, e)) from e
        texts, extras, skipped = {}, {}, []
        for i in range(n_pages):
            try:
                page = reader.pages[i]
                texts[i] = normalize_glyphs((page.extract_text() or "").replace("\x00", "")).strip()
            except Exception as e:
                skipped.append((f"{name} p. {labels[i]}", f"text extraction failed: {_short(e)}"))
                continue
            extras[i] = page_extras(page)
    if n_pages == 0:
        raise InputError(f"{name} is a PDF with no pages; check that it is the right file")
    vocab = vocabulary(texts.values())
    pieces = []
    for i, text in texts.items():
        text = "\n\n".join(t for t in (rejoin_hyphenation(text, vocab), "\n".join(extras[i])) if t)
        if text:
            pieces.append(Piece(text, page=i + 1, page_label=labels[i]))
    if not pieces:
        if len(skipped) == n_pages:
            raise InputError(_damaged(name, skipped[0][1]))
        return ocr.read_scanned_pdf(data, name, n_pages, labels)
    return SourceFile(name, pieces, PAGE_SEPARATOR, skipped, info={"format": "pdf"})


def _unlock(reader: PdfReader, name: str, password: str | None) -> None:
    """Decrypt an encrypted PDF with `password` (or the empty password), else raise."""
    if not reader.is_encrypted:
        return
    if password is not None and reader.decrypt(password) != PasswordType.NOT_DECRYPTED:
        return
    if reader.decrypt("") != PasswordType.NOT_DECRYPTED:  # only an owner password: readable as is
        return
    if password is None:
        raise InputError(f"{name} is an encrypted PDF; pass its password with --password")
    raise InputError(f"Wrong password for the encrypted PDF {name}; check the --password value")


def _labels(reader: PdfReader, n_pages: int) -> list[str]:
    """Page labels ("iv", "A-3", ...) or "1", "2", ... where the PDF defines none or they are broken."""
    try:
        labels = [str(label) for label in reader.page_labels]
    except Exception:
        labels = []
    if len(labels) != n_pages:
        labels = [str(i + 1) for i in range(n_pages)]
    return labels


def _damaged(name: str, error: Exception | str) -> str:
    return f"{name} is not a readable PDF (truncated or damaged: {_short(error)}); re-download or re-export it"


def _short(error: Exception | str) -> str:
    """An error's message on one short line."""
    text = str(error) if str(error) else type(error).__name__
    text = " ".join(text.split())
    return text if len(text) <= 120 else text[:117] + "..."


@contextlib.contextmanager
def _quiet():
    """Silence pypdf's logger and warnings for the duration (restoring the logger level after)."""
    logger = logging.getLogger("pypdf")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)

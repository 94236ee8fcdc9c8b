"""Helpers that write real PDFs for tests (reportlab + pypdf); importable from any test.

    from pdf_fixtures import make_pdf          # inside tests/documents (on sys.path there)
    from tests.documents.pdf_fixtures import make_pdf   # from elsewhere, run from the repo root
"""

from __future__ import annotations

import io
from pathlib import Path

from pypdf import PdfReader, PdfWriter
from pypdf.constants import PageLabelStyle
from reportlab.lib.pagesizes import letter
from reportlab.pdfgen import canvas


def zorbia_pages(n: int = 5) -> list[str]:
    """`n` pages of text, each with a fact only that page holds."""
    return [
        f"Page {i} says the capital of Zorbia is Quillton-{i}.\nZorbian fact number {i * 7}." for i in range(1, n + 1)
    ]


def pdf_bytes(pages: list[str]) -> bytes:
    """A PDF with one page per string (lines split on "\\n"), byte-for-byte reproducible."""
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=letter, invariant=1)
    for text in pages:
        y = 720
        for line in text.split("\n"):
            c.drawString(72, y, line)
            y -= 16
        c.showPage()
    c.save()
    return buf.getvalue()


def make_pdf(path, pages: list[str]) -> Path:
    """Write a PDF with one page per string to `path`; return the path."""
    path = Path(path)
    path.write_bytes(pdf_bytes(pages))
    return path


def make_image_pdf(path, n_pages: int = 2) -> Path:
    """A PDF whose pages only hold drawn shapes: pages, but no extractable text (like a scan)."""
    path = Path(path)
    c = canvas.Canvas(str(path), pagesize=letter, invariant=1)
    for i in range(n_pages):
        c.setFillGray(0.2 + 0.1 * i)
        c.rect(72, 300, 400, 300, fill=1)
        c.circle(300, 200, 50, fill=1)
        c.showPage()
    c.save()
    return path


def _rewrite(src, dst, edit) -> Path:
    writer = PdfWriter(clone_from=PdfReader(str(src)))
    edit(writer)
    with open(dst, "wb") as fh:
        writer.write(fh)
    return Path(dst)


def make_encrypted_pdf(path, pages: list[str], user_password: str, owner_password: str | None = None,
                       algorithm: str | None = None) -> Path:
    """A PDF encrypted with `user_password` (RC4-128 unless `algorithm`, e.g. "AES-256")."""
    path = Path(path)
    plain = make_pdf(path.with_suffix(".plain.pdf"), pages)
    out = _rewrite(plain, path, lambda w: w.encrypt(user_password, owner_password, algorithm=algorithm))
    plain.unlink()
    return out


def make_labeled_pdf(path, pages: list[str], n_roman: int) -> Path:
    """A PDF whose first `n_roman` pages are labelled i, ii, ... and the rest 1, 2, ..."""
    path = Path(path)
    plain = make_pdf(path.with_suffix(".plain.pdf"), pages)

    def label(w: PdfWriter) -> None:
        w.set_page_label(0, n_roman - 1, style=PageLabelStyle.LOWERCASE_ROMAN, start=1)
        if n_roman < len(pages):
            w.set_page_label(n_roman, len(pages) - 1, style=PageLabelStyle.DECIMAL, start=1)

    out = _rewrite(plain, path, label)
    plain.unlink()
    return out


def make_truncated_pdf(path, pages: list[str], fraction: float = 0.5) -> Path:
    """A valid PDF cut to `fraction` of its bytes (a broken download)."""
    path = Path(path)
    data = pdf_bytes(pages)
    path.write_bytes(data[: int(len(data) * fraction)])
    return path

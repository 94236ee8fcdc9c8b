"""Scanned PDFs (pages that are only images): OCR with Tesseract, the optional extra `longdoc[ocr]`.

Pages are rendered with pypdfium2 (PDFium in a wheel, no system library) at `DPI` and read by Tesseract through
pytesseract; Tesseract itself is a system program (Debian: `apt-get install tesseract-ocr`, plus
`tesseract-ocr-LANG` for other languages; set LONGDOC_OCR_LANG, e.g. "deu+eng"). Without the extra, or without
the program, a scanned PDF raises one line saying which of the two to install.
"""

from __future__ import annotations

import os

from ..errors import InputError
from .document import Piece, SourceFile

DPI = 300
EXTRA_HINT = "pip install 'longdoc[ocr]' and Debian's tesseract-ocr"


def read_scanned_pdf(data: bytes, name: str, n_pages: int, labels: list[str]) -> SourceFile:
    """OCR text of every page of the PDF `data`, one piece per page; InputError when OCR is not available."""
    scanned = f"{name} has no extractable text in its {n_pages} page(s) (scanned?)"
    try:
        import pypdfium2
        import pytesseract
    except ImportError:
        raise InputError(f"{scanned}; to read it with OCR: {EXTRA_HINT}") from None
    try:
        pytesseract.get_tesseract_version()
    except Exception:  # TesseractNotFoundError, or a broken install
        raise InputError(f"{scanned}; OCR needs the tesseract program: apt-get install tesseract-ocr") from None
    lang = os.environ.get("LONGDOC_OCR_LANG") or "eng"
    pieces = []
    try:
        pdf = pypdfium2.PdfDocument(data)
        for i in range(len(pdf)):
            image = pdf[i].render(scale=DPI / 72).to_pil()
            text = " ".join(pytesseract.image_to_string(image, lang=lang).split(" ")).strip()
            if text:
                pieces.append(Piece(text, page=i + 1, page_label=labels[i] if i < len(labels) else str(i + 1)))
    except pytesseract.TesseractError as e:
        raise InputError(f"OCR of {name} failed ({' '.join(str(e).split())[:120]}); check LONGDOC_OCR_LANG") from None
    if not pieces:
        raise InputError(f"{scanned}; OCR found no text in it either: check that it is the right file")
    return SourceFile(name, pieces, "\n\n", info={"format": "pdf", "ocr": f"tesseract ({lang})"})

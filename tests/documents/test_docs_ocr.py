"""Scanned PDFs: OCR through the optional `ocr` extra (Tesseract), or one line naming what to install."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys

import pytest
from pdf_fixtures import make_image_pdf

from longdoc.documents import load
from longdoc.errors import InputError


def scanned_pdf(path, line: str):
    """A one-page PDF holding only an image of `line` (what a scanner produces)."""
    from PIL import Image, ImageDraw, ImageFont
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    image = Image.new("L", (1700, 300), 255)
    ImageDraw.Draw(image).text((40, 100), line, fill=0, font=ImageFont.load_default(size=64))
    c = canvas.Canvas(str(path))
    c.drawImage(ImageReader(image), 40, 600, width=510, height=90)
    c.showPage()
    c.save()
    return path


def test_without_the_ocr_extra_a_scanned_pdf_names_it(tmp_path):
    pdf = make_image_pdf(tmp_path / "scan.pdf")
    code = ("import sys; sys.modules['pytesseract'] = None\n"  # as if longdoc[ocr] were not installed
            "from longdoc.documents import load\nfrom longdoc.errors import InputError\n"
            f"try:\n    load([{str(pdf)!r}])\nexcept InputError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == (f"{pdf} has no extractable text in its 2 page(s) (scanned?); to read it with OCR: "
                   "pip install 'longdoc[ocr]' and Debian's tesseract-ocr")


HAVE_OCR = all(importlib.util.find_spec(m) for m in ("pytesseract", "pypdfium2")) and shutil.which("tesseract")


@pytest.mark.skipif(not HAVE_OCR, reason="the ocr extra and Debian's tesseract-ocr are not installed")
def test_a_scanned_pdf_is_read_with_ocr(tmp_path):
    pdf = scanned_pdf(tmp_path / "scan.pdf", "The capital of Zorbia is Quenta.")
    doc = load([str(pdf)])
    assert "Zorbia is Quenta" in doc.text
    assert doc.label(doc.locate(doc.text.index("Quenta"))) == f"{pdf} p. 1"
    assert doc.source_info[str(pdf)]["ocr"] == "tesseract (eng)"


@pytest.mark.skipif(not HAVE_OCR, reason="the ocr extra and Debian's tesseract-ocr are not installed")
def test_a_blank_scan_says_ocr_found_nothing(tmp_path):
    with pytest.raises(InputError, match="OCR found no text in it either"):
        load([str(make_image_pdf(tmp_path / "shapes.pdf"))])

"""PDF text people expect to be there: unflattened form fields, sticky notes and comment boxes (mapped to their
page), ligatures, and end-of-line hyphenation rejoined only where the document's own words support it."""

from __future__ import annotations

import io

from pypdf import PdfReader, PdfWriter
from pypdf.annotations import FreeText, Text
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from longdoc.documents import load
from longdoc.documents.pdf_text import normalize_glyphs, rejoin_hyphenation, vocabulary


def make_filled_form(path, *, cover_page: bool = True):
    """Page 1 (optional): a cover; the form page: typed values only in AcroForm widgets, plus two comments."""
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    if cover_page:
        c.drawString(72, 770, "Cover page of the permit file.")
        c.showPage()
    c.setFont("Helvetica", 12)
    c.drawString(72, 770, "Permit application form 7B")
    c.drawString(72, 740, "Applicant name:")
    c.acroForm.textfield(name="applicant", value="Orla Brennick", x=200, y=732, width=200, height=20)
    c.drawString(72, 710, "Site number:")
    c.acroForm.textfield(name="site", value="S-4471", x=200, y=702, width=200, height=20)
    c.drawString(72, 680, "Approved:")
    c.acroForm.checkbox(name="approved", checked=True, x=200, y=675, size=14)
    c.acroForm.checkbox(name="urgent", checked=False, x=260, y=675, size=14)
    c.acroForm.textfield(name="remarks", value="", x=200, y=640, width=200, height=20)
    c.save()
    w = PdfWriter(clone_from=PdfReader(io.BytesIO(buf.getvalue())))
    page = len(w.pages) - 1
    w.add_annotation(page, FreeText(text="Reviewer note: fee waived under rule 12", rect=(72, 500, 400, 540)))
    w.add_annotation(page, Text(text="Call the applicant before Friday", rect=(72, 450, 92, 470)))
    w.write(str(path))
    return path


def test_form_values_and_comments_are_read_and_cited_to_their_page(tmp_path):
    pdf = make_filled_form(tmp_path / "form.pdf")
    doc = load([str(pdf)])
    for line in ('[Form field "applicant": Orla Brennick]', '[Form field "site": S-4471]',
                 '[Form field "approved": checked]', '[Form field "urgent": unchecked]',
                 "[Comment box: Reviewer note: fee waived under rule 12]",
                 "[Sticky note: Call the applicant before Friday]"):
        assert line in doc.text
        assert doc.label(doc.locate(doc.text.index(line))) == f"{pdf} p. 2"
    assert '"remarks"' not in doc.text  # an empty text field says nothing
    assert doc.text.index("Permit application form 7B") < doc.text.index("Orla Brennick")


def test_a_pdf_whose_only_text_is_its_form_is_read(tmp_path):
    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    c.acroForm.textfield(name="total", value="1,250 EUR", x=100, y=700, width=200, height=20)
    c.showPage()
    c.save()
    (tmp_path / "only.pdf").write_bytes(buf.getvalue())
    assert load([str(tmp_path / "only.pdf")]).text == '[Form field "total": 1,250 EUR]'


def test_ligatures_and_soft_hyphens_are_normalised_but_not_other_compatibility_forms():
    assert normalize_glyphs("the \ufb01nal o\ufb00er, e\ufb03cient \ufb02ow, re\u00adport") == \
        "the final offer, efficient flow, report"
    assert normalize_glyphs("x\u00b2 + \u00bd, \u2460, \uff21") == "x\u00b2 + \u00bd, \u2460, \uff21"  # meaning kept


def test_hyphenation_is_rejoined_only_with_the_documents_own_evidence():
    pages = ["The inter-\nnational board met. Its international remit grew.",
             "A well-\nknown case, the well-known rule.", "A non-\nsense split stays."]
    vocab = vocabulary(pages)
    assert rejoin_hyphenation(pages[0], vocab).startswith("The international board met.")
    assert rejoin_hyphenation(pages[1], vocab).startswith("A well-known case")
    assert rejoin_hyphenation(pages[2], vocab) == pages[2]  # no evidence either way: unchanged


def test_hyphenation_in_a_real_pdf(tmp_path):
    c = canvas.Canvas(str(tmp_path / "h.pdf"))
    for y, line in ((750, "The committee discussed the inter-"), (735, "national treaty at length."),
                    (720, "Every international partner signed.")):
        c.drawString(72, y, line)
    c.save()
    text = load([str(tmp_path / "h.pdf")]).text
    assert "discussed the international treaty" in text

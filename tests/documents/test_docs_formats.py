"""Formats people have, converted through markitdown (Word, PowerPoint, Excel, HTML, EPUB) or read directly
(notebooks, Markdown, CSV), each generated here; sections (slide, sheet, heading, cell) are kept for citations."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import pytest

from longdoc.documents import load
from longdoc.errors import InputError


def labels(doc, *needles):
    return [doc.label(doc.locate(doc.text.index(n))) for n in needles]


def test_word(tmp_path):
    from docx import Document

    d = Document()
    d.add_heading("Quarterly report", 1)
    d.add_paragraph("Revenue grew by 12 percent in Q3.")
    d.add_heading("Risks", 2)
    d.add_paragraph("The main risk is the Tarn supplier.")
    t = d.add_table(rows=2, cols=2)
    for (r, c), v in {(0, 0): "Region", (0, 1): "Sales", (1, 0): "North", (1, 1): "410"}.items():
        t.cell(r, c).text = v
    d.save(tmp_path / "report.docx")
    doc = load([str(tmp_path / "report.docx")])
    assert "Revenue grew by 12 percent" in doc.text and "| North | 410 |" in doc.text
    path = tmp_path / "report.docx"
    assert labels(doc, "Revenue", "Tarn supplier", "North") == [f"{path} § Quarterly report", f"{path} § Risks",
                                                                f"{path} § Risks"]
    assert doc.source_info[str(path)] == {"format": "docx"}


def test_powerpoint_slides_and_speaker_notes(tmp_path):
    from pptx import Presentation

    p = Presentation()
    for i, (title, body) in enumerate([("Kickoff", "The project starts in May."), ("Budget", "The budget is 40k euros.")]):
        s = p.slides.add_slide(p.slide_layouts[1])
        s.shapes.title.text, s.placeholders[1].text = title, body
        s.notes_slide.notes_text_frame.text = f"Speaker note {i + 1}: mention Orla."
    p.save(tmp_path / "deck.pptx")
    doc = load([str(tmp_path / "deck.pptx")])
    path = tmp_path / "deck.pptx"
    assert labels(doc, "starts in May", "40k euros", "Speaker note 2") == [f"{path} slide 1", f"{path} slide 2",
                                                                          f"{path} slide 2"]


def test_excel_sheets(tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Prices"
    for row in (["item", "price"], ["tin", 3.5], ["barley", 1.25]):
        ws.append(row)
    ws2 = wb.create_sheet("Staff")
    for row in (["name", "role"], ["Ada Fenn", "keeper"]):
        ws2.append(row)
    wb.save(tmp_path / "book.xlsx")
    doc = load([str(tmp_path / "book.xlsx")])
    path = tmp_path / "book.xlsx"
    assert "| barley | 1.25 |" in doc.text and "| Ada Fenn | keeper |" in doc.text
    assert labels(doc, "barley", "Ada Fenn") == [f"{path} sheet Prices", f"{path} sheet Staff"]


def test_html_page_without_markup_scripts_or_styles(tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<html><head><title>Z</title><script>var secret = 1;</script><style>p{color:red}</style></head>"
                    "<body><h1>Zorbia</h1><p>The capital of Zorbia is <b>Quenta</b>.</p><pre># not a heading\n"
                    "x = 1</pre><h2>Trade</h2><p>Zorbia exports tin.</p></body></html>")
    doc = load([str(page)])
    assert "The capital of Zorbia is **Quenta**." in doc.text
    assert "<p>" not in doc.text and "secret" not in doc.text and "color:red" not in doc.text
    assert labels(doc, "Quenta", "not a heading", "exports tin") == [f"{page} § Zorbia", f"{page} § Zorbia",
                                                                     f"{page} § Trade"]


def test_epub_chapters(tmp_path):
    from ebooklib import epub

    b = epub.EpubBook()
    b.set_identifier("id1")
    b.set_title("Tales")
    b.set_language("en")
    chapters = []
    for i, (title, text) in enumerate([("The Harbour", "The harbour master was Piet Olsen."),
                                       ("The Hill", "On the hill stood a mill.")], start=1):
        c = epub.EpubHtml(title=title, file_name=f"c{i}.xhtml", lang="en")
        c.content = f"<h1>{title}</h1><p>{text}</p>"
        b.add_item(c)
        chapters.append(c)
    b.toc = tuple(chapters)
    b.add_item(epub.EpubNcx())
    b.add_item(epub.EpubNav())
    b.spine = ["nav", *chapters]
    epub.write_epub(str(tmp_path / "tales.epub"), b)
    doc = load([str(tmp_path / "tales.epub")])
    path = tmp_path / "tales.epub"
    assert labels(doc, "Piet Olsen", "stood a mill") == [f"{path} § The Harbour", f"{path} § The Hill"]


def test_notebook_cells_with_their_outputs(tmp_path):
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"language": "python", "name": "python3"}},
          "cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# Analysis\n", "We load the data."]},
                    {"cell_type": "code", "metadata": {}, "execution_count": 1,
                     "source": ["import pandas as pd\n", "df = pd.read_csv('x.csv')\n", "len(df)"],
                     "outputs": [{"output_type": "stream", "name": "stdout", "text": ["rows: 812\n"]},
                                 {"output_type": "execute_result", "data": {"text/plain": ["812"]},
                                  "metadata": {}, "execution_count": 1}]},
                    {"cell_type": "code", "metadata": {}, "source": "1/0", "outputs": [
                        {"output_type": "error", "ename": "ZeroDivisionError", "evalue": "division by zero",
                         "traceback": []}]}]}
    path = tmp_path / "analysis.ipynb"
    path.write_text(json.dumps(nb))
    doc = load([str(path)])
    assert "```python\nimport pandas as pd" in doc.text and "rows: 812" in doc.text
    assert labels(doc, "We load", "rows: 812", "ZeroDivisionError: division by zero") == [
        f"{path} cell 1", f"{path} cell 2", f"{path} cell 3"]


def test_markdown_and_csv_are_text_with_line_citations(tmp_path):
    (tmp_path / "notes.md").write_text("# Notes\n\nRelease 2.3 ships on 4 May.\n")
    (tmp_path / "t.csv").write_text("item,price\ntin,3.5\n")
    doc = load([str(tmp_path / "notes.md"), str(tmp_path / "t.csv")])
    assert labels(doc, "Release 2.3", "tin,3.5") == [f"{tmp_path}/notes.md:3", f"{tmp_path}/t.csv:2"]


def test_office_files_inside_a_folder_are_read(tmp_path):
    from openpyxl import Workbook

    root = tmp_path / "share"
    root.mkdir()
    wb = Workbook()
    wb.active.append(["Budget", 40000])
    wb.save(root / "budget.xlsx")
    (root / "readme.txt").write_text("See the budget.\n")
    doc = load([str(root)])
    assert doc.sources == [f"{root}/budget.xlsx", f"{root}/readme.txt"] and "40000" in doc.text


def test_damaged_old_and_empty_office_files_say_what_to_do(tmp_path):
    (tmp_path / "broken.docx").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputError, match="broken.docx is not a readable Word file .*re-save"):
        load([str(tmp_path / "broken.docx")])
    (tmp_path / "old.doc").write_bytes(b"\xd0\xcf\x11\xe0" + b"\x00" * 100)
    with pytest.raises(InputError, match="old.doc is an old binary Word file: save it as .docx"):
        load([str(tmp_path / "old.doc")])
    from openpyxl import Workbook

    Workbook().save(tmp_path / "empty.xlsx")
    with pytest.raises(InputError, match="empty.xlsx has no text in it"):
        load([str(tmp_path / "empty.xlsx")])


def test_an_archive_that_expands_past_the_limit_is_refused(tmp_path, monkeypatch):
    import longdoc.documents.convert as convert

    monkeypatch.setattr(convert, "MAX_EXPANDED_BYTES", 100_000)  # the limit, scaled down for the test
    with zipfile.ZipFile(tmp_path / "bomb.docx", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("word/document.xml", b"\0" * 1_000_000)  # compresses to about 1 kB
    assert (tmp_path / "bomb.docx").stat().st_size < 10_000
    with pytest.raises(InputError, match="bomb.docx expands to 1.0 MB, over the 100.0 kB limit"):
        load([str(tmp_path / "bomb.docx")])


def test_without_the_converters_the_error_names_the_extra(tmp_path):
    from docx import Document

    Document().save(tmp_path / "a.docx")
    code = ("import sys; sys.modules['markitdown'] = None\n"  # as if longdoc[formats] were not installed
            "from longdoc.documents import load\nfrom longdoc.errors import InputError\n"
            f"try:\n    load([{str(tmp_path / 'a.docx')!r}])\nexcept InputError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == (f"{tmp_path / 'a.docx'} is a Word file; reading it needs the document converters: "
                           "pip install 'longdoc[formats]'")


def test_cite_labels_name_the_slide(tmp_path, tokenizer):
    from pptx import Presentation

    from longdoc.qa import prompting
    from longdoc.qa.citations import token_labels

    p = Presentation()
    for title, body in (("Kickoff", "The project starts in May."), ("Budget", "The budget is 40k euros.")):
        s = p.slides.add_slide(p.slide_layouts[1])
        s.shapes.title.text, s.placeholders[1].text = title, body
    p.save(tmp_path / "deck.pptx")
    doc = load([str(tmp_path / "deck.pptx")])
    prompt = prompting.build(tokenizer, doc.text, "What is the budget?")
    labels = set(token_labels(doc, prompt))
    assert {f"{tmp_path}/deck.pptx slide 1", f"{tmp_path}/deck.pptx slide 2"} <= labels

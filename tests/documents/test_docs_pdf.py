"""PDF loading: pages, labels, locate, and every way a PDF can be unreadable."""

from __future__ import annotations

import logging

import pytest
from pdf_fixtures import (
    make_encrypted_pdf,
    make_image_pdf,
    make_labeled_pdf,
    make_pdf,
    make_truncated_pdf,
    pdf_bytes,
    zorbia_pages,
)

from longdoc.documents import Document, Span, load
from longdoc.errors import InputError


def one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_pages_become_spans_with_numbers_and_labels(zorbia_pdf):
    doc = load([str(zorbia_pdf)])
    assert isinstance(doc, Document)
    assert doc.sources == [str(zorbia_pdf)]
    assert [s.page for s in doc.spans] == [1, 2, 3, 4, 5]
    assert [s.page_label for s in doc.spans] == ["1", "2", "3", "4", "5"]
    assert all(s.line is None and s.source == str(zorbia_pdf) for s in doc.spans)
    for i, span in enumerate(doc.spans, start=1):
        page_text = doc.text[span.start : span.end]
        assert page_text.startswith(f"Page {i} says the capital of Zorbia is Quillton-{i}.")
        assert f"Zorbian fact number {i * 7}." in page_text


def test_single_pdf_is_not_framed_and_pages_are_separated_by_a_blank_line(zorbia_pdf):
    doc = load([str(zorbia_pdf)])
    assert doc.text.startswith("Page 1 says")
    assert "---" not in doc.text
    pages = doc.text.split("\n\n")
    assert len(pages) == 5
    for a, b in zip(doc.spans, doc.spans[1:]):
        assert doc.text[a.end : b.start] == "\n\n"


def test_locate_maps_an_offset_in_page_3_to_page_3(zorbia_pdf):
    doc = load([str(zorbia_pdf)])
    offset = doc.text.index("Quillton-3")
    span = doc.locate(offset)
    assert span is not None and span.page == 3
    assert doc.label(span) == f"{zorbia_pdf} p. 3"
    assert doc.locate(doc.spans[0].end) is None  # the blank line between pages 1 and 2


def test_page_labels_come_from_the_pdf(tmp_path):
    path = make_labeled_pdf(tmp_path / "book.pdf", zorbia_pages(5), n_roman=3)
    doc = load([str(path)])
    assert [s.page_label for s in doc.spans] == ["i", "ii", "iii", "1", "2"]
    assert [s.page for s in doc.spans] == [1, 2, 3, 4, 5]
    span = doc.locate(doc.text.index("Quillton-3"))
    assert doc.label(span) == f"{path} p. iii"


def test_pages_without_text_get_no_span(tmp_path):
    path = make_pdf(tmp_path / "gap.pdf", ["First page text.", "", "Third page text."])
    doc = load([str(path)])
    assert [s.page for s in doc.spans] == [1, 3]
    assert doc.text == "First page text.\n\nThird page text."


def test_pdf_detected_by_content_without_pdf_suffix(tmp_path):
    path = tmp_path / "download.bin"
    path.write_bytes(pdf_bytes(["Hidden PDF text."]))
    doc = load([str(path)])
    assert doc.text == "Hidden PDF text." and doc.spans[0].page == 1


def test_pdf_on_stdin(fake_stdin):
    doc = load(["-"], stdin=fake_stdin(pdf_bytes(["Piped page one.", "Piped page two."])))
    assert doc.sources == ["<stdin>"]
    assert [s.page for s in doc.spans] == [1, 2]
    assert doc.label(doc.spans[1]) == "<stdin> p. 2"


def test_encrypted_pdf_without_password_says_pass_password(tmp_path):
    path = make_encrypted_pdf(tmp_path / "secret.pdf", zorbia_pages(3), "sesame")
    with pytest.raises(InputError) as err:
        load([str(path)])
    msg = one_line(err)
    assert str(path) in msg and "encrypted" in msg and "--password" in msg


def test_encrypted_pdf_with_right_password_loads(tmp_path):
    path = make_encrypted_pdf(tmp_path / "secret.pdf", zorbia_pages(3), "sesame")
    doc = load([str(path)], password="sesame")
    assert [s.page for s in doc.spans] == [1, 2, 3]
    assert "Quillton-2" in doc.text


def test_encrypted_pdf_with_wrong_password_says_wrong(tmp_path):
    path = make_encrypted_pdf(tmp_path / "secret.pdf", zorbia_pages(3), "sesame")
    with pytest.raises(InputError) as err:
        load([str(path)], password="open-please")
    msg = one_line(err)
    assert str(path) in msg and "wrong password" in msg.lower()


def test_aes_encrypted_pdf(tmp_path):
    pytest.importorskip("cryptography")
    path = make_encrypted_pdf(tmp_path / "aes.pdf", zorbia_pages(2), "sesame", algorithm="AES-256")
    assert "Quillton-2" in load([str(path)], password="sesame").text
    with pytest.raises(InputError, match="(?i)wrong password"):
        load([str(path)], password="nope")


def test_owner_password_only_pdf_opens_without_password(tmp_path):
    path = make_encrypted_pdf(tmp_path / "owner.pdf", zorbia_pages(2), "", owner_password="owner")
    assert "Quillton-1" in load([str(path)]).text


def test_image_only_pdf_says_no_extractable_text(tmp_path):
    path = make_image_pdf(tmp_path / "scan.pdf", n_pages=3)
    with pytest.raises(InputError) as err:
        load([str(path)])
    msg = one_line(err)
    assert str(path) in msg and "no extractable text" in msg and "OCR" in msg and "scanned" in msg


@pytest.mark.parametrize("fraction", [0.5, 0.2, 0.9])
def test_truncated_pdf_is_an_input_error(tmp_path, fraction):
    path = make_truncated_pdf(tmp_path / "cut.pdf", zorbia_pages(5), fraction)
    with pytest.raises(InputError) as err:
        load([str(path)])
    msg = one_line(err)
    assert str(path) in msg and "not a readable PDF" in msg


def test_garbage_named_pdf_is_an_input_error(tmp_path):
    path = tmp_path / "fake.pdf"
    path.write_text("<html>404 Not Found</html>\n")
    with pytest.raises(InputError, match="not a readable PDF"):
        load([str(path)])


def test_empty_pdf_file_says_empty(tmp_path):
    path = tmp_path / "zero.pdf"
    path.write_bytes(b"")
    with pytest.raises(InputError, match=rf"{path} is empty"):
        load([str(path)])


def test_pypdf_warnings_are_silenced(tmp_path, caplog):
    path = make_truncated_pdf(tmp_path / "cut.pdf", zorbia_pages(3))
    caplog.set_level(logging.DEBUG)
    level = logging.getLogger("pypdf").level
    with pytest.raises(InputError):
        load([str(path)])
    assert not [r for r in caplog.records if r.name.startswith("pypdf")]
    assert logging.getLogger("pypdf").level == level


def test_span_is_frozen(zorbia_pdf):
    span = load([str(zorbia_pdf)]).spans[0]
    assert isinstance(span, Span)
    with pytest.raises(AttributeError):
        span.page = 9  # type: ignore[misc]

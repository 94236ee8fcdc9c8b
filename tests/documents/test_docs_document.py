"""The Document model: locate, label, content_hash, and merge/framing agreeing with each other."""

from __future__ import annotations

from longdoc.documents import Document, Span
from longdoc.documents.document import Piece, SourceFile, merge
from longdoc.documents.framing import frame


def test_locate_bisects_and_returns_none_in_gaps():
    spans = [Span(0, 5, "a.pdf", 1, "1", None), Span(7, 12, "a.pdf", 2, "ii", None)]
    doc = Document("hello\n\nworld", spans, ["a.pdf"])
    assert doc.locate(0) is spans[0] and doc.locate(4) is spans[0]
    assert doc.locate(5) is None and doc.locate(6) is None
    assert doc.locate(7) is spans[1] and doc.locate(11) is spans[1]
    assert doc.locate(12) is None and doc.locate(-3) is None
    assert doc.label(spans[1]) == "a.pdf p. ii"
    assert doc.skipped == []


def test_label_forms():
    doc = Document("", [], [])
    assert doc.label(Span(0, 1, "report.pdf", 3, "3", None)) == "report.pdf p. 3"
    assert doc.label(Span(0, 1, "src/a.py", None, None, 120)) == "src/a.py:120"
    assert doc.label(Span(0, 1, "<stdin>", None, None, None)) == "<stdin>"


def test_locate_follows_spans_that_change_after_a_call():
    doc = Document("abcdef", [Span(0, 3, "x", None, None, 1)], ["x"])
    assert doc.locate(4) is None
    doc.spans.append(Span(3, 6, "x", None, None, 2))
    assert doc.locate(4).line == 2


def test_merge_framing_matches_frame_helper():
    files = [
        SourceFile("a.txt", [Piece("one\ntwo\n", line=1)]),
        SourceFile("b.pdf", [Piece("p1", page=1, page_label="1"), Piece("p2", page=2, page_label="2")], "\n\n"),
    ]
    doc = merge(files, framed=True)
    assert doc.text == frame("a.txt", "one\ntwo\n") + frame("b.pdf", "p1\n\np2")
    assert [(s.source, s.line, s.page) for s in doc.spans] == [
        ("a.txt", 1, None), ("a.txt", 2, None), ("b.pdf", None, 1), ("b.pdf", None, 2),
    ]
    for span in doc.spans:
        assert doc.text[span.start : span.end].strip() in {"one", "two", "p1", "p2"}


def test_content_hash_is_sha256_of_text():
    import hashlib

    assert Document("héllo", [], []).content_hash() == hashlib.sha256("héllo".encode()).hexdigest()

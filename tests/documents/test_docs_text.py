"""Text files, standard input, several inputs together, and the text-input errors."""

from __future__ import annotations

import io

import pytest
from pdf_fixtures import make_pdf

from longdoc.documents import load
from longdoc.errors import InputError


def one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_text_file_is_the_prompt_as_is_with_a_span_per_line(tmp_path):
    path = tmp_path / "notes.md"
    path.write_text("# Title\n\nThe capital of Zorbia is Quillton.\nlast line without newline")
    doc = load([str(path)])
    assert doc.text == path.read_text()
    assert doc.sources == [str(path)]
    assert [s.line for s in doc.spans] == [1, 2, 3, 4]
    assert all(s.page is None and s.page_label is None for s in doc.spans)
    assert doc.spans[0].start == 0 and doc.spans[-1].end == len(doc.text)
    span = doc.locate(doc.text.index("Quillton"))
    assert span.line == 3 and doc.label(span) == f"{path}:3"
    assert doc.locate(len(doc.text)) is None and doc.locate(-1) is None


def test_crlf_and_bom_are_normalised(tmp_path):
    path = tmp_path / "win.txt"
    path.write_bytes(b"\xef\xbb\xbfone\r\ntwo\r\n")
    assert load([str(path)]).text == "one\ntwo\n"


def test_spans_are_sorted_non_overlapping_and_cover_every_line(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("".join(f"line {i}\n" for i in range(1, 101)))
    doc = load([str(path)])
    assert len(doc.spans) == 100
    assert all(a.end == b.start for a, b in zip(doc.spans, doc.spans[1:]))
    assert doc.locate(doc.text.index("line 57")).line == 57


def test_content_hash_is_stable_and_depends_on_text(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("same text\n")
    b.write_text("other text\n")
    h = load([str(a)]).content_hash()
    assert h == load([str(a)]).content_hash() and len(h) == 64
    assert h != load([str(b)]).content_hash()


def test_stdin_bytes_from_buffer(fake_stdin):
    doc = load(["-"], stdin=fake_stdin("héllo\nworld\n".encode()))
    assert doc.text == "héllo\nworld\n"
    assert doc.sources == ["<stdin>"]
    assert doc.label(doc.locate(7)) == "<stdin>:2"


def test_stdin_text_stream_without_buffer():
    assert load(["-"], stdin=io.StringIO("plain text\n")).text == "plain text\n"


def test_stdin_empty_is_an_error(fake_stdin):
    with pytest.raises(InputError, match="<stdin> is empty"):
        load(["-"], stdin=fake_stdin(b""))


def test_stdin_terminal_is_an_error():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    with pytest.raises(InputError, match="terminal"):
        load(["-"], stdin=Tty(""))


def test_several_inputs_are_framed_with_their_paths(tmp_path, fake_stdin):
    txt = tmp_path / "a.txt"
    txt.write_text("alpha\nbeta\n")
    pdf = make_pdf(tmp_path / "b.pdf", ["Page one.", "Page two."])
    doc = load([str(txt), str(pdf), "-"], stdin=fake_stdin(b"from stdin"))
    assert doc.text == (
        f"{txt}\n---\nalpha\nbeta\n\n---\n"
        f"{pdf}\n---\nPage one.\n\nPage two.\n\n---\n"
        "<stdin>\n---\nfrom stdin\n\n---\n"
    )
    assert doc.sources == [str(txt), str(pdf), "<stdin>"]
    labels = [doc.label(doc.locate(doc.text.index(w))) for w in ("beta", "Page two", "from stdin")]
    assert labels == [f"{txt}:2", f"{pdf} p. 2", "<stdin>:1"]
    assert doc.locate(0) is None  # the path header is framing, not source text


def test_missing_file(tmp_path):
    path = tmp_path / "nope.txt"
    with pytest.raises(InputError) as err:
        load([str(path)])
    assert f"No such file: {path}" in one_line(err)


def test_missing_file_among_several(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("ok\n")
    with pytest.raises(InputError, match="No such file: .*missing.pdf"):
        load([str(good), str(tmp_path / "missing.pdf")])


def test_broken_symlink_given_explicitly(tmp_path):
    link = tmp_path / "link.txt"
    link.symlink_to(tmp_path / "gone.txt")
    with pytest.raises(InputError, match=f"No such file: {link}"):
        load([str(link)])


def test_no_inputs():
    with pytest.raises(InputError, match="No input"):
        load([])


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    with pytest.raises(InputError) as err:
        load([str(path)])
    assert f"{path} is empty" in one_line(err)


def test_binary_file_given_as_text(tmp_path):
    path = tmp_path / "image.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(InputError) as err:
        load([str(path)])
    assert f"{path} looks like binary data, not text" in one_line(err)


def test_legacy_encodings_are_detected_and_recorded(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Le café au lait coûte 3 € à Montréal, près de l'église.\n".encode("cp1252"))
    doc = load([str(path)])
    assert doc.text == "Le café au lait coûte 3 € à Montréal, près de l'église.\n"
    assert doc.source_info[str(path)]["encoding"] == "cp1252"


def test_explicit_file_is_not_limited_by_max_file_bytes(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("x" * 5000)
    assert len(load([str(path)], max_file_bytes=100).text) == 5000


def test_a_single_path_string_is_accepted(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("hi\n")
    assert load(str(path)).text == "hi\n"

"""Input kinds of issue 11, one test per kind, on generated files: non-regular files, sizes from metadata, file
names that are not UTF-8, text decoding by evidence, documents with no text."""

from __future__ import annotations

import json
import os
import resource
import threading

import pytest

from longdoc.documents import load
from longdoc.errors import InputError


def one_line(err) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def load_in_thread(*args, **kw):
    """load() in another thread, so that a read that blocks fails the test instead of hanging it."""
    out = {}

    def run():
        try:
            out["doc"] = load(*args, **kw)
        except BaseException as e:
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "load() blocked"
    if "error" in out:
        raise out["error"]
    return out["doc"]


# -- non-regular files: refused before they are opened for reading ------------------------------------------
def test_a_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    with pytest.raises(InputError) as err:
        load_in_thread([str(fifo)])
    msg = one_line(err)
    assert f"{fifo} is a named pipe (FIFO), not a regular file" in msg and "longdoc ask -" in msg


def test_a_device_is_refused(tmp_path):
    with pytest.raises(InputError, match="/dev/zero is a device, not a regular file"):
        load_in_thread(["/dev/zero"])


def test_non_regular_files_inside_a_folder_are_skipped_with_a_note(tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    (root / "a.txt").write_text("alpha\n")
    os.mkfifo(root / "fifo")
    doc = load_in_thread([str(root)])
    assert doc.sources == [f"{root}/a.txt"]
    assert dict(doc.skipped)[f"{root}/fifo"] == "a named pipe (FIFO), not a regular file"


# -- size limits, from metadata, before reading -------------------------------------------------------------
def test_a_huge_sparse_file_is_refused_from_its_size_without_being_read(tmp_path):
    big = tmp_path / "sparse.log"
    with open(big, "wb") as fh:
        fh.truncate(2 * 10**9)  # 2 GB that take no disk space
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with pytest.raises(InputError) as err:
        load([str(big)])
    msg = one_line(err)
    assert f"{big} is 2.0 GB, over the 256.0 MB limit for one input" in msg and "--max-file-size" in msg
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert peak - before < 200 * 1024  # not read: the peak grew by far less than the file's 2 GB


def test_the_size_limit_is_a_setting_and_applies_to_standard_input(tmp_path, fake_stdin):
    path = tmp_path / "a.txt"
    path.write_text("x" * 5000)
    with pytest.raises(InputError, match="5.0 kB, over the 1.0 kB limit"):
        load([str(path)], max_input_bytes=1000)
    assert len(load([str(path)], max_input_bytes=10_000).text) == 5000
    with pytest.raises(InputError, match="Standard input is over the 1.0 kB limit"):
        load(["-"], stdin=fake_stdin(b"y" * 5000), max_input_bytes=1000)


# -- file names that are not valid UTF-8 --------------------------------------------------------------------
def test_non_utf8_file_names_are_read_and_shown_escaped(tmp_path):
    root = os.fsencode(tmp_path / "code")
    os.makedirs(root)
    with open(os.path.join(root, b"readme.txt"), "w") as f:
        f.write("Project Kestrel stores its settings in kestrel.toml.\n")
    with open(os.path.join(root, b"r\xe9sum\xe9.txt"), "w") as f:
        f.write("The deploy key rotates every 30 days.\n")
    doc = load([os.fsdecode(root)])
    shown = f"{tmp_path}/code/r\\xe9sum\\xe9.txt"
    assert sorted(doc.sources) == sorted([f"{tmp_path}/code/readme.txt", shown])
    assert "rotates every 30 days" in doc.text and shown in doc.text
    doc.text.encode("utf-8")  # what a tokenizer needs
    json.dumps(doc.sources, ensure_ascii=False).encode("utf-8")  # what JSON output and metadata need


# -- decoding by evidence ----------------------------------------------------------------------------------
LINES = ["[09:00:01] job fetch-data OK", "[09:00:07] job build-index FAILED: disk quota exceeded"]


@pytest.mark.parametrize("codec,bom,name", [
    ("utf-16-le", b"\xff\xfe", "utf-16-le"), ("utf-16-be", b"\xfe\xff", "utf-16-be"),
    ("utf-32-le", b"\xff\xfe\x00\x00", "utf-32-le"), ("utf-32-be", b"\x00\x00\xfe\xff", "utf-32-be"),
    ("utf-8", b"\xef\xbb\xbf", "utf-8"),
])
def test_text_with_a_byte_order_mark_is_decoded_by_it(tmp_path, codec, bom, name):
    path = tmp_path / "ps_out.txt"
    path.write_bytes(bom + ("\r\n".join(LINES) + "\r\n").encode(codec))  # PowerShell: BOM + CRLF
    doc = load([str(path)])
    assert doc.text == "\n".join(LINES) + "\n"
    assert doc.source_info[str(path)]["encoding"] == name


def test_lone_cr_line_ends_are_normalised_and_lines_cited(tmp_path):
    path = tmp_path / "mac.txt"
    path.write_bytes(b"\xef\xbb\xbf" + "\r".join(LINES).encode() + b"\r")
    doc = load([str(path)])
    assert doc.text == "\n".join(LINES) + "\n"
    assert doc.label(doc.locate(doc.text.index("build-index"))) == f"{path}:2"


def test_a_folder_of_mixed_encodings_reads_every_file(tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    (root / "notes.md").write_text("Release 2.3 ships on 4 May.\n")
    (root / "build.log").write_bytes("build 812 failed: missing key\r\n".encode("utf-16"))
    (root / "prices.csv").write_bytes("item;price\ncaf\xe9;3,50 \x80\n".encode("latin-1"))
    doc = load([str(root)])
    assert [os.path.basename(s) for s in doc.sources] == ["build.log", "notes.md", "prices.csv"] and not doc.skipped
    assert "build 812 failed" in doc.text and "café;3,50 €" in doc.text
    assert doc.source_info[f"{root}/build.log"]["encoding"] == "utf-16-le"
    assert doc.source_info[f"{root}/prices.csv"]["encoding"] == "cp1252"


def test_a_broken_byte_order_mark_says_so(tmp_path):
    path = tmp_path / "bad16.txt"
    path.write_bytes(b"\xff\xfe" + "ok".encode("utf-16-le") + b"\x00\xd8")  # a lone high surrogate
    with pytest.raises(InputError, match="UTF-16 byte-order mark but is not valid UTF-16"):
        load([str(path)])


def test_binary_without_a_mark_is_still_binary(tmp_path):
    path = tmp_path / "blob.dat"
    path.write_bytes(b"\x01\x02\x00\x00\x10" * 100)
    with pytest.raises(InputError, match="looks like binary data"):
        load([str(path)])


# -- no text, no answer -------------------------------------------------------------------------------------
def test_a_document_with_no_text_is_refused(tmp_path, fake_stdin):
    path = tmp_path / "blank.txt"
    path.write_text("  \n\t\n   \n")
    with pytest.raises(InputError, match="blank.txt has no text \\(only whitespace\\)"):
        load([str(path)])
    with pytest.raises(InputError, match="<stdin> has no text"):
        load(["-"], stdin=fake_stdin("\r\n \u3000\n".encode("utf-16")))

"""Every bad input of issue 3: one line on stderr, a non-zero exit code, no traceback, nothing stored."""

from __future__ import annotations

import os

import pytest
from cli_helpers import entries
from pdf_fixtures import make_encrypted_pdf, make_image_pdf, make_truncated_pdf, zorbia_pages


def check(result, exit_code: int, *fragments: str, store_dir=None):
    assert result.exit_code == exit_code, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    for f in fragments:
        assert f in lines[0], lines[0]
    assert result.stdout == ""
    if store_dir is not None:
        assert entries(store_dir) == []


def test_missing_file(cli_run, tmp_path, store_dir):
    check(cli_run("ask", tmp_path / "nope.pdf", "Q?"), 3, "No such file", "nope.pdf", store_dir=store_dir)


def test_directory_without_readable_text(cli_run, tmp_path, store_dir):
    d = tmp_path / "bin"
    d.mkdir()
    (d / "a.bin").write_bytes(bytes(range(256)) * 4)
    check(cli_run("ask", d, "Q?"), 3, "has no readable files", store_dir=store_dir)


def test_encrypted_pdf_needs_password(cli_run, tmp_path, store_dir):
    pdf = make_encrypted_pdf(tmp_path / "secret.pdf", zorbia_pages(2), "hunter2")
    check(cli_run("ask", pdf, "Q?"), 3, "encrypted PDF", "--password", store_dir=store_dir)
    check(cli_run("ask", pdf, "Q?", "--password", "wrong"), 3, "Wrong password", store_dir=store_dir)
    ok = cli_run("ask", pdf, "Q?", "--password", "hunter2", "--max-tokens", "2")
    assert ok.exit_code == 0, ok.output
    assert len(entries(store_dir)) == 1


def test_scanned_pdf_without_text(cli_run, tmp_path, store_dir):
    check(cli_run("ask", make_image_pdf(tmp_path / "scan.pdf"), "Q?"), 3, "scan.pdf", "no extractable text",
          store_dir=store_dir)


def test_truncated_pdf(cli_run, tmp_path, store_dir):
    pdf = make_truncated_pdf(tmp_path / "cut.pdf", zorbia_pages(3))
    result = cli_run("ask", pdf, "Q?")
    check(result, 3, "cut.pdf", store_dir=store_dir)
    assert "damaged" in result.stderr or "truncated" in result.stderr or "malformed" in result.stderr


def test_malformed_pdf(cli_run, tmp_path, store_dir):
    pdf = tmp_path / "bad.pdf"
    pdf.write_bytes(b"%PDF-1.7\n" + b"garbage " * 200)
    check(cli_run("ask", pdf, "Q?"), 3, "bad.pdf", store_dir=store_dir)


def test_zero_byte_file(cli_run, tmp_path, store_dir):
    (tmp_path / "empty.txt").write_bytes(b"")
    check(cli_run("ask", tmp_path / "empty.txt", "Q?"), 3, "empty.txt is empty", store_dir=store_dir)


def test_binary_data_as_text(cli_run, tmp_path, store_dir):
    (tmp_path / "blob.txt").write_bytes(b"\x00\x01\x02\xff" * 500)
    check(cli_run("ask", tmp_path / "blob.txt", "Q?"), 3, "blob.txt looks like binary data", store_dir=store_dir)


def test_legacy_encoding_is_read_and_recorded(cli_run, tmp_path, store_dir):
    import json

    (tmp_path / "latin.txt").write_bytes("Caf\u00e9 cr\u00e8me, na\u00efve r\u00e9sum\u00e9.\n".encode("latin-1") * 20)
    result = cli_run("ask", tmp_path / "latin.txt", "Q?", "--json", "--max-tokens", "2")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)["source_info"][str(tmp_path / "latin.txt")]
    assert info == {"format": "text", "encoding": "cp1252"}


def test_symlink_loop_in_directory_is_skipped_with_a_note(cli_run, tmp_path, store_dir):
    d = tmp_path / "repo"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_text("hello\n")
    os.symlink(d, d / "sub" / "loop")
    result = cli_run("ask", d, "Q?", "--max-tokens", "2")
    assert result.exit_code == 0, result.output
    assert f"Note: skipped {d}/sub/loop: symlink loop: leads back to {d}" in result.stderr.splitlines()


def test_longer_than_longheads_can_reach(cli_run, zorbia, store_dir):
    result = cli_run("ask", zorbia, "Q?", "--max-input-tokens", "50")
    check(result, 5, "The prompt is ", "at most 50", store_dir=store_dir)


def test_longer_than_memory_allows(cli_run, zorbia, store_dir, monkeypatch):
    import longdoc.memory

    # 64 KB available: the tiny model's keys and values (2 layers x 2 heads x 16 x 2 x 4 B = 512 B/token) fit
    # about 115 tokens, fewer than the 5-page PDF; the reach itself (metadata) does not change with memory.
    monkeypatch.setattr(longdoc.memory, "available_memory", lambda: 64 * 1024)
    result = cli_run("ask", zorbia, "Q?")
    check(result, 5, "The prompt is ", "tokens, whose keys and values need", "GiB of memory is available",
          store_dir=store_dir)


def test_ingest_too_long(cli_run, zorbia, store_dir):
    check(cli_run("ingest", zorbia, "--max-input-tokens", "50"), 5, "at most 50", store_dir=store_dir)


def test_unknown_model_path(cli_run, zorbia, tmp_path, store_dir):
    result = cli_run("ask", zorbia, "Q?", "-m", str(tmp_path / "no-model"), model=False)
    check(result, 4, "No model at", "no-model", store_dir=store_dir)
    (tmp_path / "not-a-model").mkdir()
    result = cli_run("ask", zorbia, "Q?", "-m", str(tmp_path / "not-a-model"), model=False)
    check(result, 4, "no config.json", store_dir=store_dir)


def test_bad_longheads_setting(cli_run, zorbia, store_dir, tiny_model_dir):
    result = cli_run("ask", zorbia, "Q?", "-m", tiny_model_dir, "--chunk-size", "16", "--chunks", "64", model=False)
    check(result, 2, "exceeds the model's trained length", store_dir=store_dir)


def test_chat_cannot_read_the_document_from_stdin(cli_run, store_dir):
    check(cli_run("chat", "-", input="What?\n"), 3, "standard input", store_dir=store_dir)


@pytest.mark.parametrize("where", ["prefill", "write"])
def test_ctrl_c_during_ingest_stores_nothing_and_the_next_run_rebuilds(cli_run, zorbia, store_dir, monkeypatch, where):
    import safetensors.torch

    from longdoc.engine import Engine

    if where == "prefill":  # Ctrl-C while the document is being read
        real = Engine.prefill_prefix

        def interrupted(self, ids, progress=None):
            return real(self, ids, progress=lambda done, total: (_ for _ in ()).throw(KeyboardInterrupt()))

        monkeypatch.setattr(Engine, "prefill_prefix", interrupted)
    else:  # Ctrl-C halfway through writing the tensor file
        real_save = safetensors.torch.save_file

        def half_written(tensors, filename, metadata=None):
            real_save(tensors, filename, metadata)
            data = open(filename, "rb").read()
            open(filename, "wb").write(data[: len(data) // 2])
            raise KeyboardInterrupt

        monkeypatch.setattr(safetensors.torch, "save_file", half_written)
    check(cli_run("ingest", zorbia), 130, "Interrupted; nothing was stored.", store_dir=store_dir)
    monkeypatch.undo()
    os.environ["LONGDOC_CACHE_DIR"] = str(store_dir.parent)  # undo() also reset the store_dir fixture's env
    result = cli_run("ingest", zorbia)
    assert result.exit_code == 0 and result.stdout.startswith("Stored "), result.output
    [entry] = entries(store_dir)
    assert (entry / "manifest.json").exists()
    again = cli_run("ask", zorbia, "Q?", "--json", "--max-tokens", "2")
    assert '"reused": true' in again.stdout

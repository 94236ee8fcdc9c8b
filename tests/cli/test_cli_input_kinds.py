"""`longdoc` on every input kind of issue 11 (tiny model): an answer, or one line on stderr and a non-zero exit,
never a traceback or a hang; the cache only as an optimisation; every skip reported, in pipes and in --json."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
from cli_helpers import TINY, entries

GUARD_S = 300  # hang guard for subprocesses (they import torch), far above what they need


def run_process(args, *, env=None, preexec=None, input=None):
    """The real command in a fresh process (as a user runs it), bounded by a timeout."""
    code = "from longdoc.cli.main import cli; cli()"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          timeout=GUARD_S, env={**os.environ, **(env or {})}, preexec_fn=preexec, input=input)


def one_line_error(result, exit_code):
    assert result.exit_code == exit_code, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def make_inputs(tmp, tiny_text):
    """name -> (path, expected exit code, fragment of the stderr line or of the answer's sources)."""
    from docx import Document
    from openpyxl import Workbook

    os.mkfifo(tmp / "pipe.txt")
    with open(tmp / "sparse.log", "wb") as fh:
        fh.truncate(2 * 10**9)
    (tmp / "blank.txt").write_text(" \n\t\n")
    (tmp / "ps.txt").write_bytes(("\r\n".join(tiny_text.splitlines()) + "\r\n").encode("utf-16"))
    d = Document()
    d.add_heading("Facts", 1)
    d.add_paragraph(tiny_text)
    d.save(tmp / "facts.docx")
    wb = Workbook()
    wb.active.append(["fact", tiny_text[:60]])
    wb.save(tmp / "facts.xlsx")
    (tmp / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0" + b"\x00" * 64)
    root = tmp / "folder"
    root.mkdir()
    (root / "a.txt").write_text(tiny_text)
    (root / "etc").symlink_to("/etc", target_is_directory=True)
    with open(os.path.join(os.fsencode(root), b"r\xe9sum\xe9.txt"), "w") as f:
        f.write("The deploy key rotates every 30 days.\n")
    return {
        "fifo": (tmp / "pipe.txt", 3, "is a named pipe (FIFO), not a regular file"),
        "device": ("/dev/zero", 3, "is a device, not a regular file"),
        "sparse 2 GB": (tmp / "sparse.log", 3, "is 2.0 GB, over the 256.0 MB limit"),
        "whitespace only": (tmp / "blank.txt", 3, "has no text (only whitespace)"),
        "old Excel": (tmp / "old.xls", 3, "an old binary Excel file: save it as .xlsx"),
        "utf-16 with BOM": (tmp / "ps.txt", 0, "ps.txt"),
        "docx": (tmp / "facts.docx", 0, "facts.docx"),
        "xlsx": (tmp / "facts.xlsx", 0, "facts.xlsx"),
        "folder (link to /etc, non-UTF-8 name)": (root, 0, "r\\xe9sum\\xe9.txt"),
    }


def test_every_input_kind_answers_or_says_one_line_and_the_next_call_answers(cli_run, tmp_path, store_dir):
    text = "The capital of Zorbia is Quenta.\nZorbia exports tin and salt.\n"
    for name, (path, code, fragment) in make_inputs(tmp_path, text).items():
        result = cli_run("ask", path, "What does Zorbia export?", "--json", "--max-tokens", "3")
        if code:
            assert fragment in one_line_error(result, code), name
        else:
            assert result.exit_code == 0, (name, result.output)
            assert "Traceback" not in result.output
            obj = json.loads(result.stdout)
            assert any(fragment in s for s in obj["sources"]), (name, obj["sources"])
        (tmp_path / "ok.txt").write_text(text)  # the next call, after any failure, answers
        assert cli_run("ask", tmp_path / "ok.txt", "Q?", "--max-tokens", "2").exit_code == 0, name


def test_skips_are_reported_in_pipes_and_in_json(cli_run, tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    (root / "a.txt").write_text("alpha\n")
    (root / "blob.bin").write_bytes(b"\x00\x01" * 10)
    (root / "etc").symlink_to("/etc", target_is_directory=True)
    result = cli_run("ask", root, "Q?", "--max-tokens", "2")  # stderr is not a terminal here
    assert result.exit_code == 0, result.output
    assert f"Note: skipped {root}/blob.bin: binary" in result.stderr.splitlines()
    assert f"Note: skipped {root}/etc: symlink to /etc, outside {root}" in result.stderr
    obj = json.loads(cli_run("ask", root, "Q?", "--json", "--max-tokens", "2").stdout)
    assert {s["path"]: s["reason"].split(",")[0] for s in obj["skipped"]} == {
        f"{root}/blob.bin": "binary", f"{root}/etc": "symlink to /etc"}
    quiet = cli_run("ask", root, "Q?", "-q", "--max-tokens", "2")
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_follow_links_reads_outside_the_folder(cli_run, tmp_path):
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "s.txt").write_text("shared\n")
    root = tmp_path / "proj"
    root.mkdir()
    (root / "a.txt").write_text("alpha\n")
    (root / "vendor").symlink_to(tmp_path / "shared", target_is_directory=True)
    obj = json.loads(cli_run("ask", root, "Q?", "--json", "--follow-links", "--max-tokens", "2").stdout)
    assert obj["sources"] == [f"{root}/a.txt", f"{root}/vendor/s.txt"] and obj["skipped"] == []


def test_empty_or_blank_questions_are_refused_in_one_line(cli_run, tmp_path, store_dir):
    (tmp_path / "d.txt").write_text("Some text.\n")
    for question in ("", "   ", "\n\t"):
        assert "The question is empty or only whitespace" in one_line_error(cli_run("ask", tmp_path / "d.txt", question), 3)
    assert entries(store_dir) == []


def test_an_unwritable_cache_folder_still_answers_with_one_note(cli_run, tmp_path, zorbia, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("LONGDOC_CACHE_DIR", str(blocker / "cache"))  # no one, root included, can write there
    result = cli_run("ask", zorbia, "Q?", "--max-tokens", "3")
    assert result.exit_code == 0 and result.stdout.strip(), result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("Note: the ingest was not stored (cannot write to ") and "not a directory" in line
    obj = json.loads(cli_run("ask", zorbia, "Q?", "--json", "--max-tokens", "3").stdout)
    assert obj["usage"]["ingest"]["stored"] is False and "not a directory" in obj["usage"]["ingest"]["not_stored"]
    assert "cannot write to" in one_line_error(cli_run("ingest", zorbia), 7)
    assert cli_run("cache", "ls", model=False).exit_code == 0


def test_a_full_cache_disk_answers_and_leaves_nothing_half_written(tiny_model_dir, tmp_path, zorbia):
    import resource
    import signal

    cache = tmp_path / "cache"

    def small_disk():  # every file this process writes stops at 16 kB: a full disk for the ingest's tensors
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (16_000, 16_000))

    result = run_process(["ask", zorbia, "What is the capital of Zorbia?", "-m", tiny_model_dir, *TINY,
                          "--max-tokens", "3"], env={"LONGDOC_CACHE_DIR": str(cache)}, preexec=small_disk)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() and "Traceback" not in result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("Note: the ingest was not stored")]
    assert len(notes) == 1, result.stderr
    assert entries(cache / "ingests") == []  # no entry, no temporary folder, no half-written file


def test_a_fifo_never_hangs_the_real_command(tiny_model_dir, tmp_path):
    os.mkfifo(tmp_path / "doc.txt")
    result = run_process(["ask", tmp_path / "doc.txt", "Q?", "-m", tiny_model_dir, *TINY])
    assert result.returncode == 3
    assert result.stderr.strip().startswith("Error: ") and "named pipe (FIFO)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_generating_commands_print_no_warnings(tiny_model_dir, tmp_path):
    (tmp_path / "d.txt").write_text("The capital of Zorbia is Quenta.\n")
    result = run_process(["ask", tmp_path / "d.txt", "Q?", "-m", tiny_model_dir, *TINY, "--max-tokens", "3", "-q",
                          "--no-store"], env={"PYTHONWARNINGS": "default"})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no FutureWarning from transformers, nothing else


@pytest.mark.parametrize("kind", ["nosys", "onesys"])
def test_system_line_with_templates_that_restrict_system_turns(cli_run, tiny_model_dir, tmp_path, kind):
    from restricted_templates import restricted_copy

    model = restricted_copy(tiny_model_dir, tmp_path / kind, kind)
    (tmp_path / "d.txt").write_text("The capital of Zorbia is Quenta.\n")
    result = cli_run("ask", tmp_path / "d.txt", "Q?", "--system", "Answer briefly.", "--max-tokens", "2", "-m", model,
                     *TINY, model=False)
    assert result.exit_code == 0, result.output


@pytest.fixture
def read_only_cache(tmp_path):
    """A read-only file system holding a cache folder with one stored ingest (needs root and mount; else skip)."""
    mnt = tmp_path / "ro"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root and permission to mount a tmpfs")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_a_read_only_cache_file_system(cli_run, read_only_cache, zorbia, monkeypatch):
    monkeypatch.setenv("LONGDOC_CACHE_DIR", str(read_only_cache))
    assert cli_run("ingest", zorbia).exit_code == 0  # one entry, stored while it was writable
    subprocess.run(["mount", "-o", "remount,ro", str(read_only_cache)], check=True)
    again = cli_run("ask", zorbia, "Q?", "--json", "--max-tokens", "2")  # the stored ingest is still used
    assert again.exit_code == 0 and json.loads(again.stdout)["usage"]["ingest"]["reused"] is True
    tmp = read_only_cache.parent / "other.txt"
    tmp.write_text("Another document.\n")
    other = cli_run("ask", tmp, "Q?", "--max-tokens", "2")
    assert other.exit_code == 0 and other.stdout.strip()
    assert "Note: the ingest was not stored (cannot write to" in other.stderr and "read-only file system" in other.stderr
    assert "read-only file system" in one_line_error(cli_run("ingest", tmp), 7)
    assert cli_run("cache", "ls", model=False).exit_code == 0
    assert "Cannot remove the stored ingest" in one_line_error(cli_run("cache", "clear", model=False), 7)


def test_a_question_that_is_not_valid_utf8_is_answered(tiny_model_dir, tmp_path):
    (tmp_path / "d.txt").write_text("The capital of Zorbia is Quenta.\n")
    code = "from longdoc.cli.main import cli; cli()"
    args = [os.fsencode(sys.executable), b"-c", code.encode(), b"ask", os.fsencode(tmp_path / "d.txt"),
            b"Caf\xe9 capital?", b"-m", os.fsencode(tiny_model_dir), *[a.encode() for a in TINY],
            b"--max-tokens", b"2", b"--no-store", b"--system", b"R\xe9ponds."]
    result = subprocess.run(args, capture_output=True, timeout=GUARD_S)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert b"Traceback" not in result.stderr

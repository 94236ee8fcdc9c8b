"""Directory walks: framing, .gitignore (root and nested), skipped files, symlinks, errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pdf_fixtures import make_pdf

from longdoc.documents import load
from longdoc.errors import InputError


def write(root: Path, rel: str, content: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


@pytest.fixture
def repo(tmp_path):
    """A small repo; files are created out of order to show the walk sorts them."""
    root = tmp_path / "repo"
    write(root, "src/util.py", "def helper():\n    return 42\n")
    write(root, "src/.gitignore", "secret.txt\n!keep.log\n")
    write(root, "src/secret.txt", "hunter2\n")
    write(root, "src/keep.log", "kept despite *.log\n")
    write(root, "src/main.py", "import util\nprint(util.helper())\n")
    write(root, "debug.log", "ignored by root\n")
    write(root, "build/out.txt", "ignored directory\n")
    write(root, "README.md", "# Repo\n")
    write(root, ".gitignore", "*.log\nbuild/\n")
    write(root, ".git/config", "[core]\n")
    write(root, ".git/HEAD", "ref: refs/heads/main\n")
    return root


def test_directory_is_framed_in_sorted_order_honouring_gitignore(repo):
    doc = load([str(repo)])
    r = str(repo)
    assert doc.sources == [
        f"{r}/.gitignore",
        f"{r}/README.md",
        f"{r}/src/.gitignore",
        f"{r}/src/keep.log",
        f"{r}/src/main.py",
        f"{r}/src/util.py",
    ]
    assert doc.text == (
        f"{r}/.gitignore\n---\n*.log\nbuild/\n\n---\n"
        f"{r}/README.md\n---\n# Repo\n\n---\n"
        f"{r}/src/.gitignore\n---\nsecret.txt\n!keep.log\n\n---\n"
        f"{r}/src/keep.log\n---\nkept despite *.log\n\n---\n"
        f"{r}/src/main.py\n---\nimport util\nprint(util.helper())\n\n---\n"
        f"{r}/src/util.py\n---\ndef helper():\n    return 42\n\n---\n"
    )
    for absent in ("hunter2", "ignored by root", "ignored directory", "[core]", "refs/heads"):
        assert absent not in doc.text
    assert doc.skipped == []


def test_walk_order_and_hash_are_stable(repo):
    first = load([str(repo)])
    (repo / "src" / "util.py").touch()
    second = load([str(repo)])
    assert first.text == second.text and first.content_hash() == second.content_hash()


def test_locate_in_a_directory_points_at_file_and_line(repo):
    doc = load([str(repo)])
    span = doc.locate(doc.text.index("print(util"))
    assert doc.label(span) == f"{repo}/src/main.py:2"
    assert span.page is None and span.line == 2


def test_display_paths_keep_the_path_as_given(repo, monkeypatch):
    monkeypatch.chdir(repo.parent)
    doc = load(["repo"])
    assert doc.sources[0] == "repo/.gitignore"
    assert doc.text.startswith("repo/.gitignore\n---\n")


def test_binary_oversized_empty_and_whitespace_files_are_skipped_and_recorded_pdfs_and_legacy_text_read(tmp_path):
    root = tmp_path / "mixed"
    write(root, "ok.txt", "fine\n")
    write(root, "blob.bin", b"abc\x00def")
    write(root, "huge.txt", "y" * 500)
    write(root, "latin.txt", "naïve café".encode("latin-1"))
    write(root, "empty.txt", b"")
    write(root, "blank.txt", " \n\t\n")
    make_pdf(root / "paper.pdf", ["A paper."])
    doc = load([str(root)], max_file_bytes=100)
    assert doc.sources == [f"{root}/latin.txt", f"{root}/ok.txt", f"{root}/paper.pdf"]
    assert "naïve café" in doc.text and "A paper." in doc.text
    reasons = dict(doc.skipped)
    assert reasons[f"{root}/blob.bin"] == "binary"
    assert reasons[f"{root}/huge.txt"].startswith("too large (500 B > max_file_bytes 100 B")
    assert reasons[f"{root}/empty.txt"] == "empty"
    assert reasons[f"{root}/blank.txt"] == "no text (whitespace only)"
    assert [p for p, _ in doc.skipped] == sorted(p for p, _ in doc.skipped)


def test_binary_detection_only_sniffs_the_first_8_kib(tmp_path):
    root = tmp_path / "d"
    write(root, "late_nul.txt", "a" * 9000 + "\x00")
    doc = load([str(root)])
    assert doc.sources == [f"{root}/late_nul.txt"]


def test_nested_gitignore_can_reinclude_and_is_relative_to_its_directory(tmp_path):
    root = tmp_path / "r"
    write(root, ".gitignore", "*.tmp\n")
    write(root, "a/.gitignore", "!x.tmp\n/only_here.txt\n")
    write(root, "a/x.tmp", "re-included\n")
    write(root, "a/y.tmp", "still ignored\n")
    write(root, "a/only_here.txt", "ignored (anchored to a/)\n")
    write(root, "a/b/only_here.txt", "not ignored: anchor is a/\n")
    write(root, "b/x.tmp", "ignored: a/.gitignore does not apply here\n")
    doc = load([str(root)])
    assert doc.sources == [f"{root}/.gitignore", f"{root}/a/.gitignore", f"{root}/a/b/only_here.txt", f"{root}/a/x.tmp"]


def test_links_inside_the_folder_are_followed_links_out_of_it_are_skipped_with_a_note(tmp_path):
    outside = write(tmp_path, "outside/shared.txt", "shared text\n")
    root = tmp_path / "proj"
    write(root, "main.txt", "main\n")
    write(root, "docs/guide.txt", "guide\n")
    (root / "guide-link.txt").symlink_to(root / "docs" / "guide.txt")  # inside: followed (once)
    (root / "link.txt").symlink_to(outside)
    (root / "etc").symlink_to("/etc", target_is_directory=True)  # a system folder: never walked by default
    (root / "dangling.txt").symlink_to(tmp_path / "missing")
    doc = load([str(root)])
    assert doc.sources == [f"{root}/docs/guide.txt", f"{root}/main.txt"]
    reasons = dict(doc.skipped)
    assert reasons[f"{root}/dangling.txt"].startswith("broken symlink")
    assert reasons[f"{root}/guide-link.txt"] == f"same file as {root}/docs/guide.txt"
    assert reasons[f"{root}/link.txt"].startswith(f"symlink to {outside}, outside {root}")
    assert "--follow-links" in reasons[f"{root}/etc"]
    assert not any(p.startswith(f"{root}/etc/") for p in doc.sources)


def test_follow_links_opts_in_to_links_out_of_the_folder(tmp_path):
    outside = write(tmp_path, "outside/shared.txt", "shared text\n")
    root = tmp_path / "proj"
    write(root, "main.txt", "main\n")
    (root / "vendor").symlink_to(outside.parent, target_is_directory=True)
    doc = load([str(root)], follow_links=True)
    assert doc.sources == [f"{root}/main.txt", f"{root}/vendor/shared.txt"]


def test_a_symlink_loop_is_skipped_with_a_note_and_the_rest_is_read(tmp_path):
    root = tmp_path / "loopy"
    write(root, "a/file.txt", "text\n")
    write(root, "b.txt", "more\n")
    os.symlink("..", root / "a" / "up", target_is_directory=True)
    doc = load([str(root)])
    assert doc.sources == [f"{root}/a/file.txt", f"{root}/b.txt"]
    assert dict(doc.skipped)[f"{root}/a/up"] == f"symlink loop: leads back to {root}"


def test_gitignored_symlink_loop_is_not_followed(tmp_path):
    root = tmp_path / "loopy"
    write(root, "a/file.txt", "text\n")
    write(root, ".gitignore", "up\n")
    os.symlink("..", root / "a" / "up", target_is_directory=True)
    assert f"{root}/a/file.txt" in load([str(root)]).sources


def test_directory_with_no_readable_text_files(tmp_path):
    root = tmp_path / "assets"
    write(root, "logo.png", b"\x89PNG\x00\x00")
    write(root, "data.bin", b"\x00" * 10)
    with pytest.raises(InputError) as err:
        load([str(root)])
    msg = str(err.value)
    assert "\n" not in msg and f"{root} has no readable files" in msg and "2 binary" in msg


def test_empty_directory(tmp_path):
    (tmp_path / "void").mkdir()
    with pytest.raises(InputError, match="void has no readable files"):
        load([str(tmp_path / "void")])


def test_all_files_gitignored(tmp_path):
    root = tmp_path / "ign"
    write(root, ".gitignore", "*\n")
    write(root, "a.txt", "a\n")
    with pytest.raises(InputError, match="no readable files .*matched by .gitignore"):
        load([str(root)])


def test_directory_plus_a_file(tmp_path, repo):
    notes = write(tmp_path, "notes.txt", "see the repo\n")
    doc = load([str(notes), str(repo / "src")])
    src = f"{repo}/src"
    assert doc.sources == [str(notes), f"{src}/.gitignore", f"{src}/keep.log", f"{src}/main.py", f"{src}/util.py"]
    assert doc.text.startswith(f"{notes}\n---\nsee the repo\n\n---\n{repo}/src/.gitignore\n---\n")


def test_single_file_directory_is_still_framed(tmp_path):
    root = tmp_path / "one"
    write(root, "only.txt", "solo\n")
    assert load([str(root)]).text == f"{root}/only.txt\n---\nsolo\n\n---\n"

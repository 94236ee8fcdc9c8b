"""The docs run: every code block in README.md and examples/README.md is executed here or is a marked shell example.

- ```python blocks run as written, in a folder holding the files they name (real PDFs made with reportlab), on
  the tiny model where a block names the embedded one: each substitution below must still match the README, so
  a changed snippet fails here instead of going stale. Blocks run with autograd on (no torch.no_grad()).
- ```bash blocks carry a `<!-- shell example ... -->` comment (their expected output follows them: a ```text
  block or the table after them); every `longdoc ...` line in them is parsed by the real CLI (commands, options
  and their values must exist), and every `python examples/...` line names a script that exists.
- The README's main job (`./run.sh ask examples/data/harbour-report.md "Who built the new breakwater?"`) runs
  for real on the embedded model and gives the answer the README shows.
"""

from __future__ import annotations

import contextlib
import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "examples" / "README.md"]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.M | re.S)


def code_blocks(path: Path) -> list[tuple[str, str, int, str]]:
    """(language, code, line number, the text line just before the fence) of every fenced block in `path`."""
    text = path.read_text()
    out = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        out.append((m.group(1), m.group(2), line, before))
    return out


def tiny_substitutions(tiny: str) -> dict[str, str]:
    """What turns the README's embedded-model snippets into tiny-model ones (each must match somewhere)."""
    lh = "chunk_size=16, chunks=4"
    return {
        "EngineSettings().build()": f"EngineSettings(model={tiny!r}, {lh}).build()",
        "load_model()": f"load_model({tiny!r})",
        "LongHeadsConfig(chunk_size=256, chunks=8)": f"LongHeadsConfig({lh})",
        "ChatLongDoc(max_tokens=128)": f"ChatLongDoc(model={tiny!r}, {lh}, max_tokens=8)",
        "LongDocLLM(max_tokens=128)": f"LongDocLLM(model={tiny!r}, {lh}, max_tokens=8)",
        "max_new_tokens=128": "max_new_tokens=8",
        "max_new_tokens=20": "max_new_tokens=4",
    }


PYTHON_BLOCKS = [(p, line, code) for p in DOCS for lang, code, line, _ in code_blocks(p) if lang == "python"]
BASH_BLOCKS = [(p, line, code, before) for p in DOCS for lang, code, line, before in code_blocks(p) if lang == "bash"]


def test_the_docs_have_the_blocks_this_file_checks():
    assert len(PYTHON_BLOCKS) >= 4 and len(BASH_BLOCKS) >= 8
    kinds = {lang for p in DOCS for lang, *_ in code_blocks(p)}
    assert kinds <= {"python", "bash", "text", ""}, kinds  # a new kind of block needs a rule here


@pytest.fixture
def doc_folder(tmp_path, monkeypatch):
    from pdf_fixtures import make_pdf

    pages = ["The report was written by the Quillton Harbour Authority.", "It concludes that the pier needs repair."]
    for name in ("book.pdf", "report.pdf"):
        make_pdf(tmp_path / name, pages)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("path, line, code", PYTHON_BLOCKS, ids=[f"{p.parent.name}/{p.name}:{n}" for p, n, _ in PYTHON_BLOCKS])
def test_python_blocks_run(path, line, code, tiny_model_dir, doc_folder, capsys):
    subs = tiny_substitutions(str(tiny_model_dir))
    for old, new in subs.items():
        code = code.replace(old, new)
    if SERVER in code:  # a client snippet: against the real server on a free port, serving the tiny model
        with _server(tiny_model_dir, doc_folder) as (url, model, doc_id):
            code = code.replace(f"http://{SERVER}", url).replace("SmolLM2-135M-Instruct.Q4_1", model)
            code = code.replace('"doc-…"', repr(doc_id))
            exec(compile(code, f"{path.name}:{line}", "exec"), {"__name__": "__readme__"})
    else:
        exec(compile(code, f"{path.name}:{line}", "exec"), {"__name__": "__readme__"})
    assert capsys.readouterr().out.strip() or "print(" not in code


SERVER = "127.0.0.1:8000"  # where the README's client snippets find `longdoc serve`


@contextlib.contextmanager
def _server(tiny_model_dir, folder):
    """`longdoc serve` on the tiny model (tests/serve/serve_helpers.running), with report.pdf uploaded and a
    report.txt beside it: (base URL, model id, the uploaded document's id)."""
    import sys

    import httpx

    sys.path.insert(0, str(ROOT / "tests" / "serve"))
    from serve_helpers import TINY, running

    from longdoc.serve.settings import ServeSettings
    from longdoc.settings import EngineSettings

    engine = EngineSettings(model=str(tiny_model_dir), **TINY).build()
    (folder / "report.txt").write_text("The report was written by the Quillton Harbour Authority.\n\n" * 20)
    settings = ServeSettings(documents_dir=folder / "documents", store_dir=folder / "store", max_tokens=8)
    with running(engine, settings) as url:
        with open(folder / "report.pdf", "rb") as fh:
            r = httpx.post(f"{url}/v1/longdoc/documents", files={"files": ("report.pdf", fh)}, timeout=120)
        r.raise_for_status()
        yield url, engine.name, r.json()["id"]


def test_every_substitution_still_matches_the_readme(tiny_model_dir):
    text = "\n".join(code for _, _, code in PYTHON_BLOCKS)
    missing = [old for old in tiny_substitutions(str(tiny_model_dir)) if old not in text]
    assert not missing, f"README snippets changed; update tests/test_docs.py substitutions: {missing}"


def _commands(code: str) -> list[list[str]]:
    """The command lines of a shell block (continuations joined, comments dropped, `./run.sh longdoc` and
    `./run.sh ask` mapped to the longdoc command they run)."""
    out = []
    for raw in code.replace("\\\n", " ").splitlines():
        try:
            words = shlex.split(raw, comments=True)
        except ValueError:
            continue
        if "|" in raw.split("#")[0] or "&&" in raw:  # pipelines and alternatives ("ls | rm KEY") are prose
            continue
        if words[:2] == ["./run.sh", "longdoc"]:
            words = words[1:]
        elif words[:1] == ["./run.sh"] and words[1:2] != ["test"]:
            words = ["longdoc"] + words[1:]
        if words:
            out.append(words)
    return out


def _parse(args: list[str]) -> None:
    """Parse `longdoc ARGS` with the real CLI, without running it: unknown commands, options or bad values raise."""
    from longdoc.cli.main import cli

    ctx = cli.make_context("longdoc", list(args), resilient_parsing=False)
    while isinstance(ctx.command, click.Group) and ctx.protected_args + ctx.args:
        rest = ctx.protected_args + ctx.args
        name, cmd, rest = ctx.command.resolve_command(ctx, rest)
        ctx = cmd.make_context(name, rest, parent=ctx)


@pytest.mark.parametrize("path, line, code, before", BASH_BLOCKS,
                         ids=[f"{p.parent.name}/{p.name}:{n}" for p, n, _, _ in BASH_BLOCKS])
def test_bash_blocks_are_marked_shell_examples_with_valid_commands(path, line, code, before, monkeypatch, tmp_path):
    assert before.startswith("<!-- shell example"), f"{path.name}:{line}: mark it `<!-- shell example: ... -->`"
    monkeypatch.chdir(ROOT)
    for words in _commands(code):
        if words[0] == "longdoc":
            _parse(words[1:])
        elif words[0] == "python" and words[1].split("/")[0] in ("examples", "benchmarks", "scripts"):
            assert (ROOT / words[1]).is_file(), words
        elif words[0] == "python" and words[1:3] == ["-m", "pytest"]:
            continue
        elif words[0] in ("./run.sh", "pip", "apt-get", "cat", "bash", "ray", "curl", "export"):
            assert words[0] != "./run.sh" or words[1] == "test"
        else:
            pytest.fail(f"{path.name}:{line}: no rule for the command {words[0]!r}")


def test_ci_runs_the_readmes_test_command():
    """`.ci/run` runs exactly the README's second command (read from the README, not copied)."""
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "./run.sh test" in readme and "grep" in ci and "README.md" in ci
    blocks = [code.strip() for lang, code, _, _ in code_blocks(ROOT / "README.md") if lang == "bash"]
    assert blocks[:2] == ['./run.sh ask examples/data/harbour-report.md "Who built the new breakwater?"', "./run.sh test"]


@pytest.mark.real_model
def test_the_main_job_answers():
    """The README's first command, past its set-up: `longdoc ask` on the shipped report, the embedded model."""
    from longdoc.cli.main import cli

    readme = (ROOT / "README.md").read_text()
    expected = re.search(r"```text\n(The new breakwater.*)\n```", readme).group(1)
    out = CliRunner().invoke(cli, ["ask", str(ROOT / "examples/data/harbour-report.md"), "Who built the new breakwater?",
                                   "--threads", "2", "--no-store"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "Tamsin Orrell" in out.stdout and "Tamsin Orrell" in expected

"""CLI test fixtures: a per-test cache folder, a CliRunner bound to the tiny model, small real PDFs (helpers the
tests import are in cli_helpers.py: a module named conftest is ambiguous once several test folders run)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli_helpers import TINY
from pdf_fixtures import make_pdf, zorbia_pages


@pytest.fixture
def store_dir(tmp_path, monkeypatch):
    """An empty cache folder for this test; returns its ingests folder."""
    root = tmp_path / "cache"
    monkeypatch.setenv("LONGDOC_CACHE_DIR", str(root))
    monkeypatch.delenv("LONGDOC_CACHE_MAX", raising=False)
    monkeypatch.delenv("LONGDOC_STORE_DTYPE", raising=False)
    return root / "ingests"


@pytest.fixture
def cli_run(tiny_model_dir, store_dir):
    """cli_run("ask", path, question, ...) -> click Result, with the tiny model and its LongHeads settings."""
    from longdoc.cli.main import cli

    runner = CliRunner()

    def run(command, *args, model=True, input=None):
        extra = ["-m", str(tiny_model_dir), *TINY] if model else []
        return runner.invoke(cli, [command, *map(str, args), *extra], input=input, catch_exceptions=False)

    return run


@pytest.fixture
def zorbia(tmp_path):
    return make_pdf(tmp_path / "zorbia.pdf", zorbia_pages(5))

"""Shared fixtures for the document-loader tests; the PDF writers live in pdf_fixtures.py."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

if str(Path(__file__).parent) not in sys.path:  # also under --import-mode=importlib
    sys.path.insert(0, str(Path(__file__).parent))

from pdf_fixtures import (  # noqa: F401  (re-exported for other tests)
    make_encrypted_pdf,
    make_image_pdf,
    make_labeled_pdf,
    make_pdf,
    make_truncated_pdf,
    pdf_bytes,
    zorbia_pages,
)


@pytest.fixture
def zorbia_pdf(tmp_path):
    """A 5-page PDF; page i says "Page i says the capital of Zorbia is Quillton-i."."""
    return make_pdf(tmp_path / "zorbia.pdf", zorbia_pages(5))


class FakeStdin:
    """Something shaped like sys.stdin: text wrapper with a bytes `.buffer`, not a terminal."""

    def __init__(self, data: bytes):
        self.buffer = io.BytesIO(data)

    def isatty(self) -> bool:
        return False


@pytest.fixture
def fake_stdin():
    """A factory: fake_stdin(b"...") gives a stdin-like object to pass to load(stdin=...)."""
    return FakeStdin

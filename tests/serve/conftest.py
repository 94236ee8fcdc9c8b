"""Fixtures: the real server on a free loopback port over a tiny random-weight model (serve_helpers.running)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from serve_helpers import TINY, running  # noqa: E402


@pytest.fixture(scope="session")
def tiny_engine(tiny_model_dir):
    from longdoc.settings import EngineSettings

    return EngineSettings(model=str(tiny_model_dir), **TINY).build()


@pytest.fixture
def serve_settings(tmp_path):
    from longdoc.serve.settings import ServeSettings

    return ServeSettings(documents_dir=tmp_path / "documents", store_dir=tmp_path / "store", max_tokens=8)


@pytest.fixture
def base_url(tiny_engine, serve_settings):
    tiny_engine.clear_prefixes()
    with running(tiny_engine, serve_settings) as url:
        yield url


@pytest.fixture
def model_id(tiny_engine):
    return tiny_engine.name

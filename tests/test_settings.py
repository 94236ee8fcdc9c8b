"""EngineSettings: one rule for window / chunk size / chunks (CLI, integrations, eval), one model spelling,
one field list for the integrations."""

from types import SimpleNamespace

import pytest

from longdoc.errors import ConfigError
from longdoc.settings import EngineSettings

MODEL = SimpleNamespace(max_position_embeddings=8192)  # the embedded SmolLM2's trained length


def resolved(**kw):
    cfg = EngineSettings(**kw).longheads_config(MODEL)
    return cfg.chunk_size, cfg.chunks


@pytest.mark.parametrize("given,want", [
    ({}, (256, 8)),
    ({"window": 2048, "chunks": 4}, (512, 4)),  # two of the three given: the third follows (was refused)
    ({"window": 4096}, (256, 16)),
    ({"window": 1024, "chunk_size": 128}, (128, 8)),
    ({"chunk_size": 128}, (128, 8)),
    ({"chunks": 16}, (256, 16)),
    ({"window": 2048, "chunk_size": 256, "chunks": 8}, (256, 8)),
])
def test_the_window_rule(given, want):
    assert resolved(**given) == want


@pytest.mark.parametrize("given,message", [
    ({"window": 100, "chunk_size": 16}, "window 100 is not a multiple of the chunk size 16: use window 96"),
    ({"window": 1000, "chunks": 3}, "window 1000 is not a multiple of chunks 3"),
    ({"window": 2048, "chunk_size": 256, "chunks": 4}, "window 2048 is not chunk size 256 x chunks 4 = 1024"),
    ({"window": 1000}, "not a multiple of the default chunk size 256"),
    ({"window": 16384}, "exceeds the model's trained length 8192"),
    ({"chunks": 0}, "chunks must be a positive whole number"),
])
def test_settings_that_cannot_work_name_the_fix(given, message):
    with pytest.raises(ConfigError, match=message):
        EngineSettings(**given).longheads_config(MODEL)


def test_full_attention_has_no_longheads_config():
    assert EngineSettings(longheads=False, window=2048).longheads_config(MODEL) is None


def test_one_spelling_per_model_and_threads_do_not_split_engines(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert EngineSettings(model="m").key() == EngineSettings(model=str(tmp_path / "m")).key()
    assert EngineSettings(model=None).key() == EngineSettings(model="smollm2").key() == EngineSettings(model="default").key()
    assert EngineSettings(threads=1).key() == EngineSettings(threads=2).key()
    assert EngineSettings(chunks=8).key() != EngineSettings().key()


def test_the_integrations_take_exactly_the_engine_settings():
    pytest.importorskip("pydantic")
    from longdoc.integrations._shared import EngineFields

    assert list(EngineFields.model_fields) == EngineSettings.names()
    fields = EngineFields(window=2048, chunks=4, threads=2)
    assert fields.engine_settings() == EngineSettings(window=2048, chunks=4, threads=2)

"""The ingest store: atomic writes, checksum-verified loads, LRU eviction, keys; a writer killed mid-write.
The stored formats of keys and values (bfloat16, float16, float32, int8): test_store_dtype.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from longdoc.longheads.cache import LongHeadsCache
from longdoc.errors import ConfigError
from longdoc.store import Store, make_key, parse_size


def fake_cache(n_tokens: int, seed: int = 0) -> LongHeadsCache:
    """A LongHeadsCache of 2 layers holding `n_tokens` random keys/values (no model needed)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for i in range(2):
        state[f"{i}.keys"] = torch.randn(1, 2, n_tokens, 16, generator=g)
        state[f"{i}.values"] = torch.randn(1, 2, n_tokens, 16, generator=g)
        state[f"{i}.summaries"] = torch.randn(1, 4, n_tokens // 16, 1, 16, generator=g)
        state[f"{i}.align"] = torch.tensor(16)
    return LongHeadsCache.from_state_dict(state)


def same(a: LongHeadsCache, b: LongHeadsCache) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_save_then_load_round_trips(tmp_path):
    store = Store(tmp_path, kv_dtype="float32")  # exact; the rounded formats: test_store_dtype.py
    cache = fake_cache(48)
    entry = store.save("k1", list(range(48)), cache, {"sources": ["a.pdf"]})
    assert entry.tokens == 48 and entry.manifest["sources"] == ["a.pdf"] and entry.size > 48 * 2 * 2 * 16 * 4
    ids, loaded = store.load("k1")
    assert ids == list(range(48)) and same(cache, loaded)
    assert [p.name for p in tmp_path.iterdir()] == ["k1"]  # no temporary folders left


@pytest.mark.parametrize("damage", ["flip", "truncate", "manifest", "delete"])
def test_damaged_entry_is_removed_not_used(tmp_path, damage):
    store = Store(tmp_path)
    store.save("k", [1, 2, 3], fake_cache(32))
    tensors = tmp_path / "k" / "cache.safetensors"
    data = bytearray(tensors.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
        tensors.write_bytes(bytes(data))
    elif damage == "truncate":
        tensors.write_bytes(bytes(data[: len(data) // 3]))
    elif damage == "manifest":
        (tmp_path / "k" / "manifest.json").write_text("{not json")
    else:
        tensors.unlink()
    assert store.load("k") is None
    assert not (tmp_path / "k").exists()
    store.save("k", [1, 2, 3], fake_cache(32))  # rebuilt cleanly
    assert store.load("k")[0] == [1, 2, 3]


def test_lru_eviction_keeps_the_most_recently_used(tmp_path, monkeypatch):
    clock = iter(range(1_000_000, 2_000_000))  # a clock that always moves on: the order is the order of calls
    monkeypatch.setattr("longdoc.store.time.time", lambda: float(next(clock)))
    one = Store(tmp_path).save("a", [0], fake_cache(64)).size
    store = Store(tmp_path, max_bytes=int(one * 2.5))
    store.save("b", [0], fake_cache(64, seed=1))
    store.load("a")  # a is now more recently used than b
    assert [e.key for e in store.entries()] == ["a", "b"]
    store.save("c", [0], fake_cache(64, seed=2))  # three entries do not fit: b goes
    assert sorted(e.key for e in store.entries()) == ["a", "c"]
    assert store.total_bytes() <= store.max_bytes


def test_an_entry_larger_than_the_cap_is_not_stored(tmp_path):
    store = Store(tmp_path, max_bytes=1000)
    assert store.save("big", [0], fake_cache(64)) is None
    assert store.entries() == []


def test_size_cap_from_env_and_units(tmp_path, monkeypatch):
    monkeypatch.setenv("LONGDOC_CACHE_MAX", "1.5GB")
    assert Store(tmp_path).max_bytes == 1_500_000_000
    assert parse_size("20 GB") == 20 * 10**9 and parse_size("500MB") == 500 * 10**6 and parse_size("2GiB") == 2 << 30
    with pytest.raises(ConfigError, match="Cannot read the size"):
        parse_size("lots")


def test_key_depends_on_everything_that_changes_the_prefix():
    base = make_key("h", "model", {"chunk_size": 256}, "chat/v1")
    assert base == make_key("h", "model", {"chunk_size": 256}, "chat/v1")
    others = {make_key("h2", "model", {"chunk_size": 256}, "chat/v1"), make_key("h", "other", {"chunk_size": 256}, "chat/v1"),
              make_key("h", "model", {"chunk_size": 128}, "chat/v1"), make_key("h", "model", {"chunk_size": 256}, "completion/v1")}
    assert base not in others and len(others) == 4


def test_rm_and_clear(tmp_path):
    store = Store(tmp_path)
    store.save("abc", [0], fake_cache(16))
    store.save("abd", [0], fake_cache(16))
    assert [e.key for e in store.resolve("abc")] == ["abc"] and len(store.resolve("ab")) == 2
    assert store.remove("abc") and not store.remove("abc")
    assert store.clear() == 1 and store.entries() == []


def test_writer_killed_mid_write_leaves_no_entry_and_the_next_run_rebuilds(tmp_path):
    """A real SIGKILL of a process halfway through writing the tensor file."""
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        import safetensors.torch
        from test_store import fake_cache
        from longdoc.store import Store

        real = safetensors.torch.save_file
        def dying(tensors, filename, metadata=None):
            real(tensors, filename, metadata)
            data = open(filename, "rb").read()
            open(filename, "wb").write(data[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        safetensors.torch.save_file = dying
        Store({str(tmp_path)!r}).save("k", [1, 2], fake_cache(64))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(".tmp-")  # the half-written folder, never an entry
    store = Store(tmp_path, kv_dtype="float32")
    assert store.entries() == [] and store.load("k") is None
    cache = fake_cache(64)
    store.save("k", [1, 2], cache)
    assert [p.name for p in tmp_path.iterdir()] == ["k"]  # the dead writer's folder was cleaned up
    ids, loaded = store.load("k")
    assert ids == [1, 2] and same(cache, loaded)
    assert json.loads((tmp_path / "k" / "manifest.json").read_text())["tokens"] == 2

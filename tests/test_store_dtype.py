"""Stored formats of keys and values (longdoc/store.py, KV_DTYPES): bfloat16 (default), float16, float32, int8.

On a tiny random Llama with SmolLM2's head size (64; the int8 scale costs 4 bytes per head row, so the size bound
needs a realistic head) and a document of 10 chunks and 4 tokens: file sizes, round-trip error bounds per format,
exact chunk state, greedy answers and logits from a loaded entry against the live prefill, float32 = the exact
bytes of before, and old, other-format or damaged entries treated as misses. The end-to-end path (sessions,
engine dtype) is at the bottom; the CLI option is in tests/cli/test_cli_store_dtype.py.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from longdoc import LongHeadsConfig, enable_longheads
from longdoc.errors import ConfigError
from longdoc.generate import decode_one, prefill
from longdoc.longheads.cache import LongHeadsCache
from longdoc.prefix import new_cache
from longdoc.store import KV_DTYPES, Store, dequantize_int8, encode_state, quantize_int8

CFG = LongHeadsConfig(chunk_size=64, chunks=4)  # window 256 = the tiny model's trained length
DOC_LEN = 10 * 64 + 4  # ends 4 tokens into a chunk: the pending queries (a fixed cost, < one chunk) stay small
STEPS = 8  # tokens of the greedy answer


def tokens(n: int, seed: int) -> list[int]:
    return torch.randint(10, 512, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


DOC, QUESTION = tokens(DOC_LEN, 0), tokens(12, 1)


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv("LONGDOC_STORE_DTYPE", raising=False)


@pytest.fixture(scope="module")
def model():
    from tiny_models import make_tiny_llama

    m = make_tiny_llama(n_heads=4, n_kv_heads=2, layers=2, head_dim=64, vocab=512)
    enable_longheads(m, CFG)
    return m


@pytest.fixture(scope="module")
def live(model):
    """The document prefilled now (what the store saves); tests copy it before decoding from it."""
    cache = new_cache(model)
    with torch.inference_mode():
        prefill(model, cache, torch.tensor([DOC]), exact_from=len(DOC))
    return cache


def copy(cache: LongHeadsCache) -> LongHeadsCache:
    return LongHeadsCache.from_state_dict(cache.state_dict())


def stored(tmp_path, live, kv_dtype: str) -> tuple[Store, LongHeadsCache]:
    store = Store(tmp_path / kv_dtype, kv_dtype=kv_dtype)
    store.save("k", DOC, live)
    ids, loaded = store.load("k")
    assert ids == DOC
    return store, loaded


def answer(model, cache, forced: list[int] | None = None) -> tuple[list[int], torch.Tensor]:
    """Greedy tokens after the question, and the logits (STEPS + 1, vocab) of each step; `forced`: feed these
    tokens instead of the greedy ones (teacher forcing, so the logits of two caches are comparable step by step)."""
    with torch.inference_mode():
        logits = prefill(model, cache, torch.tensor([QUESTION]), exact_from=len(DOC) + len(QUESTION) - CFG.exact_tail)
        out, steps = [], [logits]
        for i in range(STEPS):
            out.append(int(logits.argmax(-1)))
            logits = decode_one(model, cache, torch.tensor([[forced[i] if forced else out[-1]]]))
            steps.append(logits)
    return out, torch.cat(steps)


# -- the setting ---------------------------------------------------------------------------------------------
def test_the_setting_default_env_and_bad_values(tmp_path, monkeypatch):
    assert Store(tmp_path).kv_dtype == "float16"
    assert Store(tmp_path, kv_dtype="BFloat16").kv_dtype == "bfloat16"
    monkeypatch.setenv("LONGDOC_STORE_DTYPE", "int8")
    assert Store(tmp_path).kv_dtype == "int8" and Store(tmp_path, kv_dtype="float32").kv_dtype == "float32"
    for bad, where in (({"kv_dtype": "fp8"}, "'fp8'"), ({}, "'int4' (env LONGDOC_STORE_DTYPE)")):
        monkeypatch.setenv("LONGDOC_STORE_DTYPE", "int4")
        with pytest.raises(ConfigError) as e:
            Store(tmp_path, **bad)
        assert where in str(e.value) and "\n" not in str(e.value)
        assert str(e.value).endswith("use one of bfloat16, float16, float32, int8.")


# -- size ----------------------------------------------------------------------------------------------------
def test_the_rounded_formats_are_half_and_a_quarter_of_float32(tmp_path, live):
    size = {}
    for kv in KV_DTYPES:
        entry = Store(tmp_path / kv, kv_dtype=kv).save("k", DOC, live)
        size[kv] = (entry.path / "cache.safetensors").stat().st_size
        assert entry.manifest["kv_dtype"] == kv and entry.manifest["tensor_bytes"] == size[kv]
    kv_fp32 = sum(t.numel() * 4 for n, t in live.state_dict().items() if n.endswith((".keys", ".values")))
    assert size["float32"] > kv_fp32  # the keys and values are most of it
    assert size["bfloat16"] <= 0.55 * size["float32"] and size["float16"] <= 0.55 * size["float32"]
    assert size["int8"] <= 0.30 * size["float32"]


def test_an_entry_larger_than_the_cap_as_stored_is_not_stored(tmp_path, live):
    """The cap is compared with the stored size: an entry that fits in bfloat16 but not in float32 is stored."""
    bf16 = Store(tmp_path / "a", kv_dtype="bfloat16").save("k", DOC, live).size
    cap = int(bf16 * 1.2)
    assert Store(tmp_path / "b", max_bytes=cap, kv_dtype="float32").save("k", DOC, live) is None
    assert Store(tmp_path / "c", max_bytes=cap, kv_dtype="bfloat16").save("k", DOC, live) is not None


# -- round trip ----------------------------------------------------------------------------------------------
def file_dtypes(store: Store) -> dict[str, torch.dtype]:
    with safe_open(str(store.root / "k" / "cache.safetensors"), "pt") as f:
        return {n: f.get_slice(n).get_dtype() for n in f.keys()}


@pytest.mark.parametrize("kv", ["bfloat16", "float16", "int8"])
def test_a_round_trip_rounds_keys_and_values_only_and_within_the_formats_bound(tmp_path, live, kv):
    store, loaded = stored(tmp_path, live, kv)
    want, got = live.state_dict(), loaded.state_dict()
    assert want.keys() == got.keys()
    dtypes = file_dtypes(store)
    for name in want:
        assert got[name].dtype == want[name].dtype  # back in the compute dtype (float32 here)
        if not name.endswith((".keys", ".values")):  # summaries, pending queries, chunk choices: exact
            assert torch.equal(got[name], want[name]), name
            continue
        x, y = want[name], got[name]
        err = (y - x).abs()
        if kv == "int8":
            assert dtypes[name] == "I8" and dtypes[name + ".scale"] == "F32"
            row_max = x.abs().amax(dim=-1, keepdim=True)  # one scale per (layer, kv head, token): max|x| / 127
            assert bool((err <= row_max / 254 * (1 + 1e-5) + 1e-7).all()), name  # half a step of its own row
        else:
            assert dtypes[name] == {"bfloat16": "BF16", "float16": "F16"}[kv]
            unit = {"bfloat16": 2.0**-8, "float16": 2.0**-11}[kv]  # the format's unit roundoff
            tiny = 0.0 if kv == "bfloat16" else 2.0**-25  # float16 subnormals: an absolute half step
            assert bool((err <= unit * x.abs() + tiny).all()), name
        assert float(err.max()) > 0  # really rounded: the bound is not met by storing float32


def test_int8_scales_are_per_row_not_per_chunk():
    """A row of small numbers next to a row of large ones keeps its own precision."""
    x = torch.stack([torch.linspace(-1e-3, 1e-3, 64), torch.linspace(-100, 100, 64)])
    q, scale = quantize_int8(x)
    assert q.dtype == torch.int8 and scale.shape == (2, 1)
    err = (dequantize_int8(q, scale) - x).abs()
    assert float(err[0].max()) <= 1e-3 / 254 * (1 + 1e-5) and float(err[1].max()) <= 100 / 254 * (1 + 1e-5)
    zero_q, zero_scale = quantize_int8(torch.zeros(3, 8))
    assert not bool(zero_q.any()) and not bool(dequantize_int8(zero_q, zero_scale).isnan().any())


def test_float16_past_its_range_is_stored_in_bfloat16(tmp_path):
    state = copy_state_with_big_value()
    with pytest.raises(ValueError, match="float16's range"):  # the encoder alone refuses it
        encode_state(dict(state.state_dict()), "float16")
    store = Store(tmp_path, kv_dtype="float16")
    entry = store.save("k", [1, 2], state)
    assert entry.manifest["kv_dtype"] == "bfloat16" and entry.manifest["kv_fallback"] is True
    ids, back = store.load("k")
    assert ids == [1, 2] and float(back.layers[0].keys[0, 0, 3, 5]) == 1e5 // 512 * 512  # bf16 of 1e5: 99840
    assert Store(tmp_path, kv_dtype="bfloat16").load("k") is not None  # it is a bfloat16 entry
    assert Store(tmp_path, kv_dtype="int8").load("k") is None


def copy_state_with_big_value() -> LongHeadsCache:
    k = torch.randn(1, 2, 32, 16)
    k[0, 0, 3, 5] = 1e5
    return LongHeadsCache.from_state_dict({"0.keys": k, "0.values": torch.randn(1, 2, 32, 16),
                                           "0.align": torch.tensor(16)})


# -- answers -------------------------------------------------------------------------------------------------
def test_float32_is_the_exact_bytes_and_logits_of_before(tmp_path, model, live):
    store, loaded = stored(tmp_path, live, "float32")
    want = live.state_dict()
    assert set(file_dtypes(store)) == {*want, "prefix_ids"}  # format 2's tensors, nothing added
    with safe_open(str(store.root / "k" / "cache.safetensors"), "pt") as f:
        assert all(torch.equal(f.get_tensor(n), want[n]) for n in want)
    ref_tokens, ref_logits = answer(model, copy(live))
    got_tokens, got_logits = answer(model, loaded)
    assert got_tokens == ref_tokens and torch.equal(got_logits, ref_logits)


@pytest.mark.parametrize("kv,tol", [("bfloat16", 2e-3), ("float16", 5e-4), ("int8", 4e-3)])
def test_a_loaded_rounded_entry_answers_the_same_tokens(tmp_path, model, live, kv, tol):
    """Greedy tokens equal to the live prefill's; logits (teacher-forced on the live tokens) within `tol`.

    The tolerance is what the rounding allows on this model, whose logits are about 0.5 in size: bfloat16
    rounds keys and values by up to 2^-8 (0.4%), int8 by half a step of 1/127 of each row's largest entry;
    measured: 2.3e-4 (bfloat16), 3e-5 (float16), 8e-4 (int8), so each bound has 3-9x room and a cache read
    wrongly (a scale off, keys swapped with values) misses it by far."""
    _, loaded = stored(tmp_path, live, kv)
    ref_tokens, ref_logits = answer(model, copy(live))
    got_tokens, _ = answer(model, loaded)
    assert got_tokens == ref_tokens
    _, again = stored(tmp_path / "again", live, kv)
    _, forced_logits = answer(model, again, forced=ref_tokens)
    diff = float((forced_logits - ref_logits).abs().max())
    assert 0 < diff <= tol


# -- misses --------------------------------------------------------------------------------------------------
def test_an_entry_of_another_format_is_a_miss_then_replaced(tmp_path, live):
    Store(tmp_path, kv_dtype="int8").save("k", DOC, live)
    bf16 = Store(tmp_path, kv_dtype="bfloat16")
    assert bf16.load("k") is None
    assert (tmp_path / "k").exists()  # left alone: the next save replaces it
    bf16.save("k", DOC, live)
    assert bf16.load("k") is not None and Store(tmp_path, kv_dtype="int8").load("k") is None
    assert [p.name for p in tmp_path.iterdir()] == ["k"]


def test_a_format_2_entry_is_a_miss_and_rebuilt(tmp_path, live):
    """What format 2 wrote: float32 tensors and a manifest without kv_dtype / compute_dtype."""
    store = Store(tmp_path, kv_dtype="float32")
    store.save("k", DOC, live)
    manifest_path = tmp_path / "k" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["kv_dtype"], manifest["compute_dtype"]
    manifest_path.write_text(json.dumps(manifest))
    assert store.load("k") is None and Store(tmp_path).load("k") is None
    store.save("k", DOC, live)
    assert store.load("k")[0] == DOC


@pytest.mark.parametrize("damage", ["no scales", "bf16 labelled int8", "bad compute dtype"])
def test_a_damaged_entry_with_a_valid_checksum_is_removed_and_rebuilt(tmp_path, live, damage):
    """A file whose checksum matches its manifest but whose tensors do not match its format."""
    from longdoc.store import file_sha256

    from safetensors.torch import load_file, save_file

    store = Store(tmp_path, kv_dtype="int8")
    store.save("k", DOC, live)
    entry = tmp_path / "k"
    manifest = json.loads((entry / "manifest.json").read_text())
    if damage == "no scales":
        state = {n: t for n, t in load_file(str(entry / "cache.safetensors")).items() if not n.endswith(".scale")}
        save_file(state, str(entry / "cache.safetensors"))
    elif damage == "bf16 labelled int8":
        Store(tmp_path / "other", kv_dtype="bfloat16").save("k", DOC, live)
        (entry / "cache.safetensors").write_bytes((tmp_path / "other" / "k" / "cache.safetensors").read_bytes())
    else:
        manifest["compute_dtype"] = "nn"
    tensors = entry / "cache.safetensors"
    manifest.update(tensor_bytes=tensors.stat().st_size, sha256=file_sha256(tensors))
    (entry / "manifest.json").write_text(json.dumps(manifest))
    assert store.load("k") is None and not entry.exists()
    store.save("k", DOC, live)
    assert store.load("k")[0] == DOC


# -- the compute dtype ---------------------------------------------------------------------------------------
def test_loading_converts_to_the_asked_compute_dtype(tmp_path, live):
    store = Store(tmp_path, kv_dtype="bfloat16")
    store.save("k", DOC, live)
    assert json.loads((tmp_path / "k" / "manifest.json").read_text())["compute_dtype"] == "float32"
    _, as_saved = store.load("k")  # None: what it was computed in
    assert as_saved.layers[0].keys.dtype == torch.float32 and as_saved.layers[0].summaries.dtype == torch.float32
    _, on_gpu = store.load("k", dtype=torch.bfloat16)  # e.g. a CUDA engine in bf16 reading a CPU ingest
    layer = on_gpu.layers[0]
    assert {layer.keys.dtype, layer.values.dtype, layer.summaries.dtype, layer.pending_q.dtype} == {torch.bfloat16}
    assert torch.equal(layer.keys, live.layers[0].keys.to(torch.bfloat16))


def test_a_session_answers_the_same_from_a_stored_default_format_ingest(tiny_model_dir, tmp_path):
    """The real path (DocumentSession -> ensure_prefix -> Store.load(dtype=the engine's)) with the real tokenizer
    and prompt frame: the second session loads the default-format ingest and answers token for token the same."""
    from longdoc.engine import Engine
    from longdoc.generate import SamplingParams
    from longdoc.qa.session import DocumentSession, text_document

    engine = Engine(str(tiny_model_dir), LongHeadsConfig(chunk_size=16, chunks=4))
    document = text_document(" ".join(f"Line {i}: the river was calm and boats drifted." for i in range(40)))
    params = SamplingParams(max_new_tokens=8, ignore_eos=True, stop_on_repeat=False)  # 8 tokens of a random model
    answers, reused = [], []
    for _ in range(2):
        engine.clear_prefixes()
        session = DocumentSession(engine, document, store=Store(tmp_path))
        reply = session.reply("What was calm?", params)
        answers.append("".join(reply))
        reused.append(session.ingest.reused)
        assert reply.usage.completion_tokens == 8
    entry = Store(tmp_path).entries()[0]
    assert entry.manifest["kv_dtype"] == "float16" and entry.tokens > 64  # past the window: LongHeads reads it
    assert reused == [False, True] and answers[0] == answers[1] and answers[0].strip()

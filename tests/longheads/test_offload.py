"""KV offload (LongHeadsConfig(offload="cpu")): keys and values live on a storage device, the compute device holds
chunk summaries and pending queries only, and the outputs are those of the cache kept on the compute device.

On CPU the storage device is the compute device, so what is checked is the mechanism: the attention never gets
the whole cache from `update` (only the new tokens), reads the in-window prefix through `head` and the selected
chunks through the store's gather, and gives the same logits. On CUDA (`--device cuda`) the store is pinned host
memory and the GPU holds no key or value buffer.
"""

import pytest
import torch

from longdoc import LongHeadsCache, LongHeadsConfig, enable_longheads
from longdoc.generate import decode_one, prefill
from longdoc.prefix import new_cache

from tiny_models import make_tiny_llama

CFG = LongHeadsConfig(chunk_size=8, chunks=4, exact_tail=5)


def run(model, cfg, ids, steps=6):
    enable_longheads(model, cfg)
    cache = new_cache(model)
    with torch.inference_mode():
        logits = [prefill(model, cache, ids, block=40)]
        for _ in range(steps):
            logits.append(decode_one(model, cache, logits[-1].argmax(-1, keepdim=True)))
    return torch.stack(logits), cache


@pytest.mark.parametrize("cfg", [CFG, CFG.replace(score="keybound"), LongHeadsConfig.paper(chunk_size=8, chunks=4)],
                         ids=["default", "keybound", "paper"])
def test_offloaded_cache_gives_the_same_logits(cfg, dev):
    model = dev.model(make_tiny_llama(n_heads=4, n_kv_heads=2, layers=2))
    ids = torch.randint(0, 512, (1, 101)).to(dev.device)
    ref, _ = run(model, cfg, ids)
    out, cache = run(model, cfg.replace(offload="cpu"), ids)
    assert isinstance(cache, LongHeadsCache) and cache.offload == "cpu"
    # the same arithmetic on the same numbers, only the keys' home differs: exact in float32 on CPU; on CUDA a
    # copied (contiguous) in-window prefix may get another kernel tiling, so bf16 gets its rounding (2e-2)
    dev.close(out, ref, atol=1e-6, rtol=1e-6, bf16=(2e-2, 2e-2))


def test_compute_device_holds_summaries_and_pending_queries_only(dev):
    model = dev.model(make_tiny_llama(n_heads=4, n_kv_heads=2, layers=2))
    _, cache = run(model, CFG.replace(offload="cpu"), torch.randint(0, 512, (1, 101)).to(dev.device))
    for layer in cache.layers:
        assert layer.offloaded and layer.store_device == torch.device("cpu")
        assert layer._kbuf.device.type == layer._vbuf.device.type == "cpu"
        assert layer.summaries.device == layer.pending_q.device == dev.device  # on the compute device
        assert layer.summaries.shape[2] == 107 // 8 and layer.pending_q.shape[2] == 107 % 8
        if dev.is_cuda:
            assert layer._kbuf.is_pinned() and layer._vbuf.is_pinned()


def test_update_hands_the_attention_only_the_new_tokens():
    """An offloaded layer's `update` returns the T new keys, not the cache: whatever the attention uses of the
    past comes from the store (`head` inside the window, the gathered chunks past it)."""
    from longdoc.longheads.cache import LongHeadsLayer

    layer = LongHeadsLayer(offload="cpu")
    k, v = torch.randn(1, 2, 20, 16), torch.randn(1, 2, 20, 16)
    kk, vv = layer.update(k[:, :, :12], v[:, :, :12])
    assert kk.shape[2] == 12
    kk, vv = layer.update(k[:, :, 12:], v[:, :, 12:])
    assert kk.shape[2] == 8 and layer.length == 20
    hk, hv = layer.head(20, "cpu")
    torch.testing.assert_close(hk, k)
    torch.testing.assert_close(hv, v)


def test_a_plain_cache_is_offloaded_by_the_config():
    """A cache made without the setting (LongHeadsCache()) is moved to the store at its first attention call."""
    model = make_tiny_llama()
    enable_longheads(model, CFG.replace(offload="cpu"))
    cache = LongHeadsCache()
    with torch.inference_mode():
        prefill(model, cache, torch.randint(0, 512, (1, 50)))
    assert all(layer.offloaded for layer in cache.layers)


def test_offload_setting_is_checked_and_keeps_old_config_ids():
    from longdoc.errors import ConfigError

    with pytest.raises(ConfigError, match="offload"):
        LongHeadsConfig(offload="disk")
    assert "offload" not in CFG.to_dict() and CFG.replace(offload="cpu").to_dict()["offload"] == "cpu"
    assert LongHeadsConfig.from_dict(CFG.replace(offload="cpu").to_dict()).offload == "cpu"

"""Models split over devices (`device_map="auto"` through accelerate): the LongHeads cache and the attention's
buffers follow each layer's own device.

Without two GPUs the split is forced: accelerate keeps layer 1 on "disk" (its weights on the meta device, brought
in by accelerate's hooks for each forward), and the cache is fed key states on two devices (cpu, meta) to check
that every layer's buffers are made where that layer's keys are. On CUDA with one GPU, layer 1 goes to cuda:0 and
the rest stays on the CPU: a real two-device map.
"""

import pytest
import torch

from longdoc import LongHeadsCache, LongHeadsConfig, enable_longheads
from longdoc.generate import decode_one, prefill
from longdoc.longheads.attention import Runtime
from longdoc.longheads.rope import Rope

from tiny_models import make_tiny_llama

CFG = LongHeadsConfig(chunk_size=8, chunks=4, exact_tail=5)
pytest.importorskip("accelerate")


def test_cache_buffers_follow_each_layers_key_device():
    cache = LongHeadsCache()
    cache.reserve(64)
    for layer_idx, device in enumerate(["cpu", "meta"]):
        k = torch.randn(1, 2, 10, 16).to(device)
        keys, _ = cache.update(k, k, layer_idx)
        assert keys.device.type == device
    assert [layer._kbuf.device.type for layer in cache.layers] == ["cpu", "meta"]
    assert [layer._kbuf.shape[2] for layer in cache.layers] == [64, 64]


def test_workspaces_and_rope_frequencies_are_kept_per_device():
    """One Runtime serves every layer: a layer on another device must not evict (and reallocate) the buffers of
    the layers on the first, every call."""
    rt = Runtime(CFG, Rope(torch.ones(8)))
    a = rt.workspace("kg", (4, 4), torch.empty(0))
    b = rt.workspace("kg", (4, 4), torch.empty(0, device="meta"))
    assert a.device.type == "cpu" and b.device.type == "meta"
    assert rt.workspace("kg", (4, 4), torch.empty(0)).data_ptr() == a.data_ptr()
    cos, _ = rt.rope.cos_sin(torch.arange(3, device="meta"), torch.float32, "meta")
    assert cos.device.type == "meta" and set(d.type for d in rt.rope._inv_freq_on) == {"cpu", "meta"}


@pytest.mark.parametrize("split", ["disk", "cuda"])
def test_a_model_split_by_device_map_gives_the_unsplit_logits(split, dev, tmp_path):
    from transformers import AutoModelForCausalLM

    if split == "cuda" and not dev.is_cuda:
        pytest.skip("needs --device cuda")
    model = make_tiny_llama(n_heads=4, n_kv_heads=2, layers=2)
    model.save_pretrained(tmp_path)
    device_map = {"model.embed_tokens": "cpu", "model.rotary_emb": "cpu", "model.layers.0": "cpu",
                  "model.layers.1": split if split == "disk" else 0, "model.norm": "cpu", "lm_head": "cpu"}
    split_model = AutoModelForCausalLM.from_pretrained(tmp_path, device_map=device_map, dtype=torch.float32,
                                                       offload_folder=str(tmp_path / "offload"),
                                                       attn_implementation="sdpa").eval()
    assert split_model.hf_device_map["model.layers.1"] == device_map["model.layers.1"]
    ids = torch.randint(0, 512, (1, 100))
    out = []
    for m in (model, split_model):
        enable_longheads(m, CFG)
        cache = LongHeadsCache()
        with torch.inference_mode():
            logits = prefill(m, cache, ids)
            out.append(torch.stack([logits, decode_one(m, cache, logits.argmax(-1, keepdim=True))]).cpu())
    if split == "cuda":
        assert cache.layers[1]._kbuf.device.type == "cuda" and cache.layers[0]._kbuf.device.type == "cpu"
    # float32 everywhere; CUDA's kernels sum in another order than the CPU's
    torch.testing.assert_close(out[1], out[0], atol=1e-4 if split == "cuda" else 1e-5, rtol=1e-4)

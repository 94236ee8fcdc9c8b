"""Every supported family and RoPE variant on tiny random configs: inside the window LongHeads is the unpatched
model; a re-rotated key equals the model's own rotary module applied at the new position; beyond the window the
fast path equals the plain reference; what LongHeads cannot run is refused in one line.

Families: Llama (rope_type default, linear, dynamic, llama3, yarn), Mistral, Qwen2, Qwen3 (q/k norms), Phi-3
(fused qkv, partial rotary, longrope). Gemma 2/3 are refused (mixed sliding/global layers), as are ALiBi and
absolute-position models.
"""

import importlib

import pytest
import torch
from transformers import AttentionInterface, DynamicCache

from longdoc import LongHeadsCache, LongHeadsConfig, disable_longheads, enable_longheads
from longdoc.errors import ConfigError
from longdoc.longheads.plan import cache_kwargs
from longdoc.longheads.rope import Rope, find_rotary

from tiny_models import make_tiny_llama

CFG = LongHeadsConfig(chunk_size=8, chunks=4, exact_tail=5)  # window 32
PHI3 = dict(pad_token_id=0, bos_token_id=1, eos_token_id=2, partial_rotary_factor=0.5)
VARIANTS = {  # id -> (model_type, rope_parameters, extra config)
    "llama-default": ("llama", None, {}),
    "llama-linear": ("llama", {"rope_type": "linear", "factor": 2.0}, {}),
    "llama-dynamic": ("llama", {"rope_type": "dynamic", "factor": 2.0}, {}),
    "llama-llama3": ("llama", {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                               "original_max_position_embeddings": 64}, {}),
    "llama-yarn": ("llama", {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64}, {}),
    "mistral": ("mistral", None, {}),
    "qwen2": ("qwen2", None, {}),
    "qwen2-yarn": ("qwen2", {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64}, {}),
    "qwen3": ("qwen3", None, {}),
    "phi3-partial": ("phi3", None, PHI3),
    "phi3-longrope": ("phi3", {"rope_type": "longrope", "short_factor": [1.0, 1.1, 1.2, 1.3],
                               "long_factor": [2.0, 3.0, 4.0, 5.0], "original_max_position_embeddings": 64},
                     {**PHI3, "original_max_position_embeddings": 64}),
}


def make(variant):
    model_type, rope, extra = VARIANTS[variant]
    return make_tiny_llama(n_heads=4, n_kv_heads=2, layers=2, model_type=model_type, rope_parameters=rope, **extra)


@pytest.fixture(params=list(VARIANTS), ids=list(VARIANTS))
def variant(request):
    return request.param


@torch.inference_mode()
def test_inside_the_window_equals_the_unpatched_model(variant):
    model = make(variant)
    ids = torch.randint(0, 512, (1, 25))
    ref_cache = DynamicCache()
    ref = model(ids, **cache_kwargs(model, ref_cache)).logits
    ref_steps = [model(torch.tensor([[t]]), **cache_kwargs(model, ref_cache)).logits for t in (3, 7, 11)]
    enable_longheads(model, CFG)
    cache = LongHeadsCache()
    torch.testing.assert_close(model(ids, **cache_kwargs(model, cache)).logits, ref, atol=1e-5, rtol=1e-4)
    for t, r in zip((3, 7, 11), ref_steps):  # decode steps, still inside the 32-token window
        torch.testing.assert_close(model(torch.tensor([[t]]), **cache_kwargs(model, cache)).logits, r,
                                   atol=1e-5, rtol=1e-4)


@torch.inference_mode()
def test_rerotated_keys_equal_the_models_own_rotary_at_the_new_position(variant):
    """k rotated by the model at p, then moved by `shift` with longdoc's Rope == k rotated by the model at
    p + shift: the model's own rotary module (its cos/sin, attention_scaling included) and its own
    apply_rotary_pos_emb (partial rotary included), with the frequencies LongHeads runs with (enabled)."""
    model = make(variant)
    enable_longheads(model, CFG)  # pins length-dependent variants to their short-sequence frequencies
    rotary = find_rotary(model)
    modeling = importlib.import_module(type(model).__module__)
    rope = Rope.from_model(model)
    raw = torch.randn(1, 2, 5, 16, dtype=torch.float64).float()
    old = torch.tensor([[3, 40, 200, 700, 1500]])
    shift = torch.tensor([250, -32, 1024, -600, 800])

    def rotated(positions):
        cos, sin = rotary(raw, positions)
        return modeling.apply_rotary_pos_emb(raw, raw, cos, sin)[1]

    moved = rope.rotate(rotated(old), shift)
    torch.testing.assert_close(moved, rotated(old + shift), atol=2e-3, rtol=1e-3)
    if rope.rotary_dim < raw.shape[-1]:  # partial rotary: the channels past rotary_dim never move
        torch.testing.assert_close(moved[..., rope.rotary_dim:], raw[..., rope.rotary_dim:])
    wrong = Rope(torch.ones_like(rope.inv_freq) * 0.5)  # and the check can fail: other frequencies are caught
    assert (wrong.rotate(rotated(old), shift) - rotated(old + shift)).abs().max() > 0.1


@torch.inference_mode()
def test_beyond_the_window_the_fast_path_equals_the_reference(variant):
    """Past the window, the vectorised path on the model's own post-RoPE queries and keys (captured at layer 0
    of a real forward) equals the plain per-token reference (reference.py) with the model's Rope; the logits
    stay finite and differ from full attention."""
    from transformers.masking_utils import AttentionMaskInterface

    from longdoc.longheads.attention import ATTN_NAME, attend, longheads_attention
    from longdoc.longheads.cache import LongHeadsLayer
    from longdoc.longheads.reference import reference_attention

    model = make(variant)
    ids = torch.randint(0, 512, (1, 60))
    full = model(ids).logits
    enable_longheads(model, CFG)
    seen = []

    def recording(module, query, key, value, attention_mask, **kwargs):
        seen.append((module, query.clone(), key.clone(), value.clone(), kwargs.get("scaling")))
        return longheads_attention(module, query, key, value, attention_mask, **kwargs)

    AttentionInterface.register("longheads_recording", recording)
    AttentionMaskInterface.register("longheads_recording", AttentionMaskInterface._global_mapping[ATTN_NAME])
    model.set_attn_implementation("longheads_recording")
    lh = model(ids, **cache_kwargs(model, LongHeadsCache())).logits
    model.set_attn_implementation(ATTN_NAME)
    assert torch.isfinite(lh).all() and (lh[:, 40:] - full[:, 40:]).abs().max() > 1e-3
    module, q, k, v, scaling = seen[0]
    scale = scaling or q.shape[-1] ** -0.5
    rt = module.longheads
    layer = LongHeadsLayer()
    layer.update(k, v)
    got = attend(rt, layer, q, k, v, scale, exact_from=0)
    ref = reference_attention(rt.config, rt.rope, q, k, v, q.shape[2], scale, exact_from=0)
    torch.testing.assert_close(got, ref, atol=2e-5, rtol=1e-4)


def test_length_dependent_rope_is_pinned_and_restored():
    """Dynamic NTK grows its frequencies after a forward past the trained length; LongHeads pins them back to the
    short-sequence ones (the window never leaves the trained length) and disable restores the variant."""
    model = make("llama-dynamic")
    rotary = find_rotary(model)
    short = rotary.original_inv_freq.clone()
    with torch.inference_mode():
        model(torch.randint(0, 512, (1, 300)))  # past max_position_embeddings=256: frequencies scaled
    assert not torch.allclose(rotary.inv_freq, short)
    enable_longheads(model, CFG)
    torch.testing.assert_close(rotary.inv_freq, short)
    with torch.inference_mode():
        model(torch.randint(0, 512, (1, 300)), **cache_kwargs(model, LongHeadsCache()))
    torch.testing.assert_close(rotary.inv_freq, short)  # still pinned after a long LongHeads forward
    disable_longheads(model)
    assert rotary.rope_type == "dynamic"


def test_longrope_window_is_bounded_by_the_original_length():
    model = make("phi3-longrope")  # original_max_position_embeddings 64, max_position_embeddings 256
    with pytest.raises(ConfigError, match="trained length 64"):
        enable_longheads(model, LongHeadsConfig(chunk_size=16, chunks=8))


@pytest.mark.parametrize("model_type, pattern", [("gpt2", "absolute position"), ("bloom", "ALiBi"),
                                                 ("gemma2", "sliding-window and global")])
def test_unsupported_architectures_get_one_line(model_type, pattern):
    from transformers import AutoConfig, AutoModelForCausalLM

    extra = {"n_embd": 32, "n_layer": 1, "n_head": 2} if model_type == "gpt2" else {}
    if model_type == "bloom":
        extra = {"hidden_size": 32, "n_layer": 1, "n_head": 2}
    if model_type == "gemma2":
        extra = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                 "num_key_value_heads": 1, "head_dim": 16}
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, vocab_size=128, **extra))
    with pytest.raises(ConfigError, match=pattern) as e:
        enable_longheads(model, CFG)
    message = str(e.value)
    assert "\n" not in message and model_type in message and "Llama" in message and "Qwen3" in message


def test_mixed_sliding_and_global_layers_are_refused():
    model = make_tiny_llama(model_type="qwen2", use_sliding_window=True, sliding_window=16, max_window_layers=1)
    with pytest.raises(ConfigError, match="sliding_attention"):
        enable_longheads(model, CFG)


def test_an_all_sliding_model_keeps_its_window_as_a_bound():
    model = make_tiny_llama(model_type="mistral", sliding_window=16)
    with pytest.raises(ConfigError, match="sliding window of 16 tokens.*--window 16"):
        enable_longheads(model, CFG)  # window 32 > 16
    enable_longheads(model, LongHeadsConfig(chunk_size=4, chunks=4))  # window 16 fits

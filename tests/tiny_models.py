"""Tiny randomly initialised models of the supported families, for fast tests of the mechanism."""

import torch


def make_tiny_llama(n_heads=4, n_kv_heads=2, layers=2, max_positions=256, vocab=512, seed=0, model_type="llama",
                    rope_parameters=None, head_dim=16, **extra):
    """A randomly initialised model of a supported family. n_kv_heads < n_heads gives GQA.

    rope_parameters: the config's RoPE dict (rope_type, factor, ...); None: default RoPE with theta 10000.
    head_dim: per-head size (16; SmolLM2 and LLaMA use 64 and 128).
    extra: further config fields (partial_rotary_factor, sliding_window, layer_types, ...)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(seed)
    rope = {"rope_type": "default", "rope_theta": 10000.0, **(rope_parameters or {})}
    config = AutoConfig.for_model(
        model_type, vocab_size=vocab, hidden_size=16 * n_heads, intermediate_size=32 * n_heads,
        num_hidden_layers=layers, num_attention_heads=n_heads, num_key_value_heads=n_kv_heads,
        max_position_embeddings=max_positions, head_dim=head_dim, rope_parameters=rope, tie_word_embeddings=False,
        **extra,
    )
    return AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").eval()

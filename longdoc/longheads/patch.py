"""Turn LongHeads on and off on a loaded transformers model, through transformers' own extension points:
`AttentionInterface` for the attention function and `AttentionMaskInterface` for its (absent) mask.

Supported: decoder-only RoPE models whose attention modules call the registered attention function with
post-RoPE queries/keys: Llama 2/3/3.1+ (and SmolLM2), Mistral, Qwen2/2.5, Qwen3 (q/k norms come before RoPE),
Phi-3 (fused qkv projection, partial rotary). Every rope_type transformers has for them (default, linear,
dynamic, llama3, yarn, longrope) is re-rotated with the model's own frequencies (rope.py). Batch size is free;
padding is not.

Sliding-window layers: a model whose layers all share one sliding window (Mistral v0.1: 4096, Phi-3-mini:
2047) keeps it as a bound: the LongHeads window (K x l tokens, inside which every attention happens, at
positions remapped into it) must fit inside the sliding window, so no layer ever sees two tokens farther apart
than it was trained to. Models that mix sliding and global layers (Gemma 2/3, Qwen2 with use_sliding_window)
are refused: their local layers would need a second attention rule. Refused with one line naming the
architecture: position schemes other than RoPE (ALiBi, absolute positions, none).
"""

from __future__ import annotations

from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface

from .attention import ATTN_NAME, Runtime, longheads_attention
from .config import LongHeadsConfig
from longdoc.errors import ConfigError
from .rope import Rope, pin_frequencies, unpin_frequencies

SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3", "phi3")
FAMILIES = "Llama 2/3 (and SmolLM2), Mistral, Qwen2/2.5, Qwen3, Phi-3"
WHY_NOT = {  # model_type -> what stops LongHeads
    "gemma2": "it mixes sliding-window and global layers and soft-caps attention logits",
    "gemma3": "it mixes sliding-window and global layers with a RoPE base per layer type",
    "gemma3_text": "it mixes sliding-window and global layers with a RoPE base per layer type",
    "bloom": "it uses ALiBi position biases, not RoPE", "mpt": "it uses ALiBi position biases, not RoPE",
    "falcon": "LongHeads needs RoPE attention it can re-rotate (Falcon may use ALiBi)",
    "gpt2": "it uses absolute position embeddings, not RoPE", "opt": "it uses absolute position embeddings, not RoPE",
    "gpt_bigcode": "it uses absolute position embeddings, not RoPE", "bert": "it is not a decoder-only RoPE model",
}


def check_supported(model_config) -> None:
    """Raise ConfigError (one line naming the architecture and the supported families) unless LongHeads can
    run on this model config."""
    model_type = getattr(model_config, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        why = WHY_NOT.get(model_type, "LongHeads needs a decoder-only RoPE model of a family it is tested on")
        raise ConfigError(f"model type {model_type!r} is not supported by LongHeads: {why}; supported: {FAMILIES}.")
    layer_types = getattr(model_config, "layer_types", None) or []
    if len(set(layer_types)) > 1:
        raise ConfigError(f"{model_type} model mixes {' and '.join(sorted(set(layer_types)))} layers, which "
                          "LongHeads does not support: load it with use_sliding_window=False, or use full attention "
                          "(--no-longheads where offered).")


def check_sliding_window(model_config, config: LongHeadsConfig) -> None:
    """A model whose every layer has one sliding window W: the LongHeads window must be <= W (ConfigError)."""
    w = getattr(model_config, "sliding_window", None)
    uses = getattr(model_config, "use_sliding_window", True)  # Qwen2/3 carry a window they do not use by default
    layer_types = getattr(model_config, "layer_types", None) or []
    if layer_types and set(layer_types) != {"sliding_attention"}:
        return
    if w and uses and config.window > w:
        raise ConfigError(f"The model's layers attend within a sliding window of {w} tokens; the LongHeads window "
                          f"{config.window} (chunk size {config.chunk_size} x {config.chunks} chunks) must fit in "
                          f"it: use --window {w // config.chunk_size * config.chunk_size} or fewer --chunks.")


def _no_mask(*args, attention_mask=None, **kwargs):
    """LongHeads builds its own causal structure from positions, so no (n x n) mask is ever materialised.
    A padding mask cannot be honoured: refuse it rather than silently attend to padding."""
    if attention_mask is not None and not bool(attention_mask.all()):
        raise ConfigError("LongHeads does not support padded batches: run one sequence at a time.")
    return None


AttentionInterface.register(ATTN_NAME, longheads_attention)
AttentionMaskInterface.register(ATTN_NAME, _no_mask)


def attention_modules(model):
    """The self-attention modules (they carry `layer_idx` and a query projection, fused or not)."""
    return [m for m in model.modules()
            if hasattr(m, "layer_idx") and hasattr(m, "o_proj") and (hasattr(m, "q_proj") or hasattr(m, "qkv_proj"))]


def enable_longheads(model, config: LongHeadsConfig | None = None) -> LongHeadsConfig:
    """Switch `model` to LongHeads attention. Returns the (validated) config in force.

    Raises ConfigError (one line) for an unsupported architecture, a window past the trained length or past the
    model's sliding window. A length-dependent rotary (dynamic NTK, LongRoPE) is pinned to its short-sequence
    frequencies until `disable_longheads` (rope.py)."""
    check_supported(model.config)
    config = config or LongHeadsConfig.for_model(model.config)
    config.check_model(model.config)
    check_sliding_window(model.config, config)
    modules = attention_modules(model)
    if not modules:
        raise ConfigError(f"{type(model).__name__} has no attention modules LongHeads recognises.")
    pin_frequencies(model)
    runtime = Runtime(config=config, rope=Rope.from_model(model))
    if getattr(model, "_longheads_previous_attn", None) is None:
        model._longheads_previous_attn = model.config._attn_implementation
    for m in modules:
        m.longheads = runtime
    model.set_attn_implementation(ATTN_NAME)
    return config


def disable_longheads(model) -> None:
    """Restore the attention implementation (and rotary) the model had before `enable_longheads`."""
    previous = getattr(model, "_longheads_previous_attn", None)
    if previous is None:
        return
    model.set_attn_implementation(previous)
    for m in attention_modules(model):
        if hasattr(m, "longheads"):
            del m.longheads
    unpin_frequencies(model)
    model._longheads_previous_attn = None


def is_enabled(model) -> bool:
    """Is LongHeads the model's attention now? (cheap: read on every forward call)"""
    return getattr(model.config, "_attn_implementation", None) == ATTN_NAME


def longheads_config(model) -> LongHeadsConfig | None:
    """The config in force on `model`, or None when LongHeads is off."""
    if getattr(model.config, "_attn_implementation", None) != ATTN_NAME:
        return None
    return attention_modules(model)[0].longheads.config


def longheads_rope(model):
    """The Rope LongHeads rotates with on `model` (built once by `enable_longheads`), or None when it is off."""
    if getattr(model.config, "_attn_implementation", None) != ATTN_NAME:
        return None
    return attention_modules(model)[0].longheads.rope

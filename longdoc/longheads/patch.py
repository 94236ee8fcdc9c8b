"""Turn LongHeads on and off on a loaded transformers model, through transformers' own extension points:
`AttentionInterface` for the attention function and `AttentionMaskInterface` for its (absent) mask.

Supported: decoder-only RoPE models whose attention modules call the registered attention function with
post-RoPE queries/keys (Llama 2/3, Mistral, Qwen2, Qwen3, SmolLM2). Batch size is free; padding is not.
"""

from __future__ import annotations

from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface

from .attention import ATTN_NAME, Runtime, longheads_attention
from .config import LongHeadsConfig
from longdoc.errors import ConfigError
from .rope import Rope

SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3")


def _no_mask(*args, attention_mask=None, **kwargs):
    """LongHeads builds its own causal structure from positions, so no (n x n) mask is ever materialised.
    A padding mask cannot be honoured: refuse it rather than silently attend to padding."""
    if attention_mask is not None and not bool(attention_mask.all()):
        raise ConfigError("LongHeads does not support padded batches: run one sequence at a time.")
    return None


AttentionInterface.register(ATTN_NAME, longheads_attention)
AttentionMaskInterface.register(ATTN_NAME, _no_mask)


def attention_modules(model):
    return [m for m in model.modules() if hasattr(m, "layer_idx") and hasattr(m, "q_proj")]


def enable_longheads(model, config: LongHeadsConfig | None = None) -> LongHeadsConfig:
    """Switch `model` to LongHeads attention. Returns the (validated) config in force."""
    model_type = getattr(model.config, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ConfigError(
            f"model type {model_type!r} is not supported by LongHeads; supported: {', '.join(SUPPORTED_MODEL_TYPES)}."
        )
    config = config or LongHeadsConfig.for_model(model.config)
    config.check_model(model.config)
    runtime = Runtime(config=config, rope=Rope.from_model(model))
    modules = attention_modules(model)
    if not modules:
        raise ConfigError(f"{type(model).__name__} has no attention modules LongHeads recognises.")
    if getattr(model, "_longheads_previous_attn", None) is None:
        model._longheads_previous_attn = model.config._attn_implementation
    for m in modules:
        m.longheads = runtime
    model.set_attn_implementation(ATTN_NAME)
    return config


def disable_longheads(model) -> None:
    """Restore the attention implementation the model had before `enable_longheads`."""
    previous = getattr(model, "_longheads_previous_attn", None)
    if previous is None:
        return
    model.set_attn_implementation(previous)
    for m in attention_modules(model):
        if hasattr(m, "longheads"):
            del m.longheads
    model._longheads_previous_attn = None


def is_enabled(model) -> bool:
    """Is LongHeads the model's attention now? (cheap: read on every forward call)"""
    return getattr(model.config, "_attn_implementation", None) == ATTN_NAME


def longheads_config(model) -> LongHeadsConfig | None:
    """The config in force on `model`, or None when LongHeads is off."""
    if getattr(model.config, "_attn_implementation", None) != ATTN_NAME:
        return None
    return attention_modules(model)[0].longheads.config

"""One Engine per (model, settings) in this process, shared by every LangChain / LlamaIndex object.

A chain often builds several model objects (a chat model for the answer, another bound with different stop
strings, a LlamaIndex LLM next to them); each loading its own copy of the weights would waste memory and lose the
prefix pool that makes a second question about the same document cheap. So they all ask `shared_engine`.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # heavy: torch + transformers
    from longdoc.engine import Engine

_ENGINES: dict[tuple, "Engine"] = {}
_LOCK = threading.Lock()


def engine_key(model: str | None, *, chunk_size: int | None = None, chunks: int | None = None,
               window: int | None = None, longheads: bool = True, max_input_tokens: int | None = None,
               prefix_slots: int = 2) -> tuple:
    """The registry key: the model source made absolute (so "./m" and "m" share), plus every engine setting."""
    source = os.path.abspath(os.path.expanduser(model)) if model not in (None, "", "default", "smollm2") else None
    return (source, chunk_size, chunks, window, longheads, max_input_tokens, prefix_slots)


def shared_engine(model: str | None = None, *, chunk_size: int | None = None, chunks: int | None = None,
                  window: int | None = None, longheads: bool = True, max_input_tokens: int | None = None,
                  prefix_slots: int = 2, threads: int | None = None) -> "Engine":
    """The process's Engine for these settings, loading the model on first use."""
    key = engine_key(model, chunk_size=chunk_size, chunks=chunks, window=window, longheads=longheads,
                     max_input_tokens=max_input_tokens, prefix_slots=prefix_slots)
    with _LOCK:  # two threads constructing the same chat model must not load the weights twice
        engine = _ENGINES.get(key)
        if engine is None:
            from longdoc.engine import Engine

            lm = _load(model)
            config = _config(lm, chunk_size, chunks, window) if longheads else None
            engine = Engine(lm, config, longheads=longheads, max_input_tokens=max_input_tokens,
                            prefix_slots=prefix_slots, threads=threads)
            _ENGINES[key] = engine
        elif threads:
            import torch

            torch.set_num_threads(threads)
        return engine


def clear_engines() -> None:
    """Forget every shared Engine (their memory is freed once no model object holds them)."""
    with _LOCK:
        _ENGINES.clear()


def _load(model: str | None):
    from longdoc.models import load_model

    return load_model(model)


def _config(lm, chunk_size: int | None, chunks: int | None, window: int | None):
    """A LongHeadsConfig from the user's chunk_size / chunks / window (any subset; the rest per model)."""
    from longdoc import LongHeadsConfig
    from longdoc.longheads.config import window_config
    from longdoc.errors import ConfigError

    overrides = {k: v for k, v in (("chunk_size", chunk_size), ("chunks", chunks)) if v is not None}
    if window is not None:
        if chunks is not None and chunk_size is not None and chunks * chunk_size != window:
            raise ConfigError(f"window {window} != chunk_size {chunk_size} x chunks {chunks}: give two of the three.")
        if chunk_size is None and chunks is not None:
            if window % chunks:
                raise ConfigError(f"chunks {chunks} does not divide window {window}: give chunk_size instead.")
            overrides["chunk_size"] = window // chunks
        else:
            base = LongHeadsConfig.for_model(lm.model.config, **overrides)
            return window_config(base.chunk_size, window)
    return LongHeadsConfig.for_model(lm.model.config, **overrides)

"""EngineSettings: what an Engine is built from, resolved by one rule for every interface.

The CLI options (`-m --window --chunk-size --chunks --threads`), the LangChain / LlamaIndex fields and the
evaluations all build their engines (or models) through this class, so the same settings mean the same engine
everywhere, and objects with equal settings share one Engine per process (`shared_engine`).

The window rule: window = chunk_size x chunks (w = K * l, longdoc/longheads/config.py). Give any of the three;
two given determine the third, all three must agree, and what is missing comes from the model's defaults
(LongHeadsConfig.for_model: l=256, K=8 unless the model was trained on less). The other LongHeads knobs keep
their defaults (LongHeadsConfig).
"""

from __future__ import annotations

import os
import threading
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:  # heavy: torch + transformers
    from .engine import Engine
    from .longheads.config import LongHeadsConfig
    from .models import LoadedModel


@dataclass(frozen=True)
class EngineSettings:
    """model: None (the embedded SmolLM2-135M-Instruct), a Hugging Face Hub id (org/name), a local Hugging Face
        folder or a .gguf file. revision: a branch, tag or commit of a hub id (None: main).
    chunk_size, chunks, window: LongHeads l, K and w = l x K in tokens (the rule above); None: per model.
    longheads: False runs plain full attention (only up to the model's trained length).
    threads: torch CPU threads (None: LONGDOC_THREADS, else auto: the cores other processes leave free,
        re-measured between prefill blocks and decode steps; longdoc/threads.py). dtype: "auto" (= None: fp32 on CPU, bf16 on CUDA),
        "float32", "bfloat16", "float16". device: "cpu", "cuda", "cuda:N", "mps" or "auto" (= None: cuda when
        available). Both are checked when the model loads (ModelError, one line).
    max_input_tokens: refuse longer prompts (None: the engine's reach). prefix_slots: prefilled prompts kept.
    """

    model: str | None = None
    revision: str | None = None
    chunk_size: int | None = None
    chunks: int | None = None
    window: int | None = None
    longheads: bool = True
    threads: int | None = None
    dtype: str | None = None
    device: str | None = None
    max_input_tokens: int | None = None
    prefix_slots: int = 2

    def __post_init__(self):
        for name in ("chunk_size", "chunks", "window", "threads", "max_input_tokens", "prefix_slots"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ConfigError(f"{name} must be a positive whole number, got {value!r}.")

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def to_dict(self) -> dict:
        return asdict(self)

    def key(self) -> tuple:
        """What identifies the engine these settings build (threads excluded: a process-wide torch setting)."""
        from .models import canonical_source

        return tuple((k, canonical_source(v, self.revision) if k == "model" else v)
                     for k, v in self.to_dict().items() if k != "threads")

    # -- resolution ----------------------------------------------------------------------------------------
    def longheads_config(self, model_config) -> "LongHeadsConfig | None":
        """The LongHeadsConfig for a model (None when longheads=False), by the window rule above."""
        from .longheads.config import LongHeadsConfig

        if not self.longheads:
            return None
        base = LongHeadsConfig.for_model(model_config)
        l, K, w = self.chunk_size, self.chunks, self.window
        if w is not None:
            if l is not None and w % l:
                raise ConfigError(f"window {w} is not a multiple of the chunk size {l}: use window "
                                  f"{max(l, w // l * l)}, or give chunks instead of the chunk size.")
            if K is not None and w % K:
                raise ConfigError(f"window {w} is not a multiple of chunks {K}: use window {max(K, w // K * K)}, "
                                  "or give the chunk size instead of chunks.")
            if l is not None and K is not None and l * K != w:
                raise ConfigError(f"window {w} is not chunk size {l} x chunks {K} = {l * K}: give two of the three.")
            if l is None and K is None:
                l = base.chunk_size
                if w % l:
                    raise ConfigError(f"window {w} is not a multiple of the default chunk size {l}: use window "
                                      f"{max(l, w // l * l)}, or give the chunk size or chunks too.")
            l, K = (l, w // l) if l is not None else (w // K, K)
        config = base.replace(chunk_size=l or base.chunk_size, chunks=K or base.chunks)
        config.check_model(model_config)
        return config

    def apply_threads(self) -> None:
        """Set torch's CPU threads (the one place longdoc does): `threads`, else LONGDOC_THREADS (a number or
        "auto"), else auto (longdoc/threads.py: the cores other processes leave free, re-measured as it runs).
        Raises ConfigError for a LONGDOC_THREADS that is neither."""
        from . import threads as auto

        n = self.threads
        if n is None:
            env = os.environ.get("LONGDOC_THREADS", "auto").strip().lower()
            if env not in ("", "auto"):
                if not env.isdigit() or int(env) < 1:
                    raise ConfigError(f"LONGDOC_THREADS={env!r}: set a positive whole number or auto.")
                n = int(env)
        if n:
            auto.use_fixed(n)
        else:
            auto.enable_auto()

    # -- building ------------------------------------------------------------------------------------------
    def load(self) -> "LoadedModel":
        from .models import load_model

        self.apply_threads()
        return load_model(self.model, revision=self.revision, dtype=self.dtype, device=self.device)

    def build(self, lm: "LoadedModel | None" = None) -> "Engine":
        """A new Engine (loading the model unless `lm` is given)."""
        from .engine import Engine

        lm = lm or self.load()
        config = self.longheads_config(lm.model.config)
        return Engine(lm, config, longheads=self.longheads, max_input_tokens=self.max_input_tokens,
                      prefix_slots=self.prefix_slots)


_ENGINES: dict[tuple, "Engine"] = {}
_LOCK = threading.Lock()


def shared_engine(settings: EngineSettings) -> "Engine":
    """The process's Engine for these settings, built on first use. A chain often builds several model objects
    (a chat model, a copy bound with other stop strings, a LlamaIndex LLM); sharing one Engine keeps one copy of
    the weights and one prefix pool, so they reuse each other's prefills."""
    with _LOCK:  # two threads constructing the same chat model must not load the weights twice
        engine = _ENGINES.get(settings.key())
        if engine is None:
            engine = _ENGINES[settings.key()] = settings.build()
        else:
            settings.apply_threads()
        return engine


def clear_engines() -> None:
    """Forget every shared Engine (their memory is freed once no model object holds them)."""
    with _LOCK:
        _ENGINES.clear()

"""LongHeads settings: one validated dataclass, with defaults chosen by measurement (see README, "Choices").

Notation used across the package:
    l  = chunk_size       tokens per chunk
    K  = chunks           chunks each head attends to, first and most recent included
    w  = K * l            the attention window every head sees; must fit in the model's trained length
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Literal

from longdoc.errors import ConfigError

Score = Literal["rep", "keybound"]
ScoreRope = Literal["none", "local"]
Selection = Literal["longheads", "window"]
PrefillSelection = Literal["block", "token"]
ChunkOrder = Literal["text", "score"]
Offload = Literal["none", "cpu"]


@dataclass(frozen=True)
class LongHeadsConfig:
    """Every LongHeads knob.

    chunk_size, chunks: l and K above.
    selection: "longheads" picks chunks per head and query (eq. 3); "window" is the sink+recent baseline
        (first chunk + the K-1 most recent chunks, no selection; StreamingLLM / LM-Infinite style).
    score: how a chunk is scored against a query.
        "rep"      -- the paper: a chunk representation from eq. 1-2, scored by a dot product with the query.
        "keybound" -- Quest-style: per-channel min/max of the chunk's keys; the score is an upper bound of the
                      largest attention logit any token of the chunk could get.
    score_rope: which RoPE positions scoring uses. Keys are always rotated at chunk-local positions 0..l-1
        (as the authors' code does). "none": the query is un-rotated (authors' code). "local": the query is
        rotated as if it sat right after the chunk, at local position l + its offset in its own chunk.
    keep_previous: also always keep the chunk before the current one (the paper keeps only the current,
        partial chunk; a query at the start of a chunk then sees almost no local context).
    prefill_selection: "token" -- every prompt token picks its own chunks (the paper, exact);
        "block" -- the queries of one chunk share one selection (mean of their scores), except the last
        `exact_tail` tokens of each forward call, which select per token.
    exact_tail: see prefill_selection.
    chunk_order: order of the selected chunks in the window: "text" (the paper: original order) or "score"
        (best-scoring chunk nearest the query).
    offload: where the cache keeps keys and values. "none": on the model's device. "cpu": in (pinned) host
        memory; the GPU holds only chunk summaries, and each step moves the K selected chunks per head over
        (the paper's 128k setting, §3.3: its peak GPU memory at 128k). The outputs are the same; each attention
        call then waits once for its chunk choices to reach the host.
    """

    chunk_size: int = 256
    chunks: int = 8
    selection: Selection = "longheads"
    score: Score = "rep"
    score_rope: ScoreRope = "local"  # measured: see README "Choices" (8k and 16k sweeps)
    keep_previous: bool = True
    prefill_selection: PrefillSelection = "block"
    exact_tail: int = 64
    chunk_order: ChunkOrder = "text"
    offload: Offload = "none"

    @property
    def window(self) -> int:
        return self.chunk_size * self.chunks

    @property
    def selected_per_head(self) -> int:
        """Chunks chosen by score (the rest are mandatory: first, current, and previous if kept)."""
        from .layout import SlotLayout

        return SlotLayout.of(self).n_selected

    @classmethod
    def paper(cls, **overrides) -> "LongHeadsConfig":
        """The recipe exactly as the paper and the authors' code describe it."""
        base = dict(score="rep", score_rope="none", keep_previous=False, prefill_selection="token", exact_tail=0,
                    chunk_order="text")
        base.update(overrides)
        return cls(**base)

    @classmethod
    def for_model(cls, model_config, **overrides) -> "LongHeadsConfig":
        """Defaults for a model: a 2k window (l=256, K=8) unless the model was trained on less."""
        trained = trained_length(model_config)
        base = {}
        if trained < 2048:
            base = dict(chunk_size=max(16, trained // 8), chunks=8)
        base.update(overrides)
        return cls(**base)

    def replace(self, **changes) -> "LongHeadsConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """Every field; `offload` only when set, so results and stored caches keyed by configs from before it
        existed keep their keys (where the cache lives does not change what LongHeads computes)."""
        d = asdict(self)
        if d["offload"] == "none":
            del d["offload"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "LongHeadsConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def __post_init__(self):
        _check_choice("selection", self.selection, ("longheads", "window"))
        _check_choice("score", self.score, ("rep", "keybound"))
        _check_choice("score_rope", self.score_rope, ("none", "local"))
        _check_choice("prefill_selection", self.prefill_selection, ("block", "token"))
        _check_choice("chunk_order", self.chunk_order, ("text", "score"))
        _check_choice("offload", self.offload, ("none", "cpu"))
        if self.chunk_size < 1:
            raise ConfigError(f"chunk_size must be a positive number of tokens, got {self.chunk_size}.")
        minimum = 3 + int(self.keep_previous)
        if self.chunks < minimum:
            raise ConfigError(
                f"chunks={self.chunks} leaves no chunk to select: use chunks >= {minimum} "
                f"(first + current{' + previous' if self.keep_previous else ''} + at least one selected)."
            )
        if self.exact_tail < 0:
            raise ConfigError(f"exact_tail must be >= 0, got {self.exact_tail}.")

    def check_model(self, model_config) -> None:
        """Raise a ConfigError naming the fix if this config cannot run on the model."""
        trained = trained_length(model_config)
        if self.window > trained:
            raise ConfigError(
                f"window {self.window} (chunk_size {self.chunk_size} x chunks {self.chunks}) exceeds the model's "
                f"trained length {trained}: lower chunks to {trained // self.chunk_size} or chunk_size to "
                f"{trained // self.chunks}."
            )


def window_config(chunk_size: int, window: int, **overrides) -> LongHeadsConfig:
    """Build a config from a window size; the chunk size must divide it."""
    if window % chunk_size:
        raise ConfigError(
            f"chunk size {chunk_size} does not divide window {window}: use a window that is a multiple of it, "
            f"e.g. {(window // chunk_size) * chunk_size or chunk_size}."
        )
    return LongHeadsConfig(chunk_size=chunk_size, chunks=window // chunk_size, **overrides)


def trained_length(model_config) -> int:
    """Tokens the model was trained on: max_position_embeddings, or for a length-dependent RoPE (dynamic NTK,
    LongRoPE: their unscaled frequencies, which LongHeads pins, longheads/rope.py) the original length."""
    n = getattr(model_config, "max_position_embeddings", None)
    if not n:
        raise ConfigError("The model config has no max_position_embeddings: set it to the length it was trained on.")
    rope = getattr(model_config, "rope_parameters", None) or getattr(model_config, "rope_scaling", None) or {}
    if isinstance(rope, dict) and rope.get("rope_type") in ("dynamic", "longrope"):
        original = rope.get("original_max_position_embeddings") or getattr(model_config, "original_max_position_embeddings", None)
        if original:
            n = min(int(n), int(original))
    return int(n)


def _check_choice(name, value, allowed):
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(map(repr, allowed))}.")

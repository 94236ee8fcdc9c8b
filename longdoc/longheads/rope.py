"""RoPE rotations by relative amounts, with the model's own frequencies.

RoPE rotations compose: rotating a key that was rotated at position p by an extra `shift` equals rotating the
raw key at p + shift. LongHeads uses this to move cached keys (rotated by transformers at their absolute
positions) to chunk-local or remapped positions without ever storing raw keys.

The frequencies are the model's own: `inv_freq` of its rotary module, which transformers computed with the
config's `rope_type` (default, linear, llama3, yarn, dynamic, longrope; `ROPE_INIT_FUNCTIONS`), so every
variant's frequency scaling is the model's; tests/longheads/test_families_and_rope.py checks, per variant, that
a re-rotated key equals the model's rotary module applied at the new position. The model's `attention_scaling`
(YaRN's and LongRoPE's magnitude factor) is *not* re-applied: the cached key already carries it once, and a
relative rotation must be a pure rotation. Partial rotary embeddings (Phi-3 with `partial_rotary_factor < 1`)
rotate the first `rotary_dim` channels only, as the model does.

Length-dependent variants (`dynamic` NTK, `longrope`) change their frequencies with the longest position of a
forward call. LongHeads keeps every attention window inside the original trained length, where both use their
unscaled frequencies, so `pin_frequencies` fixes the rotary module to those (the frequencies it has for a short
sequence) while LongHeads is on, and `unpin_frequencies` restores it.

Angles are computed in float64 and cast, because `shift * inv_freq` reaches ~1e5 rad at long contexts where
float32 would lose ~1e-2 rad.
"""

from __future__ import annotations

import torch

from longdoc.errors import ConfigError


class Rope:
    """Pure rotations with the model's inverse frequencies (HF `rotate_half` layout on the first `rotary_dim`
    channels: [x1, x2] halves; the rest of the head dim passes through)."""

    def __init__(self, inv_freq: torch.Tensor):
        self.inv_freq = inv_freq.detach().to(torch.float64).cpu()  # (rotary_dim/2,)
        self.rotary_dim = 2 * self.inv_freq.shape[0]
        self._inv_freq_on: dict[torch.device, torch.Tensor] = {torch.device("cpu"): self.inv_freq}

    @classmethod
    def from_model(cls, model) -> "Rope":
        """The model's rotary frequencies (pinned first for length-dependent variants: see the module doc)."""
        rotary = find_rotary(model)
        if rotary_type(rotary) in LENGTH_DEPENDENT:
            return cls(_short_inv_freq(rotary))
        return cls(rotary.inv_freq)

    def cos_sin(self, shifts: torch.Tensor, dtype: torch.dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
        """cos/sin for integer position shifts of any shape (...,) -> (..., rotary_dim) each.

        Computed on the device the shifts are on (float64 there too), so shifts made on the GPU never travel to
        the host: the decode step's selection path has no device->host copy (tests/longheads/test_no_host_sync.py).
        """
        angles = shifts.to(torch.float64)[..., None] * self._freqs(shifts.device)  # (..., rotary_dim/2)
        angles = torch.cat([angles, angles], dim=-1)  # (..., rotary_dim)
        return angles.cos().to(device=device, dtype=dtype), angles.sin().to(device=device, dtype=dtype)

    def _freqs(self, device: torch.device) -> torch.Tensor:
        """inv_freq (d/2,) float64 on `device`, copied there once per device (a model split over GPUs has several)."""
        f = self._inv_freq_on.get(device)
        if f is None:
            f = self._inv_freq_on[device] = self.inv_freq.to(device)
        return f

    def rotate(self, x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
        """Rotate x (..., d) by `shifts` positions; shifts broadcasts against x's leading dims."""
        cos, sin = self.cos_sin(shifts, x.dtype, x.device)
        if x.shape[-1] == self.rotary_dim:
            return apply(x, cos, sin)
        return torch.cat([apply(x[..., : self.rotary_dim], cos, sin), x[..., self.rotary_dim :]], dim=-1)


def apply(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return x * cos + rotate_half(x) * sin


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


LENGTH_DEPENDENT = ("dynamic", "longrope")  # rope types whose frequencies follow the sequence length


def rotary_type(rotary) -> str:
    rope_type = getattr(rotary, "rope_type", "default")
    if isinstance(rope_type, dict):  # per layer type (Gemma 3): refused earlier by the family check
        raise ConfigError("This model has a rotary embedding per layer type, which LongHeads does not support.")
    return rope_type


def _short_inv_freq(rotary) -> torch.Tensor:
    """The frequencies a length-dependent rotary uses for sequences within its original trained length."""
    original = getattr(rotary, "original_inv_freq", None)
    return original if original is not None else rotary.inv_freq


def pin_frequencies(model) -> None:
    """Fix a length-dependent rotary (dynamic NTK, LongRoPE) to its short-sequence frequencies: afterwards it
    computes cos/sin like a `default` rotary with those frequencies (its attention_scaling kept). A no-op for
    the other variants. Undone by `unpin_frequencies`."""
    rotary = find_rotary(model)
    rope_type = rotary_type(rotary)
    if rope_type not in LENGTH_DEPENDENT or hasattr(rotary, "_longheads_rope_type"):
        return
    rotary._longheads_rope_type = rope_type
    short = _short_inv_freq(rotary).to(rotary.inv_freq.device).clone()  # undo a growth already made
    rotary.register_buffer("inv_freq", short, persistent=False)
    if hasattr(rotary, "max_seq_len_cached") and hasattr(rotary, "original_max_seq_len"):
        rotary.max_seq_len_cached = rotary.original_max_seq_len
    rotary.rope_type = "default"  # transformers' dynamic_rope_update reads this on every forward


def unpin_frequencies(model) -> None:
    """Undo `pin_frequencies`."""
    rotary = find_rotary(model)
    rope_type = getattr(rotary, "_longheads_rope_type", None)
    if rope_type is not None:
        rotary.rope_type = rope_type
        del rotary._longheads_rope_type


def find_rotary(model):
    """The model's rotary embedding module (the one holding `inv_freq`)."""
    for module in model.modules():
        if hasattr(module, "inv_freq") and hasattr(module, "rope_type"):
            return module
    raise ConfigError(
        f"{type(model).__name__} has no rotary embedding module: LongHeads needs a RoPE model "
        "(Llama, Mistral, Qwen2, Qwen3, Phi-3, SmolLM2)."
    )

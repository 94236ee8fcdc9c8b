"""RoPE rotations by relative amounts.

RoPE rotations compose: rotating a key that was rotated at position p by an extra `shift` equals rotating the
raw key at p + shift. LongHeads uses this to move cached keys (rotated by transformers at their absolute
positions) to chunk-local or remapped positions without ever storing raw keys.

Angles are computed in float64 and cast, because `shift * inv_freq` reaches ~1e5 rad at long contexts where
float32 would lose ~1e-2 rad. The model's own `attention_scaling` (YaRN etc.) is *not* re-applied: a relative
rotation must be a pure rotation.
"""

from __future__ import annotations

import torch

from longdoc.errors import ConfigError


class Rope:
    """Pure rotations with the model's inverse frequencies (HF `rotate_half` layout: [x1, x2] halves)."""

    def __init__(self, inv_freq: torch.Tensor):
        self.inv_freq = inv_freq.detach().to(torch.float64).cpu()  # (d/2,)
        self._inv_freq_on: dict[torch.device, torch.Tensor] = {torch.device("cpu"): self.inv_freq}

    @classmethod
    def from_model(cls, model) -> "Rope":
        rotary = _find_rotary(model)
        rope_type = getattr(rotary, "rope_type", "default")
        if rope_type == "dynamic":
            raise ConfigError(
                "Dynamic-NTK RoPE changes its frequencies with the sequence length, which LongHeads cannot "
                "re-rotate consistently: load the model with its default rope_parameters."
            )
        return cls(rotary.inv_freq)

    def cos_sin(self, shifts: torch.Tensor, dtype: torch.dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
        """cos/sin for integer position shifts of any shape (...,) -> (..., d) each.

        Computed on the device the shifts are on (float64 there too), so shifts made on the GPU never travel to
        the host: the decode step's selection path has no device->host copy (tests/longheads/test_no_host_sync.py).
        """
        angles = shifts.to(torch.float64)[..., None] * self._freqs(shifts.device)  # (..., d/2)
        angles = torch.cat([angles, angles], dim=-1)  # (..., d)
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
        return apply(x, cos, sin)


def apply(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return x * cos + rotate_half(x) * sin


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _find_rotary(model):
    for module in model.modules():
        if hasattr(module, "inv_freq") and hasattr(module, "rope_type"):
            return module
    raise ConfigError(
        f"{type(model).__name__} has no rotary embedding module: LongHeads needs a RoPE model "
        "(Llama, Mistral, Qwen2, SmolLM2)."
    )

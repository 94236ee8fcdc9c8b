"""The device the engine tests run on: `python -m pytest --device cuda` (or LONGDOC_TEST_DEVICE=cuda).

On CPU (the default, and CI) tensors are float32 and every tolerance is the test's CPU one. On CUDA models and
activations are bfloat16 (what a GPU runs), and each test states the tolerance bf16 needs next to its float32
one: `dev.close(actual, expected, atol=1e-5, rtol=1e-4, bf16=(3e-2, 3e-2))`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TestDevice:
    device: torch.device
    dtype: torch.dtype  # float32 on CPU, bfloat16 on CUDA

    __test__ = False  # not a test class

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def low_precision(self) -> bool:
        return self.dtype in (torch.bfloat16, torch.float16)

    def randn(self, *shape, dtype=None) -> torch.Tensor:
        """Random normals made on the CPU (the same numbers on every device), then moved."""
        return torch.randn(*shape).to(self.device, dtype or self.dtype)

    def model(self, model):
        """A tiny model (built on the CPU, so its random weights are the same everywhere) on this device."""
        return model.to(device=self.device, dtype=self.dtype)

    def close(self, actual, expected, *, atol: float, rtol: float, bf16: tuple[float, float]) -> None:
        """assert_close with the float32 tolerance on CPU and the stated (atol, rtol) in bf16; compared in fp32."""
        if self.low_precision:
            atol, rtol = bf16
        torch.testing.assert_close(actual.float().cpu(), expected.float().cpu(), atol=atol, rtol=rtol)


def test_device(name: str) -> TestDevice:
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked, but torch sees no CUDA device")
    return TestDevice(device, torch.bfloat16 if device.type == "cuda" else torch.float32)

"""A TorchDispatchMode that records every operation that makes the host wait for a device.

On CUDA these are: reading a value (`.item()`, `bool(t)`, `int(t)`: aten._local_scalar_dense), a data-dependent
shape (nonzero, boolean-mask indexing), and a blocking copy between the host and the device (either way:
PyTorch synchronises the stream after a copy with non_blocking=False). On a CPU-only machine the "meta" device
stands in for the GPU: any value read from it fails, and every copy between it and the CPU is seen here.
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

SCALAR_READS = ("aten._local_scalar_dense", "aten.nonzero", "aten.item")
COPIES = (torch.ops.aten._to_copy.default, torch.ops.aten.copy_.default)


class HostSyncRecorder(TorchDispatchMode):
    """events: one line per host wait, naming the op and the devices."""

    def __init__(self):
        super().__init__()
        self.events: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = str(func)
        devices = {t.device.type for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        if name.startswith(SCALAR_READS):
            self.events.append(f"{name} on {sorted(devices)}")
        elif func in COPIES:
            target = kwargs.get("device")
            targets = devices | ({torch.device(target).type} if target is not None else set())
            if len(targets) > 1 and not kwargs.get("non_blocking", False):
                self.events.append(f"{name} {sorted(targets)}")
        return func(*args, **kwargs)

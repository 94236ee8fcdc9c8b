"""Will a prompt's KV cache fit in memory now? Checked per prompt, so the reach itself (the context-window
metadata LangChain and LlamaIndex see) stays a property of the model and settings.

Available memory is the kernel's `MemAvailable` (free pages plus the page cache and reclaimable memory the
kernel would give back), not `MemFree`: free memory shrinks as the OS caches files, while what a new
allocation can get does not.
"""

from __future__ import annotations

import os

from .errors import TooLongError

KV_MEMORY_SHARE = 0.9  # of available memory a prompt's keys and values may take (the rest: activations, workspace)


def available_memory() -> int | None:
    """Bytes a new allocation can get now (MemAvailable), or None where the system does not say."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_kv_memory(n_tokens: int, bytes_per_token: int, available: int | None = None) -> None:
    """TooLongError when `n_tokens` of keys and values (`bytes_per_token` each, all layers) would not fit."""
    available = available_memory() if available is None else available
    need = n_tokens * bytes_per_token
    if available is None or need <= available * KV_MEMORY_SHARE:
        return
    raise TooLongError(
        f"The prompt is {n_tokens:,} tokens, whose keys and values need {need / 2**30:.1f} GiB, but only "
        f"{available / 2**30:.1f} GiB of memory is available: free memory, or shorten the document."
    )

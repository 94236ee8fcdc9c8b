"""Ingest once, ask many: prefilled document prefixes stored on disk.

An entry is a folder `cache_dir()/ingests/<key>/` holding
    cache.safetensors   the LongHeadsCache state (keys, values, chunk summaries, pending queries) + the prefix ids
    manifest.json       token count, sources, sizes, created / last-used times, sha256 of cache.safetensors, and
                        kv_dtype / compute_dtype: how keys and values are stored and what they were computed in
The key is sha256(document content hash, model, LongHeads settings, prompt format) (`make_key`; the document
session, longdoc/qa/session.py, is the one caller): anything that changes the prefix tokens or their cache gives
a new key.

Stored format of keys and values (`Store(kv_dtype=...)`, env LONGDOC_STORE_DTYPE, CLI --store-dtype; KV_DTYPES):
    float16 (default)   half of float32's bytes; rounding error <= 2^-11 of each element; a cache with a value
                        past its range (|x| > 65504) is stored in bfloat16 instead (manifest "kv_fallback")
    bfloat16            half of float32's bytes; coarser (2^-8), float32's range. Measured on the embedded model
                        (docs/eval/store-size.json): largest logit change 0.011 for float16, 0.40 for bfloat16
    float32             exact: what a CPU engine computes, the tensors of format 2 (a bf16 GPU cache is widened)
    int8                a quarter (+ one float32 scale per token and kv head): per (layer, kv head, token) absmax
                        scale s = max|x| / 127 over the head dimension, x ~ round(x / s) * s, error <= s / 2
Chunk summaries, pending queries, chunk choices and the prefix ids are stored as they are (4 MB of an 8k-token
SmolLM2 entry: 1% in float32, 4% in int8; the pending queries are under one chunk whatever the length).
Loading converts keys and values back to the engine's compute dtype (float32 on a CPU): the in-memory cache and
everything after it are as before, only the stored numbers were rounded. The format is a fact of the entry, kept in
its manifest, not in the key: an entry of another format than the store's setting is a miss (the document is
read again and its entry replaced), so one document has one entry.

Safety: an entry is written into a temporary folder and renamed into place (`os.replace`), so a crash or Ctrl-C
leaves either nothing or a whole entry. Before use, the tensor file's size and sha256 are checked against the
manifest; an entry that fails (truncated, corrupted, unreadable) is deleted and the caller rebuilds it.
Least-recently-used entries are evicted to keep the folder under a size cap (LONGDOC_CACHE_MAX, default 20 GB).

The store is an optimisation only: on a read-only file system, a full disk or a folder without write permission,
`ensure_prefix` still prefills and answers, and its `Ingest.not_stored` says why nothing was stored (one line the
CLI prints as a note); updating an entry's last-used time is skipped when it cannot be written.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError, StoreError

TENSORS = "cache.safetensors"
MANIFEST = "manifest.json"
DEFAULT_MAX_BYTES = 20 * 10**9
_TMP_PREFIX = ".tmp-"
_UNITS = {"": 1, "B": 1, "K": 10**3, "KB": 10**3, "M": 10**6, "MB": 10**6, "G": 10**9, "GB": 10**9, "T": 10**12,
          "TB": 10**12, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


@dataclass
class Entry:
    key: str
    path: Path
    manifest: dict

    @property
    def size(self) -> int:
        return int(self.manifest.get("size_bytes", 0))

    @property
    def last_used(self) -> float:
        return float(self.manifest.get("last_used", 0))

    @property
    def tokens(self) -> int:
        return int(self.manifest.get("tokens", 0))


def parse_size(text: str | int) -> int:
    """'20GB', '500 MB', '1.5G', 1000 -> bytes."""
    if isinstance(text, int):
        return text
    s = str(text).strip().upper().replace(" ", "")
    num = s.rstrip("KMGTIB")
    unit = s[len(num):]
    try:
        return int(float(num) * _UNITS[unit])
    except (KeyError, ValueError):
        raise ConfigError(f"Cannot read the size {text!r}: write e.g. 20GB or 500MB.") from None


CACHE_FORMAT = 3  # 2: the cache carries the document's chunk choices (its hub prior); 3: keys and values in the
# manifest's kv_dtype (float16 by default; int8 adds a scale tensor per layer). Older entries are not reused.

KV_DTYPES = ("bfloat16", "float16", "float32", "int8")
DEFAULT_KV_DTYPE = "float16"
FALLBACK = {"float16": "bfloat16"}  # a format past whose range a cache is stored in another
_KV_NAMES = (".keys", ".values")
_SCALE = ".scale"  # the int8 scale of "<i>.keys" is "<i>.keys.scale"
_FP16_MAX = 65504.0


class StoreRangeError(ValueError):
    """Keys or values that the stored format cannot hold (float16 past +-65504): nothing is stored."""


def kv_dtype_setting(value: str | None = None) -> str:
    """The stored format of keys and values: `value`, else env LONGDOC_STORE_DTYPE, else float16.
    ConfigError (one line naming KV_DTYPES) for anything else."""
    raw = value if value is not None else (os.environ.get("LONGDOC_STORE_DTYPE") or DEFAULT_KV_DTYPE)
    name = str(raw).strip().lower()
    if name not in KV_DTYPES:
        where = "" if value is not None else " (env LONGDOC_STORE_DTYPE)"
        raise ConfigError(f"Unknown stored KV format {raw!r}{where}: use one of {', '.join(KV_DTYPES)}.")
    return name


def quantize_int8(x):
    """x (..., d) floating -> (q int8 (..., d), scale float32 (..., 1)): scale = max|x| / 127 over the last
    dimension (0 for an all-zero row), q = round(x / scale) clipped to [-127, 127]; x ~ q * scale with an error
    <= scale / 2 per element."""
    import torch

    x = x.float()
    scale = x.abs().amax(dim=-1, keepdim=True) / 127.0
    q = torch.round(x / torch.where(scale > 0, scale, torch.ones_like(scale))).clamp_(-127, 127).to(torch.int8)
    return q, scale


def dequantize_int8(q, scale, dtype=None):
    """q * scale (the inverse of `quantize_int8`), computed in float32, returned in `dtype` (None: float32)."""
    import torch

    x = q.to(torch.float32).mul_(scale.to(torch.float32))
    return x if dtype is None or dtype == torch.float32 else x.to(dtype)


def encode_state(state: dict, kv_dtype: str) -> dict:
    """A cache state dict (LongHeadsCache.state_dict) with its keys and values in the stored format `kv_dtype`
    (float: cast; int8: `quantize_int8`, plus "<name>.scale"). Other tensors as they are. Consumes `state`
    (each full-precision tensor is dropped once encoded). StoreRangeError: keys or values past float16's range."""
    import torch

    if not fits(state, kv_dtype):  # checked before anything is consumed: the caller may encode `state` again
        raise StoreRangeError("keys or values exceed float16's range (65504): store them as bfloat16 "
                              "(--store-dtype bfloat16)")
    out = {}
    for name in list(state):
        t = state.pop(name)
        if not name.endswith(_KV_NAMES):
            out[name] = t
        elif kv_dtype == "int8":
            out[name], out[name + _SCALE] = quantize_int8(t)
        else:
            out[name] = t.to(getattr(torch, kv_dtype)).contiguous()
    return out


def fits(state: dict, kv_dtype: str) -> bool:
    """Do the keys and values of `state` fit the range of `kv_dtype` (only float16 has a narrower one)?"""
    if kv_dtype != "float16":
        return True
    return all(not t.numel() or float(t.abs().amax()) <= _FP16_MAX for n, t in state.items() if n.endswith(_KV_NAMES))


def decode_state(state: dict, kv_dtype: str, dtype=None, device=None) -> dict:
    """The inverse of `encode_state`: keys and values back in `dtype` (the compute dtype; None: float32) on
    `device`; chunk summaries and pending queries also cast to `dtype` when it is given. Consumes `state`.
    KeyError: an int8 entry without its scales."""
    import torch

    compute = dtype if dtype is not None else torch.float32
    out = {}
    for name in [n for n in state if not n.endswith(_SCALE)]:
        t = state.pop(name)
        if name.endswith(_KV_NAMES):
            if kv_dtype == "int8":
                out[name] = dequantize_int8(t.to(device), state.pop(name + _SCALE).to(device), compute)
            else:
                out[name] = t.to(device, compute)
        elif dtype is not None and t.is_floating_point():
            out[name] = t.to(device, dtype)
        else:
            out[name] = t
    if state:  # scales without their tensor: not an entry this code wrote
        raise KeyError(f"unexpected tensors {sorted(state)[:3]}")
    return out


def make_key(content_hash: str, model: str, config: dict | None, prompt_format: str) -> str:
    blob = json.dumps({"content": content_hash, "model": model, "longheads": config, "format": prompt_format,
                       "cache": CACHE_FORMAT}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            h.update(block)
    return h.hexdigest()


class Store:
    """The folder of stored ingests. `max_bytes`: the size cap (None: env LONGDOC_CACHE_MAX or 20 GB).
    `kv_dtype`: how keys and values are written, one of KV_DTYPES (None: env LONGDOC_STORE_DTYPE or float16;
    anything else: ConfigError); entries of another format are not loaded (a miss)."""

    def __init__(self, root: Path | str | None = None, max_bytes: int | str | None = None,
                 kv_dtype: str | None = None):
        if root is None:
            from .models import cache_dir

            root = cache_dir() / "ingests"
        self.root = Path(root)
        if max_bytes is None:
            max_bytes = os.environ.get("LONGDOC_CACHE_MAX") or DEFAULT_MAX_BYTES
        self.max_bytes = parse_size(max_bytes)
        self.kv_dtype = kv_dtype_setting(kv_dtype)

    # -- reading ---------------------------------------------------------------------------------------------
    def entries(self) -> list[Entry]:
        """Complete entries, most recently used first (unreadable manifests are skipped, not trusted)."""
        out = []
        if not self.root.is_dir():
            return out
        for d in self.root.iterdir():
            if d.name.startswith(_TMP_PREFIX) or not d.is_dir():
                continue
            manifest = _read_manifest(d)
            if manifest is not None:
                out.append(Entry(d.name, d, manifest))
        return sorted(out, key=lambda e: e.last_used, reverse=True)

    def get(self, key: str) -> Entry | None:
        d = self.root / key
        manifest = _read_manifest(d) if d.is_dir() else None
        return Entry(key, d, manifest) if manifest is not None else None

    def accepts(self, manifest: dict) -> bool:
        """Is an entry with this manifest in this store's format (its kv_dtype, or the fallback a float16 store
        writes for a cache past float16's range)?"""
        stored = manifest.get("kv_dtype")
        return stored == self.kv_dtype or (stored == FALLBACK.get(self.kv_dtype) and bool(manifest.get("kv_fallback")))

    def load(self, key: str, device=None, dtype=None):
        """(prefix ids, LongHeadsCache) of a verified entry, or None. A damaged entry is removed; an entry in
        another stored format than `self.kv_dtype` (or of a format before kv_dtype was recorded) is a miss and
        left for `save` to replace. Keys and values come back in `dtype` (the engine's compute dtype, a
        torch.dtype; None: the dtype they were computed in, the manifest's compute_dtype) on `device`."""
        import torch
        from safetensors.torch import load_file

        from .longheads.cache import LongHeadsCache

        entry = self.get(key)
        if entry is None:
            if (self.root / key).exists():  # a folder without a readable manifest: damaged
                self._remove_path(self.root / key)
            return None
        if not self.accepts(entry.manifest):
            return None
        stored = entry.manifest["kv_dtype"]
        tensors = entry.path / TENSORS
        try:
            ok = tensors.stat().st_size == entry.manifest["tensor_bytes"] and file_sha256(tensors) == entry.manifest["sha256"]
            state = load_file(str(tensors)) if ok else None
        except (OSError, KeyError, ValueError, RuntimeError):
            state = None
        if state is None or "prefix_ids" not in state:
            self.remove(key)
            return None
        ids = state.pop("prefix_ids").tolist()
        try:
            if dtype is None:
                dtype = getattr(torch, str(entry.manifest.get("compute_dtype", "float32")))
                if not isinstance(dtype, torch.dtype):
                    raise ValueError(f"not a dtype: {dtype!r}")
            state = decode_state(state, stored, dtype, device)
            cache = LongHeadsCache.from_state_dict(state, device=device)
        except (KeyError, ValueError, RuntimeError, AttributeError, TypeError):
            self.remove(key)
            return None
        self.touch(key)
        return ids, cache

    def touch(self, key: str) -> None:
        """Record that `key` was used now (best effort: the LRU order only, skipped where nothing can be written)."""
        entry = self.get(key)
        if entry is not None:
            entry.manifest["last_used"] = time.time()
            try:
                _write_json_atomic(entry.path / MANIFEST, entry.manifest)
            except OSError:
                pass

    # -- writing ---------------------------------------------------------------------------------------------
    def save(self, key: str, ids: list[int], cache, info: dict | None = None) -> Entry | None:
        """Store `cache` (a prefilled LongHeadsCache of `ids`) under `key`, keys and values in `self.kv_dtype`
        (`encode_state`). Atomic: a whole entry or nothing.

        Returns None (and stores nothing) when the entry alone (as stored) is larger than the size cap.
        float16 keys or values past its range are stored in bfloat16 (manifest kv_dtype "bfloat16",
        kv_fallback true), which a float16 store loads.
        """
        import torch
        from safetensors.torch import save_file

        state = dict(cache.state_dict())
        first = state.get("0.keys")
        compute = str(first.dtype).removeprefix("torch.") if first is not None else "float32"
        kv_dtype = self.kv_dtype
        try:
            state = encode_state(state, kv_dtype)
        except StoreRangeError:  # one range check (inside encode_state), then the fallback format
            kv_dtype = FALLBACK[kv_dtype]
            state = encode_state(state, kv_dtype)
        state["prefix_ids"] = torch.tensor(ids, dtype=torch.int64)
        estimate = sum(t.numel() * t.element_size() for t in state.values())
        if estimate > self.max_bytes:
            return None
        self.root.mkdir(parents=True, exist_ok=True)
        self._clean_stale_tmp()
        tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{os.getpid()}-", dir=self.root))
        try:
            save_file(state, str(tmp / TENSORS), metadata={"format": "pt", "longdoc_key": key})
            del state
            size = (tmp / TENSORS).stat().st_size
            now = time.time()
            manifest = {"key": key, "tokens": len(ids), "tensor_bytes": size, "size_bytes": size,
                        "sha256": file_sha256(tmp / TENSORS), "created": now, "last_used": now, **(info or {}),
                        "kv_dtype": kv_dtype, "compute_dtype": compute,
                        **({"kv_fallback": True} if kv_dtype != self.kv_dtype else {})}
            _write_json_atomic(tmp / MANIFEST, manifest)
            manifest["size_bytes"] = size + (tmp / MANIFEST).stat().st_size
            _write_json_atomic(tmp / MANIFEST, manifest)
            final = self.root / key
            if final.exists():
                self._remove_path(final)
            os.replace(tmp, final)
        except BaseException:  # Ctrl-C included: never leave half an entry
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.evict(keep=key)
        return self.get(key)

    def evict(self, keep: str | None = None) -> list[str]:
        """Remove least-recently-used entries until the total size fits the cap; returns removed keys."""
        entries = self.entries()
        total = sum(e.size for e in entries)
        removed = []
        for e in reversed(entries):  # oldest first
            if total <= self.max_bytes:
                break
            if e.key == keep:
                continue
            try:
                self.remove(e.key)
            except StoreError:  # cannot be removed (permissions): leave it, evict the next one
                continue
            total -= e.size
            removed.append(e.key)
        return removed

    def remove(self, key: str) -> bool:
        """Remove entry `key`; False when there is none. StoreError when it exists but cannot be removed."""
        path = self.root / key
        if not path.exists() or key.startswith(_TMP_PREFIX) or "/" in key or key in (".", ".."):
            return False
        self._remove_path(path)
        if path.exists():
            raise StoreError(f"Cannot remove the stored ingest {key[:12]} from {self.root}: {_why_unwritable(self.root)}; "
                             "remove it with the folder's owner, or point LONGDOC_CACHE_DIR elsewhere")
        return True

    def clear(self) -> int:
        n = 0
        for e in self.entries():
            n += self.remove(e.key)
        self._clean_stale_tmp()
        return n

    def resolve(self, prefix: str) -> list[Entry]:
        """Entries whose key starts with `prefix` (what `cache rm` accepts)."""
        return [e for e in self.entries() if e.key.startswith(prefix)]

    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries())

    # -- helpers ---------------------------------------------------------------------------------------------
    def _remove_path(self, path: Path) -> None:
        # rename first so a reader never sees a half-deleted entry, then delete
        doomed = path.with_name(f"{_TMP_PREFIX}{os.getpid()}-rm-{path.name}")
        try:
            os.replace(path, doomed)
        except OSError:
            doomed = path
        shutil.rmtree(doomed, ignore_errors=True)

    def _clean_stale_tmp(self) -> None:
        """Remove temporary folders left by writers that were killed (their process no longer exists)."""
        if not self.root.is_dir():
            return
        for d in self.root.iterdir():
            if d.name.startswith(_TMP_PREFIX):
                pid = d.name[len(_TMP_PREFIX):].split("-", 1)[0]
                if not pid.isdigit() or not _alive(int(pid)):
                    shutil.rmtree(d, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_manifest(d: Path) -> dict | None:
    try:
        manifest = json.loads((d / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("key") == d.name else None


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except BaseException:  # a full disk mid-write: leave no half-written file
        tmp.unlink(missing_ok=True)
        raise


def _why_unwritable(root: Path) -> str:
    """A short reason the store folder cannot be written ("read-only file system", ...)."""
    probe = root if root.exists() else root.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        vfs = os.statvfs(probe)
        if vfs.f_flag & getattr(os, "ST_RDONLY", 1):
            return "read-only file system"
        if vfs.f_bavail == 0:
            return "no space left on the device"
    except OSError:
        pass
    if not os.access(probe, os.W_OK):
        return "permission denied"
    return "not writable"


def store_failure(error: BaseException, root: Path) -> str:
    """One line: why an ingest could not be written to the store at `root`."""
    if isinstance(error, OSError) and error.strerror:
        why = error.strerror.lower()
    else:
        text = " ".join(str(error).split())
        why = _why_unwritable(root) if not text else text[:120]
    return f"cannot write to {root} ({why})"


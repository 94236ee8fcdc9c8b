"""Ingest once, ask many: prefilled document prefixes stored on disk.

An entry is a folder `cache_dir()/ingests/<key>/` holding
    cache.safetensors   the LongHeadsCache state (keys, values, chunk summaries, pending queries) + the prefix ids
    manifest.json       token count, sources, sizes, created / last-used times, sha256 of cache.safetensors
The key is sha256(document content hash, model, LongHeads settings, prompt format) (`make_key`; the document
session, longdoc/qa/session.py, is the one caller): anything that changes the prefix tokens or their cache gives
a new key.

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


CACHE_FORMAT = 2  # 2: the cache carries the document's chunk choices (its hub prior); older entries are not reused


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
    """The folder of stored ingests. `max_bytes`: the size cap (None: env LONGDOC_CACHE_MAX or 20 GB)."""

    def __init__(self, root: Path | str | None = None, max_bytes: int | str | None = None):
        if root is None:
            from .models import cache_dir

            root = cache_dir() / "ingests"
        self.root = Path(root)
        if max_bytes is None:
            max_bytes = os.environ.get("LONGDOC_CACHE_MAX") or DEFAULT_MAX_BYTES
        self.max_bytes = parse_size(max_bytes)

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

    def load(self, key: str, device=None):
        """(prefix ids, LongHeadsCache) of a verified entry, or None. A damaged entry is removed."""
        from safetensors.torch import load_file

        from .longheads.cache import LongHeadsCache

        entry = self.get(key)
        if entry is None:
            if (self.root / key).exists():  # a folder without a readable manifest: damaged
                self._remove_path(self.root / key)
            return None
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
            cache = LongHeadsCache.from_state_dict(state, device=device)
        except (KeyError, ValueError, RuntimeError):
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
        """Store `cache` (a prefilled LongHeadsCache of `ids`) under `key`. Atomic: a whole entry or nothing.

        Returns None (and stores nothing) when the entry alone is larger than the size cap.
        """
        import torch
        from safetensors.torch import save_file

        state = dict(cache.state_dict())
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
                        "sha256": file_sha256(tmp / TENSORS), "created": now, "last_used": now, **(info or {})}
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


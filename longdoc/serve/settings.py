"""ServeSettings: what `longdoc serve` is configured with besides the engine (`longdoc.settings.EngineSettings`).

Sizes are bytes, times seconds, counts plain numbers; every field is checked on construction (ConfigError with
the option to change).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from longdoc.errors import ConfigError

DEFAULT_HOST = "127.0.0.1"  # loopback only unless the user asks for more (--host 0.0.0.0)
DEFAULT_PORT = 8000
DEFAULT_MAX_REQUEST_BYTES = 64 * 2**20  # a request body (JSON or an upload), MiB
DEFAULT_MAX_DOCUMENT_BYTES = 256 * 2**20  # an uploaded document's files, zips unpacked (the CLI's file limit)
DEFAULT_MAX_QUEUE = 8  # requests waiting while one generates
DEFAULT_MAX_TOKENS = 512  # answer tokens when a request does not say


@dataclass(frozen=True)
class ServeSettings:
    """host, port: where to listen (127.0.0.1 by default). api_key: required as `Authorization: Bearer KEY` on
    /v1/* when set (compared in constant time). model_names: the ids clients may send as `model` (the first is
    what /v1/models lists; empty: the engine's name). max_request_bytes: largest request body (413 beyond).
    max_document_tokens: largest document, in tokens, in a request or an ingest (413 beyond; None: the engine's
    reach). max_document_bytes: largest uploaded document (its files, zip archives unpacked; 413 beyond). max_queue: requests that may wait while one generates (429 with Retry-After beyond). max_tokens:
    answer tokens when a request gives none. documents_dir: where ingested uploads are kept by id (None: the
    user cache folder). store_dir: where prefilled documents are stored (None: the CLI's ingest store; "" off).
    drain_s: seconds Ctrl-C / SIGTERM waits for requests in flight before closing them.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_key: str | None = None
    model_names: tuple[str, ...] = ()
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_document_tokens: int | None = None
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES
    max_queue: int = DEFAULT_MAX_QUEUE
    max_tokens: int = DEFAULT_MAX_TOKENS
    documents_dir: Path | None = None
    store_dir: Path | str | None = None
    drain_s: float = 60.0

    def __post_init__(self):
        for name in ("max_request_bytes", "max_document_bytes", "max_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)!r}.")
        if self.max_queue < 0:
            raise ConfigError(f"--max-queue must be 0 or more, got {self.max_queue!r}.")
        if self.max_document_tokens is not None and self.max_document_tokens < 1:
            raise ConfigError(f"--max-document-tokens must be at least 1, got {self.max_document_tokens!r}.")
        if self.api_key is not None and not self.api_key.strip():
            raise ConfigError("--api-key is empty: give a key, or leave the option out for no key.")
        if not 0 <= self.port < 65536:
            raise ConfigError(f"--port must be 0..65535, got {self.port!r}.")

    def resolved_documents_dir(self) -> Path:
        if self.documents_dir is not None:
            return Path(self.documents_dir)
        from longdoc.models import cache_dir

        return cache_dir() / "served-documents"

    def store(self):
        """The ingest store (longdoc.store.Store) requests' documents are kept in, or None when turned off."""
        from longdoc.store import Store

        if self.store_dir == "":
            return None
        return Store(self.store_dir) if self.store_dir is not None else Store()

"""The ASGI guard in front of the `longdoc serve` app: the API key and the request-body cap, checked before any
route reads the body (so an oversized upload is refused from its Content-Length, or while it streams in)."""

from __future__ import annotations

import hmac
import json

from starlette.exceptions import HTTPException

from longdoc.serve.errors import error_body


class Guard:
    """ASGI middleware: 401 for /v1/* without the right `Authorization: Bearer KEY` (hmac.compare_digest:
    constant time), 413 for a body over `max_bytes` (from Content-Length before reading, else while reading)."""

    def __init__(self, app, api_key: str | None, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes
        self.key = api_key.encode() if api_key else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}
        if self.key is not None and scope["path"].startswith("/v1"):
            given = headers.get("authorization", b"")
            token = given[7:].strip() if given[:7].lower() == b"bearer " else b""
            if not given:
                return await _send(send, 401, "Missing API key: send the header Authorization: Bearer KEY.",
                                   "missing_api_key")
            if not hmac.compare_digest(token, self.key):
                return await _send(send, 401, "Incorrect API key: send the key the server was started with "
                                              "(--api-key).", "invalid_api_key")
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await _send(send, 413, f"The request body is {int(length):,} bytes; this server takes at most "
                                          f"{self.max_bytes:,} (--max-request-size).", "request_too_large")
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise HTTPException(413, f"The request body is over {self.max_bytes:,} bytes, the most this "
                                             "server takes (--max-request-size).")
            return message

        return await self.app(scope, counted, send)


async def _send(send, status: int, message: str, code: str) -> None:
    body = json.dumps(error_body(status, message, code)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})

"""OpenAI-style error objects: every failure a client sees is `{"error": {"message", "type", "param", "code"}}`
with the right HTTP status and a one-line message; never a stack trace (unexpected errors are logged on the
server's stderr and answered with a 500 that says so).

    raise APIError(404, "The model 'x' does not exist: use one of ...", code="model_not_found")
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from longdoc.errors import ConfigError, EngineBusyError, InputError, LongdocError, TooLongError

log = logging.getLogger("longdoc.serve")

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "not_found_error", 405: "invalid_request_error", 413: "invalid_request_error",
          422: "invalid_request_error", 429: "rate_limit_error", 499: "invalid_request_error",
          500: "server_error", 503: "server_error"}


class APIError(Exception):
    """An error answered as an OpenAI error object. status: HTTP status; code: OpenAI's machine-readable code
    (e.g. "model_not_found", "context_length_exceeded"); param: the request field at fault; headers: extra
    response headers (Retry-After on 429)."""

    def __init__(self, status: int, message: str, *, code: str | None = None, param: str | None = None,
                 headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.param, self.headers = status, one_line(message), code, param, headers

    def response(self) -> JSONResponse:
        return error_response(self.status, self.message, code=self.code, param=self.param, headers=self.headers)


def one_line(message) -> str:
    return " ".join(str(message).split()) or "error"


def error_body(status: int, message: str, code: str | None = None, param: str | None = None) -> dict:
    return {"error": {"message": one_line(message), "type": _TYPES.get(status, "invalid_request_error"),
                      "param": param, "code": code}}


def error_response(status: int, message: str, *, code: str | None = None, param: str | None = None,
                   headers: dict | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, code, param), status_code=status, headers=headers)


def from_longdoc(e: LongdocError) -> APIError:
    """A longdoc error (bad input, a prompt too long, a busy engine...) as the API error a client can act on."""
    if isinstance(e, TooLongError):
        return APIError(413, str(e), code="context_length_exceeded")
    if isinstance(e, EngineBusyError):
        return APIError(503, str(e), code="engine_busy", headers={"Retry-After": "5"})
    if isinstance(e, (InputError, ConfigError)):
        return APIError(400, str(e), code="invalid_request")
    return APIError(400, str(e))


def validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    """(one line, the field) of FastAPI's validation error list: malformed JSON, a missing or wrong field."""
    errors = exc.errors()
    if not errors:
        return "The request body is not valid.", None
    first = errors[0]
    if first.get("type") == "json_invalid":
        return ("The request body is not valid JSON (" + str(first.get("ctx", {}).get("error", "malformed")) +
                "): send a JSON object."), None
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    field = ".".join(loc) or None
    msg = first.get("msg", "is not valid")
    if field is None:
        return f"The request body {msg.lower()}: send a JSON object.", None
    return f"{field}: {msg}.", field


def install(app: FastAPI) -> None:
    """Route every error through OpenAI's error shape."""

    @app.exception_handler(APIError)
    async def _api(request: Request, exc: APIError):
        return exc.response()

    @app.exception_handler(LongdocError)
    async def _longdoc(request: Request, exc: LongdocError):
        return from_longdoc(exc).response()

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        message, field = validation_message(exc)
        return error_response(400, message, param=field, code="invalid_request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else "error"
        if exc.status_code == 404 and message == "Not Found":
            message = f"No route {request.method} {request.url.path}: see GET /v1/models, POST /v1/chat/completions."
        if exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}."
        return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        return error_response(500, f"The server failed on this request ({type(exc).__name__}); the details are "
                                   "in the server's log.", code="internal_error")

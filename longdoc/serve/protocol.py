"""The OpenAI request bodies longdoc serves (pydantic models) and the response objects it returns.

Follows the OpenAI API reference for /v1/chat/completions and /v1/completions: `max_tokens` (or
`max_completion_tokens`), `temperature`, `top_p`, `seed`, `stop` (a string or a list), `n` (1 only), `stream`
and `stream_options.include_usage`. Fields longdoc cannot honour (tools, logprobs, n > 1, a JSON response
format, non-zero penalties) are refused with a 400 naming the field, rather than silently ignored; other
unknown fields (user, metadata, ...) are ignored, as the OpenAI-compatible servers do.

longdoc's additions (the `openai` client sends them with `extra_body=`):
    document: "doc-…"   the id of an uploaded document (POST /v1/longdoc/documents) the messages are about;
                        a content part {"type": "file", "file": {"file_id": "doc-…"}} does the same.
    cite: true          (with a document) add `citations` [{"source", "share", "text"}] to the response.
    repetition_penalty  > 1 lowers tokens already in the answer (CTRL's penalty, as vLLM takes it; 1.0: off).
    stop_on_repeat      false: do not end the answer at a sentence it already said (default true).
    ignore_eos          true: decode past the end-of-sequence token up to max_tokens (as vLLM takes it).
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from longdoc.serve.errors import APIError


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class _Sampling(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    logprobs: bool | int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    document: str | None = None
    cite: bool = False
    # decoding extensions in the body, as vLLM's server takes its extra sampling parameters (repetition_penalty,
    # ignore_eos); stop_on_repeat is longdoc's (longdoc/repetition.py)
    repetition_penalty: float = Field(default=1.0, gt=0.0)
    stop_on_repeat: bool = True
    ignore_eos: bool = False

    @field_validator("stop")
    @classmethod
    def _stops(cls, v):
        return [v] if isinstance(v, str) else v

    def check_supported(self) -> None:
        """APIError(400) for what longdoc cannot do, naming the field."""
        if self.n != 1:
            raise APIError(400, f"n={self.n}: this server returns one choice per request; send n=1 (or leave it "
                                "out) and repeat the request for more.", param="n", code="unsupported_parameter")
        if self.logprobs:
            raise APIError(400, "logprobs are not available on this server: leave logprobs out.",
                           param="logprobs", code="unsupported_parameter")
        for name in ("presence_penalty", "frequency_penalty"):
            if getattr(self, name):
                raise APIError(400, f"{name} is not supported: leave it out or send 0.", param=name,
                               code="unsupported_parameter")

    def sampling(self, default_max_tokens: int):
        """longdoc.generate.SamplingParams of this request."""
        from longdoc.integrations._shared import sampling

        max_tokens = self.max_completion_tokens or self.max_tokens or default_max_tokens
        return sampling(max_tokens, self.temperature, self.top_p, self.seed, self.stop or [],
                        repetition_penalty=self.repetition_penalty, stop_on_repeat=self.stop_on_repeat,
                        ignore_eos=self.ignore_eos)

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: str
    content: str | list[Any] | None = None
    name: str | None = None


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage]
    tools: list[Any] | None = None
    tool_choice: Any = None
    functions: list[Any] | None = None
    response_format: dict | None = None
    top_logprobs: int | None = None

    def check_supported(self) -> None:
        super().check_supported()
        if not self.messages:
            raise APIError(400, "messages is empty: send at least one user message.", param="messages",
                           code="invalid_request")
        if self.tools or self.functions:
            raise APIError(400, "Tool calling is not supported by this server: send the request without tools.",
                           param="tools", code="unsupported_parameter")
        if self.response_format and self.response_format.get("type", "text") != "text":
            raise APIError(400, "Only text responses are supported: leave response_format out.",
                           param="response_format", code="unsupported_parameter")


class CompletionRequest(_Sampling):
    prompt: str | list[str] | list[int] = ""
    echo: bool = False
    suffix: str | None = None
    best_of: int | None = None

    def check_supported(self) -> None:
        super().check_supported()
        if isinstance(self.prompt, list):
            if len(self.prompt) != 1 or not isinstance(self.prompt[0], str):
                raise APIError(400, "prompt: send one prompt string per request.", param="prompt",
                               code="unsupported_parameter")
        if self.echo or self.suffix or (self.best_of or 1) > 1:
            field = "echo" if self.echo else "suffix" if self.suffix else "best_of"
            raise APIError(400, f"{field} is not supported: leave it out.", param=field, code="unsupported_parameter")

    @property
    def prompt_text(self) -> str:
        return self.prompt[0] if isinstance(self.prompt, list) else self.prompt


# -- responses -------------------------------------------------------------------------------------------------
def new_id(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:24]}"


def usage_object(usage) -> dict:
    """OpenAI's usage, with the prompt tokens whose prefill was reused in prompt_tokens_details.cached_tokens."""
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.prompt_tokens + usage.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": 0}}


def chat_response(rid: str, model: str, text: str, usage, extra: dict | None = None) -> dict:
    return {"id": rid, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": usage.finish_reason or "stop", "logprobs": None}],
            "usage": usage_object(usage), **(extra or {})}


def chat_chunk(rid: str, model: str, created: int, delta: dict, finish: str | None = None,
               usage: dict | None = None, extra: dict | None = None, choices: bool = True) -> dict:
    out = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}] if choices else []}
    if usage is not None:
        out["usage"] = usage
    return {**out, **(extra or {})}


def completion_response(rid: str, model: str, text: str, usage) -> dict:
    return {"id": rid, "object": "text_completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "text": text, "finish_reason": usage.finish_reason or "stop", "logprobs": None}],
            "usage": usage_object(usage)}


def completion_chunk(rid: str, model: str, created: int, text: str, finish: str | None = None,
                     usage: dict | None = None, choices: bool = True) -> dict:
    out = {"id": rid, "object": "text_completion", "created": created, "model": model,
           "choices": [{"index": 0, "text": text, "finish_reason": finish, "logprobs": None}] if choices else []}
    if usage is not None:
        out["usage"] = usage
    return out


Role = Literal["system", "developer", "user", "assistant"]

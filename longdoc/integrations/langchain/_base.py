"""What ChatLongDoc and LongDocLLM share: the engine and sampling fields, the optional document, the call into
the engine (or the document session), and the usage / response metadata they report."""

from __future__ import annotations

from contextlib import closing
from typing import Any, Iterator

from langchain_core.messages.ai import UsageMetadata
from pydantic import Field, model_validator

from longdoc.integrations._shared import EngineFields, as_document, document_reply, sampling, until_stop
from longdoc.qa.citations import citation_dicts
from longdoc.settings import shared_engine

_CALL_OPTIONS = ("max_tokens", "temperature", "top_p", "seed", "repetition_penalty", "stop_on_repeat")


class LongDocModel(EngineFields):
    """Fields and plumbing shared by ChatLongDoc and LongDocLLM: the engine fields (EngineFields), sampling,
    and an optional document every call is about (`with_document`)."""

    max_tokens: int = 256
    """Most tokens to generate."""
    temperature: float = 0.0
    """0: greedy decoding."""
    top_p: float = 1.0
    seed: int | None = None
    """Seed for sampling (temperature > 0): the same seed gives the same answer."""
    stop: list[str] | None = None
    """Stop strings: the answer ends before the first one (not included)."""
    repetition_penalty: float = 1.0
    """> 1 lowers the logits of tokens already in the answer (CTRL's penalty; 1.0: off)."""
    stop_on_repeat: bool = True
    """End the answer at a sentence it already said (longdoc/repetition.py); False: decode to max_tokens/eos."""

    document: Any = Field(default=None, exclude=True)
    """A `longdoc.documents.Document` every call is about (set it with `with_document`): the messages are then
    the conversation about it, framed by the document session as the CLI frames it."""
    prompt_format: str = "chat"
    """How the document and the conversation are framed (longdoc/qa/prompting.py; docs/prompt_formats.md)."""
    store: bool = False
    """With a document: keep its prefill in the on-disk ingest store shared with the CLI (`longdoc ingest`)."""
    cite: bool = False
    """With a document: put the pages / files the heads read most into the response metadata ("citations")."""

    engine: Any = Field(default=None, exclude=True)
    """A `longdoc.engine.Engine` to use instead of a shared one built from the fields above."""

    @model_validator(mode="after")
    def _attach_engine(self):
        if self.engine is None:
            self.engine = shared_engine(self.engine_settings())
        return self

    def with_document(self, source=None, *, text: str | None = None, password: str | None = None, **changes):
        """A copy whose calls are all about `source` (a PDF, a text file, a directory, a list of them, or a
        longdoc Document) or `text`: one frame, one store key and the same answer as `longdoc ask`. `changes`
        set other fields of the copy (cite=True, store=True, prompt_format=...)."""
        return self.model_copy(update={"document": as_document(source, text=text, password=password), **changes})

    # -- identity ---------------------------------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return self.engine.name

    @property
    def _identifying_params(self) -> dict[str, Any]:
        """Everything that changes an answer, so LangChain's cache never mixes two setups."""
        config = self.engine.config
        return {
            "model_name": self.engine.name,
            "model_source": str(getattr(self.engine.lm, "source", self.model)),
            "longheads": None if config is None else config.to_dict(),
            "max_input_tokens": self.engine.max_input_tokens,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
            "stop": self.stop,
            "repetition_penalty": self.repetition_penalty,
            "stop_on_repeat": self.stop_on_repeat,
            "document": None if self.document is None else self.document.content_hash(),
            "prompt_format": self.prompt_format,
            "cite": self.cite,
        }

    def _get_invocation_params(self, stop: list[str] | None = None, **kwargs: Any) -> dict:
        # LangChain's cache key: the stop strings in force are this object's plus the call's
        params = super()._get_invocation_params(stop=stop, **kwargs)
        params["stop"] = self._stops(stop) or None
        return params

    # -- tokens -----------------------------------------------------------------------------------------------
    def get_token_ids(self, text: str) -> list[int]:
        """Token ids with the model's own tokenizer (LangChain's default would fetch GPT-2's)."""
        return self.engine.encode(text)

    def get_num_tokens(self, text: str) -> int:
        return len(self.engine.encode(text))

    # -- generation -------------------------------------------------------------------------------------------
    def _stops(self, stop: list[str] | None) -> list[str]:
        return list(dict.fromkeys([*(self.stop or []), *(stop or [])]))

    def _params(self, stop: list[str] | None, kwargs: dict):
        model = kwargs.get("model")
        if model is not None and model not in (self.model, self.engine.name):
            from longdoc.errors import ConfigError

            raise ConfigError(f"This object runs {self.engine.name}; build another one with model={model!r}.")
        opts = {k: kwargs[k] if kwargs.get(k) is not None else getattr(self, k) for k in _CALL_OPTIONS}
        if kwargs.get("max_new_tokens") is not None:
            opts["max_tokens"] = kwargs["max_new_tokens"]
        return sampling(opts["max_tokens"], opts["temperature"], opts["top_p"], opts["seed"], self._stops(stop),
                        repetition_penalty=opts["repetition_penalty"], stop_on_repeat=opts["stop_on_repeat"])

    def _pieces(self, turns: list[tuple[str, str]], params, usage, meta: dict) -> Iterator[str]:
        """Text pieces of the answer to chat turns [(role, text)]; the stop strings are applied again to the
        joined text (defence in depth: a piece never carries text past a stop string). With a document, the
        turns are a conversation about it (the document session); `meta` then gets the citations."""
        if self.document is not None:
            reply = document_reply(self.engine, self.document, turns, params, fmt=self.prompt_format,
                                   store=self.store, cite=self.cite, usage=usage)
            with closing(reply):  # closing: frees the engine now, also when the consumer stops early
                yield from until_stop(reply, params.stop, usage)
            if self.cite:
                meta["citations"] = citation_dicts(reply.citations())
            return
        ids = self._prompt_ids(turns)
        with closing(self.engine.stream(ids, params, usage=usage)) as pieces:
            yield from until_stop(pieces, params.stop, usage)

    def _prompt_ids(self, turns: list[tuple[str, str]]) -> list[int]:
        return self.engine.chat_ids([{"role": r, "content": t} for r, t in turns], add_generation_prompt=True)


def usage_metadata(usage) -> UsageMetadata:
    return UsageMetadata(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        total_tokens=usage.prompt_tokens + usage.completion_tokens,
        input_token_details={"cache_read": usage.cached_tokens},
    )


def response_metadata(name: str, usage, meta: dict | None = None) -> dict:
    return {
        "model_name": name,
        "finish_reason": usage.finish_reason,
        "prefill_seconds": round(usage.prefill_s, 4),
        "decode_seconds": round(usage.decode_s, 4),
        **(meta or {}),
    }

"""LangChain classes: `ChatLongDoc` (chat model), `LongDocLLM` (text completion) and `LongDocLoader`.

Swap your chat model for `ChatLongDoc` and put the whole document into the prompt: no splitter, no embeddings,
no retriever. The model reads it with LongHeads attention; a second question about the same document reuses the
prefilled document (the Engine's prefix pool), and `usage_metadata.input_token_details["cache_read"]` says how
many prompt tokens were reused.

    from longdoc.integrations.langchain import ChatLongDoc, LongDocLoader
    doc = "\\n".join(d.page_content for d in LongDocLoader("report.pdf").load())
    chat = ChatLongDoc()                       # the embedded SmolLM2; or ChatLongDoc(model="path/to/hf_folder")
    chat.invoke([("system", doc), ("user", "Summarize section 3.")])

Importing this module is cheap: torch and the model load when the first model object is built.
"""

from __future__ import annotations

from contextlib import closing
from typing import Any, AsyncIterator, Iterator, Sequence

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document as LCDocument
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.language_models.llms import LLM
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult, GenerationChunk
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ._engines import shared_engine
from ._documents import parts, report_skipped, source_metadata
from ._utils import aiter_in_thread, block_text, chat_role, sampling, until_stop

__all__ = ["ChatLongDoc", "LongDocLLM", "LongDocLoader"]

_CALL_OPTIONS = ("max_tokens", "temperature", "top_p", "seed")
_SYSTEM_DOC_FORMAT = "langchain-system-document/v1"  # part of the store key of ChatLongDoc.ingest


class _LongDocModel(BaseModel):
    """Fields and plumbing shared by ChatLongDoc and LongDocLLM."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: str | None = None
    """None: the embedded SmolLM2-135M-Instruct; else a local Hugging Face folder or a .gguf file."""
    chunk_size: int | None = None
    """LongHeads chunk size l (tokens); None: the model's default."""
    chunks: int | None = None
    """LongHeads chunks per head K; None: the model's default."""
    window: int | None = None
    """Attention window per head, chunk_size x chunks (give two of the three)."""
    longheads: bool = True
    """False: plain full attention (only up to the model's trained length)."""
    max_input_tokens: int | None = None
    """Refuse prompts longer than this; None: the engine's reach (LongHeads, bounded by memory)."""
    prefix_slots: int = 2
    """How many prefilled prompts the engine keeps for reuse."""
    threads: int | None = None
    """torch CPU threads (None: leave torch's setting)."""

    max_tokens: int = 256
    """Most tokens to generate."""
    temperature: float = 0.0
    """0: greedy decoding."""
    top_p: float = 1.0
    seed: int | None = None
    """Seed for sampling (temperature > 0): the same seed gives the same answer."""
    stop: list[str] | None = None
    """Stop strings: the answer ends before the first one (not included)."""

    engine: Any = Field(default=None, exclude=True)
    """A `longdoc.engine.Engine` to use instead of a shared one built from the fields above."""

    @model_validator(mode="after")
    def _attach_engine(self):
        if self.engine is None:
            self.engine = shared_engine(self.model, chunk_size=self.chunk_size, chunks=self.chunks,
                                        window=self.window, longheads=self.longheads,
                                        max_input_tokens=self.max_input_tokens, prefix_slots=self.prefix_slots,
                                        threads=self.threads)
        return self

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
        return sampling(opts["max_tokens"], opts["temperature"], opts["top_p"], opts["seed"], self._stops(stop))

    def _pieces(self, prompt_ids: list[int], params, usage) -> Iterator[str]:
        """Text pieces from the engine; the stop strings are applied again to the joined text (defence in depth:
        a piece never carries text past a stop string)."""
        with closing(self.engine.stream(prompt_ids, params, usage=usage)) as pieces:  # closing: frees the engine now
            yield from until_stop(pieces, params.stop, usage)



def _usage_metadata(usage) -> UsageMetadata:
    return UsageMetadata(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        total_tokens=usage.prompt_tokens + usage.completion_tokens,
        input_token_details={"cache_read": usage.cached_tokens},
    )


def _response_metadata(name: str, usage) -> dict:
    return {
        "model_name": name,
        "finish_reason": usage.finish_reason,
        "prefill_seconds": round(usage.prefill_s, 4),
        "decode_seconds": round(usage.decode_s, 4),
    }


class ChatLongDoc(_LongDocModel, BaseChatModel):
    """A local LLaMA-family chat model that reads whole long documents (LongHeads attention).

    Build it with settings, `ChatLongDoc(model=None | "path", chunk_size=256, chunks=8, max_tokens=256, ...)`,
    or around an existing engine, `ChatLongDoc(engine=Engine(...))`. Objects with the same model and settings
    share one Engine (one copy of the weights, one prefix pool) per process.
    """

    streaming: bool = False
    """Stream through `invoke` too (LangChain's convention), so callbacks see every token."""

    @model_validator(mode="after")
    def _attach_profile(self):
        if self.profile is None:
            self.profile = self._resolve_model_profile()
        return self

    def _resolve_model_profile(self):
        if self.engine is None:
            return None
        return {
            "max_input_tokens": int(self.engine.max_input_tokens),
            "text_inputs": True, "text_outputs": True, "image_inputs": False, "pdf_inputs": False,
            "audio_inputs": False, "video_inputs": False, "tool_calling": False, "structured_output": False,
            "temperature": True, "open_weights": True,
        }

    @property
    def _llm_type(self) -> str:
        return "longdoc-chat"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "longdoc"
        params["ls_model_name"] = kwargs.get("model") or self.engine.name
        params["ls_max_tokens"] = kwargs.get("max_tokens") or self.max_tokens
        params["ls_temperature"] = kwargs.get("temperature", self.temperature)
        if self._stops(stop):
            params["ls_stop"] = self._stops(stop)
        return params

    def prompt_ids(self, messages: Sequence[BaseMessage]) -> list[int]:
        """The prompt's token ids through the tokenizer's chat template (with the assistant turn opened)."""
        return self.engine.chat_ids(_to_chat(messages), add_generation_prompt=True)

    def document_messages(self, document: str, question: str) -> list[BaseMessage]:
        """[system: the document, user: the question]: the document first, in a turn of its own, so its tokens
        are the same whatever the question and a second question reuses them (see `ingest`)."""
        from langchain_core.messages import HumanMessage, SystemMessage

        return [SystemMessage(content=document), HumanMessage(content=question)]

    def ingest(self, document: str, *, store: bool = True):
        """Prefill `document` as the system turn (the prefix `document_messages` produces) into the engine's
        prefix pool, through the on-disk ingest store when `store` (an earlier run's prefill is loaded instead
        of recomputed). Returns a `longdoc.store.Ingest` (tokens, reused, seconds)."""
        import hashlib

        from longdoc.store import Store, ensure_prefix, prefix_key

        ids = self.engine.chat_ids([{"role": "system", "content": document}], add_generation_prompt=False)
        key = prefix_key(self.engine, hashlib.sha256(document.encode()).hexdigest(), _SYSTEM_DOC_FORMAT)
        return ensure_prefix(self.engine, ids, key, Store() if store else None, save=store,
                             info={"sources": ["langchain ChatLongDoc.ingest"]})

    def get_num_tokens_from_messages(self, messages: list[BaseMessage], tools=None) -> int:
        return len(self.prompt_ids(messages))

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        from longdoc.generate import Usage

        params, usage = self._params(stop, kwargs), Usage()
        for piece in self._pieces(self.prompt_ids(messages), params, usage):
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))  # LangChain fires on_llm_new_token
        yield self._last_chunk(usage)

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        from longdoc.generate import Usage

        params, usage = self._params(stop, kwargs), Usage()
        prompt = self.prompt_ids(messages)
        async for piece in aiter_in_thread(lambda: self._pieces(prompt, params, usage)):
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))  # LangChain fires on_llm_new_token
        yield self._last_chunk(usage)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        from longdoc.generate import Usage

        params, usage = self._params(stop, kwargs), Usage()
        text = "".join(self._pieces(self.prompt_ids(messages), params, usage))
        return self._result(text, usage)

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        from longdoc.generate import Usage

        params, usage = self._params(stop, kwargs), Usage()
        prompt = self.prompt_ids(messages)
        parts = [piece async for piece in aiter_in_thread(lambda: self._pieces(prompt, params, usage))]
        return self._result("".join(parts), usage)

    def _last_chunk(self, usage) -> ChatGenerationChunk:
        meta = _response_metadata(self.engine.name, usage)
        message = AIMessageChunk(content="", usage_metadata=_usage_metadata(usage), response_metadata=meta,
                                 chunk_position="last")
        return ChatGenerationChunk(message=message, generation_info={"finish_reason": usage.finish_reason})

    def _result(self, text: str, usage) -> ChatResult:
        meta = _response_metadata(self.engine.name, usage)
        message = AIMessage(content=text, usage_metadata=_usage_metadata(usage), response_metadata=meta)
        return ChatResult(generations=[ChatGeneration(message=message,
                                                      generation_info={"finish_reason": usage.finish_reason})],
                          llm_output={"model_name": self.engine.name})


def _to_chat(messages: Sequence[BaseMessage]) -> list[dict]:
    """LangChain messages -> [{"role", "content"}] for the tokenizer's chat template."""
    out = []
    for m in messages:
        role = m.role if m.type == "chat" else m.type  # ChatMessage carries its own role
        out.append({"role": chat_role(role), "content": block_text(m.content)})
    return out


class LongDocLLM(_LongDocModel, LLM):
    """Text in, text out: the prompt string is sent as is, no chat template (for base-model style chains).

    `raw_prompt=False` wraps the prompt in the model's chat template as one user turn instead, which is what an
    instruction-tuned model (like the embedded one) answers best.
    """

    raw_prompt: bool = True

    @property
    def _llm_type(self) -> str:
        return "longdoc"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {**super()._identifying_params, "raw_prompt": self.raw_prompt}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "longdoc"
        params["ls_model_name"] = kwargs.get("model") or self.engine.name
        return params

    def prompt_ids(self, prompt: str) -> list[int]:
        from longdoc.prompt_checks import check_text

        check_text(prompt)
        if self.raw_prompt:
            return self.engine.encode(prompt)
        return self.engine.chat_ids([{"role": "user", "content": prompt}], add_generation_prompt=True)

    def _call(self, prompt: str, stop: list[str] | None = None, run_manager: CallbackManagerForLLMRun | None = None,
              **kwargs: Any) -> str:
        from longdoc.generate import Usage

        usage = Usage()
        return "".join(self._pieces(self.prompt_ids(prompt), self._params(stop, kwargs), usage))

    def _stream(self, prompt: str, stop: list[str] | None = None, run_manager: CallbackManagerForLLMRun | None = None,
                **kwargs: Any) -> Iterator[GenerationChunk]:
        from longdoc.generate import Usage

        usage = Usage()
        for piece in self._pieces(self.prompt_ids(prompt), self._params(stop, kwargs), usage):
            chunk = GenerationChunk(text=piece)
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
        yield GenerationChunk(text="", generation_info={**_response_metadata(self.engine.name, usage),
                                                        "usage": dict(_usage_metadata(usage))})

    async def _astream(self, prompt: str, stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[GenerationChunk]:
        from longdoc.generate import Usage

        usage, params, ids = Usage(), self._params(stop, kwargs), self.prompt_ids(prompt)
        async for piece in aiter_in_thread(lambda: self._pieces(ids, params, usage)):
            chunk = GenerationChunk(text=piece)
            if run_manager:
                await run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
        yield GenerationChunk(text="", generation_info={**_response_metadata(self.engine.name, usage),
                                                        "usage": dict(_usage_metadata(usage))})

    async def _acall(self, prompt: str, stop: list[str] | None = None,
                     run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> str:
        from longdoc.generate import Usage

        usage, params, ids = Usage(), self._params(stop, kwargs), self.prompt_ids(prompt)
        return "".join([p async for p in aiter_in_thread(lambda: self._pieces(ids, params, usage))])


class LongDocLoader(BaseLoader):
    """LangChain documents from longdoc's loaders (PDF, text, directories, "-" for stdin).

    mode="page": one Document per PDF page (metadata `source`, `page` 0-based as LangChain's PDF loaders use,
    `page_label`) and one per text file (`source`). mode="single": one Document holding the whole prompt text,
    framed with file names when there are several files, which is what you give ChatLongDoc.
    """

    def __init__(self, paths, *, mode: str = "page", password: str | None = None, follow_links: bool = False):
        if mode not in ("page", "single"):
            raise ValueError(f"mode={mode!r}: use 'page' or 'single'")
        self.paths = [paths] if isinstance(paths, str) or not isinstance(paths, Sequence) else list(paths)
        self.mode, self.password, self.follow_links = mode, password, follow_links

    def lazy_load(self) -> Iterator[LCDocument]:
        """Documents with metadata `source` (+ `page`, `page_label` for PDFs; `section` for slides, sheets,
        headings; `format`, `encoding`); inputs that were skipped are named in a SkippedFilesWarning and listed
        in every document's `skipped` metadata ("path: reason")."""
        from longdoc.documents import load

        doc = load(self.paths, password=self.password, follow_links=self.follow_links)
        skipped = report_skipped(doc, "LongDocLoader")
        extra = {"skipped": skipped} if skipped else {}
        if self.mode == "single":
            yield LCDocument(page_content=doc.text, metadata={"source": ", ".join(doc.sources),
                                                              "sources": list(doc.sources), **extra})
            return
        for part in parts(doc):
            meta: dict[str, Any] = {"source": part.source, **source_metadata(doc, part.source)}
            if part.page is not None:
                meta.update(page=part.page - 1, page_label=part.page_label)
            if part.section is not None:
                meta["section"] = part.section
            yield LCDocument(page_content=part.text, metadata={**meta, **extra})

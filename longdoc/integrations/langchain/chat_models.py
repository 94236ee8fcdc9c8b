"""`ChatLongDoc`: a LangChain chat model that reads whole long documents (LongHeads attention).

Swap your chat model for `ChatLongDoc` and give it the whole document: no splitter, no embeddings, no retriever.

    from longdoc.integrations.langchain import ChatLongDoc
    chat = ChatLongDoc().with_document("report.pdf", cite=True)   # or ChatLongDoc(model="path/to/hf_folder")
    msg = chat.invoke("Summarize section 3.")
    msg.response_metadata["citations"]        # [{"source": "report.pdf p. 4", "share": 0.41}, ...]

A second question about the same document reuses the prefilled document (the Engine's prefix pool);
`usage_metadata.input_token_details["cache_read"]` says how many prompt tokens were reused.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Iterator, Sequence

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import model_validator

from longdoc.errors import ConfigError
from longdoc.integrations._shared import aiter_in_thread, as_document, block_text, chat_role
from longdoc.integrations.langchain._base import LongDocModel, response_metadata, usage_metadata

__all__ = ["ChatLongDoc"]


class ChatLongDoc(LongDocModel, BaseChatModel):
    """A local LLaMA-family chat model that reads whole long documents (LongHeads attention).

    Build it with settings, `ChatLongDoc(model=None | "path", chunk_size=256, chunks=8, max_tokens=256, ...)`,
    or around an existing engine, `ChatLongDoc(engine=Engine(...))`. Objects with the same model and settings
    share one Engine (one copy of the weights, one prefix pool) per process.

    `chat.with_document("report.pdf", cite=True)` gives a copy whose messages are a conversation about the
    document: the same frame, stored ingest and answer as `longdoc ask report.pdf ...`, and the pages the
    heads read in `response_metadata["citations"]`.
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
        """The prompt's token ids: the document session's frame with a document, else the tokenizer's chat
        template (with the assistant turn opened)."""
        turns = _turns(messages)
        if self.document is None:
            return self._prompt_ids(turns)
        from longdoc.integrations._shared import conversation
        from longdoc.qa.session import DocumentSession

        system, history, question = conversation(turns)
        return DocumentSession(self.engine, self.document, fmt=self.prompt_format, system=system).prompt(
            question, history).ids

    def document_messages(self, document: str, question: str) -> list[BaseMessage]:
        """[system: the document, user: the question], the round-1 recipe kept for code written against it: the
        document in a turn of its own, so its tokens are the same whatever the question and a second question
        reuses its prefill from the engine's pool. `with_document(...)` frames as `longdoc ask` does (and cites
        pages); this keeps the model's plain chat template."""
        from langchain_core.messages import HumanMessage, SystemMessage

        return [SystemMessage(content=document), HumanMessage(content=question)]

    def ingest(self, source=None, *, text: str | None = None, password: str | None = None, store: bool = True):
        """Prefill the document (`source`, or the one set by `with_document`) ahead of the first question,
        through the on-disk ingest store when `store` (the CLI's: an earlier `longdoc ingest` or run is loaded
        instead of recomputed). Returns a `longdoc.qa.session.Ingest` (tokens, reused, seconds)."""
        from longdoc.qa.session import DocumentSession
        from longdoc.store import Store

        given = source is not None or text is not None
        document = as_document(source, text=text, password=password) if given else self.document
        if document is None:
            raise ConfigError("ingest needs a document: pass one, or use chat.with_document(...) first.")
        session = DocumentSession(self.engine, document, fmt=self.prompt_format, store=Store() if store else None)
        return session.prepare(save=store)

    def get_num_tokens_from_messages(self, messages: list[BaseMessage], tools=None) -> int:
        return len(self.prompt_ids(messages))

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        from longdoc.generate import Usage

        params, usage, meta = self._params(stop, kwargs), Usage(), {}
        for piece in self._pieces(_turns(messages), params, usage, meta):
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))  # LangChain fires on_llm_new_token
        yield self._last_chunk(usage, meta)

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        from longdoc.generate import Usage

        params, usage, meta = self._params(stop, kwargs), Usage(), {}
        turns = _turns(messages)
        async for piece in aiter_in_thread(lambda: self._pieces(turns, params, usage, meta)):
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))  # LangChain fires on_llm_new_token
        yield self._last_chunk(usage, meta)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        from longdoc.generate import Usage

        params, usage, meta = self._params(stop, kwargs), Usage(), {}
        text = "".join(self._pieces(_turns(messages), params, usage, meta))
        return self._result(text, usage, meta)

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        from longdoc.generate import Usage

        params, usage, meta = self._params(stop, kwargs), Usage(), {}
        turns = _turns(messages)
        parts = [piece async for piece in aiter_in_thread(lambda: self._pieces(turns, params, usage, meta))]
        return self._result("".join(parts), usage, meta)

    def _last_chunk(self, usage, meta: dict) -> ChatGenerationChunk:
        message = AIMessageChunk(content="", usage_metadata=usage_metadata(usage),
                                 response_metadata=response_metadata(self.engine.name, usage, meta),
                                 chunk_position="last")
        return ChatGenerationChunk(message=message, generation_info={"finish_reason": usage.finish_reason})

    def _result(self, text: str, usage, meta: dict) -> ChatResult:
        message = AIMessage(content=text, usage_metadata=usage_metadata(usage),
                            response_metadata=response_metadata(self.engine.name, usage, meta))
        return ChatResult(generations=[ChatGeneration(message=message,
                                                      generation_info={"finish_reason": usage.finish_reason})],
                          llm_output={"model_name": self.engine.name})


def _turns(messages: Sequence[BaseMessage]) -> list[tuple[str, str]]:
    """LangChain messages -> [(role, text)] with the roles a chat template knows."""
    out = []
    for m in messages:
        role = m.role if m.type == "chat" else m.type  # ChatMessage carries its own role
        out.append((chat_role(role), block_text(m.content)))
    return out

"""`LongDocLLM`: a local LLaMA-family model with LongHeads attention, as a LlamaIndex CustomLLM."""

from __future__ import annotations

from contextlib import closing
from typing import Any, Iterator, Sequence

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM

from longdoc.integrations._shared import (
    EngineFields,
    aiter_in_thread,
    block_text,
    chat_role,
    sampling,
    until_stop,
    usage_dict,
)
from longdoc.settings import shared_engine

__all__ = ["LongDocLLM"]


class LongDocLLM(EngineFields, CustomLLM):
    """A local LLaMA-family model with LongHeads attention, as a LlamaIndex LLM.

    `metadata.context_window` is the real reach (LongHeads, bounded by memory), so LlamaIndex packs whole
    documents into one prompt. Objects with the same model and settings share one Engine per process.
    `complete(prompt)` wraps the prompt in the chat template as a user turn; `complete(prompt, formatted=True)`
    (or a `completion_to_prompt` you set) sends it as is.
    """

    max_tokens: int = Field(default=256, description="most tokens to generate")
    temperature: float = Field(default=0.0, description="0: greedy")
    top_p: float = Field(default=1.0)
    seed: int | None = Field(default=None)
    stop: list[str] | None = Field(default=None, description="stop strings (the answer ends before them)")
    repetition_penalty: float = Field(default=1.0, gt=0.0,
                                      description="> 1 lowers tokens already in the answer (1.0: off)")
    stop_on_repeat: bool = Field(default=True, description="end the answer at a sentence it already said")

    _engine: Any = PrivateAttr(default=None)

    def __init__(self, engine=None, **kwargs: Any):
        super().__init__(**kwargs)
        self._engine = engine or shared_engine(self.engine_settings())

    @classmethod
    def class_name(cls) -> str:
        return "longdoc_llm"

    @property
    def engine(self):
        return self._engine

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=int(self._engine.max_input_tokens), num_output=self.max_tokens,
                           is_chat_model=True, is_function_calling_model=False, model_name=self._engine.name)

    # -- prompts ----------------------------------------------------------------------------------------------
    def chat_prompt_ids(self, messages: Sequence[ChatMessage]) -> list[int]:
        turns = [{"role": chat_role(_role(m)), "content": block_text(_content(m))} for m in messages]
        return self._engine.chat_ids(turns, add_generation_prompt=True)

    def completion_prompt_ids(self, prompt: str, formatted: bool) -> list[int]:
        from llama_index.core.llms.llm import default_completion_to_prompt

        if not formatted and self.completion_to_prompt not in (None, default_completion_to_prompt):
            prompt, formatted = self.completion_to_prompt(prompt), True
        if formatted:
            from longdoc.prompt_checks import check_text

            check_text(prompt)
            return self._engine.encode(prompt)
        return self._engine.chat_ids([{"role": "user", "content": prompt}], add_generation_prompt=True)

    def _params(self, kwargs: dict):
        pick = lambda k: kwargs[k] if kwargs.get(k) is not None else getattr(self, k)  # noqa: E731
        stops = [*(self.stop or []), *(kwargs.get("stop") or [])]
        return sampling(pick("max_tokens"), pick("temperature"), pick("top_p"), pick("seed"), stops,
                        repetition_penalty=pick("repetition_penalty"), stop_on_repeat=pick("stop_on_repeat"))

    def _pieces(self, ids: list[int], params, usage) -> Iterator[str]:
        with closing(self._engine.stream(ids, params, usage=usage)) as pieces:
            yield from until_stop(pieces, params.stop, usage)

    def _run(self, ids: list[int], kwargs: dict) -> Iterator[tuple[str, str, dict | None]]:
        """(text so far, delta, usage at the end or None) for each piece, then a closing ("text", "", usage)."""
        from longdoc.generate import Usage

        usage, text = Usage(), ""
        for piece in self._pieces(ids, self._params(kwargs), usage):
            text += piece
            yield text, piece, None
        yield text, "", usage_dict(usage)

    async def _arun(self, ids: list[int], kwargs: dict):
        params = self._params(kwargs)
        from longdoc.generate import Usage

        usage, text = Usage(), ""
        async for piece in aiter_in_thread(lambda: self._pieces(ids, params, usage)):
            text += piece
            yield text, piece, None
        yield text, "", usage_dict(usage)

    # -- completion -------------------------------------------------------------------------------------------
    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        *_, (text, _, usage) = self._run(self.completion_prompt_ids(prompt, formatted), kwargs)
        return CompletionResponse(text=text, raw=usage, additional_kwargs={"usage": usage})

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        ids = self.completion_prompt_ids(prompt, formatted)

        def gen() -> CompletionResponseGen:
            for text, delta, usage in self._run(ids, kwargs):
                yield CompletionResponse(text=text, delta=delta, raw=usage)

        return gen()

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        ids = self.completion_prompt_ids(prompt, formatted)
        async for text, _, usage in self._arun(ids, kwargs):
            pass
        return CompletionResponse(text=text, raw=usage, additional_kwargs={"usage": usage})

    @llm_completion_callback()
    async def astream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseAsyncGen:
        ids = self.completion_prompt_ids(prompt, formatted)

        async def gen() -> CompletionResponseAsyncGen:
            async for text, delta, usage in self._arun(ids, kwargs):
                yield CompletionResponse(text=text, delta=delta, raw=usage)

        return gen()

    # -- chat -------------------------------------------------------------------------------------------------
    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        *_, (text, _, usage) = self._run(self.chat_prompt_ids(messages), kwargs)
        return _chat_response(text, None, usage)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        ids = self.chat_prompt_ids(messages)

        def gen() -> ChatResponseGen:
            for text, delta, usage in self._run(ids, kwargs):
                yield _chat_response(text, delta, usage)

        return gen()

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        ids = self.chat_prompt_ids(messages)
        async for text, _, usage in self._arun(ids, kwargs):
            pass
        return _chat_response(text, None, usage)

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        ids = self.chat_prompt_ids(messages)

        async def gen() -> ChatResponseAsyncGen:
            async for text, delta, usage in self._arun(ids, kwargs):
                yield _chat_response(text, delta, usage)

        return gen()


def _role(m: ChatMessage) -> str:
    return m.role.value if isinstance(m.role, MessageRole) else str(m.role)


def _content(m: ChatMessage):
    if m.content is not None or not getattr(m, "blocks", None):
        return m.content or ""
    return [{"type": "text", "text": b.text} if getattr(b, "block_type", "") == "text" else {"type": b.block_type}
            for b in m.blocks]


def _chat_response(text: str, delta: str | None, usage: dict | None) -> ChatResponse:
    message = ChatMessage(role=MessageRole.ASSISTANT, content=text)
    return ChatResponse(message=message, delta=delta, raw=usage, additional_kwargs={"usage": usage} if usage else {})

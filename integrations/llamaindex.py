"""LlamaIndex classes: `LongDocLLM` (a CustomLLM), `WholeDocumentQueryEngine`, `LongDocReader`, `use_longdoc`.

Instead of an index that splits, embeds and retrieves, the query engine sends the whole document to the model
in one call; LongHeads attention reads all of it. A second question reuses the prefilled document (the document
is the first turn of the prompt, the question comes after it).

    from longdoc.integrations.llamaindex import LongDocReader, WholeDocumentQueryEngine
    docs = LongDocReader().load_data("report.pdf")
    engine = WholeDocumentQueryEngine.from_documents(docs)      # the embedded model; or llm=LongDocLLM(model=...)
    print(engine.query("Which section talks about pricing?"))

SummaryIndex users: call `use_longdoc(llm)` before building the index, so LlamaIndex's prompt helper packs the
whole document into one prompt instead of splitting it at the 3,900-token default (see docs/integrations.md).
"""

from __future__ import annotations

import os
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
from llama_index.core.base.response.schema import Response
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from llama_index.core.query_engine import CustomQueryEngine
from llama_index.core.readers.base import BaseReader
from llama_index.core.schema import Document, NodeWithScore

from ._engines import shared_engine
from ._documents import parts, report_skipped, source_metadata
from ._utils import aiter_in_thread, block_text, chat_role, sampling, until_stop, usage_dict

__all__ = ["LongDocLLM", "WholeDocumentQueryEngine", "LongDocReader", "use_longdoc"]


class LongDocLLM(CustomLLM):
    """A local LLaMA-family model with LongHeads attention, as a LlamaIndex LLM.

    `metadata.context_window` is the real reach (LongHeads, bounded by memory), so LlamaIndex packs whole
    documents into one prompt. Objects with the same model and settings share one Engine per process.
    `complete(prompt)` wraps the prompt in the chat template as a user turn; `complete(prompt, formatted=True)`
    (or a `completion_to_prompt` you set) sends it as is.
    """

    model: str | None = Field(default=None, description="None: embedded SmolLM2; else a HF folder or .gguf file")
    chunk_size: int | None = Field(default=None, description="LongHeads chunk size (tokens)")
    chunks: int | None = Field(default=None, description="LongHeads chunks per head")
    window: int | None = Field(default=None, description="chunk_size x chunks")
    longheads: bool = Field(default=True, description="False: plain full attention")
    max_input_tokens: int | None = Field(default=None, description="None: the engine's reach")
    prefix_slots: int = Field(default=2, description="prefilled prompts kept for reuse")
    threads: int | None = Field(default=None, description="torch CPU threads")
    max_tokens: int = Field(default=256, description="most tokens to generate")
    temperature: float = Field(default=0.0, description="0: greedy")
    top_p: float = Field(default=1.0)
    seed: int | None = Field(default=None)
    stop: list[str] | None = Field(default=None, description="stop strings (the answer ends before them)")

    _engine: Any = PrivateAttr(default=None)

    def __init__(self, engine=None, **kwargs: Any):
        super().__init__(**kwargs)
        self._engine = engine or shared_engine(
            self.model, chunk_size=self.chunk_size, chunks=self.chunks, window=self.window,
            longheads=self.longheads, max_input_tokens=self.max_input_tokens, prefix_slots=self.prefix_slots,
            threads=self.threads)

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
        return sampling(pick("max_tokens"), pick("temperature"), pick("top_p"), pick("seed"), stops)

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


# -- whole-document query engine -------------------------------------------------------------------------------
DEFAULT_SYSTEM = "Answer the question about the document below. Be brief and exact."


class WholeDocumentQueryEngine(CustomQueryEngine):
    """Sends every document, whole, to the LLM in one call with the question: no splitting, no retrieval.

    The documents form the system turn (headed by file name and page label when they have them) and the question
    the user turn, so a second question reuses the prefilled documents. The response's `source_nodes` are the
    documents; `metadata["usage"]` has the token counts (`cached_tokens`: prompt tokens reused).
    """

    llm: Any = Field(description="a LongDocLLM (any LlamaIndex LLM works, but only a long-context one reads it all)")
    documents: list[Document] = Field(default_factory=list)
    system_prompt: str = Field(default=DEFAULT_SYSTEM)

    @classmethod
    def from_documents(cls, documents: Sequence[Document], llm=None, **kwargs) -> "WholeDocumentQueryEngine":
        return cls(llm=llm or LongDocLLM(), documents=list(documents), **kwargs)

    def document_text(self) -> str:
        parts = []
        for d in self.documents:
            head = " ".join(str(x) for x in (d.metadata.get("file_name"),
                                             _page_tag(d.metadata.get("page_label"))) if x)
            parts.append(f"[{head}]\n{d.text}" if head else d.text)
        return "\n\n".join(parts)

    def messages(self, question: str) -> list[ChatMessage]:
        return [ChatMessage(role=MessageRole.SYSTEM, content=f"{self.system_prompt}\n\n{self.document_text()}"),
                ChatMessage(role=MessageRole.USER, content=question)]

    def custom_query(self, query_str: str) -> Response:
        reply = self.llm.chat(self.messages(query_str))
        return self._response(reply)

    async def acustom_query(self, query_str: str) -> Response:
        reply = await self.llm.achat(self.messages(query_str))
        return self._response(reply)

    def _response(self, reply: ChatResponse) -> Response:
        return Response(response=reply.message.content or "",
                        source_nodes=[NodeWithScore(node=d, score=None) for d in self.documents],
                        metadata={"usage": reply.raw})


def _page_tag(label) -> str | None:
    return f"p. {label}" if label else None


# -- reader ----------------------------------------------------------------------------------------------------
class LongDocReader(BaseReader):
    """LlamaIndex documents from longdoc's loaders: one per PDF page (`file_name`, `file_path`, `page_label`,
    as LlamaIndex's own PDF reader names them) and one per text file."""

    def lazy_load_data(self, paths, password: str | None = None, follow_links: bool = False,
                       **_: Any) -> Iterator[Document]:
        """Documents with metadata `file_name`, `file_path` (+ `page_label` for PDFs, `section` for slides,
        sheets, headings; `format`, `encoding`); skipped inputs are named in a SkippedFilesWarning and listed in
        every document's `skipped` metadata (kept out of the text the LLM and embeddings see)."""
        from longdoc.documents import load

        paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        doc = load([os.fspath(p) for p in paths], password=password, follow_links=follow_links)
        skipped = report_skipped(doc, "LongDocReader")
        for part in parts(doc):
            meta = {"file_name": os.path.basename(part.source), "file_path": part.source,
                    **source_metadata(doc, part.source)}
            if part.page is not None:
                meta["page_label"] = part.page_label
            if part.section is not None:
                meta["section"] = part.section
            if skipped:
                meta["skipped"] = skipped
            hidden = [k for k in ("skipped", "format", "encoding", "ocr") if k in meta]
            yield Document(text=part.text, metadata=meta, excluded_llm_metadata_keys=hidden,
                           excluded_embed_metadata_keys=hidden)


# -- SummaryIndex recipe ---------------------------------------------------------------------------------------
def use_longdoc(llm: LongDocLLM | None = None) -> LongDocLLM:
    """Make `llm` LlamaIndex's default and rebuild what LlamaIndex derived from the previous default.

    `Settings.prompt_helper` is built once, from whichever LLM was the default then, and keeps its context
    window (3,900 tokens for the default): left alone, a SummaryIndex would still cut a long document into
    3,900-token pieces and call the model once per piece. This resets it (and the tokenizer used to count
    tokens) from `llm`, so `SummaryIndex(...).as_query_engine(response_mode="compact")` sends the whole
    document in one call.
    """
    from llama_index.core import Settings
    from llama_index.core.indices.prompt_helper import ChatPromptHelper, PromptHelper

    llm = llm or LongDocLLM()
    Settings.llm = llm
    Settings.tokenizer = llm.engine.encode
    Settings.prompt_helper = PromptHelper.from_llm_metadata(llm.metadata, tokenizer=llm.engine.encode)
    Settings.chat_prompt_helper = ChatPromptHelper.from_llm_metadata(llm.metadata, tokenizer=llm.engine.encode)
    return llm

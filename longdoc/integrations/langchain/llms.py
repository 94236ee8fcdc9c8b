"""`LongDocLLM`: text in, text out (LangChain's LLM), with LongHeads attention."""

from __future__ import annotations

from typing import Any, AsyncIterator, Iterator

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LangSmithParams
from langchain_core.language_models.llms import LLM
from langchain_core.outputs import GenerationChunk

from longdoc.integrations._shared import aiter_in_thread
from longdoc.integrations.langchain._base import LongDocModel, response_metadata, usage_metadata

__all__ = ["LongDocLLM"]


class LongDocLLM(LongDocModel, LLM):
    """Text in, text out: the prompt string is sent as is, no chat template (for base-model style chains).

    `raw_prompt=False` wraps the prompt in the model's chat template as one user turn instead, which is what an
    instruction-tuned model (like the embedded one) answers best. `llm.with_document(path)`: the prompt is a
    question about the document, framed by the document session (as `longdoc ask`).
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
        """The prompt's token ids (InputError for an empty or whitespace prompt)."""
        from longdoc.prompt_checks import check_text

        check_text(prompt)
        if self.raw_prompt:
            return self.engine.encode(prompt)
        return super()._prompt_ids([("user", prompt)])

    def _prompt_ids(self, turns: list[tuple[str, str]]) -> list[int]:
        return self.prompt_ids(turns[-1][1])

    def _call(self, prompt: str, stop: list[str] | None = None, run_manager: CallbackManagerForLLMRun | None = None,
              **kwargs: Any) -> str:
        from longdoc.generate import Usage

        return "".join(self._pieces([("user", prompt)], self._params(stop, kwargs), Usage(), {}))

    def _stream(self, prompt: str, stop: list[str] | None = None, run_manager: CallbackManagerForLLMRun | None = None,
                **kwargs: Any) -> Iterator[GenerationChunk]:
        from longdoc.generate import Usage

        usage, meta = Usage(), {}
        for piece in self._pieces([("user", prompt)], self._params(stop, kwargs), usage, meta):
            chunk = GenerationChunk(text=piece)
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
        yield GenerationChunk(text="", generation_info={**response_metadata(self.engine.name, usage, meta),
                                                        "usage": dict(usage_metadata(usage))})

    async def _astream(self, prompt: str, stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[GenerationChunk]:
        from longdoc.generate import Usage

        usage, params, meta = Usage(), self._params(stop, kwargs), {}
        async for piece in aiter_in_thread(lambda: self._pieces([("user", prompt)], params, usage, meta)):
            chunk = GenerationChunk(text=piece)
            if run_manager:
                await run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
        yield GenerationChunk(text="", generation_info={**response_metadata(self.engine.name, usage, meta),
                                                        "usage": dict(usage_metadata(usage))})

    async def _acall(self, prompt: str, stop: list[str] | None = None,
                     run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> str:
        from longdoc.generate import Usage

        usage, params = Usage(), self._params(stop, kwargs)
        return "".join([p async for p in aiter_in_thread(lambda: self._pieces([("user", prompt)], params, usage, {}))])

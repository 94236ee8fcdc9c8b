"""`use_longdoc`: the SummaryIndex recipe (LlamaIndex's global Settings rebuilt from a LongDocLLM)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from longdoc.integrations.llamaindex.llms import LongDocLLM

__all__ = ["use_longdoc"]


def use_longdoc(llm: "LongDocLLM | None" = None) -> "LongDocLLM":
    """Make `llm` LlamaIndex's default and rebuild what LlamaIndex derived from the previous default.

    `Settings.prompt_helper` is built once, from whichever LLM was the default then, and keeps its context
    window (3,900 tokens for the default): left alone, a SummaryIndex would still cut a long document into
    3,900-token pieces and call the model once per piece. This resets it (and the tokenizer used to count
    tokens) from `llm`, so `SummaryIndex(...).as_query_engine(response_mode="compact")` sends the whole
    document in one call.
    """
    from llama_index.core import Settings
    from llama_index.core.indices.prompt_helper import ChatPromptHelper, PromptHelper

    from longdoc.integrations.llamaindex.llms import LongDocLLM

    llm = llm or LongDocLLM()
    Settings.llm = llm
    Settings.tokenizer = llm.engine.encode
    Settings.prompt_helper = PromptHelper.from_llm_metadata(llm.metadata, tokenizer=llm.engine.encode)
    Settings.chat_prompt_helper = ChatPromptHelper.from_llm_metadata(llm.metadata, tokenizer=llm.engine.encode)
    return llm

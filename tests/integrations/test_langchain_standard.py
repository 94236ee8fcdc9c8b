"""LangChain's standard test suites for ChatLongDoc.

Unit suite: on the tiny random-weight model (CI). Integration suite: on the real embedded SmolLM2 (marked
real_model; long: run it on purpose, `pytest -m real_model tests/integrations/test_langchain_standard.py`).
Tests that cannot apply to a local text-only model without tool calling are xfailed with the reason.
"""

from __future__ import annotations

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from longdoc.integrations.langchain import ChatLongDoc

TINY = {"chunk_size": 16, "chunks": 4}  # as in conftest.py: window 64 on the tiny model


class TestChatLongDocUnit(ChatModelUnitTests):
    @pytest.fixture(autouse=True)
    def _tiny_model(self, tiny_model_dir):
        type(self).model_path = str(tiny_model_dir)

    @property
    def chat_model_class(self):
        return ChatLongDoc

    @property
    def chat_model_params(self) -> dict:
        return {"model": self.model_path, **TINY}

    @property
    def has_tool_calling(self) -> bool:
        return False

    @property
    def has_structured_output(self) -> bool:
        return False


_NO_TOOLS = "SmolLM2-135M has no tool-calling format and ChatLongDoc does not implement bind_tools"


@pytest.mark.real_model
@pytest.mark.asyncio  # the suite's async tests; the project runs pytest-asyncio in strict mode
class TestChatLongDocIntegration(ChatModelIntegrationTests):
    @property
    def chat_model_class(self):
        return ChatLongDoc

    @property
    def chat_model_params(self) -> dict:
        return {"max_tokens": 32, "threads": 1}

    @property
    def has_tool_calling(self) -> bool:
        return False

    @property
    def has_structured_output(self) -> bool:
        return False

    @property
    def supports_json_mode(self) -> bool:
        return False

    @property
    def supports_model_override(self) -> bool:
        return False  # one local model per object: another model means another ChatLongDoc

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def supported_usage_metadata_details(self):
        return {"invoke": ["cache_read_input"], "stream": ["cache_read_input"]}

    def invoke_with_cache_read_input(self, *, stream: bool = False):
        """The same document asked twice: the second call reads the prefilled document from the prefix pool."""
        doc = " ".join(f"Note {i}: the valve in room {i} is checked weekly." for i in range(40))
        model = ChatLongDoc(**self.chat_model_params).with_document(text=doc)
        model.invoke("Which room is note 3 about?")
        messages = "Which room is note 7 about?"
        if not stream:
            return model.invoke(messages)
        full = None
        for chunk in model.stream(messages):
            full = chunk if full is None else full + chunk
        return full

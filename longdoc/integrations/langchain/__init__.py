"""LangChain classes, one module per class kind (as the LangChain partner packages lay them out):

    chat_models.py       ChatLongDoc        (BaseChatModel)
    llms.py              LongDocLLM         (LLM: text in, text out)
    document_loaders.py  LongDocLoader      (BaseLoader)
    _base.py             what the two model classes share (engine and sampling fields, the document session)

Importing this package is cheap: torch and the model load when the first model object is built.
"""

from longdoc.integrations.langchain.chat_models import ChatLongDoc
from longdoc.integrations.langchain.document_loaders import LongDocLoader
from longdoc.integrations.langchain.llms import LongDocLLM

__all__ = ["ChatLongDoc", "LongDocLLM", "LongDocLoader"]

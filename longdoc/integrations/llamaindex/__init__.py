"""LlamaIndex classes, one module per class kind:

    llms.py          LongDocLLM                 (CustomLLM)
    query_engine.py  WholeDocumentQueryEngine   (CustomQueryEngine, through the document session)
    readers.py       LongDocReader              (BaseReader)
    settings.py      use_longdoc                (the SummaryIndex recipe)

SummaryIndex users: call `use_longdoc(llm)` before building the index, so LlamaIndex's prompt helper packs the
whole document into one prompt instead of splitting it at the 3,900-token default (see docs/integrations.md).
"""

from longdoc.integrations.llamaindex.llms import LongDocLLM
from longdoc.integrations.llamaindex.query_engine import WholeDocumentQueryEngine
from longdoc.integrations.llamaindex.readers import LongDocReader
from longdoc.integrations.llamaindex.settings import use_longdoc

__all__ = ["LongDocLLM", "WholeDocumentQueryEngine", "LongDocReader", "use_longdoc"]

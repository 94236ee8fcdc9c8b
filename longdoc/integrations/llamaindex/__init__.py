"""LlamaIndex classes, one module per class kind:

    llms.py          LongDocLLM                 (CustomLLM)
    query_engine.py  WholeDocumentQueryEngine   (CustomQueryEngine)
    readers.py       LongDocReader              (BaseReader)
    settings.py      use_longdoc                (the SummaryIndex recipe)
"""

from longdoc.integrations.llamaindex.llms import LongDocLLM, LongDocReader, WholeDocumentQueryEngine, use_longdoc

__all__ = ["LongDocLLM", "WholeDocumentQueryEngine", "LongDocReader", "use_longdoc"]

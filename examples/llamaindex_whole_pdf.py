"""LlamaIndex: the whole PDF through WholeDocumentQueryEngine (one LLM call per question, the document reused),
and the SummaryIndex recipe (`use_longdoc`) packing it into one call too. Prints answers, usage and timings.

    HF_HUB_OFFLINE=1 python examples/llamaindex_whole_pdf.py                  # generated ~8k-token report
    python examples/llamaindex_whole_pdf.py --pdf report.pdf
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pdf", help="a PDF to read (default: a generated report)")
    p.add_argument("--tokens", type=int, default=8_000, help="length of the generated report (tokens, approx.)")
    p.add_argument("-m", "--model", default=None, help="hub id, folder or .gguf (default: the embedded SmolLM2)")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from llama_index.core import Settings, SummaryIndex
    from llama_index.core.callbacks import CallbackManager, TokenCountingHandler

    from longdoc.integrations.llamaindex import LongDocLLM, LongDocReader, WholeDocumentQueryEngine, use_longdoc
    from rag_vs_longheads import make_report

    pdf = args.pdf or make_report(Path(tempfile.mkdtemp()) / "report.pdf", args.tokens)
    docs = LongDocReader().load_data(pdf)
    llm = LongDocLLM(model=args.model, max_tokens=24)
    print(f"{pdf}: {len(docs)} pages; {llm.metadata.model_name}, context_window {llm.metadata.context_window:,}")

    engine = WholeDocumentQueryEngine.from_documents(docs, llm=llm)
    for q in ("What is the access code of the north warehouse?", "Who is the paint supplier?"):
        t0 = time.perf_counter()
        r = engine.query(q)
        u = r.metadata["usage"]
        print(f"Q: {q}\nA: {str(r).strip()}\n   {time.perf_counter() - t0:.1f} s, {u['prompt_tokens']:,} prompt "
              f"tokens, {u['cached_tokens']:,} reused")

    use_longdoc(llm)  # resets Settings.prompt_helper to the real window (see docs/integrations.md)
    # LlamaIndex's documented way to count: the handler on Settings.callback_manager (the query engine hands
    # that manager to the LLM; one given only to the index or set on the LLM beforehand is replaced)
    counter = TokenCountingHandler(tokenizer=llm.engine.encode)
    Settings.callback_manager = CallbackManager([counter])
    index = SummaryIndex.from_documents(docs)
    qe = index.as_query_engine(response_mode="compact", llm=llm)
    t0 = time.perf_counter()
    r = qe.query("Which section talks about the flood?")
    print(f"SummaryIndex: {len(index.index_struct.nodes)} nodes -> {len(counter.llm_token_counts)} LLM call(s), "
          f"{counter.prompt_llm_token_count:,} prompt tokens, {time.perf_counter() - t0:.1f} s\nA: {str(r).strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

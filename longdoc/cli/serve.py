"""`longdoc serve`: an OpenAI-compatible server (chat/completions, completions, models) with a web page at /."""

from __future__ import annotations

import click

from longdoc.cli.common import handle_errors, model_options


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface, use --api-key).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port (0: any free one).")
@click.option("--api-key", envvar="LONGDOC_API_KEY", default=None,
              help="Require `Authorization: Bearer KEY` on /v1/* (env LONGDOC_API_KEY).")
@click.option("--served-model-name", "names", multiple=True,
              help="The model id clients send (repeatable; default: the model's name).")
@click.option("--max-request-size", default="64MiB", show_default=True, metavar="SIZE",
              help="Largest request body; larger ones get 413.")
@click.option("--max-document-size", default="256MiB", show_default=True, metavar="SIZE",
              help="Largest uploaded document (its files, zips unpacked); larger ones get 413.")
@click.option("--max-document-tokens", type=click.IntRange(min=1), default=None,
              help="Largest document in tokens (default: what LongHeads reaches); larger ones get 413.")
@click.option("--max-queue", type=click.IntRange(min=0), default=8, show_default=True,
              help="Requests that may wait while one generates; beyond that 429 with Retry-After.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=512, show_default=True,
              help="Answer tokens when a request does not say.")
@click.option("--documents-dir", type=click.Path(file_okay=False), default=None,
              help="Where uploaded documents are kept by id (default: the user cache folder; may be shared).")
@click.option("--store-dir", type=click.Path(file_okay=False), default=None,
              help="Where prefilled documents are stored (default: the CLI's ingest store, LONGDOC_CACHE_DIR).")
@click.option("--no-store", is_flag=True, help="Keep prefilled documents in memory only.")
@click.option("--drain-timeout", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="Seconds Ctrl-C / SIGTERM waits for requests in flight.")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="info",
              show_default=True)
@model_options
@handle_errors
def serve(host, port, api_key, names, max_request_size, max_document_size, max_document_tokens, max_queue,
          max_tokens, documents_dir, store_dir, no_store, drain_timeout, log_level, model, window, chunk_size,
          chunks, threads, revision, dtype, device):
    """Serve the model over the OpenAI API: POST /v1/chat/completions and /v1/completions (streaming or not),
    GET /v1/models and /health; upload documents once with POST /v1/longdoc/documents; a web page at /.

    \b
      longdoc serve                                  # http://127.0.0.1:8000
      curl http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' \\
        -d '{"model": "SmolLM2-135M-Instruct", "messages": [{"role": "user", "content": "Hi"}]}'
    """
    from longdoc.cli.common import engine_settings, warn
    from longdoc.serve.run import serve as run
    from longdoc.serve.settings import ServeSettings
    from longdoc.store import parse_size

    settings = ServeSettings(host=host, port=port, api_key=api_key, model_names=tuple(names),
                             max_request_bytes=parse_size(max_request_size),
                             max_document_bytes=parse_size(max_document_size), max_document_tokens=max_document_tokens,
                             max_queue=max_queue, max_tokens=max_tokens, documents_dir=documents_dir,
                             store_dir="" if no_store else store_dir, drain_s=drain_timeout)
    if host not in ("127.0.0.1", "localhost", "::1") and not api_key:
        warn(f"listening on {host} without --api-key: anyone who can reach this port can use the model")
    engine = engine_settings(model, window, chunk_size, chunks, threads, revision=revision, dtype=dtype,
                             device=device).build()
    try:
        run(engine, settings, log_level=log_level)
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after draining: a normal way to stop a server
        click.echo("Stopped.", err=True)

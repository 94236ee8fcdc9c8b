"""`longdoc serve`: an OpenAI-compatible HTTP server (FastAPI + uvicorn) over one Engine, with a web page.

    from longdoc.serve import ServeSettings, create_app, serve
    serve(engine, ServeSettings(port=8000))           # blocks; Ctrl-C / SIGTERM drain and exit

Modules: settings (ServeSettings), protocol (request and response bodies), prompts (messages -> token ids with
the document as a reusable prefix), library (uploaded documents by id), gate (one generation at a time, a
bounded queue), worker (generation in a thread, cancellable), errors (OpenAI error objects), app (the routes),
run (uvicorn), static/ (the web page).
"""

from longdoc.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app", "serve"]


def create_app(engine, settings: ServeSettings | None = None):
    from longdoc.serve.app import create_app as _create

    return _create(engine, settings)


def serve(engine, settings: ServeSettings | None = None, **kw) -> None:
    from longdoc.serve.run import serve as _serve

    _serve(engine, settings, **kw)

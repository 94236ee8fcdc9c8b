"""Run the app with uvicorn: listen, serve, and on Ctrl-C / SIGTERM drain (uvicorn stops accepting, waits up to
`drain_s` for requests in flight, then the app's shutdown stops what is left and waits for ingests being
stored) and return.

`server(engine, settings)` gives the uvicorn.Server without running it, for callers (tests, notebooks) that
run it in a thread of their own and stop it with `server.should_exit = True`.
"""

from __future__ import annotations

import socket

from longdoc.serve.settings import ServeSettings


def server(engine, settings: ServeSettings | None = None, *, log_level: str = "info"):
    import uvicorn

    from longdoc.serve.app import create_app

    settings = settings or ServeSettings()
    config = uvicorn.Config(create_app(engine, settings), host=settings.host, port=settings.port,
                            log_level=log_level, timeout_graceful_shutdown=settings.drain_s,
                            limit_concurrency=None, access_log=log_level == "debug")
    return uvicorn.Server(config)


def serve(engine, settings: ServeSettings | None = None, *, sock: socket.socket | None = None,
          log_level: str = "info") -> None:
    """Serve until Ctrl-C / SIGTERM (blocks). `sock`: an already bound socket to serve on instead of host:port."""
    srv = server(engine, settings, log_level=log_level)
    srv.run(sockets=[sock] if sock is not None else None)

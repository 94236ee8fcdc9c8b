"""The real server on a free loopback port (uvicorn in a thread), over a tiny random-weight model."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import replace

TINY = {"chunk_size": 16, "chunks": 4}  # a 64-token window: a few hundred tokens of document are many windows
DOC = "\n".join(f"Line {i}: the depot at Kestrel Point stores crate number {1000 + 7 * i}." for i in range(40))


@contextmanager
def running(engine, settings=None, timeout_s: float = 60.0):
    """Serve `engine` on 127.0.0.1 at a free port; yields the base URL; stops the server afterwards."""
    from longdoc.serve.run import server
    from longdoc.serve.settings import ServeSettings

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    srv = server(engine, replace(settings or ServeSettings(), port=port), log_level="warning")
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout_s)
        sock.close()



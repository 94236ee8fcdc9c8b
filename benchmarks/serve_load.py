"""Load test of `longdoc serve` on loopback: starts the server in this process on a free port, runs
`longdoc.serve.loadtest.load_test` against it and prints the table (Markdown).

    python benchmarks/serve_load.py --clients 8 --requests 5 --documents 3 --max-tokens 16 --queue 4 --threads 2
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import threading
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="default: the embedded SmolLM2-135M-Instruct")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--requests", type=int, default=5)
    p.add_argument("--documents", type=int, default=3)
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--queue", type=int, default=4)
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args()

    from longdoc.serve.loadtest import format_stats, load_test
    from longdoc.serve.run import server
    from longdoc.serve.settings import ServeSettings
    from longdoc.settings import EngineSettings

    engine = EngineSettings(model=a.model, threads=a.threads).build()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    srv = server(engine, ServeSettings(port=sock.getsockname()[1], max_queue=a.queue, store_dir=""),
                 log_level="warning")
    threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not srv.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    stats = asyncio.run(load_test(url, engine.name, clients=a.clients, requests=a.requests, documents=a.documents,
                                  max_tokens=a.max_tokens))
    srv.should_exit = True
    label = f"{engine.name}, {a.clients} clients x {a.requests} requests, {a.documents} documents, queue {a.queue}"
    print(format_stats(stats, label))
    for f in stats.failed:
        print("failed:", f)


if __name__ == "__main__":
    main()

"""A bounded load test on loopback: 8 concurrent clients x 5 requests about 2 documents on the tiny model, a
queue of 4: every request answered, none failed except by the documented 429 (retried after Retry-After);
p50/p95 latency and throughput printed (not asserted: the machine is shared)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from serve_helpers import running


def test_eight_clients_five_requests(tiny_engine, serve_settings, model_id, capsys):
    from longdoc.serve.loadtest import format_stats, load_test

    tiny_engine.clear_prefixes()
    with running(tiny_engine, replace(serve_settings, max_queue=4)) as url:
        stats = asyncio.run(load_test(url, model_id, clients=8, requests=5, documents=2, max_tokens=8))
    with capsys.disabled():
        print("\n" + format_stats(stats, "tiny model, 8 clients x 5 requests, 2 documents, queue 4"))
    assert stats.sent == 40 and stats.ok == 40 and not stats.failed, stats.failed
    assert stats.throttled > 0  # 8 clients against 1 running + 4 waiting: the queue did fill
    # two documents fit the engine's two pooled prefixes (prefix_slots=2): every later request reuses one
    assert stats.cached_tokens > 0.5 * stats.prompt_tokens

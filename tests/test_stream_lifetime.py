"""Stream lifetime on a real (tiny) engine with real threads: a consumer that stops reading, in any way, leaves
the engine free for the next call; a call waiting for a busy engine waits a bounded time and says so.

Every wait on another thread is guarded by a join timeout so that a regression fails instead of hanging CI
(the assertion is that the thread finished, not how fast)."""

from __future__ import annotations

import asyncio
import gc
import socket
import threading

import pytest

from longdoc import LongHeadsConfig
from longdoc.engine import Engine
from longdoc.errors import ConfigError, EngineBusyError, InputError
from longdoc.generate import SamplingParams, Usage

GUARD_S = 120  # a hang guard, far above what any call here needs


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return Engine(str(tiny_model_dir), LongHeadsConfig(chunk_size=16, chunks=4), wait_s=GUARD_S)


@pytest.fixture
def prompts(engine):
    a = engine.encode(" ".join(f"Alpha item {i} is red." for i in range(30)))
    b = engine.encode(" ".join(f"Beta row {i} is blue." for i in range(30)))
    return a, b


P = SamplingParams(max_new_tokens=8)


def answer(engine, ids, usage=None):
    return "".join(engine.stream(ids, P, usage=usage))


def reused_by_a_repeat(engine, ids) -> int:
    """Prompt tokens a repeat of `ids` reuses after a stream of it read to its end (what the pool's exact-reuse
    rule allows, longdoc/prefix.py: whole chunks before the question's per-token tail); the pool left empty."""
    engine.clear_prefixes()
    answer(engine, ids)
    usage = Usage()
    answer(engine, ids, usage)
    engine.clear_prefixes()
    assert usage.cached_tokens > 0
    return usage.cached_tokens


def in_thread(fn):
    """Run fn in another thread; returns its result, fails (not hangs) if it never finishes."""
    out = {}

    def run():
        try:
            out["v"] = fn()
        except BaseException as e:  # re-raised below
            out["e"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(GUARD_S)
    assert not t.is_alive(), "the call never finished: the engine is still held"
    if "e" in out:
        raise out["e"]
    return out["v"]


def test_peek_and_keep_the_iterator_then_ask_again_same_thread(engine, prompts):
    a, b = prompts
    expected_b = answer(engine, b)
    kept = engine.stream(a, P)
    first = next(kept)  # a notebook peeks and keeps `kept` around
    assert first
    assert in_thread(lambda: answer(engine, b)) == expected_b  # another thread
    assert answer(engine, b) == expected_b  # the same thread, the first stream still open
    rest = "".join(kept)  # the kept stream can still be read to its end
    assert first + rest == answer(engine, a)


def test_break_close_and_garbage_collection_hand_the_prefix_back(engine, prompts):
    a, _ = prompts
    full = reused_by_a_repeat(engine, a)
    usage = Usage()
    answer(engine, a, usage)
    assert usage.cached_tokens == 0  # control: an empty pool reuses nothing
    for stop in ("break", "close", "gc"):
        engine.clear_prefixes()
        it = engine.stream(a, P)
        next(it)
        if stop == "close":
            it.close()
        elif stop == "gc":
            del it
            gc.collect()
        else:
            for _ in it:
                break
            del it
        usage = Usage()
        answer(engine, a, usage)
        assert usage.cached_tokens == full, stop  # the abandoned stream's prefill went back to the pool


def test_two_interleaved_streams_equal_their_sequential_answers(engine, prompts):
    a, b = prompts
    expected = (answer(engine, a), answer(engine, b))
    sa, sb = engine.stream(a, P), engine.stream(b, P)
    pa, pb = [], []
    for x, y in zip(sa, sb):
        pa.append(x)
        pb.append(y)
    pa += list(sa)
    pb += list(sb)
    assert ("".join(pa), "".join(pb)) == expected


def test_many_threads_share_one_engine(engine, prompts):
    a, b = prompts
    expected = [answer(engine, a), answer(engine, b)] * 2
    results = [None] * 4
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, answer(engine, (a, b)[i % 2])), daemon=True)
               for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(GUARD_S)
    assert not any(t.is_alive() for t in threads)
    assert results == expected


def test_a_disconnected_client_frees_the_engine(engine, prompts):
    """Web-server style: the handler writes each piece to a socket whose client went away."""
    a, b = prompts
    expected_b = answer(engine, b)
    server, client = socket.socketpair()
    client.close()  # the client disconnects

    def handler():
        try:
            for piece in engine.stream(a, P):
                server.sendall(piece.encode())
        except (BrokenPipeError, ConnectionResetError):
            return "client gone"
        return "sent"

    try:
        assert in_thread(handler) == "client gone"
    finally:
        server.close()
    assert in_thread(lambda: answer(engine, b)) == expected_b


def test_async_consumer_cancelled_or_closed(engine, prompts):
    from longdoc.integrations._shared import aiter_in_thread

    a, b = prompts
    expected_b = answer(engine, b)

    async def main():
        agen = aiter_in_thread(lambda: engine.stream(a, P))
        async for _ in agen:
            break
        await agen.aclose()

        started = asyncio.Event()

        async def consume():
            async for _ in aiter_in_thread(lambda: engine.stream(a, P)):
                started.set()
                await asyncio.sleep(3600)  # a slow consumer that gets cancelled

        task = asyncio.create_task(consume())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        parts = [p async for p in aiter_in_thread(lambda: engine.stream(b, P))]
        return "".join(parts)

    assert in_thread(lambda: asyncio.run(main())) == expected_b


def test_waiting_for_a_busy_engine_is_bounded_and_says_so(tiny_model_dir, prompts):
    busy = Engine(str(tiny_model_dir), LongHeadsConfig(chunk_size=16, chunks=4), wait_s=0.2)
    a, _ = prompts
    holder_has_it, release = threading.Event(), threading.Event()

    def hold():  # another call's long step
        with busy._lock.hold("a long prefill"):
            holder_has_it.set()
            release.wait(GUARD_S)

    t = threading.Thread(target=hold, daemon=True)
    t.start()
    holder_has_it.wait(GUARD_S)
    try:
        with pytest.raises(EngineBusyError, match="stayed busy for 0.2 s"):
            answer(busy, a)
    finally:
        release.set()
        t.join(GUARD_S)
    assert answer(busy, a)  # free again: the refused call left nothing behind


def test_calling_the_engine_from_inside_its_own_step_raises_instead_of_deadlocking(engine, prompts):
    a, b = prompts
    seen = []

    def progress(done, total):
        try:
            answer(engine, b)
        except EngineBusyError as e:
            seen.append(str(e))

    in_thread(lambda: "".join(engine.stream(a, P, progress=progress)))
    assert seen and "from inside its own running step" in seen[0]
    assert answer(engine, b)


def test_requests_for_nothing_are_refused_and_the_engine_answers_after(engine, prompts):
    a, _ = prompts
    with pytest.raises(InputError, match="empty"):
        list(engine.stream([], P))
    with pytest.raises(ConfigError, match="max_tokens=0"):
        list(engine.stream(a, SamplingParams(max_new_tokens=0)))
    assert answer(engine, a)


def test_a_stream_dropped_while_the_pool_is_busy_hands_its_prefix_back_later_without_blocking(engine, prompts):
    """The finaliser of a dropped stream may run at any moment in any thread, also while another thread is
    inside the prefix pool: it must not wait for the pool (a deadlock under the garbage collector)."""
    a, _ = prompts
    full = reused_by_a_repeat(engine, a)
    started, go, dropped = threading.Event(), threading.Event(), threading.Event()

    def drop_a_stream():
        it = engine.stream(a, P)
        next(it)
        started.set()
        go.wait(GUARD_S)
        del it  # the finaliser runs here, while the pool is held by the test's thread
        dropped.set()

    t = threading.Thread(target=drop_a_stream, daemon=True)
    t.start()
    assert started.wait(GUARD_S)
    with engine._pool_lock:
        go.set()
        assert dropped.wait(GUARD_S), "the finaliser blocked on the prefix pool"
    t.join(GUARD_S)
    usage = Usage()
    answer(engine, a, usage)
    assert usage.cached_tokens == full  # handed back through the mailbox, taken in by the next call

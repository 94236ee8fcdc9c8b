"""Run a blocking generation (a prefill, then decode steps) in a thread and hand its pieces to the event loop.

The loop stays free while the model computes. `cancel()` (a client that went away, a server shutting down)
stops the generation at its next piece or prefill block (the progress callback raises `Cancelled`), closes the
engine's stream so its prefilled prompt goes back to the prefix pool, and only then calls `on_done` (which
releases the request's place in the Gate: the next request never overlaps a cancelled one).
"""

from __future__ import annotations

import asyncio
import threading
from typing import AsyncIterator, Callable, Iterator


class Cancelled(Exception):
    """Raised inside the worker thread (from a progress callback) to stop a prefill under way."""


_DONE = object()
AHEAD = 16  # pieces a generation may compute before its reader takes them: a slow client slows its generation


class Generation:
    """make_iter(progress) -> an iterator of text pieces; `progress(done, total)` must be passed to the engine
    as its prefill progress callback, so a cancel stops a long prefill between blocks."""

    def __init__(self, make_iter: Callable[[Callable[[int, int], None]], Iterator[str]],
                 on_done: Callable[[], None] | None = None):
        self._make_iter, self._on_done = make_iter, on_done
        self._cancel = threading.Event()
        self.finished = threading.Event()
        self.error: BaseException | None = None
        self._room = threading.Semaphore(AHEAD)  # pieces the thread may run ahead of the reader

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def _progress(self, done: int, total: int) -> None:
        if self._cancel.is_set():
            raise Cancelled()

    def start(self) -> None:
        """Start the worker thread now (in the event loop's thread). Pieces queue up until `pieces()` reads
        them; whoever started it must make sure `cancel()` is called if nobody will read (the server's
        disconnect watcher does)."""
        loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue = asyncio.Queue()

        def put(item) -> None:
            try:
                loop.call_soon_threadsafe(self._queue.put_nowait, item)
            except RuntimeError:  # the loop is closed
                self._cancel.set()

        def work() -> None:
            iterator = None
            try:
                iterator = self._make_iter(self._progress)
                for piece in iterator:
                    while not self._room.acquire(timeout=0.1):  # wait for the reader, or a cancel
                        if self._cancel.is_set():
                            break
                    if self._cancel.is_set():
                        break
                    put(piece)
            except Cancelled:
                pass
            except BaseException as e:  # re-raised on the awaiting side
                self.error = e
            finally:
                close = getattr(iterator, "close", None)
                try:
                    if close is not None:
                        close()
                except Exception:
                    pass
                finally:
                    self.finished.set()
                    if self._on_done is not None:
                        self._on_done()
                    put(_DONE)

        threading.Thread(target=work, name="longdoc-serve-generate", daemon=True).start()

    async def pieces(self) -> AsyncIterator[str]:
        """The pieces as they come (starting the thread if `start` was not called). Leaving the loop early
        (break, an exception, cancellation) cancels the generation."""
        if not hasattr(self, "_queue"):
            self.start()
        try:
            while True:
                item = await self._queue.get()
                if item is _DONE:
                    if self.error is not None:
                        raise self.error
                    return
                self._room.release()
                yield item
        finally:
            self._cancel.set()

"""One generation at a time per engine, with a bounded queue.

The Engine interleaves model steps of concurrent streams (longdoc/lease.py); a server gives each request the
whole engine instead, in arrival order, so one answer is not slowed by others and latency is predictable.
At most `max_queue` requests wait; one more is refused at once (the server answers 429 with Retry-After, the
estimated seconds until a place frees: the mean of recent request times x the requests ahead).

    gate = Gate(max_queue=8)
    slot = await gate.enter()          # QueueFull when the queue is full
    try: ... finally: slot.release()   # idempotent; may be called from any thread through the event loop
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque


class QueueFull(Exception):
    """The queue is full. retry_after: whole seconds until a place is likely free (>= 1)."""

    def __init__(self, retry_after: int):
        super().__init__(f"the server is busy: {retry_after} s")
        self.retry_after = retry_after


class Slot:
    """The right to run one generation; `release()` gives it back (once; later calls do nothing)."""

    def __init__(self, gate: "Gate", loop: asyncio.AbstractEventLoop):
        self._gate, self._loop, self._released = gate, loop, threading.Event()
        self.started = time.monotonic()

    def release(self) -> None:
        if self._released.is_set():
            return
        self._released.set()
        if _in_loop(self._loop):
            self._gate._release(self)
        else:  # from the worker thread that ran the generation
            self._loop.call_soon_threadsafe(self._gate._release, self)


class Gate:
    """max_queue: requests that may wait while one runs (0: none wait)."""

    def __init__(self, max_queue: int):
        self.max_queue = max_queue
        self.waiting = 0
        self.running = 0
        self._lock = asyncio.Lock()
        self._recent: deque[float] = deque(maxlen=16)  # seconds the last requests held the engine

    async def enter(self) -> Slot:
        """Wait for the engine (in arrival order). Raises QueueFull without waiting when the queue is full."""
        if self.running + self.waiting >= 1 + self.max_queue:
            raise QueueFull(self.retry_after())
        self.waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self.waiting -= 1
        self.running = 1
        return Slot(self, asyncio.get_running_loop())

    def retry_after(self) -> int:
        mean = sum(self._recent) / len(self._recent) if self._recent else 1.0
        return max(1, math.ceil(mean * (self.waiting + self.running) / max(1, self.max_queue + 1)))

    def _release(self, slot: Slot) -> None:
        self._recent.append(time.monotonic() - slot.started)
        self.running = 0
        self._lock.release()

    @property
    def busy(self) -> bool:
        return bool(self.running or self.waiting)


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False

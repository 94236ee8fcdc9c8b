"""Who may run the model now: one model step at a time, never held while a consumer holds a streamed piece.

The model and its attention workspaces are not re-entrant, so only one *step* (a prefill, one decode step) runs
at a time. A stream holds the engine only while it computes its next piece: between pieces, while the consumer
has the piece (or has stopped reading: a `break`, a notebook that peeked with `next()` and kept the iterator, a
web client that went away, a cancelled task), the engine is free for any other call, from any thread. Each
stream owns its own KV cache, so interleaved streams do not disturb each other.

The waiting policy is bounded and stated: a call waits at most `wait_s` seconds (default `DEFAULT_WAIT_S`) for
the step in progress to finish, then raises `EngineBusyError`; a call made from inside a running step (a
progress callback that calls the engine again) raises at once instead of deadlocking.

    lock = StepLock()
    with lock.hold():                 # one step
        ...
    for piece in stepwise(lock, gen): # a generator advanced one step at a time under the lock
        ...

`Mailbox` takes things handed back from finalisers (a stream closed by the garbage collector, in whatever
thread and at whatever moment it runs) without taking any lock, so a finaliser can never deadlock.
"""

from __future__ import annotations

import threading
from collections import deque
from contextlib import contextmanager
from typing import Callable, Generic, Iterator, TypeVar

from .errors import EngineBusyError

T = TypeVar("T")

DEFAULT_WAIT_S = 900.0  # seconds a call waits for another call's step (a long prefill) before giving up


class StepLock:
    """A lock for model steps with a bounded wait and same-thread re-entry detection.

    wait_s: seconds a call waits for the step in progress (None: wait as long as it takes).
    """

    def __init__(self, wait_s: float | None = DEFAULT_WAIT_S):
        self._lock = threading.Lock()
        self._owner: int | None = None
        self.wait_s = wait_s

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Plain `threading.Lock.acquire` semantics (for callers that manage the lock themselves)."""
        got = self._lock.acquire(blocking, timeout)
        if got:
            self._owner = threading.get_ident()
        return got

    def release(self) -> None:
        self._owner = None
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    @contextmanager
    def hold(self, what: str = "this call"):
        """Hold the lock for one step; raises EngineBusyError after `wait_s` seconds of waiting."""
        if self._owner == threading.get_ident():
            raise EngineBusyError(
                f"The engine was called again from inside its own running step ({what}), e.g. from a progress "
                "callback: call it after the step returns."
            )
        timeout = -1 if self.wait_s is None else max(0.0, float(self.wait_s))
        if not self.acquire(True, timeout):
            raise EngineBusyError(
                f"The engine stayed busy for {self.wait_s:g} s with another call's step (a long prefill?), so "
                f"{what} gave up waiting; retry later, or build the Engine with a larger wait_s."
            )
        try:
            yield
        finally:
            self.release()


def stepwise(lock: StepLock, iterator: Iterator[T], what: str = "this stream") -> Iterator[T]:
    """Yield the items of `iterator`, computing each one while holding `lock` and releasing it before handing
    the item over: a consumer that stops reading holds nothing. Closing this generator closes `iterator`."""
    try:
        while True:
            with lock.hold(what):
                try:
                    item = next(iterator)
                except StopIteration:
                    return
            yield item
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


class Mailbox(Generic[T]):
    """Items handed back without a lock (deque.append is atomic), taken in by whoever next holds the owner's lock."""

    def __init__(self):
        self._items: deque[T] = deque()

    def post(self, item: T) -> None:
        self._items.append(item)

    def drain(self, take: Callable[[T], None]) -> None:
        while True:
            try:
                item = self._items.popleft()
            except IndexError:
                return
            take(item)

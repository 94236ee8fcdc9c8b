"""CPU threads for torch, chosen from how busy the machine is.

torch runs each op's parallel region on all its threads and waits for the slowest. When another process keeps
one of the cores busy, one of longdoc's threads is off-CPU for a scheduler slice (milliseconds) at each of the
~1,200 small parallel regions of a decode step, and the step falls off a cliff. Measured on this project's
2-core CPU (benchmarks/threads.py, docs/eval/threads.json; one other process spinning on one core):

    decode at 4k, LongHeads   idle: 2 threads 130 ms/token, 1 thread 155     loaded: 2 threads 1,272, 1 thread 170
    prefill of 1k tokens      idle: 2 threads 2.2 s, 1 thread 4.2           loaded: 2 threads 11.0, 1 thread 5.8

So the default ("auto") is neither fixed count: it is the number of cores the other processes leave free,
measured over the time since the last look from /proc/stat (all CPU time on the machine) less this process's own
CPU time, and applied between prefill blocks and every DECODE_EVERY decode steps. Looking costs two small file
reads, no waiting. A fixed `--threads N` switches this off. Off Linux (no /proc/stat) auto keeps torch's own
setting (every core).

torch's thread count is one setting for the whole process, so this module keeps one `AutoThreads` for the
process too: `enable_auto()` (EngineSettings.apply_threads, when threads is None and LONGDOC_THREADS is unset or
"auto") switches it on, `use_fixed(n)` off, and generate.py calls `adapt()` at the two points above. Thread
counts can change the last bits of a float sum (and so, rarely, a greedy token): set a fixed count where two
runs must agree bit for bit (the test suite sets LONGDOC_THREADS).
"""

from __future__ import annotations

import os
import threading
import time

DECODE_EVERY = 8  # decode steps between two looks
MIN_INTERVAL_S = 0.25  # shorter intervals are too noisy to judge from


def allowed_cores() -> int:
    """CPUs this process may run on (its affinity mask; os.cpu_count() where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def busy_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy (not idle, not waiting on I/O) since boot, from /proc/stat;
    None where there is no /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
    except OSError:
        return None
    ticks = [int(x) for x in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    busy = sum(ticks[:8]) - idle  # user nice system idle iowait irq softirq steal: guest is already in user
    return busy / os.sysconf("SC_CLK_TCK")


def threads_for(other_busy: float, cores: int) -> int:
    """Threads to use when other processes keep `other_busy` cores busy (a core-equivalent, e.g. 0.7): the
    cores left, rounding a half-busy core to busy, at least 1, at most `cores`."""
    return max(1, min(cores, cores - int(other_busy + 0.5)))


class AutoThreads:
    """Measures the other processes' load between two looks and sets torch's threads to what is left."""

    def __init__(self, cores: int | None = None):
        self.cores = cores or allowed_cores()
        self.threads = self.cores
        self._lock = threading.Lock()
        self._last = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float | None, float]:
        return time.monotonic(), busy_seconds(), time.process_time()

    def other_busy(self) -> float | None:
        """Cores the other processes kept busy since the last look (None: too soon, or no /proc/stat); starts
        the next interval."""
        now = self._sample()
        (t0, b0, p0), (t1, b1, p1) = self._last, now
        if b0 is None or b1 is None or t1 - t0 < MIN_INTERVAL_S:
            return None
        self._last = now
        return max(0.0, ((b1 - b0) - (p1 - p0)) / (t1 - t0))

    def adapt(self) -> int:
        """Set torch's threads for the load seen since the last look; returns the threads in use. Called from
        the thread that runs the model (torch's setting is per OpenMP thread there: the server generates in a
        worker thread), so the choice is applied where the ops run."""
        import torch

        with self._lock:
            other = self.other_busy()
            if other is not None:
                self.threads = threads_for(other, self.cores)
            if torch.get_num_threads() != self.threads:
                torch.set_num_threads(self.threads)
            return self.threads


_AUTO: AutoThreads | None = None


def enable_auto() -> AutoThreads:
    """Switch the process to auto threads (idempotent); returns the governor."""
    global _AUTO
    if _AUTO is None:
        import torch

        _AUTO = AutoThreads()
        torch.set_num_threads(_AUTO.threads)
    return _AUTO


def use_fixed(n: int) -> None:
    """A fixed thread count for the process: auto off."""
    global _AUTO
    import torch

    _AUTO = None
    torch.set_num_threads(n)


def adapt() -> None:
    """generate.py's hook: re-choose the threads when auto is on (between prefill blocks, every DECODE_EVERY
    decode steps); nothing otherwise."""
    if _AUTO is not None:
        _AUTO.adapt()

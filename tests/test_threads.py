"""Auto threads (longdoc/threads.py): the cores other processes leave free, measured from /proc/stat less this
process's own CPU time, applied between prefill blocks and decode steps; a fixed count or LONGDOC_THREADS turns
it off."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import torch

from longdoc import threads
from longdoc.errors import ConfigError
from longdoc.settings import EngineSettings

linux_only = pytest.mark.skipif(threads.busy_seconds() is None, reason="needs /proc/stat (Linux)")
SPIN = "import time\nt = time.time()\nwhile time.time() - t < 60: pass\n"


@pytest.fixture
def restore_threads():
    n = torch.get_num_threads()
    yield
    threads.use_fixed(n)


@pytest.fixture
def spinner():
    """Another process keeping one core busy."""
    p = subprocess.Popen([sys.executable, "-c", SPIN])
    time.sleep(0.3)  # started and spinning
    yield p
    p.kill()
    p.wait()


def test_threads_for_leaves_the_busy_cores_to_the_others():
    assert threads.threads_for(0.0, 2) == 2
    assert threads.threads_for(0.4, 2) == 2  # light background work: keep every core
    assert threads.threads_for(0.6, 2) == 1  # most of a core taken
    assert threads.threads_for(1.8, 2) == 1  # never below one
    assert threads.threads_for(0.0, 1) == 1
    assert threads.threads_for(3.0, 8) == 5


def _spin(seconds: float) -> None:
    t = time.perf_counter()
    while time.perf_counter() - t < seconds:
        pass


@linux_only
def test_other_busy_counts_other_processes_not_this_one(spinner):
    gov = threads.AutoThreads(cores=2)
    time.sleep(0.6)  # this process idle, the spinner busy
    with_other = gov.other_busy()
    assert with_other is not None and with_other >= 0.6
    spinner.kill()
    spinner.wait()
    gov.other_busy()
    _spin(0.6)  # now only this process works
    alone = gov.other_busy()
    assert alone is not None and alone < with_other - 0.4
    assert gov.other_busy() is None  # too soon after the last look to judge


@linux_only
def test_prefill_drops_to_the_free_cores_when_another_process_is_busy(restore_threads, spinner):
    from tiny_models import make_tiny_llama

    from longdoc.generate import prefill
    from longdoc.prefix import new_cache

    model = make_tiny_llama(n_heads=4, n_kv_heads=2, layers=2)
    threads.use_fixed(2)
    gov = threads.enable_auto()
    gov.cores, gov.threads = 2, 2  # judge as a 2-core machine whatever this one has
    torch.set_num_threads(2)
    time.sleep(0.6)  # the interval the first prefill block judges: the spinner held a core
    prefill(model, new_cache(model), torch.randint(0, 100, (1, 64)), block=32)
    assert torch.get_num_threads() == 1 and gov.threads == 1


def test_fixed_threads_and_the_environment(restore_threads, monkeypatch):
    monkeypatch.setenv("LONGDOC_THREADS", "1")
    EngineSettings().apply_threads()
    assert torch.get_num_threads() == 1 and threads._AUTO is None
    EngineSettings(threads=2).apply_threads()
    assert torch.get_num_threads() == 2 and threads._AUTO is None
    monkeypatch.setenv("LONGDOC_THREADS", "auto")
    EngineSettings().apply_threads()
    assert threads._AUTO is not None
    monkeypatch.setenv("LONGDOC_THREADS", "lots")
    with pytest.raises(ConfigError, match="LONGDOC_THREADS"):
        EngineSettings().apply_threads()

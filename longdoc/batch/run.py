"""Run batch jobs locally (one engine, documents one after another) or on a Ray cluster via Ray Data.

Both write each answer as it finishes (`AnswerWriter`), skip jobs already in the answers file, group the jobs
by document (each document prefilled once, by one engine) and draw a progress bar (rich) of jobs done.

Ray (`run_ray`): one row per document group in a Ray Dataset, `map_batches` with a callable class, so Ray runs
an actor pool of `workers` actors, each loading one engine once (`Answerer.__init__`) and answering whole
groups; results stream back to the driver as groups finish (`iter_rows`), which writes them. The stored
ingests live where each worker's `store_dir` points: a folder every node mounts (NFS...) lets a document
prefilled by one run be loaded by any worker of the next.
"""

from __future__ import annotations

import json
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from longdoc.batch.answer import answer_group
from longdoc.batch.jobs import AnswerWriter, Job, finished_ids, group_by_document


@dataclass(frozen=True)
class BatchSettings:
    """engine: the fields of `longdoc.settings.EngineSettings` (a dict: it travels to Ray workers);
    store_dir: the ingest store folder (None: the user cache folder, LONGDOC_CACHE_DIR; "" none);
    max_tokens: answer tokens per job (a job's own max_tokens wins); cite: add citations to each line."""

    engine: dict
    store_dir: str | None = None
    max_tokens: int = 256
    cite: bool = False

    def build_engine(self):
        from longdoc.settings import EngineSettings

        return EngineSettings(**self.engine).build()

    def store(self):
        from longdoc.store import Store

        if self.store_dir == "":
            return None
        return Store(self.store_dir) if self.store_dir else Store()


def pending(jobs: list[Job], out: str | Path) -> list[Job]:
    done = finished_ids(out)
    return [j for j in jobs if j.id not in done]


@contextmanager
def progress_bar(total: int, done: int, enabled: bool):
    """Yields advance(n) drawing a rich bar of jobs on stderr (no-op when disabled or stderr is no terminal)."""
    from longdoc.cli.common import stderr_is_tty

    if not (enabled and stderr_is_tty()):
        yield lambda n=1: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress(TextColumn("answering"), BarColumn(), MofNCompleteColumn(), TextColumn("jobs"), TimeElapsedColumn(),
                   TimeRemainingColumn(), console=Console(stderr=True))
    with bar:
        task = bar.add_task("jobs", total=total, completed=done)
        yield lambda n=1: bar.advance(task, n)


def run_local(jobs: list[Job], out: str | Path, settings: BatchSettings, *, progress: bool = True) -> int:
    """Answer the pending jobs in this process; returns how many lines were written."""
    todo = pending(jobs, out)
    if not todo:
        return 0
    engine = settings.build_engine()
    store = settings.store()
    written = 0
    with AnswerWriter(out) as writer, progress_bar(len(jobs), len(jobs) - len(todo), progress) as advance:
        for group in group_by_document(todo):
            for result in answer_group(engine, group, store=store, max_tokens=settings.max_tokens,
                                       cite=settings.cite, worker=socket.gethostname()):
                writer.write(result)
                written += 1
                advance()
    return written


class Answerer:
    """A Ray Data callable class: one engine per actor, built once; each call answers one document group."""

    def __init__(self, settings: dict):
        import os

        self.settings = BatchSettings(**settings)
        self.engine = self.settings.build_engine()
        self.store = self.settings.store()
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    def __call__(self, batch: dict) -> dict:
        lines = []
        for group in batch["jobs"]:
            jobs = [Job.from_dict(d) for d in json.loads(group)]
            lines += [json.dumps(r, ensure_ascii=False) for r in
                      answer_group(self.engine, jobs, store=self.store, max_tokens=self.settings.max_tokens,
                                   cite=self.settings.cite, worker=self.worker)]
        return {"line": lines}


def run_ray(jobs: list[Job], out: str | Path, settings: BatchSettings, *, address: str | None = None,
            workers: int = 2, cpus_per_worker: float = 1, progress: bool = True) -> int:
    """Answer the pending jobs on Ray: `address` None / "local" starts a local Ray with workers x
    cpus_per_worker CPUs; "auto" joins the cluster this machine belongs to; "ray://host:10001" a remote one.
    Returns how many lines were written."""
    import ray

    todo = pending(jobs, out)
    if not todo:
        return 0
    started = not ray.is_initialized()
    if started:
        if address in (None, "local"):
            ray.init(num_cpus=max(1, int(workers * cpus_per_worker + 0.999)), include_dashboard=False,
                     log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    try:
        return _run_on_ray(todo, len(jobs), out, settings, workers, cpus_per_worker, progress)
    finally:
        if started:
            ray.shutdown()


def _run_on_ray(todo: list[Job], total: int, out, settings: BatchSettings, workers: int, cpus_per_worker: float,
                progress: bool) -> int:
    import ray.data
    from dataclasses import asdict

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # ours counts jobs, not blocks
    groups = group_by_document(todo)
    rows = [{"jobs": json.dumps([j.to_dict() for j in g])} for g in groups]
    ds = ray.data.from_items(rows, override_num_blocks=len(rows))
    settings_dict = asdict(settings)
    if settings_dict["engine"].get("threads") is None:
        settings_dict["engine"] = {**settings_dict["engine"], "threads": max(1, int(cpus_per_worker))}
    answered = ds.map_batches(Answerer, fn_constructor_kwargs={"settings": settings_dict}, batch_size=1,
                              concurrency=min(workers, len(rows)), num_cpus=cpus_per_worker)
    written = 0
    with AnswerWriter(out) as writer, progress_bar(total, total - len(todo), progress) as advance:
        for row in answered.iter_rows():
            writer.write(json.loads(row["line"]))
            written += 1
            advance()
    return written


def iter_answers(out: str | Path) -> Iterator[dict]:
    with open(out, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)

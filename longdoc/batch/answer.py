"""Answer one document's jobs with one engine: the document is read and prefilled once (or loaded from the
ingest store), then every question about it reuses that prefill (`longdoc.qa.session.DocumentSession`, the
path `longdoc ask` takes, so a batch answer equals `longdoc ask`'s for the same settings).

A job that fails (an unreadable document, a question too long...) gives a line with "error" (one line) instead
of "answer"; the engine stays able to answer the next job.
"""

from __future__ import annotations

from typing import Iterator

from longdoc.batch.jobs import Job
from longdoc.errors import LongdocError


def answer_group(engine, jobs: list[Job], *, store=None, max_tokens: int = 256, cite: bool = False,
                 worker: str | None = None) -> Iterator[dict]:
    """One result dict per job of `jobs` (all about the same document), as each finishes: {"id", "document",
    "question", "answer" | "error", "usage": {prompt_tokens, cached_tokens, completion_tokens, finish_reason},
    "citations" (with cite), "worker"}."""
    from longdoc.documents import load
    from longdoc.generate import SamplingParams
    from longdoc.qa.citations import citation_dicts
    from longdoc.qa.session import DocumentSession

    try:
        session = DocumentSession(engine, load(list(jobs[0].document)), store=store)
    except LongdocError as e:
        for job in jobs:
            yield _result(job, worker, error=one_line(e))
        return
    for job in jobs:
        try:
            reply = session.reply(job.question, SamplingParams(max_new_tokens=job.max_tokens or max_tokens),
                                  cite=cite, charge_prefix=True)
            text = "".join(reply)
        except LongdocError as e:
            yield _result(job, worker, error=one_line(e))
            continue
        u = reply.usage
        usage = {"prompt_tokens": u.prompt_tokens, "cached_tokens": u.cached_tokens,
                 "completion_tokens": u.completion_tokens, "finish_reason": u.finish_reason}
        extra = {"citations": citation_dicts(reply.citations())} if cite else {}
        yield _result(job, worker, answer=text, usage=usage, **extra)


def _result(job: Job, worker: str | None, **fields) -> dict:
    return {"id": job.id, "document": list(job.document), "question": job.question, **fields, "worker": worker}


def one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__

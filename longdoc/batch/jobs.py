"""Batch jobs: one JSON object per line, `{"document": "report.pdf" | ["a.pdf", "notes/"], "question": "...",
"id": "optional"}`, and the answers file they produce (one JSON object per line, written as each finishes).

Resuming: a job whose id is already in the answers file is skipped; a torn last line (the run was killed while
writing it) is cut off first. An id defaults to a hash of the document paths and the question, so rerunning the
same jobs file finds its finished lines.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from longdoc.errors import InputError


@dataclass(frozen=True)
class Job:
    """id: unique in the file; document: the paths read together as one document (as `longdoc ask` reads them);
    question: what to ask; max_tokens: this job's answer length (None: the run's)."""

    id: str
    document: tuple[str, ...]
    question: str
    max_tokens: int | None = None

    def to_dict(self) -> dict:
        return {"id": self.id, "document": list(self.document), "question": self.question,
                "max_tokens": self.max_tokens}

    @classmethod
    def from_dict(cls, d: dict) -> "Job":
        return cls(d["id"], tuple(d["document"]), d["question"], d.get("max_tokens"))


def read_jobs(path: str | Path, base: str | Path | None = None) -> list[Job]:
    """The jobs of a JSONL file. Relative document paths are taken from `base` (default: the file's folder)
    and made absolute, so workers on other machines see the same paths (a shared folder). InputError naming the
    line for a line that is not a job, or for a repeated id."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise InputError(f"{path}: {e.strerror or e}; give the jobs file (one JSON object per line).") from None
    base = Path(base) if base is not None else path.parent
    jobs, seen = [], set()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except ValueError:
            raise InputError(f"{path}:{n} is not JSON: write one object per line, e.g. "
                             '{"document": "report.pdf", "question": "..."}') from None
        if not isinstance(d, dict) or not isinstance(d.get("question"), str) or not d["question"].strip():
            raise InputError(f"{path}:{n} needs a non-empty \"question\" string.")
        doc = d.get("document")
        docs = [doc] if isinstance(doc, str) else doc
        if not docs or not isinstance(docs, list) or not all(isinstance(p, str) and p for p in docs):
            raise InputError(f"{path}:{n} needs \"document\": a path or a list of paths.")
        docs = tuple(str(p if os.path.isabs(p) else (base / p).resolve()) for p in docs)
        job_id = str(d.get("id") or default_id(docs, d["question"]))
        if job_id in seen:
            raise InputError(f"{path}:{n} repeats the id {job_id!r}: ids must be unique (or leave them out).")
        seen.add(job_id)
        max_tokens = d.get("max_tokens")
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            raise InputError(f"{path}:{n}: max_tokens must be a positive whole number.")
        jobs.append(Job(job_id, docs, d["question"], max_tokens))
    return jobs


def default_id(document: tuple[str, ...], question: str) -> str:
    return hashlib.sha256(json.dumps([list(document), question]).encode()).hexdigest()[:16]


def group_by_document(jobs: list[Job]) -> list[list[Job]]:
    """The jobs grouped by document, in first-appearance order: each group is prefilled once, on one worker."""
    groups: dict[tuple[str, ...], list[Job]] = {}
    for job in jobs:
        groups.setdefault(job.document, []).append(job)
    return list(groups.values())


def finished_ids(out: str | Path) -> set[str]:
    """Ids already in the answers file; a torn last line is cut off (the file then ends at a whole line)."""
    out = Path(out)
    if not out.exists():
        return set()
    data = out.read_bytes()
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        with open(out, "r+b") as f:
            f.truncate(keep)
        data = data[:keep]
    ids = set()
    for line in data.decode("utf-8", errors="replace").splitlines():
        try:
            ids.add(str(json.loads(line)["id"]))
        except (ValueError, KeyError, TypeError):
            continue
    return ids


class AnswerWriter:
    """Appends one JSON line per finished job and flushes it to disk at once (a kill loses at most the line
    being written, which the next run cuts off)."""

    def __init__(self, out: str | Path):
        self.path = Path(out)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a", encoding="utf-8")

    def write(self, result: dict) -> None:
        self._f.write(json.dumps(result, ensure_ascii=False) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

"""`longdoc batch`: jobs grouped by document, answers written as they finish, resumable; locally and on a real
local Ray cluster (ray.init(num_cpus=2), tiny model): the same answers either way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from longdoc.errors import InputError

TINY = {"chunk_size": 16, "chunks": 4}


def make_jobs(tmp_path, n_docs=3, questions=("Which crate is on line 2?", "Which depot is named?")):
    lines = []
    for d in range(n_docs):
        doc = tmp_path / f"report{d}.txt"
        doc.write_text("\n".join(f"Line {i}: depot {d} keeps crate {100 * d + 7 * i}." for i in range(30)))
        for q in questions:
            lines.append(json.dumps({"document": doc.name, "question": q}))
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("\n".join(lines) + "\n")
    return jobs


def answers(path) -> dict:
    out = {}
    for line in open(path):
        d = json.loads(line)
        assert d["id"] not in out, f"job {d['id']} answered twice"
        out[d["id"]] = d
    return out


def settings_for(model_dir, tmp_path, **kw):
    from longdoc.batch.run import BatchSettings
    from longdoc.settings import EngineSettings

    return BatchSettings(engine=EngineSettings(model=str(model_dir), **TINY).to_dict(),
                         store_dir=str(tmp_path / "store"), **kw)


def test_bad_jobs_files_name_the_line(tmp_path):
    from longdoc.batch.jobs import read_jobs

    bad = tmp_path / "jobs.jsonl"
    for text, words in [('{"document": "a.pdf"}\n', ":1 needs a non-empty"), ("not json\n", ":1 is not JSON"),
                        ('{"document": "a", "question": "q"}\n{"question": "q"}\n', ":2 needs \"document\""),
                        ('{"id": 1, "document": "a", "question": "q"}\n' * 2, "repeats the id")]:
        bad.write_text(text)
        with pytest.raises(InputError, match=words):
            read_jobs(bad)
    with pytest.raises(InputError, match="jobs file"):
        read_jobs(tmp_path / "missing.jsonl")


def test_local_batch_groups_by_document_and_reports_errors(tiny_model_dir, tmp_path):
    from longdoc.batch.jobs import read_jobs
    from longdoc.batch.run import run_local

    jobs_file = make_jobs(tmp_path, n_docs=2)
    with open(jobs_file, "a") as f:
        f.write(json.dumps({"id": "missing", "document": "nope.pdf", "question": "q?"}) + "\n")
    out = tmp_path / "answers.jsonl"
    assert run_local(read_jobs(jobs_file), out, settings_for(tiny_model_dir, tmp_path, max_tokens=6)) == 5
    got = answers(out)
    assert "nope.pdf" in got.pop("missing")["error"]
    assert all(r["answer"] for r in got.values())
    by_doc: dict = {}
    for r in got.values():  # the second question about a document reuses its prefill
        by_doc.setdefault(r["document"][0], []).append(r["usage"]["cached_tokens"])
    assert all(c[1] > c[0] + 300 for c in by_doc.values()), by_doc  # (the first may reuse the chat head)
    assert run_local(read_jobs(jobs_file), out, settings_for(tiny_model_dir, tmp_path)) == 0  # all done already


def test_killed_midway_then_rerun_finishes_without_redoing(tiny_model_dir, tmp_path):
    jobs_file = make_jobs(tmp_path, n_docs=6)
    out = tmp_path / "answers.jsonl"
    cmd = [sys.executable, "-c", "from longdoc.cli.main import cli; cli()", "batch", str(jobs_file), "--out", str(out),
           "-m", str(tiny_model_dir), "--chunk-size", "16", "--chunks", "4", "--max-tokens", "24",
           "--store-dir", str(tmp_path / "store"), "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not (out.exists() and out.read_bytes().count(b"\n") >= 2):
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "no answer within 300 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(60)
    before = out.read_bytes()
    whole = before[: before.rfind(b"\n") + 1]
    n_before = whole.count(b"\n")
    assert 2 <= n_before < 12, "the run finished before it could be killed"
    rerun = subprocess.run(cmd, capture_output=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr.decode()
    assert f"{n_before} of 12 jobs already in".encode() in rerun.stderr
    after = out.read_bytes()
    assert after.startswith(whole)  # finished lines kept as they were, not redone
    got = answers(out)
    assert len(got) == 12 and all("answer" in r for r in got.values())


def test_ray_gives_the_local_answers_and_resumes(tiny_model_dir, tmp_path):
    pytest.importorskip("ray.data", reason="ray[data] is in the test extra")
    import ray

    from longdoc.batch.jobs import read_jobs
    from longdoc.batch.run import run_local, run_ray

    jobs_file = make_jobs(tmp_path, n_docs=3)
    jobs = read_jobs(jobs_file)
    local_out, ray_out = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    run_local(jobs, local_out, settings_for(tiny_model_dir, tmp_path, max_tokens=8))
    local = answers(local_out)
    # a run that stopped after two answers: Ray answers only the other four
    ray_out.write_text("".join(line for line in list(open(local_out))[:2]) + '{"id": "torn')
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        written = run_ray(jobs, ray_out, settings_for(tiny_model_dir, tmp_path / "ray", max_tokens=8), workers=2,
                          progress=False)
    finally:
        ray.shutdown()
    assert written == 4
    got = answers(ray_out)
    assert set(got) == set(local)
    assert {k: v["answer"] for k, v in got.items()} == {k: v["answer"] for k, v in local.items()}
    ray_lines = [v for k, v in got.items() if v["worker"] != local[k]["worker"]]
    assert len(ray_lines) == 4 and all(":" in v["worker"] for v in ray_lines)  # host:pid of a Ray actor
    # each document was prefilled once, by one worker: its second question reused the first's prefill
    workers_by_doc: dict = {}
    for v in ray_lines:
        workers_by_doc.setdefault(v["document"][0], set()).add(v["worker"])
    assert all(len(w) == 1 for w in workers_by_doc.values())

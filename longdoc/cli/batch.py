"""`longdoc batch jobs.jsonl --out answers.jsonl [--ray [ADDRESS]]`: many documents and questions."""

from __future__ import annotations

import click

from longdoc.cli.common import handle_errors, model_options


@click.command()
@click.argument("jobs_file", type=click.Path(dir_okay=False))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Answers file (JSONL, appended as jobs finish; jobs already in it are skipped).")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None, metavar="[ADDRESS]",
              help="Run on Ray: alone, a local Ray; 'auto', the cluster this machine is in; or ray://HOST:10001.")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Ray actors, each holding one engine.")
@click.option("--cpus-per-worker", type=click.FloatRange(min=0.1), default=1.0, show_default=True,
              help="CPUs Ray reserves per actor (also its torch threads unless --threads).")
@click.option("--max-tokens", type=click.IntRange(min=1), default=256, show_default=True,
              help="Answer tokens per job (a job's own max_tokens wins).")
@click.option("--cite", is_flag=True, help="Add the cited pages to every answer line.")
@click.option("--store-dir", type=click.Path(file_okay=False), default=None,
              help="Ingest store folder (default: the user cache folder; on a cluster, a folder every node mounts).")
@click.option("--no-store", is_flag=True, help="Do not store prefilled documents.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@model_options
@handle_errors
def batch(jobs_file, out, ray_address, workers, cpus_per_worker, max_tokens, cite, store_dir, no_store, quiet, model,
          window, chunk_size, chunks, threads, revision, dtype, device):
    """Answer every job of JOBS_FILE (one JSON object per line: {"document": PATH or [PATHS], "question": ...,
    "id": optional}) into --out, a line per job as it finishes. Rerun to finish an interrupted run: finished
    jobs are skipped.

    \b
      longdoc batch jobs.jsonl --out answers.jsonl                 # this machine
      longdoc batch jobs.jsonl --out answers.jsonl --ray           # a local Ray, 2 workers
      longdoc batch jobs.jsonl --out answers.jsonl --ray auto --workers 16 --store-dir /shared/ingests
    """
    import os

    from longdoc.batch.jobs import read_jobs
    from longdoc.batch.run import BatchSettings, pending, run_local, run_ray
    from longdoc.cli.common import engine_settings

    jobs = read_jobs(jobs_file)
    if model is not None and os.path.exists(model):
        model = os.path.abspath(model)  # workers resolve it on their own machines
    engine = engine_settings(model, window, chunk_size, chunks, threads, revision=revision, dtype=dtype,
                             device=device).to_dict()
    settings = BatchSettings(engine=engine, store_dir="" if no_store else (os.path.abspath(store_dir) if store_dir else None),
                             max_tokens=max_tokens, cite=cite)
    todo = len(pending(jobs, out))
    if todo < len(jobs):
        click.echo(f"{len(jobs) - todo} of {len(jobs)} jobs already in {out}; answering the other {todo}.", err=True)
    if ray_address is None:
        written = run_local(jobs, out, settings, progress=not quiet)
    else:
        written = run_ray(jobs, out, settings, address=ray_address, workers=workers, cpus_per_worker=cpus_per_worker,
                          progress=not quiet)
    click.echo(f"Wrote {written} answers to {out}.", err=True)

"""`longdoc ask PATH... QUESTION`: one answer about one or more documents, streamed to stdout."""

from __future__ import annotations

import json
import sys

import click

from longdoc.cli.common import handle_errors, model_options, prefill_progress
from longdoc.cli.session import CliSession, open_session, session_options, usage_dict, usage_line
from longdoc.qa import prompting
from longdoc.qa.citations import citation_dicts
from longdoc.qa.session import REREAD_DEFAULT, REREAD_PEAK_SPANS, REREAD_QUESTION_FIRST, REREAD_SCORES


def answer_options(fn):
    for option in reversed((
        click.option("--max-tokens", type=click.IntRange(min=1), default=256, show_default=True,
                     help="Longest answer, in tokens."),
        click.option("--temperature", type=click.FloatRange(min=0), default=0.0, show_default=True,
                     help="0 answers greedily (deterministic)."),
        click.option("--seed", type=int, default=None, help="Seed for sampling (with --temperature > 0)."),
        click.option("-u", "--usage", "show_usage", is_flag=True, help="Print tokens and tokens/s on stderr."),
        click.option("--cite", is_flag=True, help="After the answer, list the pages/files the heads read most."),
        click.option("--stop-on-repeat/--no-stop-on-repeat", default=True, show_default=True,
                     help="Stop when the answer repeats one of its sentences (README, 'Answers that stop')."),
        click.option("--repetition-penalty", type=click.FloatRange(min=1.0), default=1.0, show_default=True,
                     help="Divide the logits of tokens already in the answer by this (1 = off)."),
        click.option("--no-repeat-ngram", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Never repeat an n-gram of the answer (0 = off)."),
    )):
        fn = option(fn)
    return fn


def reread_options(fn):
    """--reread/--no-reread and --reread-tokens (ask, chat): how the answer reads the document."""
    for option in reversed((
        click.option("--reread/--no-reread", default=REREAD_DEFAULT, show_default=True,
                     help="Answer from a dense re-read of the chunks the heads chose for the question (16k pass "
                          "keys 12/20 vs 2/20 without: README, 'Reading'); --no-reread: LongHeads answers over "
                          "the whole prompt."),
        click.option("--reread-scores", type=click.Choice(["votes", "attention", "contrast"]), default=REREAD_SCORES,
                     show_default=True, help="How the re-read ranks chunks: the question's token-level attention over "
                                             "every chunk, per head over what neutral questions draw (contrast: "
                                             "hub pages lose their lead; README, 'Reading'), without that "
                                             "(attention), or the heads' chunk selections (votes)."),
        click.option("--question-first/--no-question-first", default=REREAD_QUESTION_FIRST, show_default=True,
                     help="The re-read also reads the question before the chosen chunks, not only after them "
                          "(README, 'Reading')."),
        click.option("--peak-spans/--chunk-spans", default=REREAD_PEAK_SPANS, show_default=True,
                     help="The re-read reads each chosen chunk where the question's attention peaks, up to half a "
                          "chunk into a neighbour, so a fact cut by a chunk boundary is read whole (pass keys "
                          "20/20 vs 18/20 at 16k and 32k: README, 'Reading'); --chunk-spans: the chunks as they are."),
        click.option("--reread-tokens", type=click.IntRange(min=1), default=None,
                     help="Tokens of the re-read (default: half the attention window, by measurement: README, "
                          "'Reading'; at most the window)."),
    )):
        fn = option(fn)
    return fn


def run_answer(session: CliSession, question: str, *, max_tokens=256, temperature=0.0, seed=None, record=False,
               out=None, history=(), stop_on_repeat=True, repetition_penalty=1.0, no_repeat_ngram=0):
    """Answer `question` (after the conversation's `history`); returns the finished Reply (text, usage, prompt,
    citations). Streams pieces to `out` when given."""
    from longdoc.generate import SamplingParams

    params = SamplingParams(max_new_tokens=max_tokens, temperature=temperature, seed=seed,
                            stop_on_repeat=stop_on_repeat, repetition_penalty=repetition_penalty,
                            no_repeat_ngram=no_repeat_ngram)
    unframed = not prompting.is_reusable(session.doc.fmt)  # nothing prefilled ahead: show the prompt being read
    with prefill_progress("Reading", enabled=not session.quiet and unframed) as progress:
        reply = session.reply(question, params, history=history, cite=record, progress=progress)
        for piece in reply:
            if out is not None:
                out.write(piece)
                out.flush()
    return reply


def cite_text(reply) -> str:
    from longdoc.qa.citations import format_sources

    found = reply.citations()
    if not found and reply.fits_window():
        window = reply.session.engine.config.window
        return (f"Sources: the whole prompt ({len(reply.prompt.ids):,} tokens) fits in the {window:,}-token attention "
                "window, so every head read all of it; pass a smaller --window to see which parts it chose.")
    text = format_sources(found or [])
    if reply.reread is not None and found:  # the answer came from a dense re-read of these chunks
        text = text.replace("share of the chunks the heads selected while answering",
                            "share of the votes of the chunks the heads chose for the question and re-read")
    return text


@click.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.argument("question")
@answer_options
@reread_options
@click.option("--no-stream", is_flag=True, help="Print the answer only when it is complete.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (answer, usage, sources; reread: the re-read's chunks, token "
                   "spans and dense tokens, null when the prompt fits the window and is answered directly) on stdout.")
@session_options
@model_options
@handle_errors
def ask(paths, question, max_tokens, temperature, seed, show_usage, cite, reread, reread_scores, question_first, peak_spans,
        reread_tokens,
        no_stream, as_json, password, fmt, system, store, quiet, max_input_tokens, cache_max, store_dtype,
        max_file_size, follow_links, model, window, chunk_size, chunks, threads, revision, dtype, device, **decoding):
    """Answer QUESTION about the documents at PATH... (PDF, Word, PowerPoint, Excel, HTML, EPUB, notebook, text, a
    directory, or - for standard input).

    \b
      longdoc ask report.pdf "What does the report conclude?"
      longdoc ask src/ notes.md "Where is the retry logic?" --cite -u
    """
    session = open_session(paths, model=model, window=window, chunk_size=chunk_size, chunks=chunks, threads=threads,
                           revision=revision, dtype=dtype, device=device,
                           password=password, fmt=fmt, system=system, store=store, quiet=quiet,
                           max_input_tokens=max_input_tokens, cache_max=cache_max, store_dtype=store_dtype,
                           max_file_size=max_file_size, follow_links=follow_links, reread=reread,
                           reread_tokens=reread_tokens, reread_scores=reread_scores, question_first=question_first,
                           peak_spans=peak_spans)
    streaming = not (no_stream or as_json)
    reply = run_answer(session, question, max_tokens=max_tokens, temperature=temperature, seed=seed,
                       out=sys.stdout if streaming else None, record=cite, **decoding)
    if as_json:
        obj = {"answer": reply.text, "model": session.engine.name, "format": session.doc.fmt,
               "sources": session.document.sources, "source_info": session.document.source_info,
               "skipped": [{"path": p, "reason": r} for p, r in session.document.skipped],
               "usage": usage_dict(reply.usage, session.ingest),
               "reread": None if reply.reread is None else {"chunks": reply.reread.chunks,
                                                            "spans": [list(x) for x in reply.reread.spans],
                                                            "tokens": int(reply.reread.ids.shape[1])}}
        if cite:
            obj["citations"] = citation_dicts(reply.citations())
        click.echo(json.dumps(obj, ensure_ascii=False))
    else:
        click.echo("" if streaming else reply.text)
        if cite:
            click.echo("\n" + cite_text(reply))
    if show_usage:
        click.echo(usage_line(reply.usage, session.ingest), err=True)
    sys.stdout.flush()


"""The CLI side of the document session shared by `ask`, `chat`, `show` and `ingest`: their options, opening a
`longdoc.qa.session.DocumentSession` from them, and the usage lines. Commands only parse options and print."""

from __future__ import annotations

from dataclasses import dataclass

import click

from longdoc.cli.common import engine_settings, note, prefill_progress, warn
from longdoc.documents import load
from longdoc.qa import prompting
from longdoc.qa.session import REREAD_DEFAULT, REREAD_SCORES, DocumentSession, Ingest
from longdoc.store import KV_DTYPES, Store, parse_size

SHOWN_SKIPS = 20  # skipped files listed on stderr (--json lists all)

# options every document-reading command takes (besides the model options in common.py)
password_option = click.option("--password", default=None, help="Password of an encrypted PDF.")
format_option = click.option("--format", "fmt", type=click.Choice(prompting.FORMATS), default=prompting.DEFAULT_FORMAT,
                             show_default=True, help="How the document and the question are framed (docs/prompt_formats.md).")
system_option = click.option("--system", default=None, help="A system line for the model.")
store_option = click.option("--store/--no-store", default=True, show_default=True,
                            help="Keep the prefilled document on disk so the next question about it is fast.")
quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress bar or notes on stderr.")
max_input_option = click.option("--max-input-tokens", type=click.IntRange(min=1), default=None,
                                help="Refuse prompts longer than this (default: what LongHeads and memory allow).")
cache_max_option = click.option("--cache-max", default=None, metavar="SIZE",
                                help="Size cap of stored ingests, e.g. 20GB (env LONGDOC_CACHE_MAX; default 20GB).")
store_dtype_option = click.option("--store-dtype", type=click.Choice(KV_DTYPES, case_sensitive=False), default=None,
                                  help="How stored ingests keep keys and values (env LONGDOC_STORE_DTYPE; default "
                                       "float16, half of float32's size (bfloat16 for a cache past float16's range); int8 a "
                                       "quarter). Use the same for ingest and ask: an entry of another format is "
                                       "read again.")
max_file_size_option = click.option("--max-file-size", default=None, metavar="SIZE",
                                    help="Largest file read, e.g. 500MB (default 256MB; text files inside a folder: 2MB).")
follow_links_option = click.option("--follow-links", is_flag=True,
                                   help="Inside folders, follow symbolic links that lead out of the folder named.")


def session_options(fn):
    for option in reversed((password_option, format_option, system_option, store_option, quiet_option,
                            max_input_option, cache_max_option, store_dtype_option, max_file_size_option,
                            follow_links_option)):
        fn = option(fn)
    return fn


@dataclass
class CliSession:
    """A DocumentSession plus what the terminal side needs (quiet, the progress bar for the document)."""

    doc: DocumentSession
    quiet: bool = False

    @property
    def engine(self):
        return self.doc.engine

    @property
    def document(self):
        return self.doc.document

    @property
    def ingest(self) -> Ingest | None:
        return self.doc.ingest

    def prepare(self, note_not_stored: bool = True) -> Ingest | None:
        """Read (or load) the document now, with a progress bar and a note on a terminal; a note (unless -q or
        `note_not_stored=False`) when a wanted store did not happen."""
        return self._reading(lambda progress: self.doc.prepare(progress=progress), note_not_stored)

    def reply(self, question: str, params, **kw):
        """`DocumentSession.reply`, showing the document being read (first question only)."""
        return self._reading(lambda progress: self.doc.reply(question, params, prefix_progress=progress, **kw))

    def _reading(self, start, note_not_stored: bool = True):
        first = self.doc.ingest is None and prompting.is_reusable(self.doc.fmt)
        with prefill_progress("Reading the document", enabled=first and not self.quiet) as progress:
            out = start(progress)
        if first and self.doc.ingest is not None:
            ingest = self.doc.ingest
            how = "loaded the stored ingest" if ingest.reused else "read"
            note(f"{how} {ingest.tokens:,} document tokens in {ingest.seconds:.1f} s", self.quiet)
            if ingest.not_stored and note_not_stored:
                warn(f"the ingest was not stored ({ingest.not_stored}); the answer does not need it", self.quiet)
        return out


def open_session(paths, *, model=None, window=None, chunk_size=None, chunks=None, threads=None, password=None,
                 fmt=prompting.DEFAULT_FORMAT, system=None, store=True, quiet=False, max_input_tokens=None,
                 cache_max=None, store_dtype=None, max_file_size=None, follow_links=False, reread=REREAD_DEFAULT,
                 reread_tokens=None, reread_scores=REREAD_SCORES, question_first=None, peak_spans=None, revision=None, dtype=None,
                 device=None) -> CliSession:
    limits = {} if max_file_size is None else {"max_input_bytes": parse_size(max_file_size)}
    document = load(list(paths), password=password, follow_links=follow_links, **limits)
    for path, reason in document.skipped[:SHOWN_SKIPS]:
        warn(f"skipped {path}: {reason}", quiet)
    if len(document.skipped) > SHOWN_SKIPS:
        warn(f"... and {len(document.skipped) - SHOWN_SKIPS} more skipped (all of them: --json)", quiet)
    stored = Store(max_bytes=cache_max, kv_dtype=store_dtype) if store else None  # bad settings: before the model
    engine = engine_settings(model, window, chunk_size, chunks, threads, max_input_tokens=max_input_tokens,
                             revision=revision, dtype=dtype, device=device).build()
    doc = DocumentSession(engine, document, fmt=fmt, system=system, store=stored,
                          reread=reread, reread_tokens=reread_tokens, reread_scores=reread_scores,
                          reread_question_first=question_first, reread_peak=peak_spans)
    return CliSession(doc, quiet)


def usage_line(usage, ingest: Ingest | None) -> str:
    parts = []
    if ingest is not None:
        what = "loaded from the store" if ingest.reused else "prefilled"
        speed = "" if ingest.reused or not ingest.seconds else f", {ingest.tokens / ingest.seconds:,.0f} tok/s"
        parts.append(f"document {ingest.tokens:,} tokens {what} in {ingest.seconds:.2f} s{speed}")
    fresh = usage.prompt_tokens - usage.cached_tokens
    parts.append(f"prompt {usage.prompt_tokens:,} tokens ({fresh:,} new) in {usage.prefill_s:.2f} s, "
                 f"{usage.prefill_tokens_per_s:,.0f} tok/s")
    parts.append(f"answer {usage.completion_tokens:,} tokens in {usage.decode_s:.2f} s, "
                 f"{usage.decode_tokens_per_s:,.1f} tok/s ({usage.finish_reason})")
    return "Usage: " + "; ".join(parts)


def usage_dict(usage, ingest: Ingest | None) -> dict:
    out = {"prompt_tokens": usage.prompt_tokens, "cached_tokens": usage.cached_tokens,
           "completion_tokens": usage.completion_tokens, "prefill_s": round(usage.prefill_s, 4),
           "decode_s": round(usage.decode_s, 4), "prefill_tokens_per_s": round(usage.prefill_tokens_per_s, 2),
           "decode_tokens_per_s": round(usage.decode_tokens_per_s, 2), "finish_reason": usage.finish_reason}
    if ingest is not None:
        out["ingest"] = {"key": ingest.key, "tokens": ingest.tokens, "reused": ingest.reused, "stored": ingest.stored,
                         "seconds": round(ingest.seconds, 4), "not_stored": ingest.not_stored}
    return out

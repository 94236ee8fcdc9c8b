"""The path shared by `ask`, `chat`, `show` and `ingest`: documents -> prompt -> stored or prefilled prefix ->
streamed answer. Commands only parse options and print."""

from __future__ import annotations

from dataclasses import dataclass, field

import click

from .. import prompting
from ..documents import Document, load
from ..store import Ingest, Store, ensure_prefix, parse_size, prefix_key

SHOWN_SKIPS = 20  # skipped files listed on stderr (--json lists all)
from .common import make_engine, note, prefill_progress, warn

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
max_file_size_option = click.option("--max-file-size", default=None, metavar="SIZE",
                                    help="Largest file read, e.g. 500MB (default 256MB; text files inside a folder: 2MB).")
follow_links_option = click.option("--follow-links", is_flag=True,
                                   help="Inside folders, follow symbolic links that lead out of the folder named.")


def session_options(fn):
    for option in reversed((password_option, format_option, system_option, store_option, quiet_option,
                            max_input_option, cache_max_option, max_file_size_option, follow_links_option)):
        fn = option(fn)
    return fn


@dataclass
class Session:
    """A loaded document and model, ready to answer questions about the document."""

    document: Document
    engine: object
    fmt: str
    system: str | None
    store: Store | None
    quiet: bool = False
    ingest: Ingest | None = None
    notes: list[str] = field(default_factory=list)

    def prompt(self, question: str) -> prompting.Prompt:
        return prompting.build(self.engine.tokenizer, self.document.text, question, fmt=self.fmt, system=self.system)

    def prepare(self, prompt: prompting.Prompt, save: bool = True, note_not_stored: bool = True) -> None:
        """Get the document prefix of `prompt` into the engine: from the store, or prefilled (then stored)."""
        self.engine.check_length(len(prompt.ids))
        if not prompt.prefix_len or self.ingest is not None:
            return
        key = prefix_key(self.engine, self.document.content_hash(), prompting.format_id(self.fmt, self.system))
        with prefill_progress("Reading the document", enabled=not self.quiet) as progress:
            self.ingest = ensure_prefix(self.engine, prompt.prefix_ids, key, self.store, save=save, progress=progress,
                                        info=self.manifest_info())
        how = "loaded the stored ingest" if self.ingest.reused else "read"
        note(f"{how} {self.ingest.tokens:,} document tokens in {self.ingest.seconds:.1f} s", self.quiet)
        if self.ingest.not_stored and note_not_stored:
            warn(f"the ingest was not stored ({self.ingest.not_stored}); the answer does not need it", self.quiet)

    def manifest_info(self) -> dict:
        return {"sources": self.document.sources, "chars": len(self.document.text), "format": self.fmt}


def open_session(paths, *, model=None, window=None, chunk_size=None, chunks=None, threads=None, password=None,
                 fmt=prompting.DEFAULT_FORMAT, system=None, store=True, quiet=False, max_input_tokens=None,
                 cache_max=None, max_file_size=None, follow_links=False) -> Session:
    limits = {} if max_file_size is None else {"max_input_bytes": parse_size(max_file_size)}
    document = load(list(paths), password=password, follow_links=follow_links, **limits)
    for path, reason in document.skipped[:SHOWN_SKIPS]:
        warn(f"skipped {path}: {reason}", quiet)
    if len(document.skipped) > SHOWN_SKIPS:
        warn(f"... and {len(document.skipped) - SHOWN_SKIPS} more skipped (all of them: --json)", quiet)
    engine = make_engine(model, window, chunk_size, chunks, threads, max_input_tokens=max_input_tokens)
    return Session(document, engine, fmt, system, Store(max_bytes=cache_max) if store else None, quiet)


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

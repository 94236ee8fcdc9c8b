"""The `longdoc` command: a click group whose commands live in one module per topic.

    longdoc ask report.pdf "summarize"      stream an answer about a document
    longdoc chat report.pdf                 ask several questions about one document
    longdoc ingest report.pdf               prefill a document once, store it for later questions
    longdoc cache ls|rm|clear               the stored ingests
    longdoc models                          models available locally
    longdoc show report.pdf "question" --png out.png   which chunks every head read
    longdoc eval passkey|needle|ppl         quality evaluations;  longdoc bench  speed and memory
    longdoc serve                           an OpenAI-compatible server with a web page (127.0.0.1:8000)
    longdoc batch jobs.jsonl --out a.jsonl  many documents and questions, locally or on Ray (--ray)
"""

from __future__ import annotations

import importlib
import sys

import click

# command name -> "module:attribute" (imported lazily so `longdoc --help` stays fast)
COMMANDS = {
    "ask": "longdoc.cli.ask:ask",
    "chat": "longdoc.cli.chat:chat",
    "ingest": "longdoc.cli.ingest:ingest",
    "cache": "longdoc.cli.cache:cache",
    "models": "longdoc.cli.models:models",
    "show": "longdoc.cli.show:show",
    "eval": "longdoc.cli.evaluate:eval_group",
    "bench": "longdoc.cli.evaluate:bench",
    "serve": "longdoc.cli.serve:serve",
    "batch": "longdoc.cli.batch:batch",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return [name for name in COMMANDS if self._load(name) is not None]

    def get_command(self, ctx, name):
        return self._load(name)

    @staticmethod
    def _load(name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup)
@click.version_option(package_name="longdoc")
def cli():
    """Ask a local model about a whole long document: LongHeads attention, no retrieval step."""


def main():  # pragma: no cover - console entry point
    sys.exit(cli())

"""`longdoc cache ls | rm KEY... | clear`: the stored ingests."""

from __future__ import annotations

import time

import click

from longdoc.cli.common import handle_errors, human_size


def _store():
    from longdoc.store import Store

    return Store()


@click.group()
def cache():
    """List or remove stored ingests (prefilled documents)."""


@cache.command("ls")
@handle_errors
def ls():
    """Stored ingests, most recently used first."""
    store = _store()
    entries = store.entries()
    if not entries:
        click.echo(f"No stored ingests in {store.root}")
        return
    click.echo(f"{'KEY':<12}  {'TOKENS':>8}  {'SIZE':>9}  {'FORMAT':<8}  {'LAST USED':<16}  {'MODEL':<14}  SOURCES")
    for e in entries:
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.last_used))
        sources = ", ".join(e.manifest.get("sources", []))
        if len(sources) > 60:
            sources = "..." + sources[-57:]
        fmt = str(e.manifest.get("kv_dtype", "old"))[:8]  # "old": written before the format was recorded, not loaded
        click.echo(f"{e.key[:12]:<12}  {e.tokens:>8,}  {human_size(e.size):>9}  {fmt:<8}  {used:<16}  "
                   f"{str(e.manifest.get('model', '?'))[:14]:<14}  {sources}")
    click.echo(f"{len(entries)} stored, {human_size(store.total_bytes())} of {human_size(store.max_bytes)} "
               f"in {store.root}")


@cache.command("rm")
@click.argument("keys", nargs=-1, required=True)
@handle_errors
def rm(keys):
    """Remove the stored ingests whose keys start with KEY..."""
    from longdoc.errors import InputError

    store = _store()
    for prefix in keys:
        matches = store.resolve(prefix) if prefix else []
        if not matches:
            raise InputError(f"No stored ingest matches {prefix!r}; see `longdoc cache ls`")
        if len(matches) > 1:
            raise InputError(f"{prefix!r} matches {len(matches)} stored ingests; give more of the key")
        store.remove(matches[0].key)
        click.echo(f"Removed {matches[0].key[:12]} ({human_size(matches[0].size)})")


@cache.command("clear")
@handle_errors
def clear():
    """Remove every stored ingest."""
    store = _store()
    size = store.total_bytes()
    n = store.clear()
    click.echo(f"Removed {n} stored ingest{'s' if n != 1 else ''} ({human_size(size)})")

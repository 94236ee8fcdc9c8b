"""What every `longdoc` command shares: one-line errors, the model / LongHeads options (as EngineSettings),
and the stderr side of the terminal (progress bars, notes) so stdout stays clean for piping.

    from longdoc.cli.common import handle_errors, model_options, engine_settings

    @click.command()
    @model_options
    @handle_errors
    def mycommand(model, window, chunk_size, chunks, threads): ...
"""

from __future__ import annotations

import functools
import sys
from typing import NoReturn
from contextlib import contextmanager

import click

from longdoc.errors import LongdocError

INTERRUPTED = "Interrupted; nothing was stored."


def fail(message: str, exit_code: int) -> NoReturn:
    """Print `Error: message` (one line) on stderr and exit."""
    click.echo(f"Error: {' '.join(str(message).split())}", err=True)
    sys.exit(exit_code)


def handle_errors(fn):
    """Turn a LongdocError into one line on stderr and its exit code; Ctrl-C into a clean exit 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LongdocError as e:
            fail(str(e) or type(e).__name__, e.exit_code)
        except KeyboardInterrupt:
            fail(INTERRUPTED, 130)
        except BrokenPipeError:  # `longdoc ask ... | head`: the reader went away; not an error
            sys.stderr.close()
            sys.exit(0)
        except OSError as e:  # the system refused something mid-way (a file vanished, a disk error): one line
            where = f"{e.filename}: " if e.filename else ""
            fail(f"{where}{e.strerror or e}; check the file and try again", 1)

    return wrapper


# -- options shared by commands that load a model ---------------------------------------------------------------
def _opt(*decls, **kw):
    return click.option(*decls, **kw)


model_option = _opt("-m", "--model", default=None, metavar="MODEL",
                    help="A Hugging Face Hub id (Qwen/Qwen2.5-1.5B-Instruct), a local Hugging Face folder or a "
                         ".gguf file (default: the embedded SmolLM2-135M-Instruct; `longdoc models` lists them).")
revision_option = _opt("--revision", default=None, metavar="REV",
                       help="Branch, tag or commit of a hub id given with -m (default: main).")
dtype_option = _opt("--dtype", type=click.Choice(["auto", "float32", "bfloat16", "float16"]), default="auto",
                    show_default=True, help="Weights and KV cache dtype; auto: float32 on CPU, bfloat16 on CUDA.")
device_option = _opt("--device", default="auto", show_default=True, metavar="DEVICE",
                     help="cpu, cuda, cuda:N, mps or auto (cuda when available).")
window_option = _opt("--window", type=click.IntRange(min=1), default=None,
                     help="LongHeads attention window in tokens (chunk size x chunks; default 2048).")
chunk_size_option = _opt("--chunk-size", type=click.IntRange(min=1), default=None, help="Tokens per chunk (default 256).")
chunks_option = _opt("--chunks", type=click.IntRange(min=1), default=None,
                     help="Chunks every head attends to, first and current included (default 8).")
threads_option = _opt("--threads", type=click.IntRange(min=1), default=None,
                      help="CPU threads for torch. Default: auto, the cores other processes leave free, re-measured "
                           "between prefill blocks and decode steps (a fixed count falls off a cliff on a busy "
                           "machine); env LONGDOC_THREADS sets a number or auto.")


MODEL_SOURCE_OPTIONS = ("revision", "dtype", "device")  # passed through to EngineSettings as **source


def model_options(fn):
    """-m/--model, --revision, --dtype, --device, --window, --chunk-size, --chunks, --threads."""
    for option in reversed((model_option, revision_option, dtype_option, device_option, window_option,
                            chunk_size_option, chunks_option, threads_option)):
        fn = option(fn)
    return fn


def engine_settings(model=None, window=None, chunk_size=None, chunks=None, threads=None, *, max_input_tokens=None,
                    revision=None, dtype=None, device=None):
    """The EngineSettings of the shared model options (resolved by EngineSettings' one window rule)."""
    from longdoc.settings import EngineSettings

    return EngineSettings(model=model, revision=revision, window=window, chunk_size=chunk_size, chunks=chunks,
                          threads=threads, max_input_tokens=max_input_tokens,
                          dtype=None if dtype == "auto" else dtype, device=None if device == "auto" else device)


# -- the stderr side --------------------------------------------------------------------------------------------
def stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def note(message: str, quiet: bool = False) -> None:
    """An informational line on stderr, only for a person watching a terminal."""
    if not quiet and stderr_is_tty():
        click.echo(message, err=True)


def warn(message: str, quiet: bool = False) -> None:
    """A line on stderr about something the user would otherwise not know (a skipped file, an ingest not
    stored): printed whether or not stderr is a terminal (pipes, logs, CI), unless -q."""
    if not quiet:
        click.echo(f"Note: {' '.join(str(message).split())}", err=True)


@contextmanager
def prefill_progress(description: str, enabled: bool = True):
    """Yields a `progress(done, total)` callback drawing a rich bar on stderr (tokens, tokens/s, ETA).

    A no-op when stderr is not a terminal or `enabled` is False.
    """
    if not (enabled and stderr_is_tty()):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    class Speed(ProgressColumn):
        def render(self, task):
            return Text(f"{task.speed:,.0f} tok/s" if task.speed else "… tok/s", style="progress.data.speed")

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("tokens"),
                        Speed(), TimeRemainingColumn(), console=Console(stderr=True), transient=True)
    task = None

    def update(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            task = progress.add_task(description, total=total)
        progress.update(task, completed=done, total=total)

    with progress:
        yield update


def human_size(n: float) -> str:
    from longdoc.documents.checks import format_bytes

    return format_bytes(n)

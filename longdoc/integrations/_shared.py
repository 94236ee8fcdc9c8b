"""Helpers shared by the LangChain and LlamaIndex classes: message conversion, sampling settings, and the
thread-to-asyncio bridge that makes streaming async without blocking the event loop.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, AsyncIterator, Callable, Iterable, Iterator, TypeVar

if TYPE_CHECKING:
    from longdoc.generate import SamplingParams, Usage

T = TypeVar("T")

# roles a chat template knows, from the names LangChain and LlamaIndex use
_ROLES = {"human": "user", "user": "user", "ai": "assistant", "assistant": "assistant", "chatbot": "assistant",
          "model": "assistant", "system": "system", "developer": "system", "tool": "tool", "function": "tool"}


def chat_role(role: str) -> str:
    return _ROLES.get(role, role)


def block_text(content) -> str:
    """The text of a message's content: a string, or a list of content blocks of which only text is accepted."""
    from longdoc.errors import InputError

    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") in ("text", "text-plain"):
            parts.append(block.get("text", ""))
        else:
            kind = block.get("type") if isinstance(block, dict) else type(block).__name__
            raise InputError(f"longdoc reads text only; this message has a {kind!r} block: send its text instead.")
    return "".join(parts)


def sampling(max_tokens: int, temperature: float, top_p: float, seed: int | None,
             stop: Iterable[str] | None) -> "SamplingParams":
    from longdoc.generate import SamplingParams

    stops = list(dict.fromkeys(s for s in (stop or []) if s))  # dedupe, keep order; "" would stop at once
    return SamplingParams(max_new_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed, stop=stops)


def cut_at_stop(text: str, stop: Iterable[str] | None) -> str:
    """Text up to the first stop string: the engine already stops there; this guards text from elsewhere
    (a cached generation) so `stop` holds on every path."""
    cut = len(text)
    for s in stop or []:
        at = text.find(s) if s else -1
        if at != -1:
            cut = min(cut, at)
    return text[:cut]


def until_stop(pieces: Iterable[str], stop: list[str], usage: "Usage") -> Iterator[str]:
    """Pass text pieces on, ending before the first stop string in the joined text (the engine stops there
    already; this keeps the guarantee whatever produced the pieces)."""
    emitted = ""
    for piece in pieces:
        joined = emitted + piece
        full = cut_at_stop(joined, stop)
        if full[len(emitted):]:
            yield full[len(emitted):]
        emitted = full
        if len(full) < len(joined):
            usage.finish_reason = "stop"
            return


def usage_dict(usage: "Usage") -> dict:
    """The engine's Usage as plain numbers (for LlamaIndex `raw` and response metadata)."""
    return {
        "prompt_tokens": usage.prompt_tokens,
        "cached_tokens": usage.cached_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "prefill_s": round(usage.prefill_s, 4),
        "decode_s": round(usage.decode_s, 4),
        "finish_reason": usage.finish_reason,
    }


_DONE = object()


async def aiter_in_thread(make_iter: Callable[[], Iterator[T]]) -> AsyncIterator[T]:
    """Run a blocking iterator in a worker thread and hand its items to the event loop through a queue.

    The loop stays free while the model prefills and decodes. If the consumer stops early, the worker stops
    after its current item (a prefill under way finishes first) and closes the iterator, so the engine puts
    the prefilled prompt back into its prefix pool.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    cancelled = threading.Event()

    def put(item, error=None) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (item, error))
        except RuntimeError:  # the loop is closed: nobody is listening any more
            cancelled.set()

    def work() -> None:
        iterator = make_iter()
        try:
            for item in iterator:
                if cancelled.is_set():
                    break
                put(item)
        except BaseException as error:  # handed to the awaiting side, re-raised there
            put(_DONE, error)
            return
        finally:
            close = getattr(iterator, "close", None)
            if close:
                close()
        put(_DONE)

    threading.Thread(target=work, name="longdoc-generate", daemon=True).start()
    try:
        while True:
            item, error = await queue.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        cancelled.set()


def source_pieces(doc) -> Iterator[tuple[str, int | None, str | None, str]]:
    """(source, page, page_label, text) per PDF page and per text file of a longdoc `Document`."""
    groups: dict[tuple, list] = {}
    for span in doc.spans:  # sorted: lines of one file group together, pages stay apart
        groups.setdefault((span.source, span.page), []).append(span)
    for (source, page), spans in groups.items():
        label = (spans[0].page_label or str(page)) if page is not None else None
        yield source, page, label, doc.text[spans[0].start : spans[-1].end]

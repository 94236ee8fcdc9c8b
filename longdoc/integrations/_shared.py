"""What the LangChain and LlamaIndex classes share: the engine fields (one list, turned into
`longdoc.settings.EngineSettings`), the document-session call (a conversation of (role, text) turns about one
document), message conversion, sampling settings, and the thread-to-asyncio bridge that makes streaming async
without blocking the event loop.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, AsyncIterator, Callable, Iterable, Iterator, TypeVar

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from longdoc.documents import Document
    from longdoc.generate import SamplingParams, Usage
    from longdoc.qa.session import Reply
    from longdoc.settings import EngineSettings

T = TypeVar("T")

# roles a chat template knows, from the names LangChain and LlamaIndex use
_ROLES = {"human": "user", "user": "user", "ai": "assistant", "assistant": "assistant", "chatbot": "assistant",
          "model": "assistant", "system": "system", "developer": "system", "tool": "tool", "function": "tool"}


class EngineFields(BaseModel):
    """The engine settings every model class takes (the fields of `longdoc.settings.EngineSettings`; a test
    keeps the two lists equal). Objects with equal settings share one Engine per process."""

    model_config = ConfigDict(arbitrary_types_allowed=True, protected_namespaces=())

    model: str | None = Field(default=None, description="None: the embedded SmolLM2-135M-Instruct; else a Hugging "
                                                        "Face Hub id (org/name), a local folder or a .gguf file")
    revision: str | None = Field(default=None, description="branch, tag or commit of a hub id (None: main)")
    chunk_size: int | None = Field(default=None, description="LongHeads chunk size l in tokens (None: per model)")
    chunks: int | None = Field(default=None, description="LongHeads chunks per head K (None: per model)")
    window: int | None = Field(default=None, description="attention window chunk_size x chunks (any two of three)")
    longheads: bool = Field(default=True, description="False: plain full attention (up to the trained length)")
    threads: int | None = Field(default=None, description="torch CPU threads (None: LONGDOC_THREADS, else auto: the cores "
                                                         "other processes leave free; longdoc/threads.py)")
    dtype: str | None = Field(default=None, description="auto, float32, bfloat16, float16 (None = auto: fp32 on "
                                                        "CPU, bf16 on CUDA)")
    device: str | None = Field(default=None, description="cpu, cuda, cuda:N, mps (None = auto: cuda when available)")
    max_input_tokens: int | None = Field(default=None, description="refuse longer prompts (None: the reach)")
    prefix_slots: int = Field(default=2, description="prefilled prompts the engine keeps for reuse")

    def engine_settings(self) -> "EngineSettings":
        from longdoc.settings import EngineSettings

        return EngineSettings(**{name: getattr(self, name) for name in EngineSettings.names()})


def as_document(source=None, *, text: str | None = None, password: str | None = None) -> "Document":
    """A longdoc Document: `source` a Document, or a path / paths for longdoc's loaders; or `text` itself."""
    from longdoc.documents import Document, load
    from longdoc.errors import InputError
    from longdoc.qa.session import text_document

    if text is not None:
        return text_document(text)
    if source is None:
        raise InputError("no document given: pass a path, a list of paths, a longdoc Document, or text=...")
    return source if isinstance(source, Document) else load(source, password=password)


def conversation(turns: list[tuple[str, str]]) -> tuple[str | None, list[tuple[str, str]], str]:
    """(system line, earlier (question, answer) turns, question) of chat turns [(role, text)] for a document
    session. System turns join into the system line; consecutive turns of one role join; the last turn must be
    the user's question."""
    from longdoc.errors import InputError

    system = "\n\n".join(t for r, t in turns if r == "system" and t.strip()) or None
    merged: list[list[str]] = []
    for role, text in turns:
        if role == "system":
            continue
        if role not in ("user", "assistant"):
            raise InputError(f"a document conversation has user and assistant turns; this one has a {role!r} turn.")
        if merged and merged[-1][0] == role:
            merged[-1][1] += "\n\n" + text
        else:
            merged.append([role, text])
    if not merged or merged[-1][0] != "user":
        raise InputError("a question about the document must end with the user's turn.")
    if merged[0][0] == "assistant":
        merged.insert(0, ["user", ""])
    history = [(merged[i][1], merged[i + 1][1]) for i in range(0, len(merged) - 1, 2)]
    return system, history, merged[-1][1]


def document_reply(engine, document: "Document", turns: list[tuple[str, str]], params: "SamplingParams", *,
                   fmt: str, store: bool, cite: bool, usage: "Usage | None" = None) -> "Reply":
    """Start the DocumentSession reply to a conversation about `document` (the path the CLI takes too)."""
    from longdoc.qa.session import DocumentSession
    from longdoc.store import Store

    system, history, question = conversation(turns)
    session = DocumentSession(engine, document, fmt=fmt, system=system, store=Store() if store else None)
    return session.reply(question, params, history=history, cite=cite, usage=usage, charge_prefix=True)


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
             stop: Iterable[str] | None, *, repetition_penalty: float = 1.0,
             stop_on_repeat: bool = True, ignore_eos: bool = False) -> "SamplingParams":
    """SamplingParams of one call of an integration or the server (one place for the mapping).
    repetition_penalty (> 1 lowers tokens already in the answer) and stop_on_repeat (end at a sentence already
    said) are longdoc/repetition.py's; ignore_eos decodes past the end-of-sequence token (fixed-length answers, load
    tests); the defaults are the engine's."""
    from longdoc.generate import SamplingParams

    stops = list(dict.fromkeys(s for s in (stop or []) if s))  # dedupe, keep order; "" would stop at once
    return SamplingParams(max_new_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed, stop=stops,
                          repetition_penalty=repetition_penalty, stop_on_repeat=stop_on_repeat, ignore_eos=ignore_eos)


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


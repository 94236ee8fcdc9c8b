"""Requests that cannot be answered, refused before any work with one clear line (an empty prompt, an empty
message list, a question of whitespace, `max_tokens=0`), so every entry point says the same thing and the engine
is untouched for the next call."""

from __future__ import annotations

from typing import Iterable

from .errors import ConfigError, InputError


def check_text(text: str | None, what: str = "The prompt") -> None:
    """InputError when `text` is empty or whitespace only."""
    if not text or not text.strip():
        raise InputError(f"{what} is empty or only whitespace: send some text to answer.")


def encodable(text: str) -> str:
    """`text` with undecodable bytes (surrogate escapes: a command-line argument that is not valid UTF-8) turned
    into U+FFFD, so a tokenizer can take it."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def check_messages(messages: Iterable[dict]) -> None:
    """InputError when there are no messages, or none of them has any text ({"role", "content"} dicts)."""
    messages = list(messages)
    if not messages:
        raise InputError("There are no messages to answer: send at least one message with some text.")
    if not any(isinstance(m.get("content"), str) and m["content"].strip() for m in messages):
        raise InputError("Every message is empty or only whitespace: send at least one message with some text.")


def check_prompt_ids(ids) -> None:
    """InputError for a prompt of no tokens."""
    if len(ids) == 0:
        raise InputError("The prompt is empty (no tokens): send some text to answer.")


def check_max_tokens(n: int) -> None:
    """ConfigError for a request for no answer at all."""
    if n is None or int(n) < 1:
        raise ConfigError(f"max_tokens={n} asks for no answer at all: use max_tokens >= 1.")

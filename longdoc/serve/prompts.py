"""OpenAI messages and prompts -> the token ids the engine runs, with the document as a reusable prefix.

Automatic prefix reuse: a request's document is prefilled apart from its question, so the next request about
the same document (any client; the document in a system message, in its own user message, or in the user's
message before the question) reuses the pooled prefill exactly and pays only for its own tokens
(`usage.prompt_tokens_details.cached_tokens`). The rule, one for every layout:

    the document message = the longest message content (the first of equals);
    the prefix ends inside it at its last blank line ("\\n\\n") when what follows is short (at most TAIL_CHARS:
    a question after the document), else at its end.

Pieces are tokenized separately and concatenated ([before the document | document part | the rest]), so the
prefix ids depend only on what precedes the split: the same document gives the same prefix ids whatever the
question (as longdoc/qa/prompting.py does for the CLI's frame). Raw completion prompts split the same way.

Messages that refer to an uploaded document (`document` or a `file` content part) go through
`longdoc.qa.session.DocumentSession` instead: the CLI's frame, stored ingest and citations.
"""

from __future__ import annotations

from dataclasses import dataclass

from longdoc import chat_template
from longdoc.serve.errors import APIError

TAIL_CHARS = 2000  # what may follow the last blank line of the document message and still count as the question
_PLACEHOLDER = "\x00LONGDOC-SERVE-DOCUMENT\x00"


@dataclass
class RawPrompt:
    """ids: the prompt's token ids; prefix_len: the reusable document prefix (0: none); document_tokens: the
    document message's tokens (what --max-document-tokens caps)."""

    ids: list[int]
    prefix_len: int
    document_tokens: int


def message_parts(messages) -> tuple[list[tuple[str, str]], list[str]]:
    """([(role, text)], file ids) of OpenAI messages: text parts joined, `file` parts' ids collected.
    APIError(400) for an image, audio or other non-text part, or an empty message list."""
    from longdoc.integrations._shared import chat_role

    turns, files = [], []
    for i, m in enumerate(messages):
        content = m.content
        if content is None:
            text = ""
        elif isinstance(content, str):
            text = content
        else:
            parts = []
            for part in content:
                kind = part.get("type") if isinstance(part, dict) else None
                if kind == "text":
                    parts.append(str(part.get("text", "")))
                elif kind == "file":
                    file = part.get("file") or {}
                    if not file.get("file_id"):
                        raise APIError(400, f"messages[{i}]: a file part needs file.file_id (an id from POST "
                                            "/v1/longdoc/documents); inline file data is not accepted.",
                                       param=f"messages[{i}].content", code="invalid_request")
                    files.append(str(file["file_id"]))
                else:
                    raise APIError(400, f"messages[{i}] has a {kind!r} content part; this server reads text and "
                                        "uploaded documents (file parts) only.", param=f"messages[{i}].content",
                                   code="unsupported_content")
            text = "".join(parts)
        turns.append((chat_role(m.role), text))
    return turns, files


def split_point(text: str) -> int:
    """Where the reusable part of a document message ends: after its last blank line when the rest is short."""
    at = text.rfind("\n\n")
    if at > 0 and len(text) - (at + 2) <= TAIL_CHARS and at + 2 < len(text):
        return at + 2
    return len(text)


def chat_prompt(engine, turns: list[tuple[str, str]]) -> RawPrompt:
    """The prompt of chat `turns` [(role, text)] through the model's chat template, the document as a prefix.
    APIError(400) when no turn has text."""
    from longdoc.errors import InputError

    if not any(t.strip() for _, t in turns):
        raise APIError(400, "The messages have no text: send at least one user message with content.",
                       param="messages", code="invalid_request")
    doc = max(range(len(turns)), key=lambda i: (len(turns[i][1]), -i))
    content = turns[doc][1]
    messages = [{"role": r, "content": _PLACEHOLDER if i == doc else t} for i, (r, t) in enumerate(turns)]
    try:
        text = chat_template.render(engine.tokenizer, messages, add_generation_prompt=True, check=False)
    except InputError as e:
        raise APIError(400, str(e), param="messages", code="invalid_request") from None
    if text.count(_PLACEHOLDER) != 1:  # a template that rewrites content: no split, the pool still reuses chunks
        ids = engine.chat_ids([{"role": r, "content": t} for r, t in turns])
        return RawPrompt(ids, 0, len(engine.encode(content)))
    head, tail = text.split(_PLACEHOLDER)
    cut = split_point(content)
    head_ids, doc_ids, rest_ids = engine.encode(head), engine.encode(content[:cut]), engine.encode(content[cut:] + tail)
    prefix = len(head_ids) + len(doc_ids) if rest_ids else 0
    return RawPrompt(head_ids + doc_ids + rest_ids, prefix, len(doc_ids) + len(engine.encode(content[cut:])))


def completion_prompt(engine, prompt: str) -> RawPrompt:
    """The token ids of a raw completion prompt (the tokenizer's special tokens first, as a plain encode
    gives), split at its last blank line like a document message."""
    if not prompt.strip():
        raise APIError(400, "prompt is empty: send the text to complete.", param="prompt", code="invalid_request")
    cut = split_point(prompt)
    first = list(engine.tokenizer(prompt[:cut], add_special_tokens=True).input_ids)
    rest = engine.encode(prompt[cut:]) if cut < len(prompt) else []
    return RawPrompt(first + rest, len(first) if rest else 0, len(first) + len(rest))

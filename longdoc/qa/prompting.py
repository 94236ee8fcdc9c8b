"""How `ask` frames a document and a question into one prompt (token ids).

Every reusable format puts the document *first*: the tokens before the question depend only on the document,
the system line and the format, so they can be prefilled once and stored (store.py) and every later question
costs only its own tokens. The pieces are tokenized separately (head, document, tail) and concatenated, so the
document prefix is byte-for-byte the same ids whatever the question, and document tokens map back to character
offsets of `Document.text` (for citations).

Formats (measured in docs/prompt_formats.md; the default was picked there):
    chat           tokenizer chat template; user turn = document, blank line, question
    chat-sandwich  as chat, but the question also comes before the document (not reusable: the prefix
                   depends on the question; kept for comparison)
    completion     no template: document, "Question: ...", "Answer:" (the paper's raw passkey style)
    doc-chat       the raw document first, then a chat turn asking about "the text above"
"""

from __future__ import annotations

from dataclasses import dataclass, field

from longdoc import chat_template
from longdoc.errors import ConfigError
from longdoc.prompt_checks import check_text, encodable

FORMAT_VERSION = 1  # bump when a frame's text changes: stored ingests of the old frame stop matching
FORMATS = ("chat", "chat-sandwich", "completion", "doc-chat")
DEFAULT_FORMAT = "chat"
_DOC = "\x00LONGDOC-DOCUMENT\x00"  # placeholder split out of a rendered chat template


@dataclass
class Prompt:
    ids: list[int]
    prefix_len: int  # the first prefix_len ids depend on the document only (0: nothing reusable)
    doc_start: int  # index in ids of the first document token
    doc_offsets: list[tuple[int, int]]  # per document token: (start, end) char offsets in the document text
    stop: list[str] = field(default_factory=list)
    format: str = DEFAULT_FORMAT

    @property
    def prefix_ids(self) -> list[int]:
        return self.ids[: self.prefix_len]

    @property
    def doc_end(self) -> int:
        return self.doc_start + len(self.doc_offsets)


def format_id(fmt: str, system: str | None) -> str:
    """What, besides the document and the model, decides the prefix tokens (part of a store key)."""
    return f"{fmt}/v{FORMAT_VERSION}/system={system!r}"


def is_reusable(fmt: str) -> bool:
    return fmt != "chat-sandwich"


def build(tokenizer, document: str, question: str, *, fmt: str = DEFAULT_FORMAT, system: str | None = None,
          history: list[tuple[str, str]] = ()) -> Prompt:
    """The prompt for `question` about `document` in format `fmt` (InputError for a blank question). `history`:
    the earlier (question, answer) turns of a conversation about the same document; they go after the document,
    so its prefix is unchanged."""
    check_text(question, "The question")
    question, system = encodable(question), None if system is None else encodable(system)
    history = [(encodable(q), encodable(a)) for q, a in history]
    head, tail, stop = _frame(tokenizer, fmt, question, system, history)
    return _assemble(tokenizer, head, document, tail, stop, fmt, reusable=is_reusable(fmt))


def build_prefix(tokenizer, document: str, *, fmt: str = DEFAULT_FORMAT, system: str | None = None) -> Prompt:
    """Only the reusable document prefix (what `longdoc ingest` prefills and stores)."""
    if not is_reusable(fmt):
        raise ConfigError(f"The {fmt} prompt format repeats the question before the document, so nothing can be "
                          "ingested ahead of the question: use another --format.")
    head, _, stop = _frame(tokenizer, fmt, "", None if system is None else encodable(system))
    return _assemble(tokenizer, head, document, "", stop, fmt, reusable=True)


def _frame(tokenizer, fmt: str, question: str, system: str | None,
           history: list[tuple[str, str]] = ()) -> tuple[str, str, list[str]]:
    """(text before the document, text after it, stop strings). The first question of the conversation takes
    the document's place in the frame; later ones follow as ordinary turns."""
    turns = [(q.strip(), a.strip()) for q, a in history] + [(question.strip(), None)]
    if fmt in ("chat", "chat-sandwich", "doc-chat"):
        (q1, a1), rest = turns[0], turns[1:]
        first = {"chat": _DOC + "\n\n" + q1, "chat-sandwich": f"{q1}\n\n{_DOC}\n\n{q1}",
                 "doc-chat": "Answer using the text above. " + q1}[fmt]
        messages = [("user", first)] + ([("assistant", a1)] if a1 is not None else [])
        for q, a in rest:
            messages += [("user", q)] + ([("assistant", a)] if a is not None else [])
        head, tail = _chat(tokenizer, system, messages)
        return ("", "\n\n" + head + tail, []) if fmt == "doc-chat" else (head, tail, [])
    if fmt == "completion":
        head = f"{system.strip()}\n\n" if system else ""
        tail = "".join(f"\n\nQuestion: {q}\nAnswer:" + (f" {a}" if a is not None else "") for q, a in turns)
        return head, tail, ["\nQuestion:"]
    raise ConfigError(f"Unknown prompt format {fmt!r}: use one of {', '.join(FORMATS)}.")


def _chat(tokenizer, system: str | None, turns: list[tuple[str, str]]) -> tuple[str, str]:
    """Render the chat template around `turns` [(role, content)] and split it at the document placeholder (or
    at the end)."""
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError("This model's tokenizer has no chat template: use --format completion.")
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": r, "content": c} for r, c in turns]
    text = chat_template.render(tokenizer, messages, add_generation_prompt=True, check=False)
    if _DOC in text:
        head, tail = text.split(_DOC, 1)
        return head, tail
    return text, ""


def _assemble(tokenizer, head: str, document: str, tail: str, stop, fmt: str, reusable: bool) -> Prompt:
    def enc(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False).input_ids if text else []

    head_ids = enc(head)
    doc = tokenizer(document, add_special_tokens=False, return_offsets_mapping=True)
    doc_ids, offsets = list(doc.input_ids), [tuple(o) for o in doc.offset_mapping]
    ids = head_ids + doc_ids + enc(tail)
    prefix_len = len(head_ids) + len(doc_ids) if reusable else 0
    return Prompt(ids, prefix_len, len(head_ids), offsets, list(stop), fmt)

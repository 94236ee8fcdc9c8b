"""Render chat messages through the tokenizer's own chat template, for templates that restrict system turns.

Many families' templates reject any system turn (Gemma, Mistral v0.1: `raise_exception('... no system role')`)
or accept one only as the first message (Qwen: 'System message must be at the beginning'). longdoc puts the
document in a system turn (LangChain's `ChatLongDoc` messages, the LlamaIndex query engine) and `--system` adds
one, so a template's refusal must not reach the user. `render` tries, in order, and keeps the first the
template accepts:

1. the messages as given;
2. all system turns merged into one leading system turn (their texts joined by a blank line, in order);
3. no system turn: the system text goes first in the first user turn (a user turn is opened for it when the
   conversation does not start with one), separated from it by a blank line.

The document stays first in every variant, so its tokens are still a reusable prefix. Only when all three fail
is a `ConfigError` raised, quoting the template's own message.
"""

from __future__ import annotations

from jinja2.exceptions import TemplateError

from .errors import ConfigError
from .prompt_checks import check_messages, encodable

SEPARATOR = "\n\n"


def render(tokenizer, messages: list[dict], *, add_generation_prompt: bool = True, tokenize: bool = False,
           check: bool = True):
    """`tokenizer.apply_chat_template(messages, ...)` with the system-turn fallbacks above.

    messages: [{"role": "system" | "user" | "assistant" | ..., "content": str}].
    Returns the rendered text (tokenize=False) or what apply_chat_template returns for tokenize=True.
    Raises InputError for no messages / no text (when `check`), ConfigError when the template has no variant
    it accepts.
    """
    if check:
        check_messages(messages)
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError("This model's tokenizer has no chat template: use a raw prompt (--format completion).")
    messages = [{**m, "content": encodable(m["content"])} if isinstance(m.get("content"), str) else m for m in messages]
    first_error = None
    for variant in variants(messages):
        try:
            return tokenizer.apply_chat_template(variant, tokenize=tokenize, add_generation_prompt=add_generation_prompt)
        except TemplateError as e:
            first_error = first_error or e
    raise ConfigError(f"This model's chat template rejects these messages ({' '.join(str(first_error).split())}); "
                      "send user and assistant turns only.")


def variants(messages: list[dict]) -> list[list[dict]]:
    """The message lists `render` tries, in order (duplicates dropped)."""
    out = [list(messages)]
    system = [m for m in messages if m.get("role") == "system"]
    if not system:
        return out
    rest = [m for m in messages if m.get("role") != "system"]
    joined = SEPARATOR.join(str(m.get("content", "")) for m in system)
    merged = [{"role": "system", "content": joined}, *rest]
    if merged != out[0]:
        out.append(merged)
    if rest and rest[0].get("role") == "user":
        folded = [{**rest[0], "content": joined + SEPARATOR + str(rest[0].get("content", ""))}, *rest[1:]]
    else:
        folded = [{"role": "user", "content": joined}, *rest]
    out.append(folded)
    return out

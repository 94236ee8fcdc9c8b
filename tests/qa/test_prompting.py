"""Prompt frames: the document comes first, its prefix does not depend on the question, offsets map back."""

from __future__ import annotations

import pytest

from longdoc.qa import prompting
from longdoc.errors import ConfigError

DOC = "Page one text.\nThe capital of Zorbia is Quillton.\n\nMore text here, café."


@pytest.mark.parametrize("fmt", [f for f in prompting.FORMATS if prompting.is_reusable(f)])
def test_document_prefix_is_the_same_for_every_question(tokenizer, fmt):
    a = prompting.build(tokenizer, DOC, "What is the capital?", fmt=fmt)
    b = prompting.build(tokenizer, DOC, "Summarize.", fmt=fmt, )
    assert a.prefix_len > 0 and a.prefix_ids == b.prefix_ids and a.ids != b.ids
    assert a.ids[: a.prefix_len] == prompting.build_prefix(tokenizer, DOC, fmt=fmt).ids
    assert a.doc_end == a.prefix_len  # the prefix ends with the document: everything after is the question
    assert "What is the capital?" in tokenizer.decode(a.ids[a.prefix_len :])


@pytest.mark.parametrize("fmt", prompting.FORMATS)
def test_document_tokens_map_back_to_document_characters(tokenizer, fmt):
    p = prompting.build(tokenizer, DOC, "Q?", fmt=fmt)
    doc_ids = p.ids[p.doc_start : p.doc_end]
    assert tokenizer.decode(doc_ids) == DOC
    i = next(k for k, (a, b) in enumerate(p.doc_offsets) if DOC[a:b].strip() == "Qu")  # "Quillton" starts here
    assert DOC[p.doc_offsets[i][0] :].lstrip().startswith("Quillton")


def test_system_line_changes_the_prefix_and_the_format_id(tokenizer):
    plain = prompting.build(tokenizer, DOC, "Q?", fmt="chat")
    system = prompting.build(tokenizer, DOC, "Q?", fmt="chat", system="Answer in French.")
    assert plain.prefix_ids != system.prefix_ids and "Answer in French." in tokenizer.decode(system.ids)
    assert prompting.format_id("chat", None) != prompting.format_id("chat", "Answer in French.")
    assert prompting.format_id("chat", None) != prompting.format_id("completion", None)


def test_question_before_and_after_is_not_reusable(tokenizer):
    p = prompting.build(tokenizer, DOC, "Where is Quillton?", fmt="chat-sandwich")
    assert p.prefix_len == 0 and tokenizer.decode(p.ids).count("Where is Quillton?") == 2
    with pytest.raises(ConfigError, match="repeats the question"):
        prompting.build_prefix(tokenizer, DOC, fmt="chat-sandwich")


def test_completion_frame_ends_with_answer_and_stops_at_the_next_question(tokenizer):
    p = prompting.build(tokenizer, DOC, "What is the capital?", fmt="completion")
    assert tokenizer.decode(p.ids).endswith("Question: What is the capital?\nAnswer:") and p.doc_start == 0
    assert p.stop == ["\nQuestion:"]


def test_unknown_format(tokenizer):
    with pytest.raises(ConfigError, match="Unknown prompt format"):
        prompting.build(tokenizer, DOC, "Q?", fmt="nope")


@pytest.mark.parametrize("fmt", [f for f in prompting.FORMATS if prompting.is_reusable(f)])
def test_earlier_turns_follow_the_document_and_keep_its_prefix(tokenizer, fmt):
    first = prompting.build(tokenizer, DOC, "Where is Quillton?", fmt=fmt)
    follow = prompting.build(tokenizer, DOC, "And its river?", fmt=fmt, history=[("Where is Quillton?", "In Zorbia.")])
    assert follow.prefix_ids == first.prefix_ids and follow.prefix_len == first.prefix_len
    tail = tokenizer.decode(follow.ids[follow.prefix_len :])
    assert tail.index("Where is Quillton?") < tail.index("In Zorbia.") < tail.index("And its river?")
    assert tokenizer.decode(follow.ids).count("Quillton.") == 1  # the document once

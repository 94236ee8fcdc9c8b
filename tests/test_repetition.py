"""Answers that stop (longdoc/repetition.py): a repeated sentence ends the answer and is never shown, text that
may start one is held back until it departs, short sentences and list markers are no loop; the repetition
penalty and no-repeat n-grams change exactly the tokens they should; the decode loop stops a looping model."""

from __future__ import annotations

import torch

from longdoc.generate import SamplingParams, TextStream, Usage, decode, prefill
from longdoc.prefix import new_cache
from longdoc.repetition import LOOP_TOKENS, RepeatGuard, adjust_logits, is_token_loop


def shown(text: str) -> tuple[str, bool]:
    n, stop = RepeatGuard().check(text)
    return text[:n], stop


def test_a_repeated_sentence_stops_and_is_not_shown():
    assert shown("The pass key is 123. Remember it. The pass key is 123. Rem") == \
        ("The pass key is 123. Remember it.", True)
    # numbering, case and spacing do not hide a repeat
    assert shown("1. Install the package first.\n2.  install the PACKAGE first.\n") [1]


def test_what_may_start_a_repeat_is_held_back_until_it_departs():
    assert shown("The door code is 4417. The door") == ("The door code is 4417.", False)
    assert shown("The door code is 4417. The door is red") == ("The door code is 4417. The door is red", False)


def test_short_sentences_may_repeat():
    text = "Yes. It is. Yes. It is. The answer is four."
    assert shown(text) == (text, False)


def test_token_loops_of_any_period():
    loop = [5, 6, 7, 8, 9] * 10
    assert is_token_loop(loop, n=12)
    assert not is_token_loop(list(range(60)), n=12)


def test_penalty_and_ngram_ban_touch_only_the_tokens_they_should():
    logits = torch.tensor([[2.0, -1.0, 3.0, 0.5, 1.0]])
    same = adjust_logits(logits, [0, 1], 1.0, 0)
    assert same is logits
    pen = adjust_logits(logits, [0, 1], 2.0, 0)
    torch.testing.assert_close(pen, torch.tensor([[1.0, -2.0, 3.0, 0.5, 1.0]]))
    banned = adjust_logits(logits, [2, 3, 4, 2, 3], 1.0, 3)  # "2 3" was followed by 4: 4 would repeat "2 3 4"
    assert banned[0, 4] == float("-inf") and torch.equal(banned[0, :4], logits[0, :4])


def test_the_stream_never_shows_the_repeat(tokenizer):
    text = "The report is about bees. It covers three farms. The report is about bees. It covers"
    stream = TextStream(tokenizer, [], RepeatGuard())
    pieces = []
    for tid in tokenizer(text, add_special_tokens=False).input_ids:
        pieces.append(stream.push(tid))
        if stream.stopped:
            break
    assert stream.stopped and stream.repeated
    assert "".join(pieces) == "The report is about bees. It covers three farms."


def looping_model(tiny_model_dir):
    """The tiny Llama with its attention and MLP outputs zeroed and the output head tied to the embeddings: the
    residual stream is the token's own embedding, so greedy decoding repeats the last token forever."""
    from longdoc.models import load_model

    lm = load_model(str(tiny_model_dir))
    with torch.no_grad():
        for layer in lm.model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        lm.model.lm_head.weight.copy_(lm.model.model.embed_tokens.weight)
    return lm


def test_decode_stops_a_looping_model(tiny_model_dir):
    lm = looping_model(tiny_model_dir)
    ids = torch.tensor([lm.tokenizer("river stone garden light", add_special_tokens=False).input_ids])
    runs = {}
    for guard in (False, True):
        cache = new_cache(lm.model)
        logits = prefill(lm.model, cache, ids)
        usage = Usage()
        params = SamplingParams(max_new_tokens=120, stop_on_repeat=guard, ignore_eos=True)
        runs[guard] = ("".join(decode(lm.model, lm.tokenizer, cache, logits, params, usage=usage)), usage)
    (loose, u0), (guarded, u1) = runs[False], runs[True]
    assert u0.completion_tokens == 120 and u0.finish_reason == "length" and not u0.repeat_stopped
    assert u1.repeat_stopped and u1.finish_reason == "stop" and u1.completion_tokens <= 2 * LOOP_TOKENS
    assert guarded and loose.startswith(guarded)  # the same answer, cut where it started looping

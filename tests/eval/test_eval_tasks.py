"""The RULER-style generators: the prompt has the asked length, the needles are where the sample says, and the
gold answer can be computed back from the text alone."""

import random
import re
from collections import Counter

import pytest

from longdoc.eval import tasks
from longdoc.eval.suite import build_prompt, wilson

WORDS = "alpha beta gamma delta river stone house garden light quiet morning paper window table".split()


@pytest.fixture(scope="module")
def prose():
    rng = random.Random(0)
    return " ".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 12))).capitalize() + "."
                    for _ in range(1500))


def _values_for(context, kind, key):
    return re.findall(rf"special magic {kind}s for {re.escape(key)} is: ([0-9a-f-]+)\.", context)


def _asked_keys(sample):
    return re.findall(r"([a-z]+-[a-z]+)", sample.question)


@pytest.mark.parametrize("name", sorted(tasks.TASKS))
@pytest.mark.parametrize("length", [1024, 3000])
def test_prompt_has_the_asked_length_and_needles_hold_the_answer(tokenizer, prose, name, length):
    sample = tasks.make_samples(name, tokenizer, prose, length, 1, seed=1)[0]
    p = build_prompt(tokenizer, sample)
    n = p.ids.shape[1]
    assert 0.85 * length <= n <= 1.1 * length, f"{name}: {n} tokens for {length}"
    # the question starts where the context ends
    q = tokenizer.decode(p.ids[0, p.question_start : p.question_start + 6])
    assert sample.question.strip()[:8].lower() in (q.strip() + sample.question.strip()[:8]).lower()[: len(q.strip()) + 8]
    for (a, b), (ta, tb) in zip(sample.needles, p.needle_tokens):
        assert any(ans in sample.context[a:b] for ans in sample.answers), f"{name}: needle span misses the answer"
        assert ta < tb <= p.question_start
        assert sample.context[a:b].split()[1] in tokenizer.decode(p.ids[0, ta:tb])


@pytest.mark.parametrize("name", ["niah_number", "niah_essay", "niah_uuid", "niah_multikey", "niah_needles",
                                  "niah_multivalue", "niah_multiquery"])
def test_niah_answers_are_exactly_the_values_of_the_asked_keys(tokenizer, prose, name):
    for sample in tasks.make_samples(name, tokenizer, prose, 2048, 3, seed=2):
        kind = "uuid" if name == "niah_uuid" else "number"
        found = [v for k in _asked_keys(sample) for v in _values_for(sample.context, kind, k)]
        assert sorted(found) == sorted(sample.answers)
        if name == "niah_multikey":  # three distractor keys, none asked
            assert len(re.findall(r"special magic numbers for", sample.context)) == 4


def test_variable_tracking_chain_resolves_to_the_answer(tokenizer, prose):
    for sample in tasks.make_samples("vt", tokenizer, prose, 2048, 3, seed=3):
        value = re.search(r"assigned the value (\d+)", sample.question).group(1)
        assigns = dict(re.findall(r"VAR ([A-Z]+) = ((?:VAR [A-Z]+)|\d+)\.", sample.context))
        holding = {v for v, rhs in assigns.items() if rhs == value}
        changed = True
        while changed:
            new = {v for v, rhs in assigns.items() if rhs.startswith("VAR ") and rhs[4:] in holding}
            changed = not new <= holding
            holding |= new
        assert holding == set(sample.answers) and len(holding) == 5


@pytest.mark.parametrize("name", ["cwe", "fwe"])
def test_word_extraction_answers_are_the_most_frequent_words(tokenizer, prose, name):
    for sample in tasks.make_samples(name, tokenizer, prose, 2048, 2, seed=4):
        words = re.findall(r"[a-z]+", sample.context)
        counts = Counter(words)
        top = [w for w, _ in counts.most_common(len(sample.answers))]
        assert set(top) == set(sample.answers)
        kth = counts[top[-1]]
        assert all(c < kth for w, c in counts.items() if w not in sample.answers) or name == "fwe"


def test_qa_fact_is_planted_and_distractors_name_other_cities(tokenizer, prose):
    for sample in tasks.make_samples("qa", tokenizer, prose, 2048, 3, seed=5):
        person, trade = re.search(r"did (.+) work as a (.+)\?", sample.question).groups()
        facts = re.findall(r"([A-Z][a-z]+ [A-Z][a-z]+) worked as an? (.+?) in ([A-Z][a-z]+) from", sample.context)
        assert len(facts) == 4
        asked = [c for p, t, c in facts if p == person and t == trade]
        assert asked == sample.answers
        assert sample.answers[0] not in [c for p, t, c in facts if p != person]


def test_same_seed_same_samples_other_seed_other_samples(tokenizer, prose):
    a = tasks.make_samples("niah_essay", tokenizer, prose, 1024, 2, seed=7)
    b = tasks.make_samples("niah_essay", tokenizer, prose, 1024, 2, seed=7)
    c = tasks.make_samples("niah_essay", tokenizer, prose, 1024, 2, seed=8)
    assert [s.context for s in a] == [s.context for s in b]
    assert a[0].answers != c[0].answers


def test_unknown_task_names_the_known_ones(tokenizer, prose):
    with pytest.raises(KeyError, match="niah_essay"):
        tasks.make_samples("niah_typo", tokenizer, prose, 1024, 1, seed=0)


def test_score_is_the_share_of_gold_strings_found():
    s = tasks.Sample("t", "ctx", "q?", "A:", ["Alpha", "beta", "gamma"])
    assert tasks.score(s, "alpha and BETA") == pytest.approx(2 / 3)
    assert tasks.score(s, "gamma beta alpha") == 1.0
    assert tasks.score(s, "") == 0.0


def test_insert_places_sentences_at_sentence_ends_in_depth_order():
    text = " ".join(f"Sentence number {i}." for i in range(100))
    out, spans = tasks.insert(text, [(0.8, "LATE."), (0.1, "EARLY."), (0.0, "FIRST."), (1.0, "LAST.")])
    assert [out[a:b] for a, b in spans] == ["LATE.", "EARLY.", "FIRST.", "LAST."]
    assert spans[2][0] < spans[1][0] < spans[0][0] < spans[3][0]
    assert out.replace("LATE. ", "").replace("EARLY. ", "").replace("FIRST. ", "").replace(" LAST.", "") == text
    assert abs(spans[0][0] / len(out) - 0.8) < 0.05


def test_wilson_interval_matches_known_values():
    assert wilson(0, 20) == pytest.approx((0.0, 0.1611), abs=1e-3)
    assert wilson(20, 20) == pytest.approx((0.8389, 1.0), abs=1e-3)
    assert wilson(10, 20) == pytest.approx((0.2993, 0.7007), abs=1e-3)
    assert wilson(0, 0) == (0.0, 1.0)

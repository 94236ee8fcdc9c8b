"""RULER-style long-context tasks, generated locally from the task definitions of the RULER paper (Hsieh et al.
2024, arXiv 2404.06654, §3 and Table 1), plus the paper's own pass key (LongHeads Table 6).

Every generator is a pure function of (haystack text, token budget, random.Random): the same seed gives the same
sample for every method and every rerun. A `Sample` says where each needle sits (character spans in `context`),
so tests can check that the answer is computable from the text, and the runner can compute hit rates.

    task              haystack      what is hidden / asked                                       RULER name
    passkey           noise         "The pass key is 12345" (LongHeads Table 6 prompt, raw frame)   -
    niah_number       noise         one key -> 7-digit number                                    niah_single_1
    niah_essay        essays        one key -> 7-digit number                                    niah_single_2
    niah_uuid         essays        one key -> UUID-like value                                   niah_single_3
    niah_multikey     essays        4 keys (3 distractors) -> numbers; ask one                   niah_multikey_1
    niah_needles      needles only  many key -> number lines; ask one                            niah_multikey_2
    niah_multivalue   essays        one key with 4 values; ask all                               niah_multivalue
    niah_multiquery   essays        4 keys; ask all 4                                            niah_multiquery
    vt                noise         a 4-hop chain VAR A = 12345, VAR B = VAR A ...; name them    vt
    cwe               word list     30x common vs 3x rare words; the 10 most common              cwe
    fwe               coded words   Zipf-distributed words; the 3 most frequent                  fwe
    qa                essays        invented biographical facts (one asked, 3 distractors)       qa_1 (local facts)

Scoring (RULER's string_match_all): the share of gold strings found in the answer; a sample is correct when all
are found.
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass, field
from typing import Callable

NOISE = " The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
WORDS = (
    "apple anchor badge basket beacon blanket bottle bridge candle canyon carpet castle cellar cherry circus "
    "cobalt comet copper cotton crystal desert dragon eagle ember falcon feather fern fiddle forest fossil garden "
    "garnet glacier harbor hazel helmet island ivory jacket jasmine jungle kettle lantern lemon lizard magnet "
    "maple marble meadow mirror monkey mosaic needle nickel oasis olive orchid oyster paddle parrot pebble pepper "
    "pillow planet pocket prism puzzle quartz rabbit raven ribbon river rocket saddle salmon sapphire scarlet "
    "shadow silver spider spruce statue summit tablet temple thunder timber tomato tunnel turtle velvet violet "
    "walnut whistle willow window winter wizard zebra zephyr"
).split()
FIRST_NAMES = "Alma Boris Celia Dmitri Edith Farid Greta Hugo Ines Jonas Kira Lorenzo Mira Nils Oona Pavel".split()
LAST_NAMES = "Adler Brandt Castell Dorin Ebner Falk Gorsky Halvorsen Ilic Jaspers Kovac Lindqvist Moreau".split()
CITIES = "Tallinn Porto Ghent Bergen Lviv Split Graz Turku Brno Kaunas Cork Aarhus Bologna Leiden".split()
TRADES = "violin maker,glass blower,cartographer,clock repairer,beekeeper,bookbinder,lighthouse keeper".split(",")


@dataclass
class Sample:
    task: str
    context: str  # the document: haystack with the needles in it
    question: str  # asked after the context
    answer_prefix: str  # the answer starts with this (RULER's template); the model continues it
    answers: list[str]  # every gold string; score = share found in the output
    needles: list[tuple[int, int]] = field(default_factory=list)  # character spans in context that hold the answer
    depth: float | None = None  # where the (first) needle sits, 0 = start, 1 = end
    frame: str = "chat"  # "chat": the tokenizer's chat template; "raw": plain completion (passkey)
    max_new_tokens: int = 24


def score(sample: Sample, output: str) -> float:
    """RULER string_match_all: the share of gold strings found in the output (case-insensitive)."""
    out = output.lower()
    return sum(a.lower() in out for a in sample.answers) / len(sample.answers)


# ---------------------------------------------------------------------------------------------------- haystacks


class Budget:
    """Turns a token budget into haystack text: counts tokens with the model's tokenizer."""

    def __init__(self, tokenizer):
        self.tok = tokenizer

    def count(self, text: str) -> int:
        return len(self.tok(text, add_special_tokens=False).input_ids)

    def noise(self, n_tokens: int) -> str:
        per = self.count(NOISE * 20) / 20
        return NOISE * max(1, round(n_tokens / per))

    def prose(self, text: str, n_tokens: int) -> str:
        """The first ~n_tokens tokens of `text` (repeated if short), cut at a sentence end."""
        if not text.strip():
            raise ValueError("the prose haystack is empty")
        while self.count(text[: 8 * n_tokens]) < n_tokens:
            text = text + "\n\n" + text
        lo, hi = 0, min(len(text), 8 * n_tokens)  # binary search the character cut
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.count(text[:mid]) <= n_tokens:
                lo = mid
            else:
                hi = mid - 1
        cut = text[:lo]
        end = max(cut.rfind(". "), cut.rfind(".\n"))
        return cut[: end + 1] if end > len(cut) // 2 else cut


_SENT_END = re.compile(r"[.!?]\s+")


def insert(context: str, items: list[tuple[float, str]]) -> tuple[str, list[tuple[int, int]]]:
    """Insert sentences at depths (0..1) of context, each at the nearest sentence end before its depth.

    Returns the new text and the character span of every inserted sentence, in the order given.
    """
    cuts = []
    for depth, sentence in items:
        at = round(len(context) * min(max(depth, 0.0), 1.0))
        if 0 < at < len(context):
            ends = [m.end() for m in _SENT_END.finditer(context, max(0, at - 600), at)]
            at = ends[-1] if ends else at
        cuts.append(at)
    order = sorted(range(len(items)), key=lambda i: (cuts[i], i))
    out, spans, cursor = "", [None] * len(items), 0
    for i in order:
        out += context[cursor : cuts[i]]
        sep = "" if (not out or out[-1].isspace()) else " "
        out += sep
        start = len(out)
        out += items[i][1]
        spans[i] = (start, len(out))
        out += "" if cuts[i] >= len(context) or context[cuts[i]].isspace() else " "
        cursor = cuts[i]
    out += context[cursor:]
    return out, spans


# ---------------------------------------------------------------------------------------------------- values


def number(rng: random.Random) -> str:
    return str(rng.randint(1_000_000, 9_999_999))


def uuid_like(rng: random.Random) -> str:
    hexd = "0123456789abcdef"
    return "-".join("".join(rng.choice(hexd) for _ in range(n)) for n in (8, 4, 4, 4, 12))


def keys(rng: random.Random, n: int) -> list[str]:
    """n distinct two-word keys, e.g. 'velvet-harbor'."""
    out: list[str] = []
    while len(out) < n:
        k = f"{rng.choice(WORDS)}-{rng.choice(WORDS)}"
        if k not in out and k.split("-")[0] != k.split("-")[1]:
            out.append(k)
    return out


def _needle(key: str, value: str, kind: str = "number") -> str:
    return f"One of the special magic {kind}s for {key} is: {value}."


def _niah(task: str, body: str, rng: random.Random, *, n_keys: int = 1, n_values: int = 1, n_queries: int = 1,
          kind: str = "number", value: Callable = number) -> Sample:
    """The NIAH family: n_keys keys (the first n_queries are asked), the asked keys with n_values values each."""
    ks = keys(rng, n_keys)
    items, asked, golds = [], ks[:n_queries], []
    for i, k in enumerate(ks):
        vals = [value(rng) for _ in range(n_values if i < n_queries else 1)]
        if i < n_queries:
            golds += vals
        items += [(rng.random(), _needle(k, v, kind)) for v in vals]
    context, spans = insert(body, items)
    asked_spans = spans[: len(golds)]  # the asked keys' needles come first in `items`
    if n_queries > 1:
        q = (f"What are all the special magic {kind}s for {', '.join(asked[:-1])} and {asked[-1]} mentioned in the "
             "provided text?")
        prefix = f"The special magic {kind}s for {', '.join(asked[:-1])} and {asked[-1]} mentioned in the provided text are"
    elif n_values > 1:
        q = f"What are all the special magic {kind}s for {asked[0]} mentioned in the provided text?"
        prefix = f"The special magic {kind}s for {asked[0]} mentioned in the provided text are"
    else:
        q = f"What is the special magic {kind} for {asked[0]} mentioned in the provided text?"
        prefix = f"The special magic {kind} for {asked[0]} mentioned in the provided text is"
    depth = items[0][0]
    return Sample(task, context, q, prefix, golds, asked_spans, depth,
                  max_new_tokens=24 * max(1, len(golds)) if kind == "uuid" else 12 * max(1, len(golds)))


# ---------------------------------------------------------------------------------------------------- tasks


def passkey(budget: Budget, prose: str, n_tokens: int, rng: random.Random) -> Sample:
    from .passkey import INTRO, NEEDLE, QUESTION

    key = str(rng.randint(10000, 99999))
    depth = rng.random()
    fixed = budget.count(INTRO + NEEDLE.format(key=key) + QUESTION)
    per = budget.count(NOISE * 20) / 20
    n_fill = max(1, round((n_tokens - fixed) / per))
    before = round(n_fill * depth)
    head = INTRO + NOISE * before
    needle = NEEDLE.format(key=key)
    context = head + needle + NOISE * (n_fill - before)
    question, prefix = QUESTION.split("?")  # "\n\nWhat is the pass key" + "?", " The pass key is"
    return Sample("passkey", context, question + "?", prefix, [key], [(len(head), len(head) + len(needle))],
                  depth, frame="raw", max_new_tokens=8)


def _overhead(budget: Budget) -> int:
    return 160  # chat frame + question + answer prefix + needles, in tokens (measured: 60-140 for these tasks)


def niah_number(budget, prose, n, rng):
    return _niah("niah_number", budget.noise(n - _overhead(budget)), rng)


def niah_essay(budget, prose, n, rng):
    return _niah("niah_essay", budget.prose(prose, n - _overhead(budget)), rng)


def niah_uuid(budget, prose, n, rng):
    return _niah("niah_uuid", budget.prose(prose, n - _overhead(budget)), rng, kind="uuid", value=uuid_like)


def niah_multikey(budget, prose, n, rng):
    return _niah("niah_multikey", budget.prose(prose, n - _overhead(budget)), rng, n_keys=4)


def niah_needles(budget, prose, n, rng):
    """RULER multikey_2: the haystack is made of needles only; one is asked."""
    target = n - _overhead(budget)
    probe = [_needle(k, number(rng)) for k in keys(rng, 20)]
    n_lines = max(2, int(target / (budget.count(" ".join(probe)) / 20)))
    ks = keys(rng, n_lines)
    lines = [_needle(k, number(rng)) for k in ks]
    i = rng.randrange(n_lines)
    context = " ".join(lines)
    start = context.index(lines[i])
    value = lines[i].rsplit(" ", 1)[1].rstrip(".")
    return Sample("niah_needles", context, f"What is the special magic number for {ks[i]} mentioned in the provided text?",
                  f"The special magic number for {ks[i]} mentioned in the provided text is", [value],
                  [(start, start + len(lines[i]))], i / n_lines, max_new_tokens=12)


def niah_multivalue(budget, prose, n, rng):
    return _niah("niah_multivalue", budget.prose(prose, n - _overhead(budget)), rng, n_values=4)


def niah_multiquery(budget, prose, n, rng):
    return _niah("niah_multiquery", budget.prose(prose, n - _overhead(budget)), rng, n_keys=4, n_queries=4)


def vt(budget, prose, n, rng, hops: int = 4):
    """Variable tracking: VAR V0 = 12345, VAR V1 = VAR V0, ...; name every variable holding the value."""
    names = ["".join(rng.choice(string.ascii_uppercase) for _ in range(5)) for _ in range(hops + 1)]
    while len(set(names)) < len(names):
        names = ["".join(rng.choice(string.ascii_uppercase) for _ in range(5)) for _ in range(hops + 1)]
    value = str(rng.randint(10000, 99999))
    chain = [f"VAR {names[0]} = {value}."] + [f"VAR {names[i]} = VAR {names[i - 1]}." for i in range(1, hops + 1)]
    depths = sorted(rng.random() for _ in chain)
    context, spans = insert(budget.noise(n - _overhead(budget)), list(zip(depths, chain)))
    return Sample("vt", context, f"Question: Find all variables that are assigned the value {value} in the text above.",
                  f"Answer: According to the chain(s) of variable assignment in the text above, {hops + 1} variables "
                  f"are assigned the value {value}, they are:", names, spans, depths[0], max_new_tokens=30)


def cwe(budget, prose, n, rng, n_common: int = 10, common_freq: int = 30, rare_freq: int = 3):
    """Common word extraction: a numbered word list; the 10 words repeated 30 times are the answer."""
    pool = list(WORDS)
    rng.shuffle(pool)
    common = pool[:n_common]
    avail = n - _overhead(budget)
    per_word = budget.count(" ".join(f"{i + 1}. {a}{b}" for i, (a, b) in enumerate(zip(pool, pool[1:])))) / (len(pool) - 1)
    # RULER's 30x / 3x at long contexts; at short ones the common words take at most 40% of the list
    common_freq = max(rare_freq + 2, min(common_freq, int(avail * 0.4 / (n_common * per_word))))
    n_rare = max(1, int((avail - n_common * common_freq * per_word) / (rare_freq * per_word)))
    others = pool[n_common:]
    pairs = rng.sample([(a, b) for a in others for b in others if a != b], min(4000, len(others) ** 2 - len(others)))
    for _ in range(3):  # refine the number of rare words against the real token count
        rare = [f"{a}{b}" for a, b in pairs[:n_rare]]
        words = common * common_freq + rare * rare_freq
        rng.shuffle(words)
        got = budget.count(" ".join(f"{i + 1}. {w}" for i, w in enumerate(words)))
        n_rare = max(1, n_rare + int((avail - got) / (rare_freq * got / len(words))))
    context = " ".join(f"{i + 1}. {w}" for i, w in enumerate(words))
    return Sample("cwe", context, f"Question: What are the {n_common} most common words in the above list?",
                  f"Answer: The top {n_common} words that appear most often in the list are:", common, [], None,
                  max_new_tokens=40)


def fwe(budget, prose, n, rng, alpha: float = 2.0, n_answers: int = 3):
    """Frequent word extraction: coded words drawn from a Zipf law; the 3 most frequent are the answer."""
    vocab = ["".join(rng.choice(string.ascii_lowercase) for _ in range(6)) for _ in range(400)]
    weights = [1.0 / (i + 1) ** alpha for i in range(len(vocab))]
    per_word = budget.count(" ".join(rng.choices(vocab, weights=weights, k=200))) / 200
    n_words = max(20, int((n - _overhead(budget)) / per_word))
    drawn = rng.choices(vocab, weights=weights, k=n_words)
    counts = {w: drawn.count(w) for w in set(drawn)}
    top = sorted(counts, key=lambda w: (-counts[w], vocab.index(w)))[:n_answers]
    context = " ".join(drawn)
    return Sample("fwe", context, f"Question: Do not provide any explanation. Please ignore the dots '....'. What are "
                  f"the {n_answers} most frequently appeared words in the above coded text?",
                  f"Answer: According to the coded text above, the {n_answers} most frequently appeared words are:",
                  top, [], None, max_new_tokens=20)


def _fact(rng: random.Random, person: str) -> tuple[str, str, str]:
    city, trade, year = rng.choice(CITIES), rng.choice(TRADES), str(rng.randint(1890, 1990))
    return (f"{person} worked as a {trade} in {city} from the year {year} onwards.", city,
            f"In which city did {person} work as a {trade}?")


def qa(budget, prose, n, rng, n_distractors: int = 3):
    """Facts planted in real prose: one invented biography is asked about, three others distract."""
    people = []
    while len(people) < 1 + n_distractors:
        p = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        if p not in people:
            people.append(p)
    facts = [_fact(rng, p) for p in people]
    while len({f[1] for f in facts}) < len(facts):  # distinct cities: a distractor's city is never the answer
        facts = [_fact(rng, p) for p in people]
    items = [(rng.random(), f[0]) for f in facts]
    context, spans = insert(budget.prose(prose, n - _overhead(budget)), items)
    return Sample("qa", context, f"Answer the question based on the text. Question: {facts[0][2]}",
                  "Answer:", [facts[0][1]], spans[:1], items[0][0], max_new_tokens=32)  # RULER's qa: 32 tokens
    # (12 cut the model's usual answer, the fact's sentence copied whole, before its city: 5 of 20 at 4k)


TASKS: dict[str, Callable] = {
    "passkey": passkey, "niah_number": niah_number, "niah_essay": niah_essay, "niah_uuid": niah_uuid,
    "niah_multikey": niah_multikey, "niah_needles": niah_needles, "niah_multivalue": niah_multivalue,
    "niah_multiquery": niah_multiquery, "vt": vt, "cwe": cwe, "fwe": fwe, "qa": qa,
}
NEEDS_PROSE = {"niah_essay", "niah_uuid", "niah_multikey", "niah_multivalue", "niah_multiquery", "qa"}


def make_samples(task: str, tokenizer, prose: str, n_tokens: int, count: int, seed: int) -> list[Sample]:
    """`count` samples of `task` at about `n_tokens` tokens, from a seed (same seed, same samples).

    Raises KeyError naming the known tasks for an unknown task.
    """
    if task not in TASKS:
        raise KeyError(f"unknown task {task!r}: use one of {', '.join(TASKS)}")
    budget = Budget(tokenizer)
    rng = random.Random(f"{task}/{seed}/{n_tokens}")
    return [TASKS[task](budget, prose, n_tokens, rng) for _ in range(count)]

"""The reading suite: RULER-style tasks (`longdoc.eval.tasks`) through several attention methods, with every
question-side variant ("reader") branched from ONE prefill of each prompt.

    prefill (method)  ─►  reader "direct": answer with the method's own attention
                      └►  reader "reread-2048": the heads' selections choose chunks; a dense 2,048-token pass
                          over [chunk 0 | chosen chunks | question] answers (`longdoc.reread`)

Per trial and reader: greedy output, RULER score (share of gold strings found), correct (all found), the
teacher-forced log-prob of the first gold answer, the hit rate (share of layer x head pairs whose chunks at the
last prompt token include a needle chunk; LongHeads methods only) and, for re-reads, whether a needle chunk was
re-read. Rates are reported with 95% Wilson score intervals.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

import torch

from .. import reread
from ..generate import SamplingParams, decode, decode_one, prefill
from ..longheads.layout import Selection
from ..longheads.patch import longheads_rope
from ..prefix import new_cache
from .haystack import KeptPrefill, Reused
from .methods import Method, activate, checked_configs
from .results import ResultsFile, config_id
from .tasks import Sample, make_samples, score


@dataclass(frozen=True)
class Reader:
    """A question-side variant: "<base>[+<decoding>...]". base: "direct" or "reread-<budget>[-nohub][-nbr][-rh][-tok][-pmi][-near][-qf][-peak]"
    (-rh: votes weighed by retrieval-head scores, `longdoc.retrieval_heads`; -tok: chunks ranked by the question's
    attention mass over their keys, `reread.attention_votes`; -pmi: that mass contrasted per head with neutral
    questions', `reread.contrast` (with -qf the default of `longdoc ask`); -near: the chosen chunks best-last, next to the
    question; -qf: the question read first too, right after chunk 0; -peak: each chunk read where the question's
    attention peaks, up to half a chunk into a neighbour). decoding (longdoc/repetition.py):
    +norep (no stop at a repeated sentence), +rp<x> (repetition penalty x), +nr<n> (no repeated n-grams)."""

    name: str

    @property
    def base(self) -> str:
        return self.name.split("+")[0]

    @property
    def mods(self) -> list[str]:
        return self.name.split("+")[1:]

    @property
    def budget(self) -> int | None:
        return int(self.base.split("-")[1]) if self.base.startswith("reread-") else None

    @property
    def hub_correction(self) -> bool:
        return "-nohub" not in self.base

    @property
    def neighbours(self) -> bool:
        return "-nbr" in self.base

    @property
    def retrieval_heads(self) -> bool:
        return "-rh" in self.base

    @property
    def attention(self) -> bool:
        """-tok: rank chunks by the question's token-level attention mass (`reread.attention_votes`)."""
        return "-tok" in self.base

    @property
    def contrast(self) -> bool:
        """-pmi: that mass per head over what neutral questions draw (`reread.contrast`; with -qf the default of `ask`)."""
        return "-pmi" in self.base

    @property
    def question_first(self) -> bool:
        """-qf: the question also read before the chosen chunks (`reread.plan(lead=...)`)."""
        return "-qf" in self.base

    @property
    def peak(self) -> bool:
        """-peak: each chosen chunk read as the l-token window where the question's attention peaks, up to half a
        chunk into a neighbour (`reread.place_spans`; -tok / -pmi readers only, which have token scores)."""
        return "-peak" in self.base

    @property
    def order(self) -> str:
        """-near: the chosen chunks best-last, next to the question (`reread.plan(order="score")`)."""
        return "score" if "-near" in self.base else "text"

    @property
    def scores(self) -> str:
        """The `Engine.reread_stream` scores of this reader."""
        return "contrast" if self.contrast else "attention" if self.attention else "votes"

    def params(self, max_new_tokens: int) -> SamplingParams:
        """The decoding of this reader's answer (greedy)."""
        kw: dict = {"stop_on_repeat": "norep" not in self.mods}
        for m in self.mods:
            if m.startswith("rp"):
                kw["repetition_penalty"] = float(m[2:])
            elif m.startswith("nr"):
                kw["no_repeat_ngram"] = int(m[2:])
        return SamplingParams(max_new_tokens=max_new_tokens, **kw)


_MOD = re.compile(r"^(norep|rp\d+(\.\d+)?|nr\d+)$")


def parse_readers(spec: str) -> list[Reader]:
    out = []
    for name in [s.strip() for s in spec.split(",") if s.strip()]:
        r = Reader(name)
        ok_base = r.base == "direct" or (r.base.startswith("reread-") and r.base.split("-")[1].isdigit())
        if not ok_base or not all(_MOD.match(m) for m in r.mods):
            raise ValueError(f"unknown reader {name!r}: use direct or reread-<tokens>[-nohub][-nbr][-rh][-tok][-pmi][-near][-qf][-peak], e.g. "
                             "reread-2048, optionally with +norep, +rp<penalty>, +nr<n> (e.g. direct+rp1.2)")
        out.append(r)
    return out or [Reader("direct")]


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a rate k/n (Wilson 1927); (0, 1) for n = 0."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class Prompt:
    ids: torch.Tensor  # (1, N)
    question_start: int  # token index of the question's first token
    needle_tokens: list[tuple[int, int]]  # token ranges [a, b) of the needles


def build_prompt(tokenizer, sample: Sample) -> Prompt:
    """Frame a sample: raw completion (context + question + answer prefix), or the chat template with the
    context and question as the user turn and the answer prefix opening the assistant turn."""
    if sample.frame == "raw" or not getattr(tokenizer, "chat_template", None):
        head, text = "", sample.context + sample.question + sample.answer_prefix
    else:
        user = sample.context + "\n\n" + sample.question
        framed = tokenizer.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                               add_generation_prompt=True)
        at = framed.index(user)
        head, text = framed[:at], framed[at:] + sample.answer_prefix
    full = head + text
    ctx_start = len(head)
    enc = tokenizer(full, return_offsets_mapping=True, add_special_tokens=sample.frame == "raw")
    offsets = enc.offset_mapping
    q_char = ctx_start + len(sample.context)
    q_tok = next((i for i, (a, b) in enumerate(offsets) if b > q_char), len(offsets) - 1)

    def span(a: int, b: int) -> tuple[int, int]:
        idx = [i for i, (x, y) in enumerate(offsets) if y > ctx_start + a and x < ctx_start + b]
        return idx[0], idx[-1] + 1

    return Prompt(torch.tensor([enc.input_ids]), q_tok, [span(a, b) for a, b in sample.needles])


@torch.inference_mode()
def _answer(model, tokenizer, cache, logits, sample: Sample, params: SamplingParams | None = None) -> dict:
    """Teacher-forced log-prob of the first gold answer, then the greedy answer (the generation loop of
    longdoc/generate.py), from the same state."""
    snapshot = cache.snapshot()
    gold = tokenizer(" " + sample.answers[0], add_special_tokens=False).input_ids
    logp = torch.log_softmax(logits.float(), dim=-1)[0, gold[0]].item()
    step = logits
    for a, b in zip(gold[:-1], gold[1:]):
        step = decode_one(model, cache, torch.tensor([[a]]))
        logp += torch.log_softmax(step.float(), dim=-1)[0, b].item()
    cache.restore(snapshot)
    params = params or SamplingParams(max_new_tokens=sample.max_new_tokens)
    text = "".join(decode(model, tokenizer, cache, logits, params)).strip()
    s = score(sample, text)
    return {"answer": text, "score": round(s, 4), "correct": s == 1.0, "gold_logprob": round(logp, 4)}


def hit_rate(selections: list[Selection], chunk_size: int, needle_tokens, last: int) -> float | None:
    """Share of layer x head pairs whose chunks at position `last` include a needle chunk."""
    if not needle_tokens:
        return None
    targets = {c for a, b in needle_tokens for c in range(a // chunk_size, (b - 1) // chunk_size + 1)}
    hits = total = 0
    for rec in selections:
        window = rec.window_at(last)  # (Hq, K): all slots
        if window is not None:
            for head in window.tolist():
                total += 1
                hits += bool(targets & set(head))
    return hits / total if total else None


def neutral_mass(model, tokenizer, sample: Sample, cfg, cache, length: int, question_start: int):
    """The mean `reread.attention_mass` of the sample's context asked each of `reread.NEUTRAL_QUESTIONS` (in the
    sample's frame, no answer prefix), from `cache` holding the prompt's first `length` tokens (whole chunks
    before the question); the cache is rolled back to them. None when no neutral prompt shares that prefix."""
    from dataclasses import replace

    masses = []
    snap = cache.snapshot()
    rope = longheads_rope(model)
    for q in reread.NEUTRAL_QUESTIONS:
        n = build_prompt(tokenizer, replace(sample, question="\n\n" + q + "\n" if sample.frame == "raw" else q,
                                            answer_prefix=""))
        if n.question_start != question_start:
            continue  # the boundary tokenised otherwise: this neutral prompt does not share the document's tokens
        prefill(model, cache, n.ids[:, length:], exact_from=question_start)
        m = reread.attention_mass(cache, rope, cfg, question_start)
        cache.restore(snap)
        if m is not None:
            masses.append(m)
    return torch.stack(masses).mean(dim=0) if masses else None


@dataclass
class Prefilled:
    """A prompt prefilled with the active method: `logits` (1, V) at its last token, `selections` the heads'
    chunk selections over the document (LongHeads methods; [] otherwise), `neutral` the neutral questions' mean
    attention mass (Hq, C-1) for -pmi readers (None when no reader contrasts or the document has < 2 chunks) and
    `reused` the tokens taken from the cell's kept prefill."""

    prompt: Prompt
    cache: object
    logits: torch.Tensor
    selections: list
    neutral: torch.Tensor | None
    reused: int


@torch.inference_mode()
def prefill_sample(model, tokenizer, sample: Sample, cfg, readers: list[Reader],
                   kept: KeptPrefill | None = None) -> Prefilled:
    """Prefill `sample` with the active method (cfg: its LongHeadsConfig, None for plain attention), recording
    the heads' selections, and the neutral prompts' attention mass where a reader contrasts with it. kept: the
    cell's kept prefill (`longdoc.eval.haystack`): the shared haystack prefix is reused from it."""
    p = build_prompt(tokenizer, sample)
    lh = cfg is not None
    ids = p.ids[0].tolist()
    start = kept.start(model, ids, p.question_start) if kept is not None else Reused(new_cache(model), 0)
    cache, reused = start.cache, start.tokens
    selections: list[Selection] = cache.document_selections(before=reused) if reused and lh else []
    record = selections if lh and cfg.selection == "longheads" else None
    neutral = None
    if lh and any(r.contrast for r in readers) and p.question_start // cfg.chunk_size >= 2:
        # the document's whole chunks (a grouping-free config may have reused a little past them)
        cut = max(reused, p.question_start // cfg.chunk_size * cfg.chunk_size)
        if cut > reused:
            prefill(model, cache, p.ids[:, reused:cut], exact_from=p.question_start, record=record)
        neutral = neutral_mass(model, tokenizer, sample, cfg, cache, cut, p.question_start)
        logits = prefill(model, cache, p.ids[:, cut:], exact_from=p.question_start, record=record)
    else:
        logits = prefill(model, cache, p.ids[:, reused:], exact_from=p.question_start if lh else None, record=record)
    return Prefilled(p, cache, logits, selections, neutral, reused)


def question_lead(tokenizer, question: str) -> torch.Tensor:
    """(1, m) the tokens a -qf re-read reads right after chunk 0: the question, then a blank line."""
    return torch.tensor([tokenizer(question.strip() + "\n\n", add_special_tokens=False).input_ids])


def reader_plan(model, state: Prefilled, cfg, reader: Reader, head_weights=None, lead=None) -> reread.RereadPlan | None:
    """The chunks `reader` (a re-read) reads densely after `state`'s prefill (`reread.plan`); None without
    selections. The cache must hold the prompt (the -tok / -pmi scores read the question's queries from it).
    lead: (1, m) `question_lead` tokens, read first by a -qf reader."""
    if not state.selections:
        return None
    p = state.prompt
    votes = tokens = None
    if reader.attention or reader.contrast:
        att = reread.attention_scores(state.cache, longheads_rope(model), cfg, p.question_start,
                                      neutral=state.neutral if reader.contrast else None)
        if att is not None:
            votes, tokens = att.chunks, att.tokens if reader.peak else None
    return reread.plan(p.ids, state.selections, cfg, p.question_start, reader.budget,
                       hub_correction=reader.hub_correction, neighbours=reader.neighbours,
                       head_weights=head_weights if reader.retrieval_heads else None, votes=votes,
                       order=reader.order, lead=lead if reader.question_first else None, token_scores=tokens)


def reread_hit(plan: reread.RereadPlan, chunk_size: int, prompt: Prompt) -> bool | None:
    """Whether the dense prompt read some needle whole: its tokens inside chunk 0, the plan's spans or the tail
    (a needle cut by a chunk boundary and read half counts as missed). None for a sample without needles."""
    if not prompt.needle_tokens:
        return None
    tail_from = prompt.question_start // chunk_size * chunk_size
    read: set[int] = set()
    for lo, hi in [(0, chunk_size), *plan.spans, (tail_from, prompt.ids.shape[1])]:
        read.update(range(lo, hi))
    return any(read.issuperset(range(a, b)) for a, b in prompt.needle_tokens)


@torch.inference_mode()
def run_trial(model, tokenizer, sample: Sample, cfg, readers: list[Reader], head_weights=None,
              kept: KeptPrefill | None = None) -> dict[str, dict]:
    """One prefill of the sample with the active method, then every reader, each from the same prefilled state.
    Returns {reader name: fields}. head_weights: (n_layers, Hq) retrieval scores for the -rh readers.
    kept: the cell's kept prefill (`longdoc.eval.haystack`): the prompt's shared haystack prefix is reused from
    it and this prefill is offered back; None = prefill the whole prompt."""
    state = prefill_sample(model, tokenizer, sample, cfg, readers, kept)
    p, cache, logits, selections = state.prompt, state.cache, state.logits, state.selections
    N = p.ids.shape[1]
    hit = hit_rate(selections, cfg.chunk_size, p.needle_tokens, N - 1) if selections else None
    base = {"tokens": N, "reused_tokens": state.reused, "hit_rate": None if hit is None else round(hit, 4)}
    snap = cache.snapshot()  # every reader starts from the prompt, not from another reader's answer
    out = {}
    for r in readers:
        cache.restore(snap)
        if r.budget is None:
            out[r.name] = {**base, **_answer(model, tokenizer, cache, logits, sample, r.params(sample.max_new_tokens))}
            continue
        plan = reader_plan(model, state, cfg, r, head_weights, question_lead(tokenizer, sample.question))
        if plan is None:
            continue  # a re-read needs the heads' selections
        activate(model, None)  # the dense pass: plain attention, every position inside the trained length
        try:
            dense = new_cache(model)
            d_logits = prefill(model, dense, plan.ids)
            res = _answer(model, tokenizer, dense, d_logits, sample, r.params(sample.max_new_tokens))
        finally:
            activate(model, cfg)
        out[r.name] = {**base, **res, "reread_tokens": plan.ids.shape[1], "reread_chunks": plan.chunks,
                       "reread_spans": plan.spans, "reread_hit": reread_hit(plan, cfg.chunk_size, p)}
    cache.restore(snap)
    if kept is not None:
        kept.offer(p.ids[0].tolist(), cache, p.question_start, min((a for a, _ in p.needle_tokens), default=p.question_start))
    return out


def run_suite(lm, tasks: list[str], methods: list[Method], readers: list[Reader], lengths: list[int], trials: int,
              results: ResultsFile, *, prose: str, seed: int = 0, common: dict | None = None,
              max_full_length: int | None = None, on_trial=None, reuse_haystack: bool = True) -> list[dict]:
    """Every task x length x method x trial, one prefill each, all readers branched from it; saved per trial.
    reuse_haystack: trials of a cell reuse the haystack prefix they share (`longdoc.eval.haystack`), except under
    a RoPE scaling (dynamic NTK depends on each forward call's length); False = prefill every prompt whole."""
    model, tok = lm.model, lm.tokenizer
    configs = checked_configs(methods, model.config, common)
    for length in lengths:
        for task in tasks:
            samples = make_samples(task, tok, prose, length, trials, seed)
            for m in methods:
                if m.is_full and max_full_length and length > max_full_length:
                    continue
                cfg = configs[m.label]
                rs = [r for r in readers if r.budget is None or m.selects]
                rope = m.rope(length, model.config)
                activate(model, cfg, rope)
                kept = KeptPrefill(cfg, enabled=reuse_haystack and rope is None
                                   and (cfg is None or cfg.prefill_selection != "token"))
                weights = None
                if m.selects and any(r.retrieval_heads for r in rs):
                    from ..retrieval_heads import load_or_calibrate

                    weights = load_or_calibrate(model, tok, lm.name, cfg)
                for i, sample in enumerate(samples):
                    keys = {r.name: dict(task=task, method=m.label, reader=r.name, config_id=config_id(cfg),
                                         length=length, trial=i, seed=seed) for r in rs}
                    todo = [r for r in rs if results.done(**keys[r.name]) is None]
                    if not todo:
                        continue
                    t0 = time.perf_counter()
                    measured = run_trial(model, tok, sample, cfg, todo, weights, kept)
                    secs = round(time.perf_counter() - t0, 2)
                    for name, fields in measured.items():
                        trial = {**keys[name], **fields, "depth_of_needle": sample.depth, "seconds": secs}
                        results.add_trial(trial)
                        if on_trial:
                            on_trial(trial)
                    results.set_results(aggregate(results.trials))
    activate(model, None)
    records = aggregate(results.trials)
    results.set_results(records)
    return records


def aggregate(trials: list[dict]) -> list[dict]:
    """One record per task x method x reader x length: n, correct, accuracy with its Wilson interval, mean score,
    mean gold log-prob, mean hit rate."""
    cells: dict[tuple, list[dict]] = {}
    for t in trials:
        if "task" in t:
            cells.setdefault((t["task"], t["method"], t["reader"], t["length"]), []).append(t)
    out = []
    for (task, method, reader, length), ts in cells.items():
        n, k = len(ts), sum(bool(t["correct"]) for t in ts)
        lo, hi = wilson(k, n)
        hits = [t["hit_rate"] for t in ts if t.get("hit_rate") is not None]
        rr = [t["reread_hit"] for t in ts if t.get("reread_hit") is not None]
        out.append({"task": task, "method": method, "reader": reader, "length": length, "trials": n, "correct": k,
                    "accuracy": round(k / n, 4), "ci95": [round(lo, 4), round(hi, 4)],
                    "score": round(sum(t["score"] for t in ts) / n, 4),
                    "gold_logprob": round(sum(t["gold_logprob"] for t in ts) / n, 4),
                    "hit_rate": round(sum(hits) / len(hits), 4) if hits else None,
                    "reread_hit": round(sum(rr) / len(rr), 4) if rr else None})
    out.sort(key=lambda r: (r["length"], r["task"], r["method"], r["reader"]))
    return out


def format_table(records: list[dict]) -> str:
    """Markdown table of aggregate() records."""
    lines = ["| length | task | method | reader | correct | accuracy [95% CI] | score | gold log-prob | hit rate | re-read hit |",
             "|---:|---|---|---|---:|---|---:|---:|---:|---:|"]
    for r in sorted(records, key=lambda r: (r["length"], r["task"], r["method"], r["reader"])):
        f = lambda x: "–" if x is None else f"{x:.2f}"  # noqa: E731
        lines.append(f"| {r['length']} | {r['task']} | `{r['method']}` | {r['reader']} | {r['correct']}/{r['trials']} | "
                     f"{r['accuracy']:.2f} [{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}] | {r['score']:.2f} | "
                     f"{r['gold_logprob']:.2f} | {f(r['hit_rate'])} | {f(r['reread_hit'])} |")
    return "\n".join(lines)

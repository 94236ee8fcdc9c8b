"""Run retrieval prompts (passkey, needle) through several attention methods on one loaded model, and turn the
single trials into the result records of a table: accuracy, mean teacher-forced key log-prob, mean hit rate.

Every method sees exactly the same prompts. The loop runs length by length (all methods at 4k before any at
8k), so an interrupted long run already holds a side-by-side comparison at the lengths it finished.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from .methods import Method, activate, checked_configs
from .results import ResultsFile, config_id


@dataclass
class Cell:
    """The prompts of one grid cell: a length (and, for the needle grid, a depth)."""

    length: int
    depth: float | None
    prompts: list = field(default_factory=list)  # PasskeyPrompt (or subclasses), one per trial


def run_cells(lm, methods: list[Method], cells: list[Cell], results: ResultsFile, *, seed: int,
              common: dict | None = None, max_full_length: int | None = None, max_new_tokens: int = 8,
              on_trial: Callable[[dict], None] | None = None) -> list[dict]:
    """Run every prompt of every cell with every method; save after each trial; return the records."""
    model, tok = lm.model, lm.tokenizer
    configs = checked_configs(methods, model.config, common)
    skipped: dict[tuple, str] = {}

    def table(trials):
        return aggregate(trials, methods, cells, skipped)

    for cell in cells:
        for m in methods:
            cfg = configs[m.label]
            if m.is_full and max_full_length and cell.length > max_full_length:
                skipped[(m.label, cell.length, cell.depth)] = f"length > --max-full-length {max_full_length}"
                results.set_results(table(results.trials))
                continue
            activate(model, cfg)
            for i, prompt in enumerate(cell.prompts):
                key = dict(method=m.label, config_id=config_id(cfg), length=cell.length, depth=cell.depth,
                           trial=i, seed=seed)
                results.measure(key, lambda: _retrieval_trial(model, tok, prompt, m.selects, max_new_tokens),
                                table, on_trial)
    activate(model, None)
    records = table(results.trials)
    results.set_results(records)
    return records


def _retrieval_trial(model, tok, prompt, selects: bool, max_new_tokens: int) -> dict:
    """One prompt through the active method: the measured fields of a trial record."""
    from .passkey import run_trial

    out = run_trial(model, tok, prompt, max_new_tokens=max_new_tokens)
    trial = {"tokens": out["length"], "needle_depth": round(prompt.depth, 4), "key": prompt.key,
             "answer": out["answer"], "correct": bool(out["correct"]), "key_logprob": round(out["key_logprob"], 4),
             "hit_rate": round(out["hit_rate"], 4) if (selects and out["hit_rate"] is not None) else None}
    distractor = getattr(prompt, "distractor", None)
    if distractor:
        trial["distractor"] = distractor
        trial["distracted"] = distractor in out["answer"]
    return trial


def aggregate(trials: list[dict], methods: list[Method], cells: list[Cell], skipped: dict | None = None) -> list[dict]:
    """One record per method x cell (in the order of the lengths, then the methods): trials, correct, means."""
    skipped = skipped or {}
    by_cell: dict[tuple, list[dict]] = {}
    for t in trials:
        by_cell.setdefault((t["method"], t["length"], t.get("depth")), []).append(t)
    records = []
    for cell in cells:
        for m in methods:
            k = (m.label, cell.length, cell.depth)
            rec = {"method": m.label, "length": cell.length}
            if cell.depth is not None:
                rec["depth"] = cell.depth
            if k in skipped:
                records.append({**rec, "trials": 0, "correct": None, "accuracy": None, "key_logprob": None,
                                "hit_rate": None, "skipped": skipped[k]})
                continue
            ts = sorted(by_cell.get(k, []), key=lambda t: t["trial"])[: len(cell.prompts)]
            if not ts:
                continue
            hits = [t["hit_rate"] for t in ts if t.get("hit_rate") is not None]
            rec.update(trials=len(ts), correct=sum(t["correct"] for t in ts),
                       accuracy=round(sum(t["correct"] for t in ts) / len(ts), 4),
                       key_logprob=round(_mean([t["key_logprob"] for t in ts]), 4),
                       hit_rate=round(_mean(hits), 4) if (m.selects and hits) else None,
                       tokens=round(_mean([t["tokens"] for t in ts])))
            if any("distracted" in t for t in ts):
                rec["distracted"] = sum(bool(t.get("distracted")) for t in ts)
            records.append(rec)
    return records


def _mean(xs: list[float]) -> float:
    return math.fsum(xs) / len(xs) if xs else float("nan")


def passkey_cells(tokenizer, lengths: list[int], trials: int, seed: int) -> list[Cell]:
    """The passkey prompts: `trials` random depths and keys per length, from a fixed seed."""
    from .passkey import make_trials

    return [Cell(n, None, make_trials(tokenizer, n, trials, seed)) for n in lengths]

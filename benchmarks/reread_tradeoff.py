"""The re-read's trade-off on a real PDF: budget (tokens of the dense pass) vs answers, cited pages and cost.

Reads a `longdoc eval pdfqa` result file holding reread-<budget>[-tok|-pmi] readers (and optionally rag),
prints the table, writes a plot. The cost column is the dense pass's mean length in tokens (its prefill is
quadratic in it, and the answer then decodes over it); seconds per answer are printed too, but the runs behind
docs/eval/pdfqa-freefem.json shared the machine, so they are not comparable across readers.

    python benchmarks/reread_tradeoff.py docs/eval/pdfqa-freefem.json --png docs/eval/reread-budget.png
"""

from __future__ import annotations

import argparse
import json
import re


def rows(data: dict) -> list[dict]:
    trials: dict[str, list[dict]] = {}
    for t in data["trials"]:
        trials.setdefault(t["reader"], []).append(t)
    out = []
    for r in data["results"]:
        ts = trials.get(r["reader"], [])
        m = re.match(r"reread-(\d+)", r["reader"])
        dense = [t["reread_tokens"] for t in ts if t.get("reread_tokens")]
        out.append({**r, "budget": int(m.group(1)) if m else None,
                    "dense_tokens": round(sum(dense) / len(dense)) if dense else None,
                    "seconds": round(sum(t["seconds"] for t in ts) / len(ts), 1) if ts else None})
    return sorted(out, key=lambda r: (r["budget"] is None, r["budget"] or 0, r["reader"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results")
    ap.add_argument("--png", default=None)
    args = ap.parse_args()
    data = json.load(open(args.results))
    table = rows(data)
    print("| method | reader | budget | answer correct [95% CI] | gold page cited [95% CI] | dense tokens (mean) | s/answer (shared machine) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in table:
        f = lambda k: f"{r[k]}/{r['trials']} · {r[k + '_rate']:.2f} [{r[k + '_ci95'][0]:.2f}, {r[k + '_ci95'][1]:.2f}]"  # noqa: E731
        print(f"| `{r['method']}` | {r['reader']} | {r['budget'] or '–'} | {f('correct')} | {f('page_hit')} | "
              f"{r['dense_tokens'] or '–'} | {r['seconds']} |")
    if args.png:
        from longdoc.eval.plots import reread_budget_plot

        print(reread_budget_plot(data["results"], args.png, f"re-read budget on {data['results'][0]['questions']}"))


if __name__ == "__main__":
    main()

"""Scaling curve: prefill time and decode time per token against prompt length, per method, with fitted terms.

    python benchmarks/scaling.py docs/eval/bench-2k.json docs/eval/bench.json docs/eval/bench-32k-llamacpp.json \
        --json docs/eval/scaling.json --png docs/eval/scaling.png

Reads `longdoc bench` result files (later files win for the same method and length), fits prefill(n) = a*n + b*n^2
(seconds; least squares through the origin; b = 0 where the fit makes it negative) and decode(n) = c + d*n
(ms/token; d = 0 likewise) per method, prints the terms and
the fitted time at 128k, and draws both curves on log axes with the fits. Rows marked not comparable in the README
(a 1-thread run on a shared machine) are left out with `--skip-over`.
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def load(paths: list[str], skip_over: int | None) -> dict[str, dict[int, dict]]:
    by_method: dict[str, dict[int, dict]] = {}
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        for t in data.get("trials", []):
            if "prefill_s" not in t or (skip_over and t["length"] > skip_over):
                continue
            by_method.setdefault(t["method"], {})[t["length"]] = {**t, "source": path}
    return by_method


def fit(ns: np.ndarray, ys: np.ndarray, columns) -> list[float]:
    A = np.stack([c(ns) for c in columns], axis=1)
    coef, *_ = np.linalg.lstsq(A, ys, rcond=None)
    return [float(c) for c in coef]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--skip-over", type=int, default=65536, help="leave out lengths above this (0: keep all)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--png", default=None)
    args = ap.parse_args()
    data = load(args.files, args.skip_over or None)
    out = {}
    print(f"{'method':10} {'lengths':>22} {'prefill a (s/token)':>20} {'b (s/token^2)':>14} {'decode c ms':>12} "
          f"{'d ms/1k tokens':>15} {'fit 128k prefill s':>19} {'decode ms':>10}")
    for method, rows in sorted(data.items()):
        ns = np.array(sorted(rows), dtype=float)
        pre = np.array([rows[int(n)]["prefill_s"] for n in ns])
        dec = np.array([rows[int(n)]["decode_s_per_token"] * 1000 for n in ns])
        if len(ns) >= 2:
            a, b = fit(ns, pre, [lambda n: n, lambda n: n**2])
            if b < 0:  # no quadratic term measurable (noise made it negative): the linear fit alone
                a, b = fit(ns, pre, [lambda n: n])[0], 0.0
            c, d = fit(ns, dec, [np.ones_like, lambda n: n])
            if d < 0:
                c, d = float(dec.mean()), 0.0
        else:
            a, b, c, d = float(pre[0] / ns[0]), 0.0, float(dec[0]), 0.0
        n128 = 131072
        out[method] = {"lengths": [int(n) for n in ns], "prefill_s": pre.tolist(), "decode_ms": dec.tolist(),
                       "prefill_a": a, "prefill_b": b, "decode_c": c, "decode_d": d,
                       "fit_128k_prefill_s": a * n128 + b * n128**2, "fit_128k_decode_ms": c + d * n128,
                       "sources": sorted({rows[int(n)]["source"] for n in ns})}
        print(f"{method:10} {','.join(str(int(n) // 1024) + 'k' for n in ns):>22} {a:>20.3e} {b:>14.3e} {c:>12.1f} "
              f"{d * 1000:>15.2f} {out[method]['fit_128k_prefill_s']:>19.0f} {out[method]['fit_128k_decode_ms']:>10.0f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"task": "scaling", "files": args.files, "methods": out}, f, indent=1)
    if args.png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
        grid = np.geomspace(2048, 131072, 50)
        for method, r in out.items():
            line = ax1.plot(r["lengths"], r["prefill_s"], "o", label=method)[0]
            ax1.plot(grid, r["prefill_a"] * grid + r["prefill_b"] * grid**2, "--", color=line.get_color(), lw=1)
            ax2.plot(r["lengths"], r["decode_ms"], "o", color=line.get_color(), label=method)
            ax2.plot(grid, r["decode_c"] + r["decode_d"] * grid, "--", color=line.get_color(), lw=1)
        for ax, title, unit in ((ax1, "prefill", "seconds"), (ax2, "decode", "ms per token")):
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("prompt tokens")
            ax.set_ylabel(unit)
            ax.set_title(f"{title}: measured (dots) and fitted (dashed) to 128k")
            ax.grid(alpha=0.3)
        ax1.legend()
        fig.tight_layout()
        fig.savefig(args.png, dpi=110)
        print(f"plot: {args.png}")


if __name__ == "__main__":
    main()

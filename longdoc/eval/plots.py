"""PNG figures of evaluation records (matplotlib, headless Agg backend; imported only when a --png is asked for)."""

from __future__ import annotations

import math
from pathlib import Path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _by_method(records: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in records:
        out.setdefault(r["method"], []).append(r)
    return out


def _colors(records: list[dict]) -> dict[str, str]:
    """One color per method, the same in every panel."""
    return {m: f"C{i % 10}" for i, m in enumerate(_by_method(records))}


def _length_axis(ax, lengths):
    ax.set_xscale("log", base=2)
    ax.set_xticks(lengths)
    ax.set_xticklabels([f"{n // 1024}k" if n >= 1024 else str(n) for n in lengths])
    ax.set_xlabel("prompt length (tokens)")


def retrieval_plot(records: list[dict], path: str | Path, title: str) -> Path:
    """Passkey: accuracy, mean key log-prob and mean hit rate against length, one line per method."""
    plt = _plt()
    lengths = sorted({r["length"] for r in records})
    panels = [("accuracy", "accuracy (greedy)"), ("key_logprob", "key log-prob (teacher forced)"),
              ("hit_rate", "hit rate (heads selecting the key's chunk)")]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4))
    fig.subplots_adjust(wspace=0.3)
    colors = _colors(records)
    for ax, (field, label) in zip(axes, panels):
        for method, rs in _by_method(records).items():
            pts = [(r["length"], r[field]) for r in rs if r.get(field) is not None]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=method, color=colors[method])
        _length_axis(ax, lengths)
        ax.set_ylabel(label)
        if field != "key_logprob":
            ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(title)
    return _save(fig, path)


def needle_heatmaps(records: list[dict], path: str | Path, field: str, title: str) -> Path | None:
    """Depth x length heatmap of `field` (accuracy or hit_rate), one panel per method that has it."""
    plt = _plt()
    methods = [m for m, rs in _by_method(records).items() if any(r.get(field) is not None for r in rs)]
    if not methods:
        return None
    lengths = sorted({r["length"] for r in records})
    depths = sorted({r["depth"] for r in records})
    fig, axes = plt.subplots(1, len(methods), figsize=(1.2 + 0.7 * len(lengths) * len(methods) + 1.5 * len(methods), 4.5),
                             squeeze=False, sharey=True)
    for i_ax, (ax, method) in enumerate(zip(axes[0], methods)):
        grid = [[math.nan] * len(lengths) for _ in depths]
        for r in records:
            if r["method"] == method and r.get(field) is not None:
                grid[depths.index(r["depth"])][lengths.index(r["length"])] = r[field]
        im = ax.imshow(grid, vmin=0, vmax=1, cmap="RdYlGn", aspect="auto", origin="upper")
        ax.set_xticks(range(len(lengths)), [f"{n // 1024}k" if n >= 1024 else str(n) for n in lengths])
        ax.set_yticks(range(len(depths)), [f"{d:.0%}" for d in depths])
        ax.tick_params(labelleft=i_ax == 0)
        ax.set_xlabel("prompt length")
        ax.set_title(method)
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                if not math.isnan(v):
                    ax.text(j, i, f"{v:.0%}" if field == "accuracy" else f"{v:.2f}", ha="center", va="center", fontsize=7)
    axes[0][0].set_ylabel("needle depth")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8)
    fig.suptitle(title)
    return _save(fig, path)


def ppl_plot(records: list[dict], path: str | Path, title: str) -> Path:
    plt = _plt()
    lengths = sorted({r["length"] for r in records})
    fig, ax = plt.subplots(figsize=(6, 4))
    colors = _colors(records)
    for method, rs in _by_method(records).items():
        pts = [(r["length"], r["ppl"]) for r in rs if r.get("ppl") is not None]
        if pts:
            ax.plot(*zip(*pts), marker="o", label=method, color=colors[method])
    _length_axis(ax, lengths)
    ax.set_yscale("log")
    ax.set_ylabel("perplexity of the same tail tokens")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.suptitle(title)
    return _save(fig, path)


def bench_plot(records: list[dict], path: str | Path, title: str) -> Path:
    """Prefill seconds, decode ms/token and peak memory against length, log-log, one line per method."""
    plt = _plt()
    lengths = sorted({r["length"] for r in records})
    panels = [("prefill_s", "prefill (s)", 1), ("decode_s_per_token", "decode (ms/token)", 1000),
              ("peak_mem_mb", "peak memory (MiB)", 1)]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4))
    fig.subplots_adjust(wspace=0.3)
    colors = _colors(records)
    for ax, (field, label, scale) in zip(axes, panels):
        for method, rs in _by_method(records).items():
            pts = [(r["length"], r[field] * scale) for r in rs if r.get(field) is not None]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=method, color=colors[method])
        _length_axis(ax, lengths)
        ax.set_yscale("log")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
    axes[0].legend()
    fig.suptitle(title)
    return _save(fig, path)


def _save(fig, path) -> Path:
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def pdfqa_plot(records: list[dict], path: str | Path, title: str) -> Path:
    """PDF questions: answer accuracy and gold-page citation rate per method x reader, 95% Wilson intervals."""
    plt = _plt()
    labels = [f"{r['method']}\n{r['reader']}" for r in records]
    fig, axes = plt.subplots(1, 2, figsize=(max(6, 1.6 * len(records) + 2) * 1.6, 4), sharey=True)
    for ax, (field, name) in zip(axes, [("correct", "answer correct"), ("page_hit", "gold page cited")]):
        rates = [r[f"{field}_rate"] for r in records]
        lo = [rate - r[f"{field}_ci95"][0] for rate, r in zip(rates, records)]
        hi = [r[f"{field}_ci95"][1] - rate for rate, r in zip(rates, records)]
        ax.bar(range(len(records)), rates, yerr=[lo, hi], capsize=4, color=[f"C{i % 10}" for i in range(len(records))])
        ax.set_xticks(range(len(records)), labels, fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{name} (95% CI)")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    return _save(fig, path)


def reread_budget_plot(records: list[dict], path: str | Path, title: str) -> Path:
    """The re-read's trade-off: answer accuracy and gold-page citation rate (95% Wilson intervals) against the
    re-read budget (tokens of the dense pass), one line per chunk scoring; records without a budget (vector RAG,
    LongHeads alone) as dashed horizontal lines. records: pdfqa aggregate() records."""
    import re

    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    lines: dict[str, list[tuple[int, dict]]] = {}
    flat = []
    for r in records:
        m = re.match(r"reread-(\d+)(.*)$", r["reader"])
        if m and r["method"] != "rag":
            lines.setdefault(m.group(2).lstrip("-") or "votes", []).append((int(m.group(1)), r))
        else:
            flat.append(r)
    for ax, (field, name) in zip(axes, [("correct", "answer correct"), ("page_hit", "gold page cited")]):
        for i, (label, pts) in enumerate(sorted(lines.items())):
            pts.sort(key=lambda p: p[0])
            xs = [b for b, _ in pts]
            ys = [r[f"{field}_rate"] for _, r in pts]
            err = [[y - r[f"{field}_ci95"][0] for y, (_, r) in zip(ys, pts)],
                   [r[f"{field}_ci95"][1] - y for y, (_, r) in zip(ys, pts)]]
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=label, color=f"C{i % 10}")
        for j, r in enumerate(flat):
            ax.axhline(r[f"{field}_rate"], ls="--", color=f"C{(len(lines) + j) % 10}",
                       label=f"{r['method']} {r['reader']}")
        ax.set_xlabel("re-read budget (tokens of the dense pass)")
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{name} (95% CI)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)

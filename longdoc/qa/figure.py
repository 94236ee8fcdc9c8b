"""The paper's Figure 5 for one answer: which chunks every head selected while generating it.

Left: a layers x heads grid; each cell shows the chunk that head selected most over the answer's decode steps
(its number), coloured by the page / file the chunk lies in. Right: a layers x chunks heatmap of how often each
chunk was selected (summed over heads and decode steps), with page / file boundaries drawn as lines and
labelled underneath. Mandatory chunks (first, previous, current) are left out, as in citations.py.
matplotlib runs on the Agg backend (no display needed); it is imported only when a figure is drawn.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from .citations import OTHER, chunk_counts, token_labels


def chunk_sources(labels: list[str], chunk_size: int) -> list[str]:
    """The label most of each chunk's tokens come from."""
    n = -(-len(labels) // chunk_size)
    return [Counter(labels[c * chunk_size : (c + 1) * chunk_size]).most_common(1)[0][0] for c in range(n)]


def selection_grids(selections, prompt_len: int, config, n_layers: int, n_heads: int, n_chunks: int):
    """(top chunk per layer x head, -1 where none) (L, H) and counts per layer x chunk (L, C)."""
    per_head = chunk_counts(selections, prompt_len, config, per_head=True)
    top = np.full((n_layers, n_heads), -1)
    counts = np.zeros((n_layers, n_chunks))
    for (layer, head), c in per_head.items():
        top[layer, head] = c.most_common(1)[0][0]
        for chunk, n in c.items():
            if chunk < n_chunks:
                counts[layer, chunk] += n
    return top, counts


def render(path, selections, document, prompt, config, n_layers: int, n_heads: int, title: str = "") -> None:
    """Draw the figure for the `selections` an answer recorded for `prompt` about `document` into `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    labels = token_labels(document, prompt)
    sources = chunk_sources(labels, config.chunk_size)
    top, counts = selection_grids(selections, len(prompt.ids), config, n_layers, n_heads, len(sources))
    order = list(dict.fromkeys(s for s in sources if s != OTHER)) + [OTHER]  # pages in document order
    colour_of = {s: i for i, s in enumerate(order)}
    palette = plt.get_cmap("tab20")(np.arange(20) % 20)
    cmap = ListedColormap([(0.93, 0.93, 0.93, 1)] + [palette[i % 20] for i in range(len(order) - 1)] + [(0.6, 0.6, 0.6, 1)])
    cell = np.where(top >= 0, np.vectorize(lambda c: colour_of[sources[c]] + 1 if c >= 0 else 0)(top), 0)

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(15, max(5, 0.22 * n_layers + 2)),
                                   gridspec_kw={"width_ratios": [max(3, n_heads), 12]})
    ax1.imshow(cell, cmap=cmap, vmin=0, vmax=len(order), aspect="auto", interpolation="nearest")
    if n_layers * n_heads <= 600:
        for (y, x), c in np.ndenumerate(top):
            if c >= 0:
                ax1.text(x, y, str(c), ha="center", va="center", fontsize=6)
    ax1.set_xlabel("head")
    ax1.set_ylabel("layer")
    ax1.set_xticks(range(n_heads))
    ax1.set_yticks(range(0, n_layers, max(1, n_layers // 15)))
    ax1.set_title("most-selected chunk per head\n(number: chunk; colour: its page / file)", fontsize=10)
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(colour_of[s] + 1)) for s in order]
    shown = [(h, s) for h, s in zip(handles, order) if (cell == colour_of[s] + 1).any()]
    if shown:
        ax1.legend([h for h, _ in shown], [_short(s) for _, s in shown], loc="upper left", fontsize=7,
                   bbox_to_anchor=(1.0, 1.0), frameon=False, borderaxespad=0.3)

    im = ax2.imshow(counts, cmap="magma_r", aspect="auto", interpolation="nearest")
    fig.colorbar(im, ax=ax2, fraction=0.03, pad=0.01, label="selections (heads x decode steps)")
    ax2.set_ylabel("layer")
    ax2.set_xlabel("chunk (%d tokens each); dashed lines: page / file boundaries" % config.chunk_size)
    starts = [c for c in range(len(sources)) if c == 0 or sources[c] != sources[c - 1]]
    for c in starts[1:]:
        ax2.axvline(c - 0.5, color="tab:blue", lw=0.8, ls="--")
    ax2.set_yticks(range(0, n_layers, max(1, n_layers // 15)))
    bounds = starts + [len(sources)]
    spans = [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if sources[a] != OTHER]
    step = max(1, len(spans) // 40)  # at most ~40 page labels
    top_axis = ax2.twiny()
    top_axis.set_xlim(ax2.get_xlim())
    top_axis.set_xticks([(a + b - 1) / 2 for a, b in spans[::step]])
    top_axis.set_xticklabels([_short(sources[a]) for a, _ in spans[::step]], rotation=90, fontsize=6, color="tab:blue")
    top_axis.tick_params(length=0)
    fig.suptitle(title + "\nright: how often each chunk was selected while answering", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def _short(label: str) -> str:
    """'/long/path/report.pdf p. 3' -> 'report.pdf p. 3'."""
    head, sep, tail = label.rpartition("/")
    return tail if sep else label

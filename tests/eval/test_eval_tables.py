"""One table model: the console and the Markdown renderings hold the same cells; needle pooling weighs the hit
rate by the trials that have one."""

from rich.console import Console

from longdoc.eval.tables import pool_over_depths, table, to_markdown, to_rich

NEEDLE = {"task": "needle", "model": "m", "config": {}, "results": [
    dict(method="longheads", length=4096, depth=0.0, trials=2, correct=2, key_logprob=-1.0, hit_rate=0.5),
    dict(method="longheads", length=4096, depth=0.5, trials=2, correct=1, key_logprob=-3.0, hit_rate=None),
    dict(method="longheads", length=4096, depth=1.0, trials=1, correct=0, key_logprob=-2.0, hit_rate=1.0),
    dict(method="full", length=4096, depth=0.0, trials=5, correct=4, key_logprob=-0.5, hit_rate=None),
    dict(method="full", length=8192, depth=0.0, trials=0, correct=None, key_logprob=None, hit_rate=None,
         skipped="length > --max-full-length 4096"),
]}


def test_needle_pooling_weighs_hit_rates_by_the_trials_that_have_one():
    pooled = {(r["method"], r["length"]): r for r in pool_over_depths(NEEDLE["results"])}
    lh = pooled[("longheads", 4096)]
    assert (lh["trials"], lh["correct"]) == (5, 3)
    assert lh["key_logprob"] == (-2.0 - 6.0 - 2.0) / 5
    assert lh["hit_rate"] == (0.5 * 2 + 1.0 * 1) / 3  # the depth without a hit rate does not dilute it
    assert pooled[("full", 4096)]["hit_rate"] is None and pooled[("full", 8192)]["skipped"]


def test_console_and_markdown_render_the_same_cells():
    t = table(NEEDLE)
    md = to_markdown(t)
    console = Console(width=200, record=True)
    console.print(to_rich(t))
    text = console.export_text()
    cells = [c for row in t.rows for c in row if c]
    assert "3/5 · -2.00 · 0.67" in cells and "skipped" in cells
    assert all(c in md for c in cells) and all(c in text for c in cells)
    assert md.splitlines()[2] == "| length | `longheads` | `full` |"

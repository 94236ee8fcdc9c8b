"""Helpers the CLI tests import: the store folder's entries, `ask --json`, report-like PDF pages."""

from __future__ import annotations

import json
from pathlib import Path


TINY = ["--chunk-size", "16", "--chunks", "4"]  # LongHeads options of the tiny test model


def entries(ingests: Path) -> list[Path]:
    """Complete-looking entries (folders with a manifest) and anything else left in the store folder."""
    return sorted(ingests.iterdir()) if ingests.exists() else []


def ask_json(cli_run, *args):
    result = cli_run("ask", *args, "--json", "--max-tokens", "6")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


FILLER = [
    "The morning train left the station a few minutes late.", "A light rain fell over the hills after lunch.",
    "The library on the corner extended its opening hours.", "Several students met to discuss the new timetable.",
    "The bakery sold out of bread before noon again.", "A committee reviewed the budget for the coming year.",
    "The river was calm, and a few boats drifted downstream.", "Workers repaired the old bridge over the summer.",
    "The museum opened a small exhibition about local history.", "Most of the shops closed early on the holiday.",
]


def report_pages(n_pages: int, fact_page: int, fact: str, lines_per_page: int = 30) -> list[str]:
    """`n_pages` pages of everyday sentences (one per line); page `fact_page` (1-based) also states `fact`."""
    pages = []
    for p in range(1, n_pages + 1):
        lines = [FILLER[(p * 7 + i * 3) % len(FILLER)] for i in range(lines_per_page)]
        if p == fact_page:
            lines.insert(lines_per_page // 2, fact)
        pages.append("\n".join(lines))
    return pages

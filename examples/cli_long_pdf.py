"""Write a long multi-page PDF for trying `longdoc ask` / `ingest` (and for docs/cli_numbers.md).

    python examples/cli_long_pdf.py long.pdf --pages 60

Every page holds ~40 lines of everyday sentences; page `--fact-page` also says where the 2031 archive is kept.
"""

from __future__ import annotations

import argparse
import random

from reportlab.lib.pagesizes import letter
from reportlab.pdfgen import canvas

SENTENCES = [
    "The morning train left the station a few minutes late.", "A light rain fell over the hills after lunch.",
    "The library on the corner extended its opening hours.", "Several students met to discuss the new timetable.",
    "The bakery sold out of bread before noon again.", "A committee reviewed the budget for the coming year.",
    "The river was calm, and a few boats drifted downstream.", "Workers repaired the old bridge over the summer.",
    "The museum opened a small exhibition about local history.", "Most of the shops closed early on the holiday.",
    "A neighbour planted tomatoes and beans in the garden.", "Children played football in the park until dark.",
]
FACT = "The 2031 archive is kept in the basement of the Halvorsen building."


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("--pages", type=int, default=60)
    ap.add_argument("--fact-page", type=int, default=None)
    args = ap.parse_args()
    fact_page = args.fact_page or (args.pages * 2) // 3
    rng = random.Random(0)
    c = canvas.Canvas(args.path, pagesize=letter, invariant=1)
    for page in range(1, args.pages + 1):
        lines = [rng.choice(SENTENCES) for _ in range(40)]
        if page == fact_page:
            lines[20] = FACT
        for i, line in enumerate(lines):
            c.drawString(60, 750 - 17 * i, line)
        c.showPage()
    c.save()
    print(f"wrote {args.path}: {args.pages} pages, the fact on page {fact_page}")


if __name__ == "__main__":
    main()

"""Document loaders: PDFs, Office files, web pages, e-books, notebooks, text in any detectable encoding,
standard input and folders into one prompt text.

`load(paths)` returns a `Document` whose `spans` map every character of `text` back to its source (file, PDF
page and page label, a converted file's section, or line), so an answer can cite "report.pdf p. 3",
"deck.pptx slide 2" or "src/a.py:120"; `skipped` says what was left out and why, `source_info` each file's
format and encoding. What is refused before reading: checks.py; which reader a file goes to: formats.py.
"""

from .document import Document, Span
from .loader import load

__all__ = ["Document", "Span", "load"]

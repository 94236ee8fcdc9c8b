"""Document loaders: PDFs, text files, standard input and code directories into one prompt text.

`load(paths)` returns a `Document` whose `spans` map every character of `text` back to its source
(file, PDF page and page label, or line), so an answer can cite "report.pdf p. 3" or "src/a.py:120".
"""

from .document import Document, Span
from .loader import load

__all__ = ["Document", "Span", "load"]

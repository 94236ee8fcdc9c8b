"""Clean-ups of text extracted from PDF pages that are safe to make: ligatures and end-of-line hyphenation.

Ligatures: PDF fonts often draw "fi", "fl", "ffi" as one glyph, which extraction returns as U+FB01 and
friends: the word "ﬁnal" then tokenizes unlike "final" and a question about it misses. Only the Alphabetic
Presentation Forms ligatures (U+FB00-FB06, U+FB13-FB17) are replaced by their NFKC forms; full NFKC is not
applied because it changes meaning elsewhere (x² -> x2, ½ -> 1⁄2, ① -> 1). Soft hyphens (U+00AD, invisible
hyphenation points) are removed, and the text is put in NFC.

Hyphenation: a word split across lines ("inter-\\nnational") is rejoined only when the document itself supports
it: "international" occurs elsewhere in the same document and "inter-national" does not. When the hyphenated
form occurs elsewhere ("well-\\nknown", "well-known"), the hyphen is kept and the line break dropped; with no
evidence either way the text is left as it is.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

_LIGATURES = {c: unicodedata.normalize("NFKC", chr(c)) for c in (*range(0xFB00, 0xFB07), *range(0xFB13, 0xFB18))}
_LIGATURES[0x00AD] = ""  # soft hyphen
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")
_BROKEN = re.compile(r"([^\W\d_]+)-[ \t]*\n[ \t]*([^\W\d_]+)")


def normalize_glyphs(text: str) -> str:
    """Ligatures -> letters, soft hyphens dropped, NFC."""
    return unicodedata.normalize("NFC", text.translate(_LIGATURES))


def vocabulary(texts) -> Counter:
    """Lower-cased words (hyphenated compounds as one word) over `texts`, line-end breaks not counted."""
    counts: Counter = Counter()
    for text in texts:
        counts.update(w.lower() for w in _WORD.findall(_BROKEN.sub(" ", text)))
    return counts


def rejoin_hyphenation(text: str, vocab: Counter) -> str:
    """Rejoin line-end hyphenated words where `vocab` (the document's own words) supports it."""

    def fix(m: re.Match) -> str:
        left, right = m.group(1), m.group(2)
        joined, hyphenated = (left + right).lower(), f"{left}-{right}".lower()
        if vocab.get(hyphenated, 0) > 0:
            return f"{left}-{right}"
        if vocab.get(joined, 0) > 0:
            return left + right
        return m.group(0)

    return _BROKEN.sub(fix, text)

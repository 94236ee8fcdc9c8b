"""Bytes -> text by evidence, strongest first, recording which encoding was used.

1. A byte-order mark: UTF-32 (LE/BE), UTF-8, UTF-16 (LE/BE): what Windows PowerShell 5.1 (`>`, `Out-File`)
   and Notepad write. The UTF-32 LE mark starts with the UTF-16 LE one, so UTF-32 is tried first.
2. No mark and a NUL byte in the first 8 KiB: binary data (no text encoding longdoc reads without a mark puts
   NULs in ordinary text).
3. Valid UTF-8 (ASCII included).
4. Otherwise a legacy 8-bit or CJK encoding, detected by charset-normalizer (a maintained detector; the chosen
   encoding is what `Decoded.encoding` reports, e.g. "cp1252" for a Windows-1252 / Latin-1 CSV). Where its
   candidates are equally likely (short texts), Windows-1252 is taken if it is one of them.

Line ends are normalised to LF (CRLF and lone CR, classic Mac OS), and a leading U+FEFF is dropped.
Errors are `NotTextError`s: one-line message plus the short `reason` a directory walk records.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from ..errors import InputError

BINARY_SNIFF_BYTES = 8192
DEFAULT_LEGACY = "cp1252"
TIE = 0.01  # chaos / coherence difference under which charset-normalizer's candidates count as equally likely
_BOMS = (  # longest first: the UTF-32 LE mark begins with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
)


class NotTextError(InputError):
    """Bytes that are not usable text; `reason` is a short form ("binary", "empty", ...)."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str  # Python codec name: "utf-8", "utf-16-le", "cp1252", ...
    bom: bool = False
    evidence: str = "utf-8"  # "byte-order mark", "utf-8", "detected", "detector tie: Windows-1252 default"


def decode_bytes(data: bytes, name: str) -> Decoded:
    """The text of `data` (a file called `name`), or NotTextError saying what is wrong."""
    if not data:
        raise NotTextError(f"{name} is empty; pass a file with some text in it", "empty")
    decoded = _by_bom(data, name) or _without_bom(data, name)
    text = normalize_newlines(decoded.text.removeprefix("\ufeff"))
    if not text.strip():
        raise NotTextError(f"{name} has no text (only whitespace); pass a file with some text in it",
                           "no text (whitespace only)")
    return Decoded(text, decoded.encoding, decoded.bom, decoded.evidence)


def normalize_newlines(text: str) -> str:
    """CRLF and lone CR -> LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _by_bom(data: bytes, name: str) -> Decoded | None:
    for bom, codec, family in _BOMS:
        if data.startswith(bom):
            try:
                return Decoded(data[len(bom):].decode(codec), codec, True, "byte-order mark")
            except UnicodeDecodeError as e:
                raise NotTextError(
                    f"{name} starts with a {family} byte-order mark but is not valid {family} (bad data at byte "
                    f"{e.start + len(bom)}); re-save it as UTF-8",
                    f"invalid {family} after its byte-order mark",
                ) from None
    return None


def _without_bom(data: bytes, name: str) -> Decoded:
    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        raise NotTextError(f"{name} looks like binary data, not text; pass a text, Markdown, PDF or Office file",
                           "binary")
    try:
        return Decoded(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        raise NotTextError(
            f"{name} is neither UTF-8 nor text in an encoding that could be detected; convert it to UTF-8 first, "
            "e.g. with iconv -f CP1252 -t UTF-8",
            "not text in any detectable encoding",
        )
    best = matches[0]
    # Short texts give the detector no evidence: many code pages tie (no mess, no language coherence) and it
    # picks one arbitrarily (cp1006 for "naïve café"). Among equally likely ones, take Windows-1252, the legacy
    # encoding of Western text and what browsers read "Latin-1" as (WHATWG Encoding Standard).
    tied = [m for m in matches if m.chaos <= best.chaos + TIE and m.coherence >= best.coherence - TIE]
    default = next((m for m in tied if DEFAULT_LEGACY in (m.encoding, *m.could_be_from_charset)), None)
    if default is not None and best.encoding != DEFAULT_LEGACY:
        try:
            return Decoded(data.decode(DEFAULT_LEGACY), DEFAULT_LEGACY, evidence="detector tie: Windows-1252 default")
        except UnicodeDecodeError:  # a byte Windows-1252 leaves undefined: keep the detector's choice
            pass
    return Decoded(str(best), best.encoding, evidence="detected")

"""Word, PowerPoint, Excel, HTML and EPUB files -> text, through markitdown; Jupyter notebooks directly.

Converter: Microsoft's `markitdown` (chosen over pypandoc and unstructured, see docs/formats.md): one call per
format, Markdown out, slide and sheet identity kept in its output, no network at run time. Its format
converters are called directly (no file-type guessing): the extension decides. It is the optional extra
`longdoc[formats]` (it pulls pandas and onnxruntime); without it these files raise one line naming the extra.

Each file becomes pieces carrying a `section` for citations (`--cite`, loader metadata):

    .pptx            one piece per slide       "slide 3" (speaker notes included)
    .xlsx / .xlsm    one piece per sheet       "sheet Prices" (a Markdown table)
    .docx .html .epub  one piece per heading   "§ Results" (text before the first heading: "§ (top)")
    .ipynb           one piece per cell        "cell 4" (markdown, code, and the text of its outputs:
                                               markitdown drops outputs, and a notebook's printed numbers
                                               are often what is asked about)

Office files and EPUBs are zip archives: their declared uncompressed size is checked before conversion, so a
zip bomb is refused instead of filling memory.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass

from ..errors import InputError
from .checks import format_bytes
from .decoding import NotTextError, decode_bytes
from .document import Piece, SourceFile

SECTION_SEPARATOR = "\n\n"
MAX_EXPANDED_BYTES = 1 * 10**9  # uncompressed size of an Office / EPUB archive
EXTRA_HINT = "pip install 'longdoc[formats]'"


@dataclass(frozen=True)
class Format:
    kind: str  # "docx", "pptx", ...
    label: str  # what a user calls it
    zipped: bool


FORMATS = {
    ".docx": Format("docx", "Word", True),
    ".pptx": Format("pptx", "PowerPoint", True),
    ".xlsx": Format("xlsx", "Excel", True),
    ".xlsm": Format("xlsx", "Excel", True),
    ".html": Format("html", "HTML", False),
    ".htm": Format("html", "HTML", False),
    ".xhtml": Format("html", "HTML", False),
    ".epub": Format("epub", "EPUB", True),
    ".ipynb": Format("ipynb", "Jupyter notebook", False),
}
# formats people have that no converter here reads: refused with what to do
UNSUPPORTED = {
    ".doc": "an old binary Word file: save it as .docx (or PDF)",
    ".ppt": "an old binary PowerPoint file: save it as .pptx (or PDF)",
    ".xls": "an old binary Excel file: save it as .xlsx or .csv",
    ".odt": "an OpenDocument text: save it as .docx or PDF",
    ".rtf": "an RTF file: save it as .docx, PDF or plain text",
}


def format_of(name: str) -> Format | None:
    """The converted format a file name says it is, or None (text, PDF, or unknown)."""
    dot = name.rfind(".")
    return FORMATS.get(name[dot:].lower()) if dot >= 0 else None


def unsupported_reason(name: str) -> str | None:
    dot = name.rfind(".")
    return UNSUPPORTED.get(name[dot:].lower()) if dot >= 0 else None


def convert(data: bytes, name: str, fmt: Format) -> SourceFile:
    """The text of `data` (a `fmt` file called `name`) as sectioned pieces; InputError when it cannot be read."""
    if fmt.zipped:
        _check_archive(data, name, fmt)
    if fmt.kind == "ipynb":
        pieces = _notebook(data, name)
    else:
        pieces = _sections(fmt.kind, _markitdown(data, name, fmt))
    pieces = [p for p in pieces if p.text.strip()]
    if not pieces:
        raise NotTextError(f"{name} has no text in it (an empty {fmt.label} file?); check that it is the right file",
                           "no text")
    return SourceFile(name, pieces, SECTION_SEPARATOR, info={"format": fmt.kind})


def _check_archive(data: bytes, name: str, fmt: Format) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            expanded = sum(i.file_size for i in z.infolist())
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise InputError(f"{name} is not a readable {fmt.label} file (not a valid zip archive: {e}); "
                         "re-save or re-download it") from None
    if expanded > MAX_EXPANDED_BYTES:
        raise InputError(f"{name} expands to {format_bytes(expanded)}, over the {format_bytes(MAX_EXPANDED_BYTES)} "
                         f"limit for an unpacked {fmt.label} file (a zip bomb?); check the file")


def _markitdown(data: bytes, name: str, fmt: Format) -> str:
    try:
        from markitdown import StreamInfo
        from markitdown.converters import DocxConverter, EpubConverter, HtmlConverter, PptxConverter, XlsxConverter
    except ImportError:
        raise InputError(f"{name} is a {fmt.label} file; reading it needs the document converters: "
                         f"{EXTRA_HINT}") from None
    converter = {"docx": DocxConverter, "pptx": PptxConverter, "xlsx": XlsxConverter, "html": HtmlConverter,
                 "epub": EpubConverter}[fmt.kind]()
    charset = None
    if fmt.kind == "html":  # decoded by evidence like any text file, handed over as UTF-8
        data, charset = decode_bytes(data, name).text.encode("utf-8"), "utf-8"
    ext = "." + fmt.kind
    try:
        result = converter.convert(io.BytesIO(data), StreamInfo(extension=ext, filename=name, charset=charset))
    except Exception as e:  # the converters raise many kinds of error on damaged files
        short = " ".join(str(e).split())[:120] or type(e).__name__
        raise InputError(f"{name} is not a readable {fmt.label} file ({short}); re-save or re-export it") from None
    return result.markdown or ""


_SLIDE = re.compile(r"^<!-- Slide number: (\d+) -->\s*$", re.M)
_SHEET = re.compile(r"^## (.+?)\s*$", re.M)
_HEADING = re.compile(r"^#{1,6} +(.+?)\s*#*\s*$", re.M)


def _sections(kind: str, markdown: str) -> list[Piece]:
    if kind == "pptx":
        return _split(markdown, _SLIDE, lambda m: f"slide {m.group(1)}", keep_marker=False)
    if kind == "xlsx":  # a sheet with no cell values is left out (its heading alone is not text)
        sheets = _split(markdown, _SHEET, lambda m: f"sheet {m.group(1)}", keep_marker=True)
        return [p for p in sheets if re.search(r"\w", p.text.partition("\n")[2])]
    return _split(markdown, _HEADING, lambda m: f"§ {_short(m.group(1))}", keep_marker=True)


_FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def _split(text: str, marker: re.Pattern, label, *, keep_marker: bool) -> list[Piece]:
    pieces: list[Piece] = []
    fences = [m.span() for m in _FENCE.finditer(text)]  # a "# comment" inside a code block is not a heading
    matches = [m for m in marker.finditer(text) if not any(a <= m.start() < b for a, b in fences)]
    head = text[: matches[0].start()] if matches else text
    if head.strip():
        pieces.append(Piece(head.strip(), section="§ (top)"))
    for m, nxt in zip(matches, [*matches[1:], None]):
        start = m.start() if keep_marker else m.end()
        body = text[start : nxt.start() if nxt else len(text)].strip()
        pieces.append(Piece(body, section=label(m)))
    return pieces


def _short(title: str, width: int = 60) -> str:
    title = " ".join(re.sub(r"[*_`\[\]]", "", title).split())
    return title if len(title) <= width else title[: width - 3] + "..."


def _notebook(data: bytes, name: str) -> list[Piece]:
    try:
        nb = json.loads(decode_bytes(data, name).text)
        cells = nb["cells"] if isinstance(nb, dict) else None
        if not isinstance(cells, list):
            raise ValueError("no list of cells")
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"{name} is not a readable Jupyter notebook ({' '.join(str(e).split())[:100]}); "
                         "re-save it from Jupyter") from None
    language = ((nb.get("metadata") or {}).get("kernelspec") or {}).get("language") or ""
    pieces = []
    for i, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict):
            continue
        source = _joined(cell.get("source"))
        kind = cell.get("cell_type")
        if kind == "code":
            parts = [f"```{language}\n{source.rstrip()}\n```"] if source.strip() else []
            outputs = [o for o in (_output_text(o) for o in cell.get("outputs") or []) if o.strip()]
            if outputs:
                parts.append("Output:\n" + "\n".join(o.rstrip() for o in outputs))
            text = "\n".join(parts)
        else:
            text = source
        pieces.append(Piece(text.strip(), section=f"cell {i}"))
    return pieces


def _output_text(output) -> str:
    if not isinstance(output, dict):
        return ""
    if output.get("output_type") == "stream":
        return _joined(output.get("text"))
    if output.get("output_type") == "error":
        return f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
    data = output.get("data") or {}
    return _joined(data.get("text/plain")) if isinstance(data, dict) else ""


def _joined(value) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return value if isinstance(value, str) else ""

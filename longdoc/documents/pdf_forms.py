"""What people typed into a PDF that is not in its page content: form fields and annotations.

A form filled in a viewer that does not flatten it keeps the typed values only in its AcroForm fields
(a widget annotation's /V, inherited through /Parent); sticky notes, comment boxes and the comments on
highlights live in annotations' /Contents. Page-content extraction sees none of them, so a question about
them got an invented answer. `page_extras(page)` renders them as bracketed lines appended to their page's
text, so citations map them to that page:

    [Form field "applicant": Orla Brennick]
    [Form field "approved": checked]
    [Comment box: Reviewer note: fee waived under rule 12]
    [Sticky note by Ann: Call the applicant before Friday]

Empty text fields are left out; check boxes are listed checked or unchecked (an unchecked box is an answer too).
"""

from __future__ import annotations

import re

_KINDS = {"/Text": "Sticky note", "/FreeText": "Comment box", "/Highlight": "Comment on highlighted text",
          "/Underline": "Comment on underlined text", "/StrikeOut": "Comment on struck-out text",
          "/Squiggly": "Comment on marked text", "/Caret": "Insertion comment", "/Stamp": "Stamp",
          "/FileAttachment": "Attachment note", "/Square": "Comment", "/Circle": "Comment", "/Line": "Comment",
          "/Polygon": "Comment", "/PolyLine": "Comment", "/Ink": "Comment", "/Sound": "Comment", "/Redact": "Comment"}
_SKIP = {"/Widget", "/Link", "/Popup"}  # a Popup repeats its parent's /Contents
_MAX_PARENTS = 32
_CHECKBOX_RADIO = 1 << 15
_PUSHBUTTON = 1 << 16


def page_extras(page) -> list[str]:
    """Bracketed lines for the form fields and annotation texts of one pypdf page (in annotation order)."""
    lines: list[str] = []
    try:
        annots = page.get("/Annots") or []
        annots = annots.get_object() if hasattr(annots, "get_object") else annots
    except Exception:
        return lines
    for ref in annots:
        try:
            annot = ref.get_object()
            line = _field_line(annot) if annot.get("/Subtype") == "/Widget" else _comment_line(annot)
        except Exception:  # one damaged annotation must not lose the page
            line = None
        if line:
            lines.append(line)
    return lines


def _inherited(annot, key):
    node = annot
    for _ in range(_MAX_PARENTS):
        if node is None:
            return None
        if key in node:
            return node[key]
        parent = node.get("/Parent")
        node = parent.get_object() if parent is not None else None
    return None


def _full_name(annot) -> str:
    parts, node = [], annot
    for _ in range(_MAX_PARENTS):
        if node is None:
            break
        if "/T" in node:
            parts.append(str(node["/T"]))
        parent = node.get("/Parent")
        node = parent.get_object() if parent is not None else None
    return ".".join(reversed(parts))


def _field_line(annot) -> str | None:
    kind = _inherited(annot, "/FT")
    value = _inherited(annot, "/V")
    name = _full_name(annot) or "(unnamed)"
    label = _inherited(annot, "/TU")
    title = f'"{name}"' if not label or str(label) == name else f'"{label}" ({name})'
    flags = int(_inherited(annot, "/Ff") or 0)
    if kind == "/Btn":
        if flags & _PUSHBUTTON:
            return None
        if flags & _CHECKBOX_RADIO:  # a radio group: the chosen option's export name
            return f"[Form field {title}: {_name_text(value)}]" if value not in (None, "/Off") else None
        on = value is not None and str(value) != "/Off"
        state = annot.get("/AS")
        if state is not None:
            on = str(state) != "/Off"
        return f"[Form field {title}: {'checked' if on else 'unchecked'}]"
    if kind == "/Sig":
        return f"[Form field {title}: signed]" if value is not None else None
    text = _value_text(value)
    return f"[Form field {title}: {text}]" if text else None


def _comment_line(annot) -> str | None:
    subtype = str(annot.get("/Subtype"))
    if subtype in _SKIP:
        return None
    text = _plain(annot.get("/Contents"))
    if not text:
        text = _plain(re.sub(r"<[^>]+>", " ", str(annot.get("/RC") or "")))
    if not text:
        return None
    author = _plain(annot.get("/T"))
    kind = _KINDS.get(subtype, "Comment")
    return f"[{kind}{' by ' + author if author else ''}: {text}]"


def _value_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or hasattr(value, "__iter__") and not isinstance(value, (str, bytes)):
        return ", ".join(t for t in (_plain(v) for v in value) if t)
    return _plain(value)


def _name_text(value) -> str:
    text = str(value)
    return text[1:] if text.startswith("/") else text


def _plain(value) -> str:
    if value is None:
        return ""
    if hasattr(value, "get_object"):
        value = value.get_object()
    text = str(value)
    if text.startswith("/"):
        text = text[1:]
    return " ".join(text.replace("\x00", "").split())

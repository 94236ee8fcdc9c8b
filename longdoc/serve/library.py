"""Uploaded documents kept by id, so a request can refer to a document instead of sending it every time.

    library = Library(folder, max_bytes=256 * 2**20)
    info = library.add([("report.pdf", pdf_bytes), ("code.zip", zip_bytes)])   # -> DocumentInfo(id="doc-…")
    document, info = library.get(info.id)                                      # a longdoc Document

A document is the files uploaded together: PDFs, text, Office files (whatever `longdoc ask` reads) and zip
archives, unpacked as folders (a zipped code folder reads as the folder would: .gitignore respected). The id is
a hash of the file names and bytes, so the same upload gets the same id on every machine. Sources are named
by the uploaded names ("report.pdf p. 3", "code/src/a.py:12"), never by where the server keeps them, so the
document text, its content hash and therefore its stored prefill (longdoc.store) are the same wherever the
folder is (a shared ingest folder for several servers or Ray workers).

On disk: `<folder>/<id>/files/…` and `<id>/info.json`, written into a temporary folder and renamed into place
(`os.replace`): a crash, Ctrl-C or SIGTERM leaves either nothing or the whole entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from longdoc.errors import InputError

ID_PREFIX = "doc-"
_ID = re.compile(r"^doc-[0-9a-f]{24}$")
MAX_ZIP_MEMBERS = 20_000


@dataclass
class DocumentInfo:
    """id: "doc-" + 24 hex digits; files: the uploaded names; bytes: their total size (zips unpacked);
    tokens: the document's length in the served model's tokens (None until counted); sources: the files read;
    skipped: (path, reason) of files left out; pages: {source label: its text} for citations."""

    id: str
    files: list[str]
    bytes: int
    tokens: int | None = None
    sources: list[str] = field(default_factory=list)
    skipped: list[list[str]] = field(default_factory=list)

    def public(self) -> dict:
        return {"id": self.id, "object": "longdoc.document", "files": self.files, "bytes": self.bytes,
                "tokens": self.tokens, "sources": self.sources, "skipped": self.skipped}


class Library:
    """The folder of uploaded documents. max_bytes: the most bytes one document may have (its files, zips
    unpacked); `TooLarge` (answered with 413) beyond it."""

    def __init__(self, root: Path | str, max_bytes: int):
        self.root, self.max_bytes = Path(root), max_bytes
        self._loaded: dict[str, tuple] = {}
        self._lock = threading.Lock()

    # -- writing ---------------------------------------------------------------------------------------------
    def add(self, files: list[tuple[str, bytes]]) -> DocumentInfo:
        """Keep the uploaded `files` [(name, bytes)] as one document; returns its info (an existing id if the
        same files were uploaded before). Raises InputError for no files or a bad name / archive, TooLarge past
        max_bytes. The document is read once here, so an unreadable upload fails now, not at the first question."""
        if not files:
            raise InputError("No files in the upload: send one or more files in the form field 'files'.")
        names = [_safe_name(name) for name, _ in files]
        if len(set(names)) != len(names):
            raise InputError("Two uploaded files have the same name: rename one.")
        total = sum(len(data) for _, data in files)
        if total > self.max_bytes:
            raise TooLarge(f"The upload is {total:,} bytes; this server takes documents of at most "
                           f"{self.max_bytes:,} bytes (--max-document-size).")
        digest = hashlib.sha256()
        for name, (_, data) in sorted(zip(names, files)):
            digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
        doc_id = ID_PREFIX + digest.hexdigest()[:24]
        if (self.root / doc_id / "info.json").is_file():
            return self.get(doc_id)[1]
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.root))
        try:
            unpacked = 0
            for name, (_, data) in zip(names, files):
                unpacked += _write(tmp / "files", name, data, self.max_bytes - unpacked)
            info = DocumentInfo(doc_id, names, unpacked)
            document = _read(tmp / "files", names)
            info.sources, info.skipped = document.sources, [list(s) for s in document.skipped]
            (tmp / "info.json").write_text(json.dumps(asdict(info)))
            try:
                os.replace(tmp, self.root / doc_id)  # atomic: the whole entry or nothing
            except OSError:
                if not (self.root / doc_id / "info.json").is_file():  # not a concurrent upload of the same files
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        with self._lock:
            self._loaded[doc_id] = (document, info)
        return info

    def set_tokens(self, doc_id: str, tokens: int) -> None:
        """Record the document's length in tokens (best effort: an unwritable folder keeps it in memory)."""
        document, info = self.get(doc_id)
        info.tokens = tokens
        path = self.root / doc_id / "info.json"
        try:
            tmp = path.with_name(f".info-{os.getpid()}-{threading.get_ident()}.json")
            tmp.write_text(json.dumps(asdict(info)))
            os.replace(tmp, path)
        except OSError:
            pass

    # -- reading ---------------------------------------------------------------------------------------------
    def get(self, doc_id: str):
        """(Document, DocumentInfo) of an id; InputError naming it when there is no such document."""
        if not isinstance(doc_id, str) or not _ID.match(doc_id):
            raise UnknownDocument(f"{doc_id!r} is not a document id (they look like doc-0123…, from POST "
                                  "/v1/longdoc/documents).")
        with self._lock:
            if doc_id in self._loaded:
                return self._loaded[doc_id]
        folder = self.root / doc_id
        try:
            info = DocumentInfo(**json.loads((folder / "info.json").read_text()))
        except (OSError, ValueError, TypeError):
            raise UnknownDocument(f"There is no document {doc_id} on this server: upload it with POST "
                                  "/v1/longdoc/documents.") from None
        document = _read(folder / "files", info.files)
        with self._lock:
            self._loaded[doc_id] = (document, info)
        return document, info

    def list(self) -> list[DocumentInfo]:
        out = []
        for d in sorted(self.root.glob(ID_PREFIX + "*")):
            try:
                out.append(self.get(d.name)[1])
            except InputError:
                continue
        return out


class TooLarge(InputError):
    """A document past the size cap (answered with 413)."""


class UnknownDocument(InputError):
    """A document id this server does not hold (answered with 404)."""


def _safe_name(name: str) -> str:
    """An uploaded file's name, reduced to its last part; InputError for an empty or hidden one."""
    base = PurePosixPath(str(name).replace("\\", "/")).name
    if not base or base in (".", "..") or "\0" in base:
        raise InputError(f"The uploaded file name {name!r} cannot be used: give the file a plain name.")
    return base


def _write(folder: Path, name: str, data: bytes, room: int) -> int:
    """Write one upload under `folder`; a .zip is unpacked into `folder/<name without .zip>/`. Returns the bytes
    written; TooLarge when they would pass `room`."""
    folder.mkdir(parents=True, exist_ok=True)
    if not name.lower().endswith(".zip"):
        (folder / name).write_bytes(data)
        return len(data)
    import io

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise InputError(f"{name} is not a readable zip archive: zip the folder again.") from None
    target = folder / name[:-4]
    members = [m for m in archive.infolist() if not m.is_dir()]
    if len(members) > MAX_ZIP_MEMBERS:
        raise TooLarge(f"{name} holds {len(members):,} files; at most {MAX_ZIP_MEMBERS:,} are read.")
    size = sum(m.file_size for m in members)  # declared sizes: a zip bomb is refused before unpacking
    if size > room:
        raise TooLarge(f"{name} unpacks to {size:,} bytes; this server takes documents of at most "
                       f"{room:,} more bytes (--max-document-size).")
    written = 0
    for m in members:
        rel = PurePosixPath(m.filename.replace("\\", "/"))
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise InputError(f"{name} has an entry outside its folder ({m.filename!r}): zip the folder again.")
        out = target.joinpath(*rel.parts)
        out.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(m) as src, open(out, "wb") as dst:
            while chunk := src.read(1 << 20):
                written += len(chunk)
                if written > room:  # the archive lied about its sizes
                    raise TooLarge(f"{name} unpacks to more than {room:,} bytes (--max-document-size).")
                dst.write(chunk)
    return written


def _read(folder: Path, names: list[str]):
    """The Document of the uploaded `names` kept in `folder`, its sources named as uploaded (not by folder)."""
    from longdoc.documents import framing, tree
    from longdoc.documents.checks import read_regular_file
    from longdoc.documents.document import merge
    from longdoc.documents.formats import read_source

    files, skipped, any_dir = [], [], False
    prefix = str(folder) + os.sep
    for name in names:
        if name.lower().endswith(".zip"):
            any_dir = True
            root = folder / name[:-4]
            if not root.is_dir():
                raise InputError(f"{name} is an empty archive: zip a folder with files in it.")
            found, dir_skipped = tree.walk(str(root))
            for f in found:
                f.name = f.name.removeprefix(prefix)
            files += found
            skipped += [(p.removeprefix(prefix), why) for p, why in dir_skipped]
        else:
            path = folder / name
            files.append(read_source(read_regular_file(str(path), name, max(1, path.stat().st_size)), name))
    return merge(files, framed=framing.needs_framing(len(names), any_dir), skipped=skipped)

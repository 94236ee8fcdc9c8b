"""The README's screenshot of the web page: the embedded model serves a 6-page PDF (window 512 = 64 x 8, so the
PDF is several windows long and the answer cites pages), headless Chromium uploads it and asks.

    python benchmarks/serve_screenshot.py --out docs/serve_page.png
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="docs/serve_page.png")
    p.add_argument("--question", default="What is the capital of Zorbia?")
    a = p.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "documents"))
    from pdf_fixtures import make_pdf
    from playwright.sync_api import sync_playwright

    from longdoc.serve.run import server
    from longdoc.serve.settings import ServeSettings
    from longdoc.settings import EngineSettings

    tmp = Path(tempfile.mkdtemp())
    filler = [f"Market note {k}: grain, wool and copper prices held steady this season." for k in range(12)]
    pages = ["\n".join(filler[:6] + ([f"The capital of Zorbia is Quillton." if i == 4 else
                                      f"Page {i} lists the harbour tolls of district {i}."]) + filler[6:])
             for i in range(1, 7)]
    pdf = make_pdf(tmp / "zorbia.pdf", pages)
    engine = EngineSettings(chunk_size=64, chunks=8, threads=2).build()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    srv = server(engine, ServeSettings(port=sock.getsockname()[1], documents_dir=tmp / "docs", store_dir="",
                                       max_tokens=24), log_level="warning")
    threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not srv.started:
        time.sleep(0.05)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(f"http://127.0.0.1:{sock.getsockname()[1]}/")
        page.locator("#files").set_input_files(str(pdf))
        page.wait_for_function("document.getElementById('doc').textContent.includes('ready')", timeout=600_000)
        page.locator("#question").fill(a.question)
        page.locator("#go").click()
        page.wait_for_function("document.getElementById('figure').naturalWidth > 100", timeout=600_000)
        page.screenshot(path=a.out, full_page=True)
        browser.close()
    srv.should_exit = True
    print("wrote", a.out)


if __name__ == "__main__":
    main()
